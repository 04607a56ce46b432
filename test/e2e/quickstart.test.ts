/**
 * The README's first command: scripts/quickstart.sh (npm run quickstart) brings up a
 * real Keystone with demo users and Keyport, prints the docker login line, and a real
 * client can then push with a demo user. Ctrl-C stops everything it started.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { it, type TestContext } from 'node:test';
import { certDir, must, run } from '../helpers/clients.js';
import { request } from '../helpers/http.js';
import { makeTestImage } from '../helpers/image.js';
import { freePort, tempDir } from '../helpers/keyport.js';
import { keystone } from '../helpers/services.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

it('scripts/quickstart.sh starts Keystone and Keyport; alice pushes with skopeo; Ctrl-C stops it all', { timeout: 240_000 }, async (t) => {
  // Needs what the Keystone service needs (the Debian packages, root).
  if (!keystone(t as unknown as TestContext)) return;
  const dir = tempDir('quickstart');
  const [ks, tokenPort, regPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(path.join(root, 'scripts', 'quickstart.sh'), [], {
    cwd: root,
    detached: true,
    env: {
      ...process.env,
      KS_PORT: String(ks),
      KEYPORT_QUICKSTART_DIR: dir,
      KEYPORT_PUBLIC_HOST: '127.0.0.1',
      KEYPORT_TOKEN_PORT: String(tokenPort),
      KEYPORT_REGISTRY_PORT: String(regPort),
      KEYPORT_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  try {
    const deadline = Date.now() + 180_000;
    let up = false;
    while (!up && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      if (!out.includes('docker login')) continue;
      try {
        const ca = fs.readFileSync(path.join(dir, 'certs', 'ca.crt'));
        up = (await request(`https://127.0.0.1:${regPort}/v2/`, { ca, agent: false, timeoutMs: 2000 })).status === 401;
      } catch {
        /* still starting */
      }
    }
    assert.ok(up, `quick start did not come up:\n${out}`);
    assert.match(out, new RegExp(`docker login 127\\.0\\.0\\.1:${regPort} -u alice -p alicepass`));
    const certs = certDir(fs.readFileSync(path.join(dir, 'certs', 'ca.crt')));
    const img = makeTestImage(tempDir('qs-img'), `127.0.0.1:${regPort}/alice/hello:1`);
    must(run('skopeo', ['copy', '--dest-cert-dir', certs, '--dest-creds', 'alice:alicepass', `oci:${img.ociDir}:latest`, `docker://127.0.0.1:${regPort}/alice/hello:1`]), 'push as the demo user');
    const denied = run('skopeo', ['copy', '--dest-cert-dir', certs, '--dest-creds', 'bob:bobpass', `oci:${img.ociDir}:latest`, `docker://127.0.0.1:${regPort}/alice/hello:2`]);
    assert.notEqual(denied.code, 0, 'bob cannot push into alice/');
  } finally {
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      /* already gone */
    }
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
    if (code === 'timeout') process.kill(-child.pid!, 'SIGKILL');
  }
  const still = await request(`http://127.0.0.1:${ks}/v3`, { agent: false, timeoutMs: 2000 }).then(
    () => true,
    () => false,
  );
  assert.equal(still, false, 'the demo Keystone was stopped');
});
