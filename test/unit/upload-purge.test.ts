import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlobStore } from '../../src/registry/store/blobs.js';
import { paths } from '../../src/registry/store/paths.js';
import { UploadStore } from '../../src/registry/store/uploads.js';
import { MemoryDriver } from '../../src/storage/memory/driver.js';

test('abandoned upload sessions older than the limit are purged; recent ones stay', async () => {
  const driver = new MemoryDriver();
  const uploads = new UploadStore(driver, new BlobStore(driver));
  const old = await uploads.start('alice/app');
  const fresh = await uploads.start('alice/app');
  await driver.putContent(paths.uploadStarted('alice/app', old), Buffer.from(new Date(Date.now() - 8 * 86400_000).toISOString()));
  assert.equal(await uploads.purge(['alice/app', 'bob/none'], 7 * 86400_000), 1);
  await assert.rejects(uploads.size('alice/app', old), /unknown/);
  assert.equal(await uploads.size('alice/app', fresh), 0);
});
