import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilesystemDriver } from '../../src/storage/filesystem/driver.js';
import { StorageHealth } from '../../src/storage/health.js';
import { SwiftDriver } from '../../src/storage/swift/driver.js';
import { silentServer } from '../helpers/http.js';
import { freePort, tempDir } from '../helpers/keyport.js';
import { swift } from '../helpers/services.js';
import { extraProxy, quietLog, swiftOptions } from '../helpers/swift.js';

test('storage health: unhealthy after `threshold` failed checks while Swift is away, healthy again when it is back', async (t) => {
  const sw = swift(t);
  if (!sw) return;
  const port = await freePort();
  extraProxy(sw, 'up', port);
  t.after(() => extraProxy(sw, 'down', port));
  const d = new SwiftDriver(swiftOptions(sw, { authUrl: `http://127.0.0.1:${port}/auth/v1.0`, timeout: 2000 }), quietLog);
  t.after(() => d.close());
  const health = new StorageHealth(d, { interval: 5, threshold: 2 }, quietLog);
  await health.check();
  assert.equal(health.healthy(), true);
  assert.equal(health.status().status, 'ok');

  extraProxy(sw, 'down', port);
  await health.check();
  assert.equal(health.healthy(), true, 'one failure is below the threshold');
  await health.check();
  assert.equal(health.healthy(), false);
  const s = health.status();
  assert.equal(s.status, 'unhealthy');
  assert.equal(s.storage.driver, 'swift');
  assert.equal(s.storage.consecutiveFailures, 2);
  assert.match(String(s.storage.lastError), /swift/);

  extraProxy(sw, 'up', port);
  await health.check();
  assert.equal(health.healthy(), true, 'recovers by itself');
  assert.equal(health.status().storage.lastError, null);
});

test('storage health: a store that never answers fails the check within the interval', async (t) => {
  const sw = swift(t);
  if (!sw) return;
  const port = await silentServer(t);
  const d = new SwiftDriver(swiftOptions(sw, { authUrl: `http://127.0.0.1:${port}/auth/v1.0`, timeout: 60_000 }), quietLog);
  t.after(() => d.close());
  const health = new StorageHealth(d, { interval: 1, threshold: 1 }, quietLog);
  const t0 = Date.now();
  await health.check();
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(health.healthy(), false);
  assert.match(String(health.status().storage.lastError), /no answer within 1 s/);
});

test('storage health: drivers without a health check are probed with stat of the root', async () => {
  const health = new StorageHealth(new FilesystemDriver({ root: tempDir('health-fs'), fsync: false }), { interval: 5, threshold: 1 }, quietLog);
  health.start();
  await health.check();
  health.stop();
  assert.equal(health.healthy(), true);
  assert.equal(health.status().storage.driver, 'filesystem');
});
