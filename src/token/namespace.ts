import crypto from 'node:crypto';

/**
 * How Keystone identities map to repository namespaces (the first path component).
 *
 * A "plain" name is lowercase letters and digits, optionally joined by single '.', '_'
 * or '-'. A user of the default domain whose name is plain owns the namespace of that
 * name; a project of the default domain whose name is plain owns that namespace.
 * Everything else (names with capitals, '@', spaces, '--', users or projects of other
 * domains) gets a derived namespace:
 *
 *     <slug>--<h>     h = first 12 chars of lowercase base32(sha256(kind NUL domain-id NUL name))
 *
 * where slug is the name lowercased with every run of other characters replaced by
 * '-' (at most 40 characters). Plain names never contain "--" and derived ones always
 * do, so a derived namespace can never equal a plain one; two derived ones differ
 * unless the 60-bit hashes collide; kind ("user" or "project") and the domain id are
 * hashed in, so users and projects, and same-named users of different domains, never
 * meet. Shared namespaces (policy.sharedNamespaces) are never anyone's plain
 * namespace. When a default-domain user and a project share a plain name, the project keeps
 * the name and the user gets the derived namespace (this needs the project list, i.e.
 * a Keystone service account; see README).
 */

const PLAIN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const MAX_PLAIN = 64;

export function isPlainName(name: string): boolean {
  return name.length <= MAX_PLAIN && PLAIN.test(name);
}

export function derivedNamespace(kind: 'user' | 'project', domainId: string, name: string): string {
  const h = base32(crypto.createHash('sha256').update(`${kind}\0${domainId}\0${name}`).digest()).slice(0, 12);
  let slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  if (!slug) slug = kind;
  return `${slug}--${h}`;
}

export interface NamespaceRules {
  defaultDomainId: string;
  /** Plain project names of the default domain, when known (service account configured). */
  projectNames?: ReadonlySet<string>;
  /** Namespaces nobody owns personally (the shared read-only ones). */
  reserved: ReadonlySet<string>;
}

export function userNamespace(rules: NamespaceRules, domainId: string, userName: string): string {
  if (
    domainId === rules.defaultDomainId &&
    isPlainName(userName) &&
    !rules.reserved.has(userName) &&
    !rules.projectNames?.has(userName)
  ) {
    return userName;
  }
  return derivedNamespace('user', domainId, userName);
}

export function projectNamespace(rules: NamespaceRules, domainId: string, projectName: string): string {
  if (domainId === rules.defaultDomainId && isPlainName(projectName) && !rules.reserved.has(projectName)) return projectName;
  return derivedNamespace('project', domainId, projectName);
}

function base32(buf: Buffer): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of buf) {
    value = ((value << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}
