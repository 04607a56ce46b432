import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatScope, parseScope, parseScopes, ScopeError } from '../../src/oci/scope.js';

test('scopes parse per the token spec, including host:port names and classes', () => {
  assert.deepEqual(parseScope('repository:alice/app:pull,push'), { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] });
  assert.deepEqual(parseScope('repository:registry.example:9001/alice/app:pull'), {
    type: 'repository',
    name: 'registry.example:9001/alice/app',
    actions: ['pull'],
  });
  assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
  assert.deepEqual(parseScope('repository(plugin):alice/p:pull'), { type: 'repository', class: 'plugin', name: 'alice/p', actions: ['pull'] });
  assert.deepEqual(parseScope('repository:a/b:'), { type: 'repository', name: 'a/b', actions: [] });
  assert.deepEqual(parseScope('repository:a/b:pull,pull'), { type: 'repository', name: 'a/b', actions: ['pull'] });
  assert.equal(formatScope(parseScope('repository(plugin):a/b:pull,push')), 'repository(plugin):a/b:pull,push');
});

test('space-separated scopes (POST form) and repeated ones (GET) both work', () => {
  const s = parseScopes(['repository:a/b:pull repository:c/d:push', 'registry:catalog:*']);
  assert.deepEqual(s.map(formatScope), ['repository:a/b:pull', 'repository:c/d:push', 'registry:catalog:*']);
});

test('malformed scopes are refused', () => {
  for (const bad of [
    'repository',
    'repository:alice',
    ':alice/app:pull',
    'repository::pull',
    'Repository:alice/app:pull',
    'repository:Alice/App:pull',
    'repository:alice/../etc:pull',
    'repository:alice//app:pull',
    'repository:alice/app:pull;rm',
    'repository:alice/app:PULL',
    'repo(sitory:alice/app:pull',
    'repository:' + 'a'.repeat(300) + ':pull',
    'x'.repeat(2000),
  ]) {
    assert.throws(() => parseScope(bad), ScopeError, bad);
  }
});
