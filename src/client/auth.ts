/**
 * Docker's token authentication as a client does it: the registry's 401 carries a
 * `WWW-Authenticate: Bearer realm=...,service=...` challenge; the client asks the realm
 * for a token for the scopes it needs (Basic auth with the user's credentials, or none
 * for anonymous pulls) and sends it as `Authorization: Bearer`. A registry answering
 * with a Basic challenge gets the credentials directly.
 */

export interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

/**
 * Parses the challenges of a WWW-Authenticate header (RFC 7235: `Scheme k=v, k="v"`;
 * several challenges may share a header, separated by commas, or come in several
 * headers). A word not followed by `=` starts a new challenge. Unknown schemes are
 * skipped.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  for (const line of Array.isArray(header) ? header : [header]) {
    let current: Challenge | undefined;
    // A parameter (k=v or k="v"), or a bare word: the next scheme.
    const item = /\s*,?\s*(?:([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))|([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*))/y;
    let m: RegExpExecArray | null;
    while (item.lastIndex < line.length && (m = item.exec(line)) !== null) {
      if (m[4] !== undefined) {
        const scheme = m[4].toLowerCase();
        current = scheme === 'bearer' || scheme === 'basic' ? { scheme, params: {} } : undefined;
        if (current) out.push(current);
      } else if (current) {
        current.params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
      }
    }
  }
  return out;
}

export interface Credentials {
  username: string;
  password: string;
}

export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/** One access entry of a Docker registry token (its `access` claim). */
export interface GrantedAccess {
  type: string;
  name: string;
  actions: string[];
}

/**
 * The `access` claim of a token, read without checking the signature: only to tell the
 * user early what the token server refused. The registry checks the token itself.
 * Undefined when the token is not a JWT with such a claim (opaque tokens are allowed).
 */
export function decodeAccess(token: string): GrantedAccess[] | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { access?: unknown };
    if (!Array.isArray(claims.access)) return undefined;
    return claims.access.filter(
      (a): a is GrantedAccess => !!a && typeof a === 'object' && typeof a.type === 'string' && typeof a.name === 'string' && Array.isArray(a.actions),
    );
  } catch {
    return undefined;
  }
}

/** The actions a token grants on one repository ('*' stands for all). */
export function grantedActions(access: GrantedAccess[], repository: string): Set<string> {
  const out = new Set<string>();
  for (const a of access) if (a.type === 'repository' && a.name === repository) for (const x of a.actions) out.add(x);
  if (out.has('*')) for (const x of ['pull', 'push', 'delete']) out.add(x);
  return out;
}
