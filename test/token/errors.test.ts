/**
 * Bad input, Keystone outages and password guessing: clear 4xx/503 answers in JSON,
 * never a 500, a hang or a locked-out user.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it, type TestContext } from 'node:test';
import { basic, request, streamBody } from '../helpers/http.js';
import { freePort, KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { KeystoneTap } from '../helpers/keystone-tap.js';
import { keystone, type KeystoneService } from '../helpers/services.js';
import { getToken, postToken } from '../helpers/token-client.js';

const sfx = KeystoneAdmin.suffix();
let ks: KeystoneService | undefined;
let admin: KeystoneAdmin;
let kp: KeyportProcess;
let alice: TestUser;

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  admin = new KeystoneAdmin(ks);
  alice = await makeUser(admin, `alice-${sfx}`);
  kp = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: ks.url } }).start();
});

after(async () => {
  await kp?.stop();
});

const run = (title: string, fn: () => Promise<void>) =>
  it(title, async (t) => {
    if (!ks) return t.skip('no keystone');
    await fn();
  });

function assertJsonError(r: { status: number; headers: http.IncomingHttpHeaders; text: string }, status: number, what: string) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.match(String(r.headers['content-type']), /application\/json/, what);
  const body = JSON.parse(r.text);
  assert.equal(typeof body.error, 'string', what);
  assert.equal(typeof body.error_description, 'string', what);
}

describe('malformed requests get a clear 4xx JSON error', () => {
  run('bad scopes', async () => {
    for (const scope of ['repository', 'repository:alice', 'repository:Alice/App:pull', 'repository:a/../b:pull', 'repository:a:pu$h', 'x'.repeat(1500)]) {
      const r = await getToken(kp, { user: alice.name, password: alice.password, scopes: [scope] });
      assertJsonError(r, 400, `scope ${scope.slice(0, 40)}`);
    }
    const r = await getToken(kp, { user: alice.name, password: alice.password, scopes: Array.from({ length: 40 }, (_, i) => `repository:a/r${i}:pull`) });
    assertJsonError(r, 400, 'too many scopes');
  });

  run('bad Basic headers', async () => {
    for (const header of ['Basic', 'Basic !!!', 'Basic ' + Buffer.from('no-colon').toString('base64'), 'Basic ' + Buffer.from(':pw').toString('base64'), 'Basic ' + Buffer.from('user:').toString('base64')]) {
      const r = await request(`${kp.tokenUrl}/token?service=${kp.service}`, { headers: { authorization: header }, ca: kp.ca });
      assertJsonError(r, 400, header);
    }
    const bearer = await request(`${kp.tokenUrl}/token?service=${kp.service}`, { headers: { authorization: 'Bearer abc' }, ca: kp.ca });
    assertJsonError(bearer, 401, 'another scheme is no credentials');
    const control = await getToken(kp, { user: 'ali\u0001ce', password: 'x' });
    assertJsonError(control, 400, 'control characters in the user name');
  });

  run('unknown, missing and malformed grants; wrong content type; wrong service', async () => {
    assertJsonError(await postToken(kp, { grant_type: 'client_credentials', service: kp.service }), 400, 'unknown grant type');
    assert.equal((await postToken(kp, { grant_type: 'authorization_code' })).json().error, 'unsupported_grant_type');
    assertJsonError(await postToken(kp, { service: kp.service }), 400, 'missing grant type');
    assertJsonError(await postToken(kp, { grant_type: 'password', username: alice.name }), 400, 'password grant without password');
    assertJsonError(await postToken(kp, { grant_type: 'refresh_token' }), 400, 'refresh grant without token');
    const json = await request(`${kp.tokenUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":"password"}', ca: kp.ca });
    assertJsonError(json, 400, 'JSON body');
    const dup = await request(`${kp.tokenUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&grant_type=refresh_token', ca: kp.ca });
    assertJsonError(dup, 400, 'repeated grant_type');
    const big = await request(`${kp.tokenUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=' + 'x'.repeat(200_000), ca: kp.ca });
    assertJsonError(big, 413, 'oversized body');
    assertJsonError(await getToken(kp, { user: alice.name, password: alice.password, service: 'evil' }), 400, 'wrong service');
    const put = await request(`${kp.tokenUrl}/token`, { method: 'PUT', ca: kp.ca });
    assertJsonError(put, 405, 'PUT /token');
    assertJsonError(await request(`${kp.tokenUrl}/nope`, { ca: kp.ca }), 404, 'unknown path');
  });

  run('oversized headers are refused with JSON, not a bare connection reset', async () => {
    const r = await request(`${kp.tokenUrl}/token?service=${kp.service}`, { headers: { 'x-filler': 'y'.repeat(20_000), authorization: basic(alice.name, alice.password) }, ca: kp.ca, agent: false });
    assertJsonError(r, 431, 'oversized headers');
    const huge = await getToken(kp, { user: 'u'.repeat(300), password: 'p' });
    assertJsonError(huge, 400, 'user name longer than Keystone allows');
  });

  run('garbage on the socket gets a 400 JSON answer', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: kp.tokenPort, ca: kp.ca, servername: 'localhost' }, () => s.write('GARBAGE /\x00\x01 HTTP/9\r\n\r\n'));
      let data = '';
      s.on('data', (d) => (data += d));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400/);
    assert.match(answer, /"error":"invalid_request"/);
  });

  run('a 100 MiB POST /token gets 413 at once, the body is drained, and the server keeps serving', async () => {
    const pid = kp.pid;
    const total = 100 * 1024 * 1024;
    const r = await streamBody(`${kp.tokenUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, ca: kp.ca, total });
    assert.equal(r.error, undefined, `the client could send its whole body: ${r.error}`);
    assert.equal(r.status, 413, r.text);
    assert.equal(JSON.parse(r.text).errors[0].code, 'SIZE_INVALID');
    assert.ok(r.sentAtAnswer < total / 2, `answered before the body was read (${r.sentAtAnswer} of ${total} bytes sent)`);
    assert.doesNotThrow(() => process.kill(pid!, 0), 'the token server process is alive');
    const ok = await getToken(kp, { user: alice.name, password: alice.password });
    assert.equal(ok.status, 200, 'and issues tokens');
  });

  run('no malformed request above produced a 500', async () => {
    assert.ok(!kp.logLines().some((l) => l.status >= 500), 'no 5xx in the access log');
  });
});

describe('throttling guessed passwords', () => {
  run('after 3 failures from one address: 429 with Retry-After, Keystone not asked, the user not locked out (2 workers)', async () => {
    const victim = await makeUser(admin, `victim-${sfx}`);
    // Two worker processes: every guess comes on a new connection, so guesses land on
    // both, and the count must hold across them.
    const guesser = await new KeyportProcess({
      command: 'token',
      env: { KEYPORT_KEYSTONE_URL: ks!.url, KEYPORT_THROTTLE_MAX_FAILURES: '3', KEYPORT_THROTTLE_WINDOW: '600', KEYPORT_TOKEN_WORKERS: '2' },
    }).start();
    try {
      for (let i = 0; i < 3; i++) assert.equal((await getToken(guesser, { user: victim.name, password: `guess${i}`, fresh: true })).status, 401);
      const pids = new Set(guesser.logLines().filter((l) => l.msg === 'login refused by keystone').map((l) => l.pid));
      assert.equal(pids.size, 2, 'the failures were spread over both workers');
      const callsBefore = guesser.logLines().filter((l) => l.keystone === 'POST /auth/tokens').length;
      // Far more guesses than Keystone's lockout (test Keystone: 5 attempts) would allow.
      for (let i = 0; i < 10; i++) {
        const r = await getToken(guesser, { user: victim.name, password: i === 9 ? victim.password : `more${i}`, fresh: true });
        assertJsonError(r, 429, `guess ${i}`);
        assert.ok(Number(r.headers['retry-after']) > 0 && Number(r.headers['retry-after']) <= 600);
      }
      await new Promise((r) => setTimeout(r, 200));
      const callsAfter = guesser.logLines().filter((l) => l.keystone === 'POST /auth/tokens').length;
      assert.equal(callsAfter, callsBefore, 'throttled attempts never reach Keystone');
      // The real user, from another address, still logs in: Keystone never locked them.
      const real = await getToken(guesser, { user: victim.name, password: victim.password, localAddress: '127.0.0.2' });
      assert.equal(real.status, 200, real.text);
      // Another user from the guessing address is not affected.
      assert.equal((await getToken(guesser, { user: alice.name, password: alice.password })).status, 200);
    } finally {
      await guesser.stop();
    }
  });
});

/** A stand-in Keystone for the faults the real one cannot produce on demand. */
async function faultyKeystone(mode: 'hang' | '500' | 'garbage' | 'no-token'): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    req.resume();
    if (mode === 'hang') return; // never answers
    if (mode === '500') {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":500}}');
    } else if (mode === 'garbage') {
      res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': 'x' }).end('<html>proxy error');
    } else {
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"token":{}}');
    }
  });
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v3`,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('Keystone unavailable: 503, never 401', () => {
  it('unreachable (nothing listening), hanging, 500 and garbage answers all give 503 with a clear message', async () => {
    const closedPort = await freePort();
    const cases: Array<[string, () => Promise<{ url: string; close: () => Promise<void> }>]> = [
      ['unreachable', async () => ({ url: `http://127.0.0.1:${closedPort}/v3`, close: async () => {} })],
      ['hang', () => faultyKeystone('hang')],
      ['500', () => faultyKeystone('500')],
      ['garbage', () => faultyKeystone('garbage')],
      ['no token', () => faultyKeystone('no-token')],
    ];
    for (const [what, make] of cases) {
      const stub = await make();
      const p = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: stub.url, KEYPORT_KEYSTONE_TIMEOUT: '1000' } }).start();
      try {
        const t0 = Date.now();
        const r = await getToken(p, { user: 'alice', password: 'pw', scopes: ['repository:alice/app:pull'] });
        assertJsonError(r, 503, what);
        assert.match(r.json().error_description, /Keystone .*unavailable/);
        assert.ok(r.headers['retry-after']);
        assert.ok(Date.now() - t0 < 5000, `${what}: answered promptly`);
        const ready = await request(`${p.tokenUrl}/readyz`, { ca: p.ca });
        assert.equal(ready.status, 503, `${what}: not ready`);
        // Outages do not count as failed logins.
        const again = await getToken(p, { user: 'alice', password: 'pw' });
        assert.equal(again.status, 503);
      } finally {
        await p.stop();
        await stub.close();
      }
    }
  });
});

describe('a failing Keystone connection is never reused', () => {
  run('after an empty 500 on a connection Keystone then leaves silent, the next login goes out on a new one and succeeds', async () => {
    const marker = `broken-${sfx}`;
    const tap = await new KeystoneTap(ks!.url, { fault: (q) => (q.includes(marker) ? 'empty-500-then-silence' : undefined) }).start();
    const p = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: tap.url, KEYPORT_KEYSTONE_TIMEOUT: '3000', KEYPORT_LOGIN_CACHE_TTL: '0' } }).start();
    try {
      const broken = await getToken(p, { user: marker, password: 'pw' });
      assertJsonError(broken, 503, 'the empty 500');
      // Back to back, so a pooled connection would be the one reused.
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const r = await getToken(p, { user: alice.name, password: alice.password });
        assert.equal(r.status, 200, `login ${i} after the broken answer: ${r.status} ${r.text}`);
        assert.ok(Date.now() - t0 < 3000, `login ${i}: not waiting for the silent connection`);
      }
      assert.equal(tap.matching(/^POST \/v3\/auth\/tokens/).length, 4, 'each login was sent once');
    } finally {
      await p.stop();
      await tap.close();
    }
  });

  run('an answer that trickles in and never completes is cut off at the timeout: 503, and the next login works', async () => {
    const marker = `slow-${sfx}`;
    const tap = await new KeystoneTap(ks!.url, { fault: (q) => (q.includes(marker) ? 'trickle' : undefined) }).start();
    const p = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: tap.url, KEYPORT_KEYSTONE_TIMEOUT: '1500', KEYPORT_LOGIN_CACHE_TTL: '0' } }).start();
    try {
      const t0 = Date.now();
      const slow = await getToken(p, { user: marker, password: 'pw' });
      assertJsonError(slow, 503, 'trickling answer');
      // Each byte resets an idle timeout; the deadline is for the whole call.
      assert.ok(Date.now() - t0 < 6000, `gave up on the trickle (${Date.now() - t0} ms)`);
      assert.equal((await getToken(p, { user: alice.name, password: alice.password })).status, 200);
    } finally {
      await p.stop();
      await tap.close();
    }
  });
});
