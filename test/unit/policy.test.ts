import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseScope } from '../../src/oci/scope.js';
import { StaticFacts, type AccessFacts, type FactsSnapshot } from '../../src/token/facts.js';
import { anonymousActions, grantedActions, type PolicySettings } from '../../src/token/policy.js';

const base: PolicySettings = {
  projectNamespaces: true,
  pushRoles: new Set(['member', 'admin']),
  sharedNamespaces: new Set(['public']),
  pullOtherUsers: false,
  anonymousNamespaces: new Set(),
};

const alice: FactsSnapshot = { admin: false, projects: { demo: ['member', 'reader'], docs: ['reader'], ops: ['observer'] } };
const root: FactsSnapshot = { admin: true, projects: {} };

type Row = [desc: string, who: 'alice' | 'root', scope: string, expected: string[], settings?: Partial<PolicySettings>];

// Each row: alice (member of demo, reader of docs, custom role in ops) or an admin,
// asking for one scope; the granted actions must be exactly `expected`.
const rows: Row[] = [
  ['own namespace: pull', 'alice', 'repository:alice/app:pull', ['pull']],
  ['own namespace: push and pull', 'alice', 'repository:alice/app:pull,push', ['pull', 'push']],
  ['own namespace: delete', 'alice', 'repository:alice/app:delete', ['delete']],
  ['own namespace: *', 'alice', 'repository:alice/app:*', ['*']],
  ['own namespace at depth', 'alice', 'repository:alice/a/b/c/d:pull,push,delete', ['pull', 'push', 'delete']],
  ['a namespace that only starts with the user name is not theirs', 'alice', 'repository:alice2/app:push', []],
  ["another user's namespace: no push", 'alice', 'repository:bob/app:push', []],
  ["another user's namespace: no delete", 'alice', 'repository:bob/app:delete', []],
  ["another user's namespace: no pull by default", 'alice', 'repository:bob/app:pull', []],
  ["another user's namespace: pull with the switch on", 'alice', 'repository:bob/app:pull,push', ['pull'], { pullOtherUsers: true }],
  ["another user's namespace: still no delete with the switch on", 'alice', 'repository:bob/app:delete', [], { pullOtherUsers: true }],
  ['pullOtherUsers never opens a project the user is not in', 'alice', 'repository:finance/app:pull', [], { pullOtherUsers: true }],
  ['project member: pull, push, delete', 'alice', 'repository:demo/app:pull,push,delete', ['pull', 'push', 'delete']],
  ['project member: *', 'alice', 'repository:demo/app:*', ['*']],
  ['project reader: pull only', 'alice', 'repository:docs/app:pull,push', ['pull']],
  ['project reader: no delete', 'alice', 'repository:docs/app:delete', []],
  ['project reader asking * gets pull', 'alice', 'repository:docs/app:*', ['pull']],
  ['any project role pulls', 'alice', 'repository:ops/tool:pull,push', ['pull']],
  ['project namespaces switched off', 'alice', 'repository:demo/app:pull,push', [], { projectNamespaces: false }],
  ['non-member of a project: nothing', 'alice', 'repository:finance/app:pull', []],
  ['shared namespace: everyone pulls', 'alice', 'repository:public/base:pull', ['pull']],
  ['shared namespace: users do not push', 'alice', 'repository:public/base:pull,push', ['pull']],
  ['shared namespace: users do not delete', 'alice', 'repository:public/base:delete', []],
  ['shared namespace: admins push and delete', 'root', 'repository:public/base:pull,push,delete', ['pull', 'push', 'delete']],
  ['admin: any namespace', 'root', 'repository:bob/app:pull,push,delete', ['pull', 'push', 'delete']],
  ['admin: *', 'root', 'repository:anything/x:*', ['*']],
  ['admin: catalog', 'root', 'registry:catalog:*', ['*']],
  ['non-admin: no catalog', 'alice', 'registry:catalog:*', []],
  ['unknown resource types get nothing', 'alice', 'plugin:alice/x:pull', []],
  ['unknown actions are never granted', 'alice', 'repository:alice/app:pull,frobnicate', ['pull']],
  ['repository(plugin) class in own namespace', 'alice', 'repository(plugin):alice/p:pull', ['pull']],
  ['cache namespace: every user pulls', 'alice', 'repository:hub/library/busybox:pull', ['pull'], { cacheNamespaces: [{ namespace: 'hub', pull: [] }] }],
  ['cache namespace: nobody pushes or deletes', 'alice', 'repository:hub/library/busybox:pull,push,delete', ['pull'], { cacheNamespaces: [{ namespace: 'hub', pull: [] }] }],
  ['cache namespace: admins may delete', 'root', 'repository:hub/library/busybox:delete', ['delete'], { cacheNamespaces: [{ namespace: 'hub', pull: [] }] }],
  ['cache namespace with pull limited to a project the user is in', 'alice', 'repository:hub/x:pull', ['pull'], { cacheNamespaces: [{ namespace: 'hub', pull: ['finance', 'docs'] }] }],
  ['cache namespace with pull limited to projects the user is not in', 'alice', 'repository:hub/x:pull', [], { cacheNamespaces: [{ namespace: 'hub', pull: ['finance'] }] }],
  ['cache namespace with pull limited to a role the user has', 'alice', 'repository:hub/x:pull', ['pull'], { cacheNamespaces: [{ namespace: 'hub', pull: ['docs:reader'] }] }],
  ['cache namespace with pull limited to a role the user lacks there', 'alice', 'repository:hub/x:pull', [], { cacheNamespaces: [{ namespace: 'hub', pull: ['ops:reader'] }] }],
  ['cache namespace: admins pull whatever the limit', 'root', 'repository:hub/x:pull', ['pull'], { cacheNamespaces: [{ namespace: 'hub', pull: ['finance'] }] }],
  ['a cache namespace of several components', 'alice', 'repository:mirror/quay/app:pull,push', ['pull'], { cacheNamespaces: [{ namespace: 'mirror/quay', pull: [] }] }],
  ['outside a multi-component cache namespace the usual rules hold', 'alice', 'repository:mirror/other:pull', [], { cacheNamespaces: [{ namespace: 'mirror/quay', pull: [] }] }],
  ['a cache namespace shadows a project namespace of the same name', 'alice', 'repository:demo/app:pull,push', ['pull'], { cacheNamespaces: [{ namespace: 'demo', pull: [] }] }],
];

/** StaticFacts plus a project directory, as with a Keystone service account. */
class DirectoryFacts extends StaticFacts {
  override async isProjectNamespace(ns: string): Promise<boolean> {
    return ['demo', 'docs', 'ops', 'finance'].includes(ns);
  }
}

function facts(who: 'alice' | 'root'): { ns: string; facts: AccessFacts } {
  return who === 'alice' ? { ns: 'alice', facts: new DirectoryFacts(alice) } : { ns: 'root', facts: new DirectoryFacts(root) };
}

for (const [desc, who, scope, expected, settings] of rows) {
  test(`policy: ${desc}`, async () => {
    const f = facts(who);
    const got = await grantedActions({ ...base, ...settings }, f.ns, f.facts, parseScope(scope));
    assert.deepEqual(got, expected, `${who} ${scope}`);
  });
}

test('policy: facts that cannot change the outcome are never asked for', async () => {
  const asked: string[] = [];
  const counting: AccessFacts = {
    isAdmin: async () => (asked.push('admin'), false),
    projectRoles: async (ns) => (asked.push(`roles:${ns}`), undefined),
    isProjectNamespace: async (ns) => (asked.push(`project?:${ns}`), undefined),
    snapshot: async () => ({ admin: false, projects: {} }),
  };
  await grantedActions(base, 'alice', counting, parseScope('repository:alice/app:pull,push,delete'));
  await grantedActions(base, 'alice', counting, parseScope('repository:public/base:pull'));
  assert.deepEqual(asked, [], 'own namespace and shared pulls need no Keystone lookups');
});

const anon: PolicySettings = { ...base, sharedNamespaces: new Set(['public', 'mirror']), anonymousNamespaces: new Set(['mirror']) };
const anonRows: Array<[desc: string, scope: string, expected: string[], settings?: PolicySettings]> = [
  ['pull in an anonymous namespace', 'repository:mirror/busybox:pull', ['pull']],
  ['at depth', 'repository:mirror/library/busybox:pull', ['pull']],
  ['push is never anonymous', 'repository:mirror/busybox:pull,push', ['pull']],
  ['delete is never anonymous', 'repository:mirror/busybox:delete', []],
  ['* means pull only', 'repository:mirror/busybox:*', ['pull']],
  ['a shared namespace that is not anonymous', 'repository:public/base:pull', []],
  ["a user's namespace", 'repository:alice/app:pull', []],
  ['a namespace that only starts with an anonymous one', 'repository:mirror2/app:pull', []],
  ['the catalog', 'registry:catalog:*', []],
  ['off by default', 'repository:mirror/busybox:pull', [], base],
];
for (const [desc, scope, expected, settings] of anonRows) {
  test(`anonymous: ${desc}`, () => {
    assert.deepEqual(anonymousActions(settings ?? anon, parseScope(scope)), expected, scope);
  });
}
