import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidPathComponent } from '../../src/oci/reference.js';
import { derivedNamespace, isPlainName, projectNamespace, userNamespace, type NamespaceRules } from '../../src/token/namespace.js';

const rules: NamespaceRules = { defaultDomainId: 'default', reserved: new Set(['public']) };

test('plain default-domain user names are their own namespace', () => {
  for (const n of ['alice', 'bob2', 'j.doe', 'build_bot', 'team-a']) assert.equal(userNamespace(rules, 'default', n), n);
});

test('names that are not valid path components map to a derived, valid namespace', () => {
  for (const n of ['Alice', 'alice@example.com', 'Carol Smith', 'a--b', 'a__b', '-x', 'x.', 'ünïcode', '日本', 'a'.repeat(200), '---']) {
    const ns = userNamespace(rules, 'default', n);
    assert.ok(isValidPathComponent(ns), `${JSON.stringify(n)} -> ${ns}`);
    assert.ok(ns.includes('--'), `${ns} is derived`);
    assert.ok(ns.length <= 54, `${ns} is short`);
  }
  assert.equal(userNamespace(rules, 'default', 'Alice'), derivedNamespace('user', 'default', 'Alice'));
});

test('derived namespaces never equal a plain name', () => {
  for (const n of ['Alice', 'x@y', 'Foo Bar']) assert.ok(!isPlainName(userNamespace(rules, 'default', n)));
});

test('two users can never share a namespace: case, domains, look-alikes', () => {
  const seen = new Map<string, string>();
  const ids: Array<[string, string]> = [
    ['default', 'alice'],
    ['default', 'Alice'],
    ['default', 'ALICE'],
    ['ldap', 'alice'],
    ['ldap2', 'alice'],
    ['default', 'alice@example.com'],
    ['default', 'alice-example-com'],
    ['ldap', 'Alice'],
    ['default', 'alice--abc'],
  ];
  for (const [d, n] of ids) {
    const ns = userNamespace(rules, d, n);
    assert.ok(!seen.has(ns), `${d}/${n} and ${seen.get(ns)} both map to ${ns}`);
    seen.set(ns, `${d}/${n}`);
  }
});

test('a user and a project sharing a name never share a namespace', () => {
  const withProjects: NamespaceRules = { ...rules, projectNames: new Set(['demo', 'ops']) };
  assert.equal(projectNamespace(withProjects, 'default', 'demo'), 'demo', 'the project keeps the name');
  const user = userNamespace(withProjects, 'default', 'demo');
  assert.notEqual(user, 'demo', 'the user gets a derived namespace');
  assert.ok(isValidPathComponent(user));
  // Users and projects of other domains, and derived forms, never meet either.
  assert.notEqual(userNamespace(rules, 'ldap', 'Demo'), projectNamespace(rules, 'ldap', 'Demo'));
  assert.notEqual(userNamespace(rules, 'default', 'Demo X'), projectNamespace(rules, 'default', 'Demo X'));
});

test('shared namespaces belong to nobody', () => {
  assert.notEqual(userNamespace(rules, 'default', 'public'), 'public');
  assert.notEqual(projectNamespace(rules, 'default', 'public'), 'public');
});
