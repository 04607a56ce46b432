/**
 * The token server in front of Docker Distribution 2.8, driven by the real docker CLI
 * and dockerd: `docker login` with a Keystone user's credentials, push, pull, and the
 * refresh-token flow across a token-server restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Docker, must } from '../helpers/clients.js';
import { DistributionProcess, trustingKeyport } from '../helpers/distribution.js';
import { makeTestImage, type TestImage } from '../helpers/image.js';
import { KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { dockerd, keystone, keystoneEnv } from '../helpers/services.js';

const sfx = KeystoneAdmin.suffix();
let kp: KeyportProcess;
let dist: DistributionProcess;
let docker: Docker;
let alice: TestUser;
let bob: TestUser;
let image: TestImage;
let ready = false;

before(async (t) => {
  const ks = keystone(t as unknown as TestContext);
  const dd = dockerd(t as unknown as TestContext);
  if (!ks || !dd) return;
  const admin = new KeystoneAdmin(ks);
  alice = await makeUser(admin, `alice-${sfx}`);
  bob = await makeUser(admin, `bob-${sfx}`);
  kp = await new KeyportProcess({
    command: 'token',
    env: {
      ...keystoneEnv(ks),
      KEYPORT_SERVICE: 'dist.e2e',
    },
  }).start();
  dist = await new DistributionProcess(trustingKeyport(kp.certsDir, kp.tokenUrl, 'dist.e2e')).start();
  docker = new Docker(dd.socket);
  image = makeTestImage(tempDir('img'), `127.0.0.1:${dist.port}/${alice.name}/hello:1`, { marker: sfx });
  ready = true;
});

after(async () => {
  await dist?.stop();
  await kp?.stop();
});

describe('docker CLI + Docker Distribution 2.8 + Keyport token server', () => {
  it('docker login with Keystone credentials, push to the own namespace, refused elsewhere, pull after a token-server restart', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const reg = `127.0.0.1:${dist.port}`;
    const wrong = docker.run(['login', reg, '-u', alice.name, '--password-stdin'], 'wrong-password\n');
    assert.notEqual(wrong.code, 0, 'a wrong password is refused');
    must(docker.run(['login', reg, '-u', alice.name, '--password-stdin'], `${alice.password}\n`), 'docker login');
    const auth = docker.configJson().auths?.[reg];
    assert.ok(auth?.identitytoken, 'docker stored the refresh token, not the password');
    assert.ok(!JSON.stringify(docker.configJson()).includes(alice.password));

    must(docker.run(['load', '-i', image.dockerArchive]), 'docker load');
    const own = `${reg}/${alice.name}/hello:1`;
    must(docker.run(['push', own]), 'docker push to own namespace');

    const theirs = `${reg}/${bob.name}/hello:1`;
    must(docker.run(['tag', own, theirs]), 'docker tag');
    const denied = docker.run(['push', theirs]);
    assert.notEqual(denied.code, 0, 'push to another user namespace is refused');
    assert.match(denied.out, /denied|unauthorized|insufficient/i);

    await kp.restart();
    must(docker.run(['rmi', own, theirs]), 'docker rmi');
    must(docker.run(['pull', own]), 'docker pull after the token server restarted (refresh token)');
    must(docker.run(['logout', reg]), 'docker logout');
  });
});
