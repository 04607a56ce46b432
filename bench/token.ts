/**
 * Token server benchmark: tokens per second and latency over HTTPS with keep-alive.
 *   warm: cached logins, 1, 8 and 32 concurrent clients
 *   cold: every token needs Keystone (cache off), against Keystone's own password
 *         authentication rate measured in the same run
 *
 *   npm run bench:token        (as root on a fresh machine: installs what it needs)
 * Env: BENCH_SECONDS (default 10), BENCH_DIR (default /tmp/keyport-bench).
 */
import { execFileSync, spawn } from 'node:child_process';
import https from 'node:https';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = process.env.BENCH_DIR ?? '/tmp/keyport-bench';
process.env.KEYPORT_TEST_DIR = benchDir;
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

const { KeyportProcess } = await import('../test/helpers/keyport.js');
const { KeystoneAdmin, makeUser } = await import('../test/helpers/keystone-admin.js');
const { basic } = await import('../test/helpers/http.js');
const { wrk, requireTool, table, memoryMiB, fmt } = await import('./lib.js');

requireTool('wrk', 'wrk');
fs.mkdirSync(benchDir, { recursive: true });
const ksEnv = { ...process.env, KS_DIR: path.join(benchDir, 'keystone'), KS_PORT: process.env.BENCH_KEYSTONE_PORT ?? '15500', KS_LOCKOUT_ATTEMPTS: '0' };
console.log('starting Keystone ...');
execFileSync(path.join(root, 'scripts', 'keystone.sh'), ['up'], { env: ksEnv, stdio: 'inherit' });
const ks = { url: `http://127.0.0.1:${ksEnv.KS_PORT}/v3`, adminPassword: 'adminpass' };
const admin = new KeystoneAdmin(ks);
const user = await makeUser(admin, `bench-${KeystoneAdmin.suffix()}`);
// Default settings: one worker per core (KEYPORT_TOKEN_WORKERS=0), info logging with audit lines.
const env = { KEYPORT_KEYSTONE_URL: ks.url, KEYPORT_LOG_LEVEL: 'info', KEYPORT_THROTTLE_MAX_FAILURES: '1000', KEYPORT_TOKEN_WORKERS: '0' };
const warm = await new KeyportProcess({ command: 'token', env }).start();
const cold = await new KeyportProcess({ command: 'token', env: { ...env, KEYPORT_LOGIN_CACHE_TTL: '0' } }).start();

const scope = encodeURIComponent(`repository:${user.name}/app:pull,push`);
const headers = { Authorization: basic(user.name, user.password) };
const rows: Array<Array<string | number>> = [];
try {
  for (const c of [1, 8, 32]) {
    const r = wrk(`${warm.tokenUrl}/token?service=${warm.service}&scope=${scope}`, { connections: c, seconds, headers });
    rows.push([`warm, ${c} client${c > 1 ? 's' : ''}`, r.rps, r.p50ms, r.p99ms, r.errors]);
  }
  // The same bytes from a bare Node.js HTTPS server: the ceiling of the warm rows.
  const tokenUrl = `${warm.tokenUrl}/token?service=${warm.service}&scope=${scope}`;
  const sample = await new Promise<Buffer>((resolve, reject) => {
    https.get(tokenUrl, { ca: warm.ca, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(Buffer.concat(parts)));
    }).on('error', reject);
  });
  const bodyFile = path.join(benchDir, 'token-response.json');
  fs.writeFileSync(bodyFile, sample);
  const barePort = 19_000 + Math.floor(Math.random() * 1000);
  const workerCount = [...new Set(warm.logLines().filter((l) => l.msg === 'token server listening').map((l) => l.pid as number))].length;
  const bare = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench', 'bare-https.ts')], {
    env: { ...process.env, BARE_PORT: String(barePort), BARE_CERT: path.join(warm.certsDir, 'server.crt'), BARE_KEY: path.join(warm.certsDir, 'server.key'), BARE_BODY: bodyFile, BARE_WORKERS: String(workerCount) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('bare HTTPS server did not start')), 20_000);
      bare.on('message', () => {
        clearTimeout(timer);
        resolve();
      });
      bare.on('exit', (c) => reject(new Error(`bare HTTPS server exited ${c}`)));
    });
    const b = wrk(`https://127.0.0.1:${barePort}/token`, { connections: 8, seconds, headers });
    rows.push([`bare Node.js HTTPS, same bytes, ${workerCount} worker(s), 8 clients`, b.rps, b.p50ms, b.p99ms, b.errors]);
  } finally {
    bare.kill('SIGTERM');
  }
  const lua = path.join(benchDir, 'keystone-auth.lua');
  const body = JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user.name, domain: { id: 'default' }, password: user.password } } } } });
  fs.writeFileSync(lua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`);
  const k = wrk(`${ks.url}/auth/tokens?nocatalog`, { connections: 8, seconds, script: lua });
  const kc = wrk(`${cold.tokenUrl}/token?service=${cold.service}&scope=${scope}`, { connections: 8, seconds, headers });
  rows.push(['Keystone password auth, 8 clients', k.rps, k.p50ms, k.p99ms, k.errors]);
  rows.push(['Keyport cold (cache off), 8 clients', kc.rps, kc.p50ms, kc.p99ms, kc.errors]);
  const workers = [...new Set(warm.logLines().filter((l) => l.msg === 'token server listening').map((l) => l.pid as number))];
  const peaks = workers.map((pid) => memoryMiB(pid).peak);
  console.log(`\nToken server, ${seconds} s per row, HTTPS keep-alive (wrk), ${new Date().toISOString()}\n`);
  console.log(table(['case', 'tokens/s', 'p50 ms', 'p99 ms', 'errors'], rows));
  console.log(`\ncold / Keystone: ${fmt((kc.rps / k.rps) * 100)} %   ${workers.length} worker(s), peak RSS per worker: ${peaks.map(fmt).join(', ')} MiB`);
} finally {
  await warm.stop();
  await cold.stop();
  if (process.env.BENCH_KEEP_KEYSTONE !== '1') execFileSync(path.join(root, 'scripts', 'keystone.sh'), ['down'], { env: ksEnv, stdio: 'inherit' });
}
