/**
 * `keyport token` with several worker processes: they share the port, a worker that
 * dies is replaced, and stopping the service stops them all.
 */
import assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';
import { KeyportProcess } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser } from '../helpers/keystone-admin.js';
import { keystone } from '../helpers/services.js';
import { getToken } from '../helpers/token-client.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('workers share the port, a killed worker is replaced, SIGTERM stops every worker', async (t) => {
  const ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  const user = await makeUser(new KeystoneAdmin(ks), `worker-${KeystoneAdmin.suffix()}`);
  const kp = await new KeyportProcess({ command: 'token', env: { KEYPORT_KEYSTONE_URL: ks.url, KEYPORT_TOKEN_WORKERS: '2' } }).start();
  const workerPids = () => [...new Set(kp.logLines().filter((l) => l.msg === 'token server listening').map((l) => l.pid as number))];
  try {
    for (let i = 0; i < 40 && workerPids().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    const [first, second] = workerPids();
    assert.ok(first && second, 'two workers listening');
    const answered = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const r = await getToken(kp, { user: user.name, password: user.password, fresh: true });
      assert.equal(r.status, 200);
    }
    for (const l of kp.logLines()) if (l.audit) answered.add(l.pid);
    assert.equal(answered.size, 2, 'requests reached both workers');

    process.kill(first, 'SIGKILL');
    for (let i = 0; i < 50 && workerPids().length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(workerPids().length, 3, 'a replacement worker started');
    for (let i = 0; i < 4; i++) assert.equal((await getToken(kp, { user: user.name, password: user.password, fresh: true })).status, 200);
  } finally {
    await kp.stop('SIGTERM');
  }
  for (const pid of workerPids()) assert.equal(alive(pid), false, `worker ${pid} stopped with the service`);
});
