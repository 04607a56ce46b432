/**
 * Keyport's tokens work with Docker Distribution 2.8 (Debian's docker-registry) trusting
 * only Keyport's token certificate: the deployment many clouds run today.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it, type TestContext } from 'node:test';
import { request } from '../helpers/http.js';
import { DistributionProcess, trustingKeyport } from '../helpers/distribution.js';
import { KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { keystone, type KeystoneService } from '../helpers/services.js';
import { getToken, postToken } from '../helpers/token-client.js';

const sfx = KeystoneAdmin.suffix();
let ks: KeystoneService | undefined;
let kp: KeyportProcess;
let dist: DistributionProcess;
let alice: TestUser;
let bob: TestUser;

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  if (!DistributionProcess.available()) {
    if (process.env.CI) throw new Error('docker-registry is not installed (scripts/deps.sh)');
    return (t as unknown as TestContext).skip('docker-registry not installed');
  }
  const admin = new KeystoneAdmin(ks);
  alice = await makeUser(admin, `alice-${sfx}`);
  bob = await makeUser(admin, `bob-${sfx}`);
  kp = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: ks.url, KEYPORT_SERVICE: 'dist.registry', KEYPORT_ISSUER: 'keyport-interop' } }).start();
  dist = await new DistributionProcess(trustingKeyport(kp.certsDir, kp.tokenUrl, 'dist.registry', 'keyport-interop')).start();
});

after(async () => {
  await dist?.stop();
  await kp?.stop();
});

/** POST to open an upload, then PUT the bytes with the digest (Distribution 2.8 has no monolithic POST). */
async function pushBlob(repo: string, token: string, data: Buffer) {
  const digest = 'sha256:' + crypto.createHash('sha256').update(data).digest('hex');
  const auth = { authorization: `Bearer ${token}` };
  const start = await request(`${dist.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { ...auth, 'content-length': 0 }, ca: kp.ca });
  if (start.status !== 202) return start;
  const loc = new URL(String(start.headers.location), dist.url);
  loc.searchParams.set('digest', digest);
  return request(loc.toString(), {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': data.length },
    body: data,
    ca: kp.ca,
  });
}

describe('Docker Distribution 2.8 accepts Keyport tokens', () => {
  it('the challenge points at Keyport; a blob push to the own repository succeeds; to another user\'s it is insufficient_scope', async (t) => {
    if (!ks || !dist) return t.skip('services unavailable');
    const challenge = await request(`${dist.url}/v2/`, { ca: kp.ca });
    assert.equal(challenge.status, 401);
    assert.match(String(challenge.headers['www-authenticate']), new RegExp(`Bearer realm="${kp.tokenUrl}/token",service="dist.registry"`));

    const own = `${alice.name}/app`;
    const other = `${bob.name}/app`;
    const r = await getToken(kp, { user: alice.name, password: alice.password, scopes: [`repository:${own}:pull,push`, `repository:${other}:pull,push`] });
    assert.equal(r.status, 200);
    const token = r.json().token;
    const base = await request(`${dist.url}/v2/`, { headers: { authorization: `Bearer ${token}` }, ca: kp.ca });
    assert.equal(base.status, 200, `Distribution accepts the token: ${base.text}\n${dist.logText().slice(-2000)}`);

    const data = crypto.randomBytes(4096);
    const ok = await pushBlob(own, token, data);
    assert.equal(ok.status, 201, ok.text);
    const denied = await pushBlob(other, token, data);
    assert.equal(denied.status, 401);
    assert.match(String(denied.headers['www-authenticate']), /error="insufficient_scope"/);
    // Distribution lists the actions in no fixed order.
    assert.match(String(denied.headers['www-authenticate']), new RegExp(`scope="repository:${other}:(pull,push|push,pull)"`));
  });

  it("docker's refresh-token grant yields tokens Distribution accepts", async (t) => {
    if (!ks || !dist) return t.skip('services unavailable');
    const login = await getToken(kp, { user: bob.name, password: bob.password, offline: true, clientId: 'docker' });
    const refreshed = await postToken(kp, { grant_type: 'refresh_token', client_id: 'docker', refresh_token: login.json().refresh_token, service: 'dist.registry', scope: `repository:${bob.name}/app:pull,push` });
    assert.equal(refreshed.status, 200);
    const ok = await pushBlob(`${bob.name}/app`, refreshed.json().access_token, crypto.randomBytes(100));
    assert.equal(ok.status, 201, ok.text);
  });

  it('a refresh token presented to Distribution as an access token is refused', async (t) => {
    if (!ks || !dist) return t.skip('services unavailable');
    const login = await getToken(kp, { user: bob.name, password: bob.password, offline: true });
    const r = await request(`${dist.url}/v2/`, { headers: { authorization: `Bearer ${login.json().refresh_token}` }, ca: kp.ca });
    assert.equal(r.status, 401);
  });
});
