/**
 * What a user can learn about their own access, against the real Keystone and a real
 * Keyport: GET /whoami (Basic, or docker's refresh token as Bearer), the catalog filtered
 * to what the caller may pull, and anonymous pulls in configured namespaces.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it, type TestContext } from 'node:test';
import { certDir, Docker, run } from '../helpers/clients.js';
import { basic, request } from '../helpers/http.js';
import { makeTestImage } from '../helpers/image.js';
import { CLI, KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { RegistryClient } from '../helpers/registry.js';
import { getToken } from '../helpers/token-client.js';
import { type DockerdService, dockerd, keystone, keystoneEnv } from '../helpers/services.js';

const sfx = KeystoneAdmin.suffix();
const project = `team${sfx}`;
let kp: KeyportProcess | undefined;
let alice: TestUser;
let bob: TestUser;
let root: TestUser;
let ready = false;
let ksEnv: Record<string, string> = {};
let dd: DockerdService | undefined;

async function tokenFor(user: TestUser | undefined, scopes: string[]): Promise<string> {
  const r = await getToken(kp!, user ? { user: user.name, password: user.password, scopes } : { scopes });
  assert.equal(r.status, 200, r.text);
  return r.json().token as string;
}

before(async (t) => {
  const ks = keystone(t as unknown as TestContext);
  dd = dockerd(t as unknown as TestContext);
  if (!ks || !dd) return;
  ksEnv = keystoneEnv(ks);
  const admin = new KeystoneAdmin(ks);
  alice = await makeUser(admin, `alice${sfx}`);
  bob = await makeUser(admin, `bob${sfx}`);
  root = await makeUser(admin, `root${sfx}`);
  await admin.grant(await admin.projectId('admin'), root.id, 'admin');
  await admin.grant(await admin.createProject(project), alice.id, 'member');
  kp = await new KeyportProcess({ command: 'start', env: { ...keystoneEnv(ks), KEYPORT_ANONYMOUS_NAMESPACES: 'public' } }).start();
  const reg = new RegistryClient(kp);
  const push = async (who: TestUser, repo: string) => reg.pushImage(repo, '1', await tokenFor(who, [`repository:${repo}:pull,push`]));
  await push(alice, `${alice.name}/app`);
  await push(alice, `${project}/app`);
  await push(bob, `${bob.name}/app`);
  await push(root, 'public/base');
  ready = true;
});

after(async () => {
  await kp?.stop();
});

const live = (title: string, fn: () => Promise<void>) =>
  it(title, async (t) => {
    if (!ready) return t.skip('services unavailable');
    await fn();
  });

describe('GET /whoami', () => {
  live('names the user, their namespace and what they may do in each namespace', async () => {
    const r = await request(`${kp!.tokenUrl}/whoami`, { ca: kp!.ca, headers: { authorization: basic(alice.name, alice.password) } });
    assert.equal(r.status, 200, r.text);
    const who = r.json();
    assert.equal(who.user, alice.name);
    assert.equal(who.userId, alice.id);
    assert.equal(who.domain, 'default');
    assert.equal(who.namespace, alice.name);
    assert.equal(who.admin, false);
    const by = Object.fromEntries(who.namespaces.map((n: { namespace: string }) => [n.namespace, n]));
    assert.deepEqual(by[alice.name], { namespace: alice.name, kind: 'personal', actions: ['pull', 'push', 'delete'] });
    // Effective roles: Keystone's member implies reader.
    assert.equal(by[project].kind, 'project');
    assert.ok(by[project].roles.includes('member'), by[project].roles);
    assert.deepEqual(by[project].actions, ['pull', 'push', 'delete']);
    assert.deepEqual(by.public, { namespace: 'public', kind: 'anonymous', actions: ['pull'] });
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  live("takes docker's refresh token as a Bearer token", async () => {
    const login = await getToken(kp!, { user: bob.name, password: bob.password, offline: true, clientId: 'docker' });
    const refresh = login.json().refresh_token as string;
    const r = await request(`${kp!.tokenUrl}/whoami`, { ca: kp!.ca, headers: { authorization: `Bearer ${refresh}` } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().user, bob.name);
    assert.equal(r.json().auth, 'refresh_token');
  });

  live('an admin is told so', async () => {
    const r = await request(`${kp!.tokenUrl}/whoami`, { ca: kp!.ca, headers: { authorization: basic(root.name, root.password) } });
    assert.equal(r.json().admin, true);
  });

  live('no or wrong credentials: 401 with the OAuth error body', async () => {
    const none = await request(`${kp!.tokenUrl}/whoami`, { ca: kp!.ca });
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm=/);
    const wrong = await request(`${kp!.tokenUrl}/whoami`, { ca: kp!.ca, headers: { authorization: basic(alice.name, 'nope') } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json().error, 'invalid_client');
  });
});

describe('keyport whoami', () => {
  const cli = (args: string[], env: Record<string, string>, input?: string) =>
    spawnSync(process.execPath, [CLI, 'whoami', ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KEYPORT_PUBLIC_HOST: '127.0.0.1', KEYPORT_TOKEN_PORT: String(kp!.tokenPort), KEYPORT_CERTS_DIR: kp!.certsDir, ...env },
      input,
      encoding: 'utf8',
      timeout: 30_000,
    });

  live('prints the namespaces of the user logged in with --password-stdin', async () => {
    const r = cli(['-u', alice.name, '--password-stdin'], {}, `${alice.password}\n`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^user       ${alice.name} \\(id ${alice.id}, domain default\\)$`, 'm'));
    assert.match(r.stdout, new RegExp(`^namespace  ${alice.name}/$`, 'm'));
    assert.match(r.stdout, new RegExp(`^${alice.name}/\\s+personal\\s+pull,push,delete\\s*$`, 'm'));
    assert.match(r.stdout, new RegExp(`^${project}/\\s+project\\s+pull,push,delete\\s+.*member`, 'm'));
    assert.match(r.stdout, /^public\/\s+anonymous\s+pull\s*$/m);
  });

  live('an admin is told so on the command line too', async () => {
    const r = cli(['-u', root.name, '--password-stdin'], {}, `${root.password}\n`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^user       ${root.name} \\(id ${root.id}, domain default\\), registry admin$`, 'm'));
  });

  live('--json with KEYPORT_USERNAME and KEYPORT_PASSWORD', async () => {
    const r = cli(['--json'], { KEYPORT_USERNAME: bob.name, KEYPORT_PASSWORD: bob.password });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).namespace, bob.name);
  });

  live('a wrong password exits 1 with the reason; no credentials and no terminal exits 1 at once', async () => {
    const wrong = cli(['-u', alice.name, '--password-stdin'], {}, 'nope\n');
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /invalid user name or password/);
    const none = cli([], {});
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no credentials/);
  });
});

describe('the catalog', () => {
  const list = async (who: TestUser) => {
    const token = await tokenFor(who, ['registry:catalog:*']);
    const r = await request(`${kp!.registryUrl}/v2/_catalog`, { ca: kp!.ca, headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.text);
    return r.json().repositories as string[];
  };

  live('a user sees the repositories they may pull, and only those', async () => {
    const seen = await list(alice);
    assert.ok(seen.includes(`${alice.name}/app`));
    assert.ok(seen.includes(`${project}/app`));
    assert.ok(seen.includes('public/base'));
    assert.ok(!seen.includes(`${bob.name}/app`), "another user's repository is not listed");
    const bobs = await list(bob);
    assert.ok(bobs.includes(`${bob.name}/app`));
    assert.ok(!bobs.includes(`${alice.name}/app`) && !bobs.includes(`${project}/app`));
  });

  live('an admin sees every repository', async () => {
    const seen = await list(root);
    for (const r of [`${alice.name}/app`, `${project}/app`, `${bob.name}/app`, 'public/base']) assert.ok(seen.includes(r), r);
  });

  live('a token for something else is not a catalog token', async () => {
    const token = await tokenFor(alice, [`repository:${alice.name}/app:pull`]);
    const r = await request(`${kp!.registryUrl}/v2/_catalog`, { ca: kp!.ca, headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /scope="registry:catalog:\*"/);
  });
});

describe('anonymous pulls (KEYPORT_ANONYMOUS_NAMESPACES=public)', () => {
  live('a token request without credentials gets pull in public/ and nothing else', async () => {
    const token = await tokenFor(undefined, ['repository:public/base:pull,push', `repository:${alice.name}/app:pull`]);
    const access = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).access as Array<{ name: string; actions: string[] }>;
    assert.deepEqual(access.find((a) => a.name === 'public/base')?.actions, ['pull']);
    assert.deepEqual(access.find((a) => a.name === `${alice.name}/app`)?.actions, []);
  });

  live('skopeo pulls public/ without a login; pushing there without one is refused', async () => {
    const certs = certDir(kp!.ca);
    const reg = `127.0.0.1:${kp!.registryPort}`;
    const pulled = run('skopeo', ['inspect', '--cert-dir', certs, '--no-creds', `docker://${reg}/public/base:1`]);
    assert.equal(pulled.code, 0, pulled.out);
    const img = makeTestImage(tempDir('anon-img'), `${reg}/public/mine:1`);
    const pushed = run('skopeo', ['copy', '--dest-cert-dir', certs, '--dest-no-creds', `oci:${img.ociDir}:latest`, `docker://${reg}/public/mine:1`]);
    assert.notEqual(pushed.code, 0, 'anonymous push refused');
    const other = run('skopeo', ['inspect', '--cert-dir', certs, '--no-creds', `docker://${reg}/${alice.name}/app:1`]);
    assert.notEqual(other.code, 0, "anonymous pull of a user's repository refused");
  });

  live('docker pulls public/ without a login; docker pushing there without one is refused', async () => {
    // A real image (the others here are random bytes), pushed by an admin.
    const ref = `127.0.0.1:${kp!.registryPort}/public/hello:1`;
    const img = makeTestImage(tempDir('anon-docker-img'), ref);
    const pushed = run('skopeo', ['copy', '--dest-cert-dir', certDir(kp!.ca), '--dest-creds', `${root.name}:${root.password}`, `oci:${img.ociDir}:latest`, `docker://${ref}`]);
    assert.equal(pushed.code, 0, pushed.out);
    const d = new Docker(dd!.socket);
    const r = d.run(['pull', ref]);
    assert.equal(r.code, 0, r.out);
    assert.equal(d.configJson().auths, undefined, 'no login was stored or needed');
    // The anonymous token grants pull only, so the registry refuses the upload.
    const mine = `127.0.0.1:${kp!.registryPort}/public/docker-anon:1`;
    assert.equal(d.run(['tag', ref, mine]).code, 0);
    const push = d.run(['push', mine]);
    assert.notEqual(push.code, 0, `anonymous docker push refused: ${push.out}`);
    assert.match(push.out, /unauthorized|denied|authentication required/i);
    const stored = await request(`${kp!.registryUrl}/v2/public/docker-anon/tags/list`, {
      ca: kp!.ca,
      headers: { authorization: `Bearer ${await tokenFor(root, ['repository:public/docker-anon:pull'])}` },
    });
    assert.equal(stored.status, 404, 'nothing was stored');
    d.run(['rmi', ref, mine]);
  });

  live('without anonymous namespaces, a token request without credentials is 401', async () => {
    const plain = await new KeyportProcess({ command: 'token', env: ksEnv }).start();
    try {
      const r = await getToken(plain, { scopes: ['repository:public/base:pull'] });
      assert.equal(r.status, 401);
    } finally {
      await plain.stop();
    }
  });
});
