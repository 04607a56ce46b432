import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keystoneOperation } from '../../src/token/metrics.js';

test('Keystone operations as labels name no user, project or query', () => {
  assert.equal(keystoneOperation('POST', '/auth/tokens?nocatalog'), 'POST /auth/tokens');
  assert.equal(keystoneOperation('GET', '/users/9c1f0e2d3b4a59687a6b5c4d3e2f1a0b'), 'GET /users/{id}');
  assert.equal(keystoneOperation('GET', '/users/u%201/application_credentials/abc123'), 'GET /users/{id}/application_credentials/{id}');
  assert.equal(keystoneOperation('GET', '/role_assignments?user.id=x&include_names'), 'GET /role_assignments');
  assert.equal(keystoneOperation('GET', '/'), 'GET /');
});
