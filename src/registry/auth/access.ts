import type { AccessEntry } from '../../oci/scope.js';

/** What a request needs from the token, e.g. repository alice/app: pull, push. */
export interface RequiredAccess {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

/** True when the token's access entries grant every required action ('*' grants all). */
export function grants(access: AccessEntry[], need: RequiredAccess): boolean {
  const have = new Set<string>();
  for (const e of access) if (e.type === need.type && e.name === need.name) for (const a of e.actions) have.add(a);
  if (have.has('*')) return true;
  return need.actions.every((a) => have.has(a));
}

/**
 * The catalog: an admin's token grants registry:catalog:*, anyone else's carries one
 * `namespace` entry per namespace they may pull (the token server adds them when the
 * catalog is asked for; Docker Distribution ignores entries of types it does not know).
 */
export function grantsCatalog(access: AccessEntry[]): boolean {
  return grants(access, CATALOG) || access.some((e) => e.type === 'namespace');
}

/** Which repositories the token lets its holder see in the catalog; undefined: all. */
export function catalogFilter(access: AccessEntry[]): ((repository: string) => boolean) | undefined {
  if (grants(access, CATALOG)) return undefined;
  const visible = new Set(access.filter((e) => e.type === 'namespace' && e.actions.includes('pull')).map((e) => e.name));
  return (repository) => {
    const slash = repository.indexOf('/');
    return visible.has(slash < 0 ? repository : repository.slice(0, slash));
  };
}

const CATALOG: RequiredAccess = { type: 'registry', name: 'catalog', actions: ['*'] };

export function scopeString(need: RequiredAccess): string {
  return `${need.type}:${need.name}:${need.actions.join(',')}`;
}

/** The WWW-Authenticate challenge Docker clients follow to the token server. */
export function bearerChallenge(realm: string, service: string, need: RequiredAccess | undefined, error?: 'invalid_token' | 'insufficient_scope'): string {
  const q = (s: string) => s.replace(/["\\]/g, '');
  let h = `Bearer realm="${q(realm)}",service="${q(service)}"`;
  if (need) h += `,scope="${q(scopeString(need))}"`;
  if (error) h += `,error="${error}"`;
  return h;
}
