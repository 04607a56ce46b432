/**
 * Token endpoint flows against the real Keystone: docker's login-then-refresh
 * sequence, skopeo/podman's GET, OAuth password grants, refresh tokens across restarts,
 * token format, caching.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import * as jose from 'jose';
import { decodeJwt, request, type Response } from '../helpers/http.js';
import { KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { type KeystoneService, keystone, keystoneEnv } from '../helpers/services.js';
import { getToken, granted, postToken } from '../helpers/token-client.js';

const sfx = KeystoneAdmin.suffix();
let ks: KeystoneService | undefined;
let admin: KeystoneAdmin;
let kp: KeyportProcess;
let noService: KeyportProcess;
let alice: TestUser;
let bob: TestUser;
let project: string;
let projectId: string;

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  admin = new KeystoneAdmin(ks);
  project = `flow-${sfx}`;
  projectId = await admin.createProject(project);
  alice = await makeUser(admin, `alice-${sfx}`);
  bob = await makeUser(admin, `bob-${sfx}`);
  await admin.grant(projectId, bob.id, 'member');
  kp = await new KeyportProcess({
    command: 'token',
    env: {
      ...keystoneEnv(ks),
      KEYPORT_ISSUER: 'flows-issuer',
      KEYPORT_SERVICE: 'flows.registry',
      KEYPORT_TOKEN_LIFETIME: '120',
      KEYPORT_REFRESH_LIFETIME: '3600',
    },
  }).start();
  noService = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: ks.url, KEYPORT_LOGIN_CACHE_TTL: '0' } }).start();
});

after(async () => {
  await Promise.all([kp?.stop(), noService?.stop()]);
});

const run = (title: string, fn: () => Promise<void>) =>
  it(title, async (t) => {
    if (!ks) return t.skip('no keystone');
    await fn();
  });

function keystoneAuthCalls(p: KeyportProcess): number {
  return p.logLines().filter((l) => l.keystone === 'POST /auth/tokens').length;
}

describe('GET /token', () => {
  run('without credentials: 401 with a Basic challenge and a JSON body', async () => {
    const r = await getToken(kp, {});
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /^Basic realm="https:\/\/127\.0\.0\.1:\d+\/token"/);
    assert.equal(r.json().error, 'invalid_client');
  });

  run('skopeo/podman style: Basic auth, account, repeated scopes', async () => {
    const r = await getToken(kp, {
      user: alice.name,
      password: alice.password,
      account: alice.name,
      scopes: [`repository:${alice.name}/app:pull,push`, `repository:${bob.name}/base:pull`],
    });
    assert.equal(r.status, 200);
    const body = r.json();
    assert.equal(body.token, body.access_token);
    assert.equal(body.expires_in, 120, 'configured lifetime');
    assert.ok(!Number.isNaN(Date.parse(body.issued_at)) && /Z$/.test(body.issued_at), 'issued_at is RFC 3339');
    assert.equal(body.refresh_token, undefined, 'no refresh token without offline_token');
    assert.deepEqual(granted(body.token, `${alice.name}/app`), ['pull', 'push']);
    assert.deepEqual(granted(body.token, `${bob.name}/base`), []);
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  run('the realm path with a trailing slash (/token/) works too', async () => {
    const q = `service=flows.registry&scope=repository:${alice.name}/app:pull`;
    const r = await request(`${kp.tokenUrl}/token/?${q}`, {
      headers: { authorization: 'Basic ' + Buffer.from(`${alice.name}:${alice.password}`).toString('base64') },
      ca: kp.ca,
    });
    assert.equal(r.status, 200);
  });

  run('the JWT: x5c and libtrust kid in the header, standard claims, signature by token.crt', async () => {
    const r = await getToken(kp, { user: alice.name, password: alice.password, scopes: [`repository:${alice.name}/app:pull`] });
    const token = r.json().token as string;
    const { header, payload } = decodeJwt(token);
    const certPem = fs.readFileSync(path.join(kp.certsDir, 'token.crt'), 'utf8');
    const cert = new crypto.X509Certificate(certPem);
    assert.equal(header.alg, 'ES256');
    assert.deepEqual(header.x5c, [cert.raw.toString('base64')]);
    assert.match(header.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    const { payload: verified } = await jose.jwtVerify(token, cert.publicKey, { issuer: 'flows-issuer', audience: 'flows.registry' });
    assert.equal(typeof verified.aud, 'string', 'aud is one string');
    assert.equal(payload.sub, alice.name);
    assert.equal(payload.uid, alice.id, 'the Keystone user id');
    assert.equal(payload.exp - payload.iat, 120);
    assert.ok(payload.nbf <= payload.iat);
    assert.match(payload.jti, /^[A-Za-z0-9_-]{20,}$/);
    const again = await getToken(kp, { user: alice.name, password: alice.password, scopes: [] });
    assert.notEqual(decodeJwt(again.json().token).payload.jti, payload.jti, 'jti is unique');
  });

  run('a wrong service is a 400', async () => {
    const r = await getToken(kp, { user: alice.name, password: alice.password, service: 'other.registry' });
    assert.equal(r.status, 400);
    assert.equal(r.json().error, 'invalid_request');
  });
});

describe("docker's sequence: login with offline_token, then refresh_token grants", () => {
  run('login returns a refresh token; POST refresh_token grants scoped tokens', async () => {
    const login = await getToken(kp, { user: alice.name, password: alice.password, offline: true, clientId: 'docker', account: alice.name });
    assert.equal(login.status, 200);
    const refresh = login.json().refresh_token as string;
    assert.ok(refresh, 'refresh_token returned with offline_token=true');
    const r = await postToken(kp, {
      grant_type: 'refresh_token',
      client_id: 'docker',
      refresh_token: refresh,
      scope: `repository:${alice.name}/app:pull,push repository:${bob.name}/app:pull,push`,
      service: 'flows.registry',
    });
    assert.equal(r.status, 200, r.text);
    const body = r.json();
    assert.equal(body.access_token, body.token);
    assert.equal(body.scope, `repository:${alice.name}/app:pull,push`, 'scope lists what was granted');
    assert.equal(body.refresh_token, undefined);
    assert.deepEqual(granted(body.access_token, `${bob.name}/app`), []);
    assert.equal(decodeJwt(body.access_token).payload.sub, alice.name);
  });

  run('refresh tokens survive a restart of the token server', async () => {
    const login = await getToken(kp, { user: bob.name, password: bob.password, offline: true, clientId: 'docker' });
    const refresh = login.json().refresh_token as string;
    await kp.restart();
    const r = await postToken(kp, { grant_type: 'refresh_token', client_id: 'docker', refresh_token: refresh, scope: `repository:${project}/app:push`, service: 'flows.registry' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(granted(r.json().token, `${project}/app`), ['push'], 'project roles re-read through the service account');
  });

  /** RFC 6749 section 5.2: 400 invalid_grant; Docker's errors array says UNAUTHORIZED, which docker prints. */
  function assertInvalidGrant(r: Response, what: string, describes = /log in again/) {
    assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
    const body = r.json();
    assert.equal(body.error, 'invalid_grant', what);
    assert.match(body.error_description, describes, what);
    assert.equal(body.errors[0].code, 'UNAUTHORIZED', what);
    assert.equal(r.headers['www-authenticate'], undefined, `${what}: no challenge, no client authentication is involved`);
  }

  run('expired, garbage, foreign and tampered refresh tokens: 400 invalid_grant', async () => {
    const login = await getToken(kp, { user: alice.name, password: alice.password, offline: true });
    const refresh = login.json().refresh_token as string;
    const [h, p, s] = refresh.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const signerKey = crypto.createPrivateKey(fs.readFileSync(path.join(kp.certsDir, 'token.key')));
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Record<string, unknown>, key: crypto.KeyObject = signerKey) =>
      new jose.SignJWT({ ...payload, ...claims }).setProtectedHeader({ alg: 'ES256' }).sign(key);
    const { privateKey: otherKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const hmac = await new jose.SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(fs.readFileSync(path.join(kp.certsDir, 'token.crt'), 'utf8')));
    const accessToken = (await getToken(kp, { user: alice.name, password: alice.password })).json().token;
    const cases: Array<[string, string, RegExp?]> = [
      ['expired', await sign({ iat: now - 7200, exp: now - 3600 }), /expired; log in again/],
      ['garbage', 'not-a-jwt'],
      ['wrong audience (the registry)', await sign({ aud: 'flows.registry' })],
      ['wrong audience (another service)', await sign({ aud: 'other.registry#refresh' })],
      ['another issuer', await sign({ iss: 'someone-else' })],
      ['signed by another key', await sign({}, otherKey)],
      ['tampered', [h, Buffer.from(JSON.stringify({ ...payload, name: bob.name, sub: bob.id })).toString('base64url'), s].join('.')],
      ['HMAC with the public certificate as secret', hmac],
      ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`],
      ['an access token', accessToken],
      ['too long', 'a'.repeat(17_000)],
    ];
    for (const [what, token, describes] of cases) {
      const r = await postToken(kp, { grant_type: 'refresh_token', refresh_token: token, client_id: 'docker', service: 'flows.registry' });
      assertInvalidGrant(r, what, describes);
    }
    const still = await postToken(kp, { grant_type: 'refresh_token', refresh_token: refresh, client_id: 'docker', service: 'flows.registry' });
    assert.equal(still.status, 200, 'the genuine one still works');
  });

  run('with a service account, a user disabled or deleted after login can no longer refresh: 400 invalid_grant', async () => {
    const cases: Array<[string, (u: TestUser) => Promise<void>]> = [
      ['disabled', (u) => admin.setEnabled(u.id, false)],
      ['deleted', (u) => admin.deleteUser(u.id)],
    ];
    const refreshes: string[] = [];
    for (const [what, remove] of cases) {
      const u = await makeUser(admin, `gone-${what}-${sfx}`);
      const login = await getToken(kp, { user: u.name, password: u.password, offline: true });
      refreshes.push(login.json().refresh_token as string);
      assert.equal((await postToken(kp, { grant_type: 'refresh_token', refresh_token: refreshes.at(-1)!, service: 'flows.registry' })).status, 200, what);
      await remove(u);
    }
    await kp.restart(); // drop the short refresh cache
    for (const [i, [what]] of cases.entries()) {
      const r = await postToken(kp, { grant_type: 'refresh_token', refresh_token: refreshes[i]!, service: 'flows.registry' });
      assertInvalidGrant(r, what, /no longer exists or is disabled; log in again/);
    }
  });

  run('without a service account, refresh tokens carry the roles seen at login', async () => {
    const login = await getToken(noService, { user: bob.name, password: bob.password, offline: true, clientId: 'docker' });
    const refresh = login.json().refresh_token as string;
    await noService.restart();
    const r = await postToken(noService, { grant_type: 'refresh_token', refresh_token: refresh, scope: `repository:${project}/x:pull,push repository:${bob.name}/y:push`, service: noService.service });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(granted(r.json().token, `${project}/x`), ['pull', 'push']);
    assert.deepEqual(granted(r.json().token, `${bob.name}/y`), ['push']);
  });
});

describe('POST grant_type=password', () => {
  run('issues a token, and a refresh token with access_type=offline', async () => {
    const r = await postToken(kp, {
      grant_type: 'password',
      username: alice.name,
      password: alice.password,
      client_id: 'podman',
      access_type: 'offline',
      scope: `repository:${alice.name}/app:pull`,
      service: 'flows.registry',
    });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json().refresh_token);
    assert.equal(r.json().scope, `repository:${alice.name}/app:pull`);
    const wrong = await postToken(kp, { grant_type: 'password', username: alice.name, password: 'nope', service: 'flows.registry' });
    assert.equal(wrong.status, 401);
  });
});

describe('Keystone answers', () => {
  run('wrong password, unknown user and disabled user all get 401', async () => {
    const dave = await makeUser(admin, `dave-${sfx}`, { enabled: false });
    for (const [user, pw] of [
      [alice.name, 'wrong-password'],
      [`nobody-${sfx}`, 'whatever'],
      [dave.name, dave.password],
    ]) {
      const r = await getToken(noService, { user, password: pw, scopes: [] });
      assert.equal(r.status, 401, `${user}: ${r.text}`);
      assert.match(String(r.headers['www-authenticate']), /^Basic /);
    }
  });

  run('a burst of identical logins costs one Keystone authentication (cache)', async () => {
    const eve = await makeUser(admin, `eve-${sfx}`);
    const before = keystoneAuthCalls(kp);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => getToken(kp, { user: eve.name, password: eve.password, scopes: [`repository:${eve.name}/layer${i}:pull`] })),
    );
    assert.ok(results.every((r) => r.status === 200));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(keystoneAuthCalls(kp) - before, 1);
    // A wrong password is not served from the cache of the right one.
    const wrong = await getToken(kp, { user: eve.name, password: 'not-' + eve.password });
    assert.equal(wrong.status, 401);
  });

  run('with the cache off (TTL 0), every login asks Keystone', async () => {
    const before = keystoneAuthCalls(noService);
    for (let i = 0; i < 3; i++) assert.equal((await getToken(noService, { user: alice.name, password: alice.password })).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(keystoneAuthCalls(noService) - before, 3);
  });
});

describe('other endpoints', () => {
  run('JWKS publishes the signing key with its kid', async () => {
    const r = await request(`${kp.tokenUrl}/.well-known/jwks.json`, { ca: kp.ca });
    assert.equal(r.status, 200);
    const jwk = r.json().keys[0];
    const token = (await getToken(kp, { user: alice.name, password: alice.password })).json().token;
    assert.equal(jwk.kid, decodeJwt(token).header.kid);
    const key = await jose.importJWK(jwk, 'ES256');
    await jose.jwtVerify(token, key);
  });

  run('healthz and readyz', async () => {
    assert.equal((await request(`${kp.tokenUrl}/healthz`, { ca: kp.ca })).status, 200);
    const ready = await request(`${kp.tokenUrl}/readyz`, { ca: kp.ca });
    assert.equal(ready.status, 200);
    assert.equal(ready.json().keystone, 'reachable');
  });

  run('responses carry helmet security headers and never the credentials in logs', async () => {
    const r = await getToken(kp, { user: alice.name, password: alice.password, offline: true });
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.match(String(r.headers['strict-transport-security']), /max-age/);
    const text = kp.logText();
    assert.ok(!text.includes(alice.password), 'password never logged');
    assert.ok(!text.includes(r.json().token), 'access token never logged');
    assert.ok(!text.includes(r.json().refresh_token), 'refresh token never logged');
  });
});
