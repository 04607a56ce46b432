/**
 * The README's first command: scripts/quickstart.sh (npm run quickstart) brings up a
 * real Keystone with demo users (random passwords, kept 0600) and Keyport on loopback,
 * makes a demo image offline, and the README's quick-start lines then push and inspect
 * it as written (only the port is the test's). Ctrl-C stops everything it started.
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
import net from 'node:net';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { certDir, run } from '../helpers/clients.js';
import { request } from '../helpers/http.js';
import { freePort, tempDir } from '../helpers/keyport.js';
import { readmeCommands } from '../helpers/readme.js';
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
    const users = path.join(dir, 'demo-users.env');
    assert.equal(fs.statSync(users).mode & 0o777, 0o600, 'the demo passwords are readable by their owner only');
    const pw = Object.fromEntries(
      fs.readFileSync(users, 'utf8').trim().split('\n').map((l) => l.split('=') as [string, string]),
    ) as Record<string, string>;
    for (const k of ['ALICE_PW', 'BOB_PW', 'ADMIN_PW']) {
      assert.match(pw[k] ?? '', /^[0-9a-f]{20}$/, `${k} is random`);
      assert.ok(out.includes(pw[k]!), `${k} is printed`);
    }
    assert.match(out, new RegExp(`docker login localhost:${regPort} -u alice --password-stdin`));
    // Loopback only: another address of this host refuses the connection.
    const other = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal);
    if (other) {
      const reached = await new Promise<boolean>((resolve) => {
        const sock = net.connect({ host: other.address, port: regPort, timeout: 2000 });
        sock.once('connect', () => (sock.destroy(), resolve(true)));
        sock.once('error', () => resolve(false));
        sock.once('timeout', () => (sock.destroy(), resolve(false)));
      });
      assert.equal(reached, false, `the quick start listens on 127.0.0.1 only, not on ${other.address}`);
    }
    // The README's quick-start lines, as written, from the checkout.
    const lines = readmeCommands('quickstart');
    assert.ok(lines.some((l) => l.startsWith('skopeo copy')), 'the README shows the push');
    const script = lines.map((l) => l.replaceAll('localhost:9001', `localhost:${regPort}`)).join('\n');
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: copy, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `README quick-start lines failed:\n${script}\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /"Digest": "sha256:[0-9a-f]{64}"/);
    const certs = certDir(fs.readFileSync(path.join(dir, 'certs', 'ca.crt')));
    const denied = run('skopeo', ['copy', '--dest-cert-dir', certs, '--dest-creds', `bob:${pw.BOB_PW}`, `oci:${path.join(dir, 'demo-image', 'oci')}:latest`, `docker://localhost:${regPort}/alice/hello:2`]);
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
