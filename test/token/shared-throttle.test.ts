/**
 * The login throttle shared across token-server hosts through Debian's memcached: two
 * token servers (separate processes on separate ports, as two hosts behind a load
 * balancer would be) count one guesser's failures together; without memcached each
 * counts alone; with memcached unreachable each falls back to counting alone, logs it
 * once, and logins keep working.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, it, type TestContext } from 'node:test';
import { freePort, KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { getToken } from '../helpers/token-client.js';
import { keystone, keystoneEnv, type KeystoneService } from '../helpers/services.js';

let ks: KeystoneService | undefined;
let memcached: ChildProcess | undefined;
let memcachedPort = 0;
const started: KeyportProcess[] = [];

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  memcachedPort = await freePort();
  memcached = spawn('memcached', ['-l', '127.0.0.1', '-p', String(memcachedPort), '-U', '0', '-m', '16', '-u', 'root'], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((r) => {
      const s = net.connect(memcachedPort, '127.0.0.1');
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  for (const k of started) await k.stop();
  memcached?.kill();
});

async function tokenServers(n: number, env: Record<string, string>): Promise<KeyportProcess[]> {
  const out: KeyportProcess[] = [];
  for (let i = 0; i < n; i++) {
    const k = await new KeyportProcess({ command: 'token', env: { ...keystoneEnv(ks!), KEYPORT_THROTTLE_MAX_FAILURES: '3', KEYPORT_LOG_LEVEL: 'info', ...env } }).start();
    started.push(k);
    out.push(k);
  }
  return out;
}

const attempt = (k: KeyportProcess, u: TestUser, password: string) => getToken(k, { user: u.name, password, scopes: [`repository:${u.name}/app:pull`] });

it('two token servers over one memcached throttle one guesser together', { timeout: 120_000 }, async (t) => {
  if (!ks) return t.skip('keystone unavailable');
  const [a, b] = await tokenServers(2, { KEYPORT_THROTTLE_MEMCACHED: `127.0.0.1:${memcachedPort}` });
  const u = await makeUser(new KeystoneAdmin(ks), `guessed-${KeystoneAdmin.suffix()}`);
  // Three failures in all, alternating hosts: a, b, a.
  for (const k of [a!, b!, a!]) assert.equal((await attempt(k, u, 'wrong')).status, 401);
  // b counted one itself, but sees all three.
  const onB = await attempt(b!, u, 'wrong');
  assert.equal(onB.status, 429, onB.text);
  assert.ok(Number(onB.headers['retry-after']) > 0);
  assert.equal((await attempt(a!, u, u.password)).status, 429, 'even the right password waits');
});

it('without memcached each host counts alone (what the shared count prevents)', { timeout: 120_000 }, async (t) => {
  if (!ks) return t.skip('keystone unavailable');
  const [a, b] = await tokenServers(2, {});
  const u = await makeUser(new KeystoneAdmin(ks), `guessed-${KeystoneAdmin.suffix()}`);
  for (const k of [a!, b!, a!]) assert.equal((await attempt(k, u, 'wrong')).status, 401);
  assert.equal((await attempt(b!, u, 'wrong')).status, 401, 'b has seen only one failure');
});

it('memcached unreachable: counted on each host, logged once, logins still work', { timeout: 120_000 }, async (t) => {
  if (!ks) return t.skip('keystone unavailable');
  const closed = await freePort();
  const [c] = await tokenServers(1, { KEYPORT_THROTTLE_MEMCACHED: `127.0.0.1:${closed}` });
  const u = await makeUser(new KeystoneAdmin(ks), `guessed-${KeystoneAdmin.suffix()}`);
  assert.equal((await attempt(c!, u, u.password)).status, 200, 'a login works without memcached');
  for (let i = 0; i < 3; i++) assert.equal((await attempt(c!, u, 'wrong')).status, 401);
  assert.equal((await attempt(c!, u, 'wrong')).status, 429, 'counted locally');
  const log = c!.logTail(1000);
  assert.equal(log.match(/memcached unreachable/g)?.length, 1, 'logged once');
});
