import type { Principal } from './authenticator.js';
import type { AccessFacts } from './facts.js';
import { grantedActions, type PolicySettings } from './policy.js';

export interface NamespaceAccess {
  namespace: string;
  kind: 'personal' | 'project' | 'shared' | 'anonymous' | 'cache';
  /** The user's roles in the project (project namespaces only). */
  roles?: string[];
  /** What the user may do in every repository of the namespace. */
  actions: string[];
}

export interface WhoAmI {
  user: string;
  userId: string;
  domain: string;
  namespace: string;
  admin: boolean;
  auth: Principal['method'];
  namespaces: NamespaceAccess[];
}

const ACTIONS = ['pull', 'push', 'delete'];

/**
 * A user's namespaces and what they may do in each, as the policy decides it for a
 * repository there: the answer to "where can I push?" that otherwise only the audit log
 * (or, for derived namespaces, the mapping rule) tells.
 */
export async function describeAccess(policy: PolicySettings, principal: Principal, facts: AccessFacts): Promise<WhoAmI> {
  const snap = await facts.snapshot();
  const actionsIn = async (ns: string) =>
    grantedActions(policy, principal.namespace, facts, { type: 'repository', name: `${ns}/x`, actions: ACTIONS });
  const namespaces: NamespaceAccess[] = [{ namespace: principal.namespace, kind: 'personal', actions: await actionsIn(principal.namespace) }];
  for (const ns of Object.keys(snap.projects).sort()) {
    if (ns === principal.namespace) continue;
    namespaces.push({ namespace: ns, kind: 'project', roles: snap.projects[ns]!, actions: await actionsIn(ns) });
  }
  for (const ns of [...policy.sharedNamespaces].sort()) {
    namespaces.push({ namespace: ns, kind: policy.anonymousNamespaces.has(ns) ? 'anonymous' : 'shared', actions: await actionsIn(ns) });
  }
  for (const c of policy.cacheNamespaces ?? []) {
    namespaces.push({ namespace: c.namespace, kind: 'cache', actions: await actionsIn(c.namespace) });
  }
  return {
    user: principal.userName,
    userId: principal.userId,
    domain: principal.domainId,
    namespace: principal.namespace,
    admin: snap.admin,
    auth: principal.method,
    namespaces,
  };
}
