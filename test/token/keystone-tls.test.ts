/**
 * Keystone over HTTPS: the CA bundle setting, TLS verification, and the switch that
 * turns verification off.
 */
import assert from 'node:assert/strict';
import { after, before, it, type TestContext } from 'node:test';
import { KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { keystone, type KeystoneService } from '../helpers/services.js';
import { getToken } from '../helpers/token-client.js';

let ks: KeystoneService | undefined;
let user: TestUser;
const started: KeyportProcess[] = [];

before(async (t) => {
  ks = keystone(t as unknown as TestContext);
  if (ks) user = await makeUser(new KeystoneAdmin(ks), `tls-${KeystoneAdmin.suffix()}`);
});
after(async () => Promise.all(started.map((p) => p.stop())));

async function tokenServer(env: Record<string, string>): Promise<KeyportProcess> {
  const p = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: ks!.httpsUrl, KEYPORT_KEYSTONE_TIMEOUT: '3000', ...env } }).start();
  started.push(p);
  return p;
}

it('with the CA bundle Keystone is verified and logins work; without it they fail as 503, not 401', async (t) => {
  if (!ks) return t.skip('no keystone');
  const trusted = await tokenServer({ KEYPORT_KEYSTONE_CA_FILE: ks.httpsCa });
  assert.equal((await getToken(trusted, { user: user.name, password: user.password })).status, 200);
  assert.equal((await getToken(trusted, { user: user.name, password: 'wrong' })).status, 401);

  const untrusted = await tokenServer({});
  const r = await getToken(untrusted, { user: user.name, password: user.password });
  assert.equal(r.status, 503, 'an unverifiable Keystone is unavailable, not a wrong password');
  assert.ok(untrusted.logLines().some((l) => /certificate/i.test(String(l.err))), 'the reason is logged');

  const insecure = await tokenServer({ KEYPORT_KEYSTONE_INSECURE: 'true' });
  assert.equal((await getToken(insecure, { user: user.name, password: user.password })).status, 200);
});
