import type { ResourceScope } from '../oci/scope.js';
import type { AccessFacts } from './facts.js';

/**
 * Who may do what. One function, no I/O of its own: facts that cost a Keystone call
 * are asked for lazily and only when the answer can change the outcome.
 *
 *  - own namespace (alice/...): everything
 *  - shared namespaces (public/...): everyone pulls; admins push and delete
 *  - project namespaces: any role pulls; pushRoles push and delete
 *  - other namespaces: nothing, or pull when pullOtherUsers is on (never a project's)
 *  - anonymous namespaces: as shared ones, and anonymous requests pull there (only there)
 *  - cache namespaces (pull-through upstreams): pull for everyone, or for the projects
 *    and roles the upstream's `pull` names; nobody pushes (the registry refuses it
 *    anyway), admins delete. They are matched first, so no personal or project
 *    namespace can shadow one.
 *  - registry:catalog:* : admins only
 *  - admins: everything
 */
export interface PolicySettings {
  projectNamespaces: boolean;
  pushRoles: ReadonlySet<string>;
  /** Includes the anonymous namespaces: what anyone may pull, every user may pull. */
  sharedNamespaces: ReadonlySet<string>;
  pullOtherUsers: boolean;
  anonymousNamespaces: ReadonlySet<string>;
  /** Namespaces of the pull-through cache and who may pull there (empty: every user). */
  cacheNamespaces?: ReadonlyArray<CacheNamespace>;
}

export interface CacheNamespace {
  /** One or more repository-name components, e.g. "dockerhub" or "mirror/quay". */
  namespace: string;
  /** Project namespaces ("demo": any role there) or "project:role" pairs; empty: every authenticated user. */
  pull: readonly string[];
}

export const REPOSITORY_ACTIONS = ['pull', 'push', 'delete'] as const;

type Grant = Set<string>;
const ALL: readonly string[] = [...REPOSITORY_ACTIONS, '*'];

/** The namespace of a repository name: its first path component. */
export function namespaceOf(repository: string): string {
  const i = repository.indexOf('/');
  return i < 0 ? repository : repository.slice(0, i);
}

export async function grantedActions(
  settings: PolicySettings,
  ownNamespace: string,
  facts: AccessFacts,
  scope: ResourceScope,
): Promise<string[]> {
  const requested = scope.actions;
  if (requested.length === 0) return [];
  const granted = await grantsFor(settings, ownNamespace, facts, scope, requested);
  return intersect(requested, granted);
}

async function grantsFor(
  settings: PolicySettings,
  ownNamespace: string,
  facts: AccessFacts,
  scope: ResourceScope,
  requested: readonly string[],
): Promise<Grant> {
  if (scope.type === 'registry') {
    if (scope.name === 'catalog' && (await facts.isAdmin())) return new Set(ALL);
    return new Set();
  }
  if (scope.type !== 'repository' || scope.class !== undefined && scope.class !== 'image' && scope.class !== 'plugin') {
    return new Set();
  }
  const cache = settings.cacheNamespaces?.find((c) => scope.name.startsWith(`${c.namespace}/`));
  if (cache) {
    const granted: Grant = (await mayPullFromCache(cache, facts)) ? new Set(['pull']) : new Set();
    const missing = requested.some((a) => (a === '*' ? true : !granted.has(a)));
    if (missing && (await facts.isAdmin())) return new Set(ALL);
    return granted;
  }
  const ns = namespaceOf(scope.name);
  if (ns === ownNamespace) return new Set(ALL);

  const granted: Grant = new Set();
  const wantsWrite = requested.some((a) => a !== 'pull');
  if (settings.sharedNamespaces.has(ns)) {
    granted.add('pull');
  } else {
    if (settings.projectNamespaces) {
      const roles = await facts.projectRoles(ns);
      if (roles && roles.size > 0) {
        granted.add('pull');
        if ([...roles].some((r) => settings.pushRoles.has(r))) {
          granted.add('push').add('delete').add('*');
        }
      }
    }
    if (!granted.has('pull') && settings.pullOtherUsers && (await facts.isProjectNamespace(ns)) !== true) {
      granted.add('pull');
    }
  }
  // The admin question may cost a Keystone call: ask only if it can add something.
  const missing = requested.some((a) => (a === '*' ? !granted.has('*') : !granted.has(a)));
  if (missing && (wantsWrite || !granted.has('pull')) && (await facts.isAdmin())) return new Set(ALL);
  return granted;
}

async function mayPullFromCache(cache: CacheNamespace, facts: AccessFacts): Promise<boolean> {
  if (cache.pull.length === 0) return true;
  for (const entry of cache.pull) {
    const colon = entry.indexOf(':');
    const project = colon < 0 ? entry : entry.slice(0, colon);
    const roles = await facts.projectRoles(project);
    if (roles && roles.size > 0 && (colon < 0 || roles.has(entry.slice(colon + 1)))) return true;
  }
  return false;
}

/** What a request without credentials gets: pull, in the anonymous namespaces only. */
export function anonymousActions(settings: PolicySettings, scope: ResourceScope): string[] {
  if (scope.type !== 'repository' || (scope.class !== undefined && scope.class !== 'image')) return [];
  if (!settings.anonymousNamespaces.has(namespaceOf(scope.name))) return [];
  return scope.actions.includes('pull') || scope.actions.includes('*') ? ['pull'] : [];
}

/** Requested ∩ granted; '*' stands for all actions and is granted only with all of them. */
function intersect(requested: readonly string[], granted: Grant): string[] {
  const out: string[] = [];
  for (const a of requested) {
    if (a === '*') {
      if (granted.has('*')) out.push('*');
      else for (const g of REPOSITORY_ACTIONS) if (granted.has(g)) out.push(g);
    } else if (granted.has(a)) {
      out.push(a);
    }
  }
  return [...new Set(out)];
}
