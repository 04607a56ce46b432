/**
 * The GC lease's release against its own heartbeat: a renewal still in flight when the
 * holder releases must not write an expiry after the release, or the next GC (on any
 * instance) would be refused for a whole ttl after the holder finished.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Lease } from '../../src/gc/lease.js';
import { keyportPaths } from '../../src/gc/paths.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { MemoryDriver } from '../../src/storage/memory/driver.js';

test('a release during a slow heartbeat leaves the lease free, and the next GC takes it at once', async () => {
  const driver = new MemoryDriver();
  const slow: StorageDriver = Object.create(driver) as StorageDriver;
  let slowing = false;
  let renewalInFlight: () => void = () => undefined;
  const inFlight = new Promise<void>((r) => (renewalInFlight = r));
  slow.putContent = async (p, c) => {
    const record = JSON.parse(c.toString()) as { expires: number };
    if (slowing && p.startsWith(keyportPaths.leaseDir()) && record.expires > 0) {
      // A heartbeat's write, slowed down as a loaded object store would.
      renewalInFlight();
      await new Promise((r) => setTimeout(r, 400));
    }
    return driver.putContent(p, c);
  };
  // ttl 900 ms: a heartbeat every 300 ms, whose write takes 400 ms.
  const lease = await Lease.acquire(slow, { ttlMs: 900, owner: 'first' });
  slowing = true;
  // The heartbeat's timer does not keep a process alive; this does, while the test waits.
  const alive = setInterval(() => undefined, 50);
  await inFlight;
  clearInterval(alive);
  await lease.release();
  await new Promise((r) => setTimeout(r, 500)); // past the slowed write
  const next = await Lease.acquire(driver, { ttlMs: 900, owner: 'second' });
  assert.equal(next.owner, 'second');
  await next.release();
});
