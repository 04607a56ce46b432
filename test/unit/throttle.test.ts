import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginThrottle } from '../../src/token/throttle.js';

test('throttle: blocks after the configured failures, per user and address, and tells how long', () => {
  const t = new LoginThrottle(3, 60_000);
  const now = 1_000_000;
  for (let i = 0; i < 3; i++) {
    assert.equal(t.retryAfter('alice', '10.0.0.1', now + i), 0);
    t.recordFailure('alice', '10.0.0.1', now + i);
  }
  assert.equal(t.retryAfter('alice', '10.0.0.1', now + 10), 60);
  assert.equal(t.retryAfter('ALICE', '10.0.0.1', now + 10), 60, 'user names compare case-insensitively');
  assert.equal(t.retryAfter('alice', '10.0.0.2', now + 10), 0, 'another address is not affected');
  assert.equal(t.retryAfter('bob', '10.0.0.1', now + 10), 0, 'another user is not affected');
  assert.equal(t.retryAfter('alice', '10.0.0.1', now + 60_001), 0, 'the window slides');
});

test('throttle: a success clears the count', () => {
  const t = new LoginThrottle(2, 60_000);
  t.recordFailure('alice', 'a');
  t.recordSuccess('alice', 'a');
  t.recordFailure('alice', 'a');
  assert.equal(t.retryAfter('alice', 'a'), 0);
});

test('throttle: a success tells the other workers only when there is a failure to clear', async () => {
  const told: string[] = [];
  const t = new LoginThrottle(3, 60_000);
  t.connect({ failure: async (user) => void told.push(`failure ${user}`), success: (user) => void told.push(`success ${user}`) });
  t.recordSuccess('alice', 'a');
  assert.deepEqual(told, [], 'a login without failures sends nothing');
  await t.recordFailure('alice', 'a');
  t.recordSuccess('alice', 'a');
  assert.deepEqual(told, ['failure alice', 'success alice']);
  t.recordSuccess('alice', 'a');
  assert.deepEqual(told, ['failure alice', 'success alice'], 'once cleared, nothing more to tell');
  // A failure counted by another worker reaches this one through apply(): its success then clears it everywhere.
  t.apply({ kind: 'failure', user: 'bob', address: 'b', at: Date.now() });
  t.recordSuccess('bob', 'b');
  assert.deepEqual(told.slice(2), ['success bob']);
});
