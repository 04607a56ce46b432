/**
 * Every policy row, decided by the token server against the real Keystone: users,
 * projects, roles, domains and application credentials are real Keystone objects.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { decodeJwt } from '../helpers/http.js';
import { KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { keystone, keystoneEnv, type KeystoneService } from '../helpers/services.js';
import { getToken, grantFor } from '../helpers/token-client.js';

const sfx = KeystoneAdmin.suffix();
let ks: KeystoneService | undefined;
let admin: KeystoneAdmin;
let withService: KeyportProcess;
let withoutService: KeyportProcess;
let pullOthers: KeyportProcess;
const u: Record<string, TestUser> = {};
let project: string;
let appCred: { id: string; secret: string };
let otherDomain: string;

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  admin = new KeystoneAdmin(ks);
  project = `proj-${sfx}`;
  const projectId = await admin.createProject(project);
  u.alice = await makeUser(admin, `alice-${sfx}`);
  u.bob = await makeUser(admin, `bob-${sfx}`);
  u.member = await makeUser(admin, `member-${sfx}`);
  u.reader = await makeUser(admin, `reader-${sfx}`);
  u.root = await makeUser(admin, `root-${sfx}`);
  u.odd = await makeUser(admin, `Odd.Name+${sfx}@example.com`);
  u.clash = await makeUser(admin, project); // a user named exactly like the project
  await admin.grant(projectId, u.member.id, 'member');
  await admin.grant(projectId, u.reader.id, 'reader');
  await admin.grant(await admin.projectId('admin'), u.root.id, 'admin');
  otherDomain = `dom${sfx}`;
  const domainId = await admin.createDomain(otherDomain);
  u.aliceElsewhere = await makeUser(admin, `alice-${sfx}`, { domainId });
  const secret = `appsecret-${sfx}`;
  appCred = { id: await admin.createAppCredential(u.member.name, u.member.password, u.member.id, project, `cred-${sfx}`, secret), secret };

  withService = await new KeyportProcess({ command: 'token', env: keystoneEnv(ks) }).start();
  withoutService = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: ks.url } }).start();
  pullOthers = await new KeyportProcess({ command: 'token', env: { ...keystoneEnv(ks), KEYPORT_PULL_OTHER_USERS: 'true' } }).start();
});

after(async () => {
  await Promise.all([withService?.stop(), withoutService?.stop(), pullOthers?.stop()]);
});

type Case = [desc: string, user: string, scope: string, expected: string[]];

function rows(): Case[] {
  const a = u.alice!.name;
  const b = u.bob!.name;
  return [
    ['own namespace: pull, push, delete', 'alice', `repository:${a}/app:pull,push,delete`, ['pull', 'push', 'delete']],
    ['own namespace: *', 'alice', `repository:${a}/app:*`, ['*']],
    ['own namespace at depth', 'alice', `repository:${a}/x/y/z:push`, ['push']],
    ["user1 cannot push user2/testimage (seed acceptance case)", 'alice', `repository:${b}/testimage:pull,push`, []],
    ["a user cannot delete another user's images (seed acceptance case)", 'alice', `repository:${b}/testimage:delete`, []],
    ["another user's namespace: no pull by default", 'alice', `repository:${b}/app:pull`, []],
    ['project member: pull, push, delete', 'member', `repository:${project}/app:pull,push,delete`, ['pull', 'push', 'delete']],
    ['project reader: pull only', 'reader', `repository:${project}/app:pull,push,delete`, ['pull']],
    ['non-member of the project: nothing', 'alice', `repository:${project}/app:pull,push`, []],
    ['shared namespace: users pull', 'alice', 'repository:public/base:pull,push', ['pull']],
    ['shared namespace: users do not delete', 'alice', 'repository:public/base:delete', []],
    ['shared namespace: admins push and delete', 'root', 'repository:public/base:pull,push,delete', ['pull', 'push', 'delete']],
    ["admin: another user's namespace", 'root', `repository:${b}/app:pull,push,delete`, ['pull', 'push', 'delete']],
    ['admin: catalog', 'root', 'registry:catalog:*', ['*']],
    ['non-admin: no catalog', 'alice', 'registry:catalog:*', []],
    ['project admin role elsewhere is not registry admin', 'member', 'registry:catalog:*', []],
  ];
}

function creds(name: string): [string, string] {
  return [u[name]!.name, u[name]!.password];
}

describe('policy against the real Keystone (service account configured)', () => {
  it('every row holds', async (t) => {
    if (!ks) return t.skip('no keystone');
    for (const [desc, who, scope, expected] of rows()) {
      const [user, pw] = creds(who);
      assert.deepEqual(await grantFor(withService, user, pw, scope), expected, desc);
    }
  });

  it('the token carries the Keystone user name as sub and the decision in access', async (t) => {
    if (!ks) return t.skip('no keystone');
    const r = await getToken(withService, { user: u.alice!.name, password: u.alice!.password, scopes: [`repository:${u.bob!.name}/app:push`] });
    const { payload } = decodeJwt(r.json().token);
    assert.equal(payload.sub, u.alice!.name);
    assert.deepEqual(payload.access, [{ type: 'repository', name: `${u.bob!.name}/app`, actions: [] }], 'denial is an entry with no actions');
  });

  it('every decision is written as an audit line with user, client, requested and granted scope', async (t) => {
    if (!ks) return t.skip('no keystone');
    await grantFor(withService, u.alice!.name, u.alice!.password, `repository:${u.bob!.name}/audit:push`);
    const line = await withService.waitForLog((l) => l.audit && l.user === u.alice!.name && l.requested?.includes(`repository:${u.bob!.name}/audit:push`));
    assert.ok(line, 'audit line written');
    assert.equal(line.client, '127.0.0.1');
    assert.deepEqual(line.granted, [`repository:${u.bob!.name}/audit:`]);
    assert.ok(line.reqId, 'audit line carries the request id');
  });
});

describe('namespaces of unusual identities', () => {
  it('a user named like a project does not get the project namespace; the project keeps it', async (t) => {
    if (!ks) return t.skip('no keystone');
    const [user, pw] = creds('clash');
    assert.deepEqual(await grantFor(withService, user, pw, `repository:${project}/app:pull,push`), [], 'no access to the project namespace');
    const r = await getToken(withService, { user, password: pw, scopes: [] });
    assert.equal(r.status, 200);
    // The member of the project still owns it.
    assert.deepEqual(await grantFor(withService, ...creds('member'), `repository:${project}/app:push`), ['push']);
  });

  it('same user name in another domain: DOMAIN\\user logs in and gets a different namespace', async (t) => {
    if (!ks) return t.skip('no keystone');
    const elsewhere = `${otherDomain}\\${u.aliceElsewhere!.name}`;
    const pw = u.aliceElsewhere!.password;
    assert.deepEqual(await grantFor(withService, elsewhere, pw, `repository:${u.alice!.name}/app:pull,push`), [], 'not the default-domain alice');
    const who = await getToken(withService, { user: elsewhere, password: pw, scopes: [`repository:${u.alice!.name}/app:pull`] });
    assert.equal(who.status, 200);
    const audit = await withService.waitForLog((l) => l.audit && l.domain !== 'default' && l.user === u.aliceElsewhere!.name);
    assert.ok(audit?.namespace && audit.namespace !== u.alice!.name && audit.namespace.includes('--'), `derived namespace: ${audit?.namespace}`);
    assert.deepEqual(await grantFor(withService, elsewhere, pw, `repository:${audit.namespace}/app:push`), ['push'], 'owns the derived one');
  });

  it('a user name that is not a valid path component owns its derived namespace', async (t) => {
    if (!ks) return t.skip('no keystone');
    const [user, pw] = creds('odd');
    await getToken(withService, { user, password: pw, scopes: [] });
    const audit = await withService.waitForLog((l) => l.audit && l.user === user);
    assert.match(audit.namespace, /^odd-name-[a-z0-9]+-example-com--[a-z2-7]{12}$/);
    assert.deepEqual(await grantFor(withService, user, pw, `repository:${audit.namespace}/app:pull,push`), ['pull', 'push']);
    assert.deepEqual(await grantFor(withService, user, pw, `repository:odd-name/app:push`), []);
  });
});

describe('application credentials', () => {
  it('appcred/<id> logs in as its user with exactly its project roles', async (t) => {
    if (!ks) return t.skip('no keystone');
    const user = `appcred/${appCred.id}`;
    assert.deepEqual(await grantFor(withService, user, appCred.secret, `repository:${u.member!.name}/app:push`), ['push'], 'own namespace');
    assert.deepEqual(await grantFor(withService, user, appCred.secret, `repository:${project}/app:push`), ['push'], 'its project');
    assert.deepEqual(await grantFor(withService, user, appCred.secret, 'registry:catalog:*'), []);
    const bad = await getToken(withService, { user, password: 'wrong-secret', scopes: [] });
    assert.equal(bad.status, 401);
  });
});

describe('without a service account', () => {
  it('personal, project and shared rows hold using the user\'s own token', async (t) => {
    if (!ks) return t.skip('no keystone');
    for (const [desc, who, scope, expected] of rows()) {
      const [user, pw] = creds(who);
      assert.deepEqual(await grantFor(withoutService, user, pw, scope), expected, desc);
    }
  });
});

describe('pullOtherUsers switch', () => {
  it("lets users pull, never push or delete, in other users' namespaces; projects stay closed", async (t) => {
    if (!ks) return t.skip('no keystone');
    const [user, pw] = creds('alice');
    assert.deepEqual(await grantFor(pullOthers, user, pw, `repository:${u.bob!.name}/app:pull,push,delete`), ['pull']);
    assert.deepEqual(await grantFor(pullOthers, user, pw, `repository:${project}/app:pull`), [], 'project namespace of a non-member');
  });
});
