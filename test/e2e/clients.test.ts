/**
 * Keyport end to end with the real clients and the real Keystone: skopeo, podman and
 * docker (Debian's dockerd) log in with Keystone users and push and pull through the
 * token server and the registry; the policy holds through them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { certDir, Docker, must, Podman, run } from '../helpers/clients.js';
import { makeTestImage, type TestImage } from '../helpers/image.js';
import { KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { type DockerdService, dockerd, keystone, keystoneEnv } from '../helpers/services.js';

const sfx = KeystoneAdmin.suffix();
let kp: KeyportProcess;
let dd: DockerdService | undefined;
let alice: TestUser;
let bob: TestUser;
let root: TestUser;
let image: TestImage;
let certs: string;
let reg: string;
let ready = false;

before(async (t) => {
  const ks = keystone(t as unknown as TestContext);
  dd = dockerd(t as unknown as TestContext);
  if (!ks || !dd) return;
  const admin = new KeystoneAdmin(ks);
  alice = await makeUser(admin, `alice-${sfx}`);
  bob = await makeUser(admin, `bob-${sfx}`);
  root = await makeUser(admin, `root-${sfx}`);
  await admin.grant(await admin.projectId('admin'), root.id, 'admin');
  kp = await new KeyportProcess({
    command: 'start',
    env: {
      ...keystoneEnv(ks),
    },
  }).start();
  reg = `127.0.0.1:${kp.registryPort}`;
  certs = certDir(kp.ca);
  image = makeTestImage(tempDir('img'), `${reg}/${alice.name}/hello:1`, { marker: sfx });
  ready = true;
});

after(async () => {
  await kp?.stop();
});

function skopeo(args: string[]) {
  return run('skopeo', args);
}

const live = (title: string, fn: () => Promise<void>) =>
  it(title, async (t) => {
    if (!ready) return t.skip('services unavailable');
    await fn();
  });

describe('skopeo', () => {
  live('copies an image made offline into alice/app:1 and back with an identical digest', async () => {
    const dest = `docker://${reg}/${alice.name}/app:1`;
    must(skopeo(['copy', '--dest-cert-dir', certs, '--dest-creds', `${alice.name}:${alice.password}`, `oci:${image.ociDir}:latest`, dest]), 'skopeo copy up');
    const inspect = JSON.parse(must(skopeo(['inspect', '--cert-dir', certs, '--creds', `${alice.name}:${alice.password}`, dest]), 'skopeo inspect'));
    assert.equal(inspect.Digest, image.manifestDigest, 'the registry serves the manifest byte for byte');
    const back = tempDir('back');
    must(skopeo(['copy', '--src-cert-dir', certs, '--src-creds', `${alice.name}:${alice.password}`, dest, `oci:${back}:1`]), 'skopeo copy down');
    const again = JSON.parse(must(skopeo(['inspect', `oci:${back}:1`]), 'inspect copy'));
    assert.equal(again.Digest, image.manifestDigest);
    const tags = JSON.parse(must(skopeo(['list-tags', '--cert-dir', certs, '--creds', `${alice.name}:${alice.password}`, `docker://${reg}/${alice.name}/app`]), 'list-tags'));
    assert.deepEqual(tags.Tags, ['1']);
  });

  live('without the CA, TLS verification fails (HTTPS is real)', async () => {
    const r = skopeo(['inspect', '--creds', `${alice.name}:${alice.password}`, `docker://${reg}/${alice.name}/app:1`]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /certificate|x509/i);
  });

  live('bob cannot push alice/app:2 and cannot delete alice/app:1; alice and an admin can delete', async () => {
    const up = skopeo(['copy', '--dest-cert-dir', certs, '--dest-creds', `${bob.name}:${bob.password}`, `oci:${image.ociDir}:latest`, `docker://${reg}/${alice.name}/app:2`]);
    assert.notEqual(up.code, 0, 'bob push refused');
    assert.match(up.out, /denied|unauthorized|insufficient/i);
    const del = skopeo(['delete', '--cert-dir', certs, '--creds', `${bob.name}:${bob.password}`, `docker://${reg}/${alice.name}/app:1`]);
    assert.notEqual(del.code, 0, 'bob delete refused');
    must(skopeo(['inspect', '--cert-dir', certs, '--creds', `${alice.name}:${alice.password}`, `docker://${reg}/${alice.name}/app:1`]), 'still there');

    must(skopeo(['copy', '--dest-cert-dir', certs, '--dest-creds', `${alice.name}:${alice.password}`, `oci:${image.ociDir}:latest`, `docker://${reg}/${alice.name}/gone:1`]), 'push');
    must(skopeo(['delete', '--cert-dir', certs, '--creds', `${alice.name}:${alice.password}`, `docker://${reg}/${alice.name}/gone:1`]), 'alice deletes her own');
    const missing = skopeo(['inspect', '--cert-dir', certs, '--creds', `${alice.name}:${alice.password}`, `docker://${reg}/${alice.name}/gone:1`]);
    assert.notEqual(missing.code, 0);
    must(skopeo(['copy', '--dest-cert-dir', certs, '--dest-creds', `${alice.name}:${alice.password}`, `oci:${image.ociDir}:latest`, `docker://${reg}/${alice.name}/byadmin:1`]), 'push');
    must(skopeo(['delete', '--cert-dir', certs, '--creds', `${root.name}:${root.password}`, `docker://${reg}/${alice.name}/byadmin:1`]), 'an admin deletes');
  });
});

describe('podman', () => {
  live('logs in, pushes and pulls (vfs storage), and is refused in another namespace', async () => {
    const p = new Podman();
    must(p.run(['login', '--cert-dir', certs, '-u', alice.name, '--password-stdin', reg], alice.password), 'podman login');
    must(p.run(['load', '-i', image.dockerArchive]), 'podman load');
    const ref = `${reg}/${alice.name}/podman:1`;
    must(p.run(['tag', `${reg}/${alice.name}/hello:1`, ref]), 'tag');
    must(p.run(['push', '--cert-dir', certs, ref]), 'podman push');
    must(p.run(['rmi', ref, `${reg}/${alice.name}/hello:1`]), 'rmi');
    must(p.run(['pull', '--cert-dir', certs, ref]), 'podman pull');
    const id = must(p.run(['image', 'inspect', '--format', '{{.Digest}}', ref]), 'inspect').trim();
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    const other = `${reg}/${bob.name}/podman:1`;
    must(p.run(['tag', ref, other]), 'tag');
    const denied = p.run(['push', '--cert-dir', certs, other]);
    assert.notEqual(denied.code, 0, 'push to bob refused');
    must(p.run(['logout', reg]), 'logout');
  });
});

describe('docker (dockerd)', () => {
  live('logs in, pushes, pulls, and keeps working through a token-server restart (refresh token)', async () => {
    const d = new Docker(dd!.socket);
    must(d.run(['login', reg, '-u', alice.name, '--password-stdin'], `${alice.password}\n`), 'docker login');
    assert.ok(d.configJson().auths?.[reg]?.identitytoken, 'refresh token stored as identitytoken');
    must(d.run(['load', '-i', image.dockerArchive]), 'docker load');
    const ref = `${reg}/${alice.name}/docker:1`;
    must(d.run(['tag', `${reg}/${alice.name}/hello:1`, ref]), 'tag');
    must(d.run(['push', ref]), 'docker push');
    await kp.restart();
    must(d.run(['rmi', ref, `${reg}/${alice.name}/hello:1`]), 'rmi');
    must(d.run(['pull', ref]), 'docker pull after the restart');
    const out = must(d.run(['image', 'inspect', '--format', '{{index .RepoDigests 0}}', ref]), 'inspect');
    assert.match(out, /@sha256:[a-f0-9]{64}/);
    const bobRef = `${reg}/${bob.name}/docker:1`;
    must(d.run(['tag', ref, bobRef]), 'tag');
    const denied = d.run(['push', bobRef]);
    assert.notEqual(denied.code, 0, 'docker push into another user namespace is refused');
    must(d.run(['logout', reg]), 'logout');
  });

  live('bob logs in with docker and cannot push into alice/app:2', async () => {
    const d = new Docker(dd!.socket);
    must(d.run(['login', reg, '-u', bob.name, '--password-stdin'], `${bob.password}\n`), 'docker login');
    must(d.run(['load', '-i', image.dockerArchive]), 'docker load');
    const ref = `${reg}/${alice.name}/app:2`;
    must(d.run(['tag', `${reg}/${alice.name}/hello:1`, ref]), 'tag');
    const denied = d.run(['push', ref]);
    assert.notEqual(denied.code, 0);
    assert.match(denied.out, /denied|unauthorized|insufficient/i);
  });
});
