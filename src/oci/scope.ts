import { isValidRepositoryName } from './reference.js';

/**
 * Resource scopes as in Docker's token authentication spec:
 *   type[(class)]:name:action[,action...]
 * The name may itself contain ':' (a host:port prefix), so the type ends at the first
 * ':' and the actions start after the last one.
 */
export interface ResourceScope {
  type: string;
  class?: string;
  name: string;
  actions: string[];
}

/** One entry of a token's `access` claim. */
export interface AccessEntry {
  type: string;
  class?: string;
  name: string;
  actions: string[];
}

export class ScopeError extends Error {
  override name = 'ScopeError';
}

const TYPE_RE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;
const ACTION_RE = /^[a-z]*$|^\*$/;
// hostname [':' port] '/' path, path components per the reference grammar; the
// registry catalog is "registry:catalog:*".
const HOST_RE = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$/;

export function parseScope(s: string): ResourceScope {
  if (s.length > 1024) throw new ScopeError('scope is too long');
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first <= 0 || last === first) throw new ScopeError(`malformed scope ${JSON.stringify(s)}: expected type:name:actions`);
  const typePart = s.slice(0, first);
  const name = s.slice(first + 1, last);
  const actionPart = s.slice(last + 1);
  const t = TYPE_RE.exec(typePart);
  if (!t) throw new ScopeError(`malformed scope ${JSON.stringify(s)}: bad resource type`);
  if (!name) throw new ScopeError(`malformed scope ${JSON.stringify(s)}: empty resource name`);
  const actions = actionPart.split(',');
  if (actions.some((a) => !ACTION_RE.test(a))) throw new ScopeError(`malformed scope ${JSON.stringify(s)}: bad action`);
  const type = t[1]!;
  if (type === 'repository' && !isValidResourceName(name)) {
    throw new ScopeError(`malformed scope ${JSON.stringify(s)}: invalid repository name`);
  }
  const scope: ResourceScope = { type, name, actions: [...new Set(actions.filter((a) => a !== ''))] };
  if (t[2]) scope.class = t[2];
  return scope;
}

/** A repository name, optionally prefixed with the registry host[:port]. */
export function isValidResourceName(name: string): boolean {
  if (isValidRepositoryName(name)) return true;
  const slash = name.indexOf('/');
  if (slash <= 0) return false;
  const host = name.slice(0, slash);
  return (host.includes('.') || host.includes(':') || host === 'localhost') && HOST_RE.test(host) && isValidRepositoryName(name.slice(slash + 1));
}

/** Parses the `scope` values of a token request; POST sends them space-separated. */
export function parseScopes(values: string[]): ResourceScope[] {
  const out: ResourceScope[] = [];
  for (const v of values) for (const part of v.split(' ')) if (part !== '') out.push(parseScope(part));
  return out;
}

export function formatScope(s: { type: string; class?: string; name: string; actions: string[] }): string {
  return `${s.type}${s.class ? `(${s.class})` : ''}:${s.name}:${s.actions.join(',')}`;
}
