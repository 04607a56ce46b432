/**
 * The README's first command: scripts/quickstart.sh (npm run quickstart) brings up a
 * real Keystone with demo users and Keyport, prints the docker login line, and a real
 * client can then push with a demo user. Ctrl-C stops everything it started.
 *
 * The script runs in a copy of the checkout: other test files run dist/cli.js from the
 * checkout at the same time, and nothing here may rewrite what they run.
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

/** Modification times of every file under `dir`, by relative path. */
function mtimes(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const st = fs.statSync(path.join(dir, f));
    if (st.isFile()) out[f] = st.mtimeMs;
  }
  return out;
}

/**
 * What the quick start needs of the checkout, copied with their timestamps. The copy stands
 * for a checkout installed and built after its last edit. Its node_modules is a directory
 * of its own, so that npm could never empty the checkout's through a symlink; the packages
 * in it are links to the checkout's.
 */
function copyOfCheckout(): string {
  const copy = path.join(tempDir('quickstart-checkout'), 'keyport');
  fs.mkdirSync(copy);
  for (const p of ['scripts', 'src', 'dist', 'config', 'package.json', 'package-lock.json', 'tsconfig.json']) {
    fs.cpSync(path.join(root, p), path.join(copy, p), { recursive: true, preserveTimestamps: true });
  }
  const modules = path.join(copy, 'node_modules');
  fs.mkdirSync(modules);
  for (const e of fs.readdirSync(path.join(root, 'node_modules'))) {
    if (e !== '.package-lock.json') fs.symlinkSync(path.join(root, 'node_modules', e), path.join(modules, e));
  }
  // Installed, then built, after the last edit: neither npm ci nor a build is due.
  const later = new Date(Date.now() + 1000);
  fs.copyFileSync(path.join(root, 'node_modules', '.package-lock.json'), path.join(modules, '.package-lock.json'));
  fs.utimesSync(path.join(modules, '.package-lock.json'), later, later);
  for (const f of Object.keys(mtimes(path.join(copy, 'dist')))) fs.utimesSync(path.join(copy, 'dist', f), later, later);
  return copy;
}

it('scripts/quickstart.sh starts Keystone and Keyport; alice pushes with skopeo; Ctrl-C stops it all', { timeout: 240_000 }, async (t) => {
  // Needs what the Keystone service needs (the Debian packages, root).
  if (!keystone(t as unknown as TestContext)) return;
  const checkoutDist = mtimes(path.join(root, 'dist'));
  const checkoutState = fs.existsSync(path.join(root, '.keyport'));
  const installed = fs.statSync(path.join(root, 'node_modules', '.package-lock.json')).mtimeMs;
  const copy = copyOfCheckout();
  const builtAt = fs.statSync(path.join(copy, 'dist', 'cli.js')).mtimeMs;
  const dir = path.join(copy, '.keyport'); // the script's default state directory
  const [ks, tokenPort, regPort] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(path.join(copy, 'scripts', 'quickstart.sh'), [], {
    cwd: copy,
    detached: true,
    env: {
      ...process.env,
      KS_PORT: String(ks),
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
  assert.equal(fs.statSync(path.join(copy, 'dist', 'cli.js')).mtimeMs, builtAt, 'a current dist/ is not rebuilt');
  assert.deepEqual(mtimes(path.join(root, 'dist')), checkoutDist, "the checkout's dist/ was not touched");
  assert.equal(fs.statSync(path.join(root, 'node_modules', '.package-lock.json')).mtimeMs, installed, "the checkout's node_modules was not reinstalled");
  assert.equal(fs.existsSync(path.join(root, '.keyport')), checkoutState, 'no state left in the checkout');
});
