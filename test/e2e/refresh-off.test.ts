/**
 * KEYPORT_REFRESH_LIFETIME=0: no refresh tokens. docker login then stores the password,
 * and podman, reading docker's config.json beside it (the same HOME, no login of its
 * own), logs in and pushes; with refresh tokens on it refuses to log in over docker's
 * identity token. A refresh token minted before the switch is refused with invalid_grant.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, it, type TestContext } from 'node:test';
import { certDir, must, run } from '../helpers/clients.js';
import { request } from '../helpers/http.js';
import { makeTestImage, type TestImage } from '../helpers/image.js';
import { KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { type DockerdService, dockerd, keystone, keystoneEnv } from '../helpers/services.js';

let kp: KeyportProcess | undefined;
let dd: DockerdService | undefined;
let alice: TestUser;
let image: TestImage;
let reg = '';
let ready = false;

before(async (t) => {
  const ks = keystone(t as unknown as TestContext);
  dd = dockerd(t as unknown as TestContext);
  if (!ks || !dd) return;
  alice = await makeUser(new KeystoneAdmin(ks), `alice-${KeystoneAdmin.suffix()}`);
  kp = await new KeyportProcess({ command: 'start', env: keystoneEnv(ks) }).start();
  reg = `127.0.0.1:${kp.registryPort}`;
  image = makeTestImage(tempDir('refresh-off-img'), `${reg}/${alice.name}/hello:1`);
  ready = true;
});

after(async () => {
  await kp?.stop();
});

/** docker and podman as one user would run them: one HOME, docker's config in it. */
function clients() {
  const home = tempDir('home');
  const env = { HOME: home, DOCKER_HOST: `unix://${dd!.socket}`, XDG_RUNTIME_DIR: path.join(home, 'run') };
  fs.mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true });
  const podRoot = tempDir('podman');
  const podman = (args: string[], input?: string) =>
    run('podman', ['--storage-driver', 'vfs', '--root', path.join(podRoot, 'root'), '--runroot', path.join(podRoot, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', ...args], { env, input });
  const docker = (args: string[], input?: string) => run('docker', args, { env, input });
  const dockerConfig = () => JSON.parse(fs.readFileSync(path.join(home, '.docker', 'config.json'), 'utf8'));
  return { podman, docker, dockerConfig };
}

it('with refresh tokens on, docker stores an identity token that podman cannot log in over', { timeout: 120_000 }, async (t) => {
  if (!ready) return t.skip('services unavailable');
  const { podman, docker, dockerConfig } = clients();
  must(docker(['login', reg, '-u', alice.name, '--password-stdin'], `${alice.password}\n`), 'docker login');
  assert.ok(dockerConfig().auths[reg].identitytoken, 'docker stored a refresh token');
  const r = podman(['login', '--cert-dir', certDir(kp!.ca), reg, '-u', alice.name, '--password-stdin'], `${alice.password}\n`);
  assert.notEqual(r.code, 0, 'podman refuses to log in over an identity token');
  assert.match(r.out, /Identity token/i);
});

it('KEYPORT_REFRESH_LIFETIME=0: docker stores the password, podman logs in and pushes beside it', { timeout: 180_000 }, async (t) => {
  if (!ready) return t.skip('services unavailable');
  // A refresh token from before the switch.
  const before = await request(`${kp!.tokenUrl}/token?service=${encodeURIComponent(kp!.service)}&offline_token=true&client_id=test`, {
    ca: kp!.ca,
    headers: { authorization: `Basic ${Buffer.from(`${alice.name}:${alice.password}`).toString('base64')}` },
  });
  const oldRefresh = before.json().refresh_token as string;
  assert.ok(oldRefresh);

  kp!.env.KEYPORT_REFRESH_LIFETIME = '0';
  await kp!.restart();
  const stale = await request(`${kp!.tokenUrl}/token`, {
    method: 'POST',
    ca: kp!.ca,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: oldRefresh, service: kp!.service, client_id: 'test' }).toString(),
  });
  assert.equal(stale.status, 400);
  assert.equal(stale.json().error, 'invalid_grant');

  const { podman, docker, dockerConfig } = clients();
  must(docker(['login', reg, '-u', alice.name, '--password-stdin'], `${alice.password}\n`), 'docker login');
  const stored = dockerConfig().auths[reg];
  assert.equal(stored.identitytoken, undefined, 'no refresh token stored');
  assert.equal(Buffer.from(stored.auth, 'base64').toString(), `${alice.name}:${alice.password}`);

  const certs = certDir(kp!.ca);
  must(podman(['login', '--cert-dir', certs, reg, '-u', alice.name, '--password-stdin'], `${alice.password}\n`), 'podman login after docker login');
  must(podman(['pull', `docker-archive:${image.dockerArchive}`]), 'podman load');
  const ref = `${reg}/${alice.name}/podman:1`;
  must(podman(['tag', `${reg}/${alice.name}/hello:1`, ref]), 'tag');
  must(podman(['push', '--cert-dir', certs, ref]), 'podman push');
  must(docker(['pull', ref]), 'docker pulls what podman pushed, with the stored password');
});
