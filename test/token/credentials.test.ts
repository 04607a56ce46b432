/**
 * Malformed credentials are bad input, not an outage: a control character in a user name,
 * a password or an application-credential secret gets a fast 400 invalid_request, counts
 * as a failed login, and never reaches Keystone (whose password hashing fails on a NUL
 * byte with an empty 500 and a connection left hanging).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { KeystoneTap } from '../helpers/keystone-tap.js';
import { keystone, type KeystoneService } from '../helpers/services.js';
import { getToken, postToken } from '../helpers/token-client.js';
import type { Response } from '../helpers/http.js';

const sfx = KeystoneAdmin.suffix();
const KEYSTONE_TIMEOUT_MS = 4000;
const MAX_FAILURES = 3;
let ks: KeystoneService | undefined;
let admin: KeystoneAdmin;
let tap: KeystoneTap;
let kp: KeyportProcess;
let alice: TestUser;

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  admin = new KeystoneAdmin(ks);
  alice = await makeUser(admin, `alice-${sfx}`);
  tap = await new KeystoneTap(ks.url).start();
  // No service account and no login cache: every Keystone call is a login, and every login calls Keystone.
  kp = await new KeyportProcess({
    command: 'token',
    env: {
      KEYPORT_KEYSTONE_URL: tap.url,
      KEYPORT_KEYSTONE_TIMEOUT: String(KEYSTONE_TIMEOUT_MS),
      KEYPORT_LOGIN_CACHE_TTL: '0',
      KEYPORT_THROTTLE_MAX_FAILURES: String(MAX_FAILURES),
      KEYPORT_THROTTLE_WINDOW: '600',
    },
  }).start();
});

after(async () => {
  await kp?.stop();
  await tap?.close();
});

const run = (title: string, fn: () => Promise<void>) =>
  it(title, async (t) => {
    if (!ks) return t.skip('no keystone');
    await fn();
  });

const authCalls = () => tap.matching(/^POST \/v3\/auth\/tokens/).length;

/** Control characters (Unicode Cc): C0 including tab and line breaks, DEL, C1. */
const CONTROLS: Array<[string, string]> = [
  ['NUL', '\u0000'],
  ['U+0001', '\u0001'],
  ['U+001F', '\u001f'],
  ['tab', '\t'],
  ['line feed', '\n'],
  ['carriage return', '\r'],
  ['DEL', '\u007f'],
  ['C1 U+0080', '\u0080'],
  ['C1 NEL U+0085', '\u0085'],
  ['C1 U+009F', '\u009f'],
];

type Send = 'Basic auth (GET)' | 'password grant (POST)';
function login(send: Send, user: string, password: string, localAddress?: string): Promise<Response> {
  if (send === 'Basic auth (GET)') return getToken(kp, { user, password, ...(localAddress ? { localAddress } : {}) });
  return postToken(kp, { grant_type: 'password', username: user, password, service: kp.service });
}

async function timed(f: () => Promise<Response>): Promise<{ r: Response; ms: number }> {
  const t0 = Date.now();
  const r = await f();
  return { r, ms: Date.now() - t0 };
}

function assertRefused(r: Response, what: string, describes: RegExp) {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
  assert.match(String(r.headers['content-type']), /application\/json/, what);
  const body = r.json();
  assert.equal(body.error, 'invalid_request', what);
  assert.match(body.error_description, describes, what);
  assert.equal(body.errors[0].code, 'INVALID_REQUEST', what);
}

describe('control characters in credentials: 400 invalid_request, never sent to Keystone', () => {
  run('the tap sees the logins that do reach Keystone', async () => {
    const before = authCalls();
    assert.equal((await getToken(kp, { user: alice.name, password: alice.password })).status, 200);
    assert.equal((await postToken(kp, { grant_type: 'password', username: alice.name, password: 'wrong', service: kp.service })).status, 401);
    assert.equal(authCalls() - before, 2);
  });

  run('in the user name and in the password, by Basic auth and by the password grant', async () => {
    const before = authCalls();
    let row = 0;
    for (const send of ['Basic auth (GET)', 'password grant (POST)'] as const) {
      for (const [name, c] of CONTROLS) {
        // A user name of its own per row: every refusal counts towards the throttle.
        const user = `ctl${row++}-${sfx}`;
        for (const [part, u, p, describes] of [
          ['user name', `${user.slice(0, 3)}${c}${user.slice(3)}`, 'a-password', /user name contains control characters/],
          ['password', user, `pass${c}word`, /password contains control characters/],
        ] as const) {
          const what = `${name} in the ${part}, ${send}`;
          const { r, ms } = await timed(() => login(send, u, p));
          assertRefused(r, what, describes);
          assert.ok(ms < KEYSTONE_TIMEOUT_MS / 2, `${what}: answered in ${ms} ms, without waiting for Keystone`);
        }
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(authCalls(), before, 'none of them reached Keystone');
    assert.ok(!kp.logLines().some((l) => l.status >= 500), 'no 5xx');
  });

  run('in an application-credential secret', async () => {
    const before = authCalls();
    let row = 0;
    for (const send of ['Basic auth (GET)', 'password grant (POST)'] as const) {
      for (const [name, c] of CONTROLS) {
        const what = `${name} in the secret, ${send}`;
        const { r, ms } = await timed(() => login(send, `appcred/ac${row++}${sfx}`, `secret${c}`));
        assertRefused(r, what, /application credential secret contains control characters/);
        assert.ok(ms < KEYSTONE_TIMEOUT_MS / 2, `${what}: answered in ${ms} ms`);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(authCalls(), before, 'none of them reached Keystone');
  });

  run(`they count as failed logins: after ${MAX_FAILURES}, the same user from the same address gets 429, even with the right password`, async () => {
    const victim = await makeUser(admin, `victim-${sfx}`);
    const before = authCalls();
    // Each way from its own address (the password grant comes from 127.0.0.1), so each starts from zero.
    for (const [send, address] of [['Basic auth (GET)', '127.0.0.3'], ['password grant (POST)', undefined]] as const) {
      for (let i = 0; i < MAX_FAILURES; i++) {
        assertRefused(await login(send, victim.name, `${victim.password}\u0000`, address), `${send}, attempt ${i}`, /password contains control characters/);
      }
      const throttled = await login(send, victim.name, victim.password, address);
      assert.equal(throttled.status, 429, `${send}: ${throttled.text}`);
      assert.equal(throttled.json().error, 'slow_down');
      assert.ok(Number(throttled.headers['retry-after']) > 0);
    }
    assert.equal(authCalls(), before, 'neither the refused nor the throttled attempts reached Keystone');
    // Keystone never saw a failure, so it locked nobody out: from another address the user logs in.
    const real = await getToken(kp, { user: victim.name, password: victim.password, localAddress: '127.0.0.2' });
    assert.equal(real.status, 200, real.text);
  });

  run('a user name with a control character is throttled like any other', async () => {
    const user = `bad\u0001name-${sfx}`;
    for (let i = 0; i < MAX_FAILURES; i++) assert.equal((await getToken(kp, { user, password: 'x', localAddress: '127.0.0.4' })).status, 400);
    assert.equal((await getToken(kp, { user, password: 'x', localAddress: '127.0.0.4' })).status, 429);
  });
});
