import { isValidRepositoryName } from '../oci/reference.js';
import { toUnit } from './duration.js';
import { addJsonListFormat } from './formats.js';

/**
 * The `upstreams` section: registries Keyport caches pulls from, each under its own
 * local namespace (a pull of `dockerhub/library/busybox:1.36` fetches
 * `library/busybox:1.36` from the upstream mapped to `dockerhub`). Like the
 * notification endpoints it is a list of objects, so the whole list is one setting
 * (JSON in KEYPORT_UPSTREAMS), checked entry by entry here. Empty: no cache.
 */

/** One upstream as written in the configuration; absent fields take the defaults below. */
export interface UpstreamInput {
  namespace: string;
  url: string;
  username?: string;
  password?: string;
  /** File holding the password (its first line), so the secret need not sit in the config. */
  passwordFile?: string;
  caFile?: string;
  insecure?: boolean;
  /** How long a cached tag is served before it is checked against the upstream again: a duration ("5m") or seconds. */
  tagTtl?: number | string;
  /**
   * Who may pull: empty (the default) is every authenticated user; otherwise a list of
   * project namespaces ("demo": any role there) or "project:role" pairs ("demo:reader").
   */
  pull?: string[];
}

export const UPSTREAM_DEFAULTS = {
  tagTtl: 300,
  insecure: false,
  caFile: '',
  pull: [] as string[],
};

const KEYS = new Set(['namespace', 'url', 'username', 'password', 'passwordFile', 'caFile', 'insecure', 'tagTtl', 'pull']);
const PULL_ENTRY = /^[A-Za-z0-9][A-Za-z0-9._-]*(?::[A-Za-z0-9_][A-Za-z0-9._-]*)?$/;

function optionalString(v: unknown, where: string): void {
  if (v !== undefined && (typeof v !== 'string' || v === '')) throw new Error(`${where} must be a non-empty string`);
}

/** Whether one namespace lies inside the other ("mirror" and "mirror/hub"), or they are equal. */
function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/** Throws an Error naming the entry and field of the first problem. */
export function checkUpstreams(value: unknown): void {
  if (typeof value === 'string') throw new Error('must be a JSON list of upstreams; the value is not valid JSON');
  if (!Array.isArray(value)) throw new Error('must be a list of upstreams ({"namespace", "url", ...})');
  const seen: string[] = [];
  value.forEach((raw, i) => {
    const where = `upstream ${i}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where} must be an object`);
    const u = raw as Record<string, unknown>;
    const unknown = Object.keys(u).filter((k) => !KEYS.has(k));
    if (unknown.length) throw new Error(`${where}: unknown key ${unknown.join(', ')} (allowed: ${[...KEYS].join(', ')})`);
    if (typeof u.namespace !== 'string' || !isValidRepositoryName(u.namespace)) {
      throw new Error(`${where}: namespace must be a repository name prefix such as "dockerhub" or "mirror/quay" (lower case letters, digits, . _ - separated by /), got ${JSON.stringify(u.namespace)}`);
    }
    const ns = u.namespace;
    const clash = seen.find((s) => overlaps(s, ns));
    if (clash !== undefined) {
      throw new Error(clash === ns ? `${where}: the namespace ${ns} is used twice` : `${where}: the namespace ${ns} and the namespace ${clash} lie inside one another; each repository must belong to one upstream`);
    }
    seen.push(ns);
    const named = `${where} (${ns})`;
    let url: URL | undefined;
    try {
      url = typeof u.url === 'string' ? new URL(u.url) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new Error(`${named}: url must be an absolute http(s) URL such as https://registry-1.docker.io`);
    if (url.pathname !== '/' || url.search || url.hash) throw new Error(`${named}: url must name the registry host only (no path, query or fragment); the API lives under /v2/`);
    if (url.username || url.password) throw new Error(`${named}: put credentials in username and password (or passwordFile), not in the url`);
    optionalString(u.username, `${named}: username`);
    optionalString(u.password, `${named}: password`);
    optionalString(u.passwordFile, `${named}: passwordFile`);
    if (u.password !== undefined && u.passwordFile !== undefined) throw new Error(`${named}: give password or passwordFile, not both`);
    if ((u.password !== undefined || u.passwordFile !== undefined) && u.username === undefined) throw new Error(`${named}: a password needs a username`);
    if (u.username !== undefined && u.password === undefined && u.passwordFile === undefined) throw new Error(`${named}: username ${JSON.stringify(u.username)} needs a password or passwordFile`);
    if (u.caFile !== undefined && typeof u.caFile !== 'string') throw new Error(`${named}: caFile must be a path`);
    if (u.insecure !== undefined && typeof u.insecure !== 'boolean') throw new Error(`${named}: insecure must be true or false`);
    const ttl = toUnit(u.tagTtl, 's');
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0)) {
      throw new Error(`${named}: tagTtl must be a duration such as 30s, 5m, 1h or a whole number of seconds (0 or more), got ${JSON.stringify(u.tagTtl)}`);
    }
    if (u.pull !== undefined) {
      if (!Array.isArray(u.pull) || u.pull.some((p) => typeof p !== 'string')) throw new Error(`${named}: pull must be a list of strings`);
      const bad = (u.pull as string[]).filter((p) => !PULL_ENTRY.test(p));
      if (bad.length) throw new Error(`${named}: pull: ${bad.map((b) => JSON.stringify(b)).join(', ')} is neither a project namespace ("demo") nor a project and role ("demo:reader")`);
    }
  });
}

/** An upstream with every field filled in. */
export type Upstream = Required<Omit<UpstreamInput, 'username' | 'password' | 'passwordFile' | 'tagTtl'>> &
  Pick<UpstreamInput, 'username' | 'password' | 'passwordFile'> & {
    /** Seconds. */
    tagTtl: number;
  };

export function resolveUpstream(u: UpstreamInput): Upstream {
  const tagTtl = u.tagTtl === undefined ? UPSTREAM_DEFAULTS.tagTtl : (toUnit(u.tagTtl, 's') as number);
  return { ...UPSTREAM_DEFAULTS, ...u, tagTtl, pull: [...(u.pull ?? [])] };
}

/** The upstream whose namespace holds the repository, and the repository's name there. */
export function upstreamFor<T extends { namespace: string }>(upstreams: readonly T[], repository: string): { upstream: T; remote: string } | undefined {
  for (const u of upstreams) {
    if (repository.startsWith(`${u.namespace}/`)) return { upstream: u, remote: repository.slice(u.namespace.length + 1) };
  }
  return undefined;
}

addJsonListFormat('upstreams', checkUpstreams);

/** The schema entry; schema.ts places it under the top-level key `upstreams`. */
export const upstreamsSchema = {
  doc: 'Pull-through cache: registries whose images are pulled through Keyport and kept, a list of {namespace, url, username, password or passwordFile, caFile, insecure, tagTtl, pull} (JSON in the variable); see "Pull-through cache" in the README. Empty: no cache.',
  format: 'upstreams',
  default: [] as UpstreamInput[],
  // Entries may carry upstream passwords.
  sensitive: true,
  env: 'KEYPORT_UPSTREAMS',
};
