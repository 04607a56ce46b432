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
