/**
 * The token server's Prometheus endpoint: requests by route, grants, refresh grants,
 * denials, throttled logins, login cache hits and misses, Keystone latency and errors;
 * summed over the workers.
 */
import assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';
import { freePort, KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser } from '../helpers/keystone-admin.js';
import { scrapeMetrics } from '../helpers/registry.js';
import { keystone } from '../helpers/services.js';
import { getToken, postToken } from '../helpers/token-client.js';

it('token metrics move with grants, refreshes, denials, throttling, the login cache and Keystone calls', async (t) => {
  const ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  const user = await makeUser(new KeystoneAdmin(ks), `metrics-${KeystoneAdmin.suffix()}`);
  const port = await freePort();
  const kp = await new KeyportProcess({
    command: 'token',
    env: { KEYPORT_KEYSTONE_URL: ks.url, KEYPORT_TOKEN_METRICS_PORT: String(port), KEYPORT_THROTTLE_MAX_FAILURES: '2' },
  }).start();
  t.after(() => kp.stop());
  const scrape = () => scrapeMetrics(`https://127.0.0.1:${port}/metrics`, kp.ca);

  assert.equal((await getToken(kp, { user: user.name, password: user.password, scopes: [`repository:${user.name}/app:pull`] })).status, 200);
  assert.equal((await getToken(kp, { user: user.name, password: user.password })).status, 200);
  const login = await postToken(kp, { grant_type: 'password', username: user.name, password: user.password, access_type: 'offline', service: kp.service, client_id: 'test' });
  assert.equal(login.status, 200);
  const refreshed = await postToken(kp, { grant_type: 'refresh_token', refresh_token: login.json().refresh_token, service: kp.service, client_id: 'test' });
  assert.equal(refreshed.status, 200);
  for (let i = 0; i < 3; i++) await getToken(kp, { user: 'nobody-metrics', password: 'wrong' });

  const m = await scrape();
  assert.equal(m.value('keyport_token_grants_total', { grant: 'basic' }), 2);
  assert.equal(m.value('keyport_token_grants_total', { grant: 'password' }), 1);
  assert.equal(m.value('keyport_token_grants_total', { grant: 'refresh_token' }), 1, 'refresh grants');
  assert.equal(m.value('keyport_token_refresh_tokens_issued_total'), 1);
  assert.equal(m.value('keyport_token_denials_total', { reason: 'invalid_client' }), 2, 'wrong passwords');
  assert.equal(m.value('keyport_token_denials_total', { reason: 'slow_down' }), 1);
  assert.equal(m.value('keyport_login_throttled_total'), 1, 'the third failure is throttled');
  assert.ok(m.value('keyport_login_cache_total', { result: 'hit' }) >= 2, 'repeated logins come from the cache');
  assert.ok(m.value('keyport_login_cache_total', { result: 'miss' }) >= 3);
  assert.ok(m.value('keyport_keystone_request_seconds_count', { operation: 'POST /auth/tokens', status: '201' }) >= 1, m.text.slice(0, 2000));
  assert.ok(m.value('keyport_keystone_request_seconds_count', { operation: 'POST /auth/tokens', status: '401' }) >= 2);
  assert.equal(m.value('keyport_keystone_errors_total'), 0);
  const tokenRoute = { server: 'token', route: '/token' };
  assert.equal(m.value('keyport_http_request_duration_seconds_count', { ...tokenRoute, method: 'GET', status: '200' }), 2);
  assert.equal(m.value('keyport_http_request_duration_seconds_count', { ...tokenRoute, method: 'GET', status: '401' }), 2);
  assert.equal(m.value('keyport_http_request_duration_seconds_count', { ...tokenRoute, method: 'POST', status: '200' }), 2);
  assert.ok(m.value('keyport_http_request_bytes_total', { ...tokenRoute, method: 'POST' }) > 50, 'form bytes in');
  assert.ok(m.value('keyport_http_response_bytes_total', { ...tokenRoute, method: 'GET' }) > 200, 'token bytes out');
  assert.ok(!m.text.includes(user.name), 'no label names a user');
  assert.ok(m.value('process_resident_memory_bytes') > 0);
});

it('Keystone errors are counted, and token metrics are summed over the workers', async (t) => {
  const ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  const port = await freePort();
  const closed = await freePort();
  const kp = await new KeyportProcess({
    command: 'token',
    env: { KEYPORT_KEYSTONE_URL: `http://127.0.0.1:${closed}/v3`, KEYPORT_TOKEN_METRICS_PORT: String(port), KEYPORT_TOKEN_WORKERS: '2' },
  }).start();
  t.after(() => kp.stop());
  for (let i = 0; i < 6; i++) assert.equal((await getToken(kp, { user: `u${i}`, password: 'p', fresh: true })).status, 503);
  const pids = new Set(kp.logLines().filter((l) => l.msg === 'keystone request failed').map((l) => l.pid));
  const m = await scrapeMetrics(`https://127.0.0.1:${port}/metrics`, kp.ca);
  assert.equal(m.value('keyport_keystone_errors_total', { operation: 'POST /auth/tokens', reason: 'network' }), 6, m.text.slice(0, 1500));
  assert.equal(m.value('keyport_http_request_duration_seconds_count', { server: 'token', route: '/token', status: '503' }), 6);
  assert.equal(m.value('keyport_token_denials_total'), 0, 'Keystone being down is not a denial');
  assert.ok(pids.size >= 1);
});
