/**
 * `GET /token` and `GET /healthz` are answered before Express (src/token/fast-path.ts).
 * Their answers must be the ones Express gives: the same security headers, request id,
 * error format and log lines. `/token/` (trailing slash) is still routed by Express, so
 * each answer is compared with Express's answer to the same request.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it, type TestContext } from 'node:test';
import { basic, decodeJwt, request, type Response } from '../helpers/http.js';
import { KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { keystone, type KeystoneService } from '../helpers/services.js';

const sfx = KeystoneAdmin.suffix();
let ks: KeystoneService | undefined;
let kp: KeyportProcess;
let alice: TestUser;

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  alice = await makeUser(new KeystoneAdmin(ks), `alice-${sfx}`);
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

/** The headers helmet sets with Keyport's settings (src/http/app.ts). */
const SECURITY = {
  'content-security-policy':
    "default-src 'none';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'none';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-site',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};

/** Headers that differ between any two answers. */
const PER_ANSWER = new Set(['date', 'x-request-id', 'content-length', 'connection', 'keep-alive']);

function stable(h: http.IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => !PER_ANSWER.has(k)).sort(([a], [b]) => a.localeCompare(b)));
}

function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return request(`${kp.tokenUrl}${path}`, { ca: kp.ca, headers });
}

/** The same request through the fast path and through Express. */
async function both(query: string, headers: Record<string, string> = {}): Promise<[Response, Response]> {
  return [await get(`/token${query}`, headers), await get(`/token/${query}`, headers)];
}

describe('token fast path', () => {
  run('a token answer carries the security headers, X-Request-Id and no-store, as Express answers do', async () => {
    const q = `?service=${kp.service}&scope=${encodeURIComponent(`repository:${alice.name}/app:pull,push`)}`;
    const [fast, express] = await both(q, { Authorization: basic(alice.name, alice.password) });
    assert.equal(fast.status, 200, fast.text);
    assert.equal(express.status, 200, express.text);
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(fast.headers[k], v, k);
    assert.equal(fast.headers['cache-control'], 'no-store');
    assert.equal(fast.headers.pragma, 'no-cache');
    assert.equal(fast.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(Number(fast.headers['content-length']), fast.body.length);
    assert.deepEqual(stable(fast.headers), stable(express.headers));
    assert.match(String(fast.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const body = fast.json();
    assert.deepEqual(Object.keys(body).sort(), Object.keys(express.json()).sort());
    assert.equal(body.token, body.access_token);
    assert.deepEqual(decodeJwt(body.token).payload.access, [{ type: 'repository', name: `${alice.name}/app`, actions: ['pull', 'push'] }]);
  });

  run('a given X-Request-Id is echoed and names the audit line; a malformed one is replaced', async () => {
    const id = `fast-${sfx}`;
    const r = await get(`/token?service=${kp.service}`, { Authorization: basic(alice.name, alice.password), 'X-Request-Id': id });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-request-id'], id);
    const line = await kp.waitForLog((l) => l.reqId === id && l.msg === 'token issued');
    assert.ok(line, 'audit line with the request id');
    assert.equal(line.user, alice.name);
    assert.equal(line.path, '/token');
    assert.equal(line.status, 200);
    const bad = await get('/token', { 'X-Request-Id': 'bad id with spaces' });
    assert.notEqual(bad.headers['x-request-id'], 'bad id with spaces');
    assert.match(String(bad.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  run('malformed requests get the OAuth JSON error Express gives, with the same headers', async () => {
    const auth = { Authorization: basic(alice.name, alice.password) };
    const cases: Array<[string, Record<string, string>, number, string]> = [
      ['', {}, 401, 'invalid_client'],
      ['', { Authorization: 'Basic !!!' }, 400, 'invalid_request'],
      ['?scope=repository', auth, 400, 'invalid_scope'],
      [`?service=${kp.service}&service=x`, auth, 400, 'invalid_request'],
      ['?service=elsewhere', auth, 400, 'invalid_request'],
      [`?scope=${'x'.repeat(1500)}`, auth, 400, ''],
      ['?scope=%E0%A4%A', auth, 400, ''],
    ];
    for (const [query, headers, status, code] of cases) {
      const what = `${query || '(no query)'} ${JSON.stringify(headers)}`;
      const [fast, express] = await both(query, headers);
      assert.equal(fast.status, express.status, `${what}: ${fast.text} vs ${express.text}`);
      if (status) assert.equal(fast.status, status, `${what}: ${fast.text}`);
      const body = fast.json();
      if (code) assert.equal(body.error, code, what);
      assert.equal(typeof body.error_description, 'string', what);
      assert.equal(body.status, fast.status, what);
      assert.equal(body.errors[0].message, body.error_description, what);
      assert.deepEqual(body, express.json(), what);
      assert.deepEqual(stable(fast.headers), stable(express.headers), what);
      for (const [k, v] of Object.entries(SECURITY)) assert.equal(fast.headers[k], v, `${what}: ${k}`);
    }
  });

  run('refusals are written to the access log with the request id', async () => {
    const id = `refused-${sfx}`;
    const r = await get('/token?scope=repository', { Authorization: basic(alice.name, alice.password), 'X-Request-Id': id });
    assert.equal(r.status, 400);
    const line = await kp.waitForLog((l) => l.reqId === id && l.msg === 'request');
    assert.ok(line, 'access line');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/token');
    assert.equal(line.status, 400);
  });

  run('other methods and HEAD are still answered by Express: 405 with Allow, HEAD without a body', async () => {
    const del = await request(`${kp.tokenUrl}/token`, { ca: kp.ca, method: 'DELETE' });
    assert.equal(del.status, 405);
    assert.equal(del.headers.allow, 'GET, POST');
    assert.equal(del.json().error, 'invalid_request');
    const head = await request(`${kp.tokenUrl}/token`, { ca: kp.ca, method: 'HEAD' });
    assert.equal(head.status, 401);
    assert.equal(head.body.length, 0);
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(head.headers[k], v, k);
  });

  run('healthz answers as before, with the security headers', async () => {
    const r = await get('/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json(), { status: 'ok' });
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    for (const [k, v] of Object.entries(SECURITY)) assert.equal(r.headers[k], v, k);
    assert.match(String(r.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });
});
