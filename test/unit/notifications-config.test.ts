import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { resolveEndpoint } from '../../src/config/notifications.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function endpoints(list: unknown) {
  return loadConfig({ env: { KEYPORT_NOTIFICATION_ENDPOINTS: JSON.stringify(list) } }).notifications.endpoints;
}

test('the README\'s events example is a valid configuration, and defaults fill the rest', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Registry events'), readme.indexOf('## Token server API'));
  const json = /```json\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(json, 'the README shows a configuration');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'keyport-events-')), 'events.json');
  fs.writeFileSync(file, json);
  const list = loadConfig({ file, env: {} }).notifications.endpoints.map(resolveEndpoint);
  assert.deepEqual(list.map((e) => [e.name, e.includePulls, e.timeout, e.queueSize]), [
    ['pipeline', false, 2000, 10000],
    ['audit', true, 5000, 10000],
  ]);
  assert.equal(list[0]!.headers.Authorization, 'Bearer 6f1d0c…');
});

test('no endpoints by default; the variable holds the same list as JSON', () => {
  assert.deepEqual(loadConfig({ env: {} }).notifications.endpoints, []);
  const [e] = endpoints([{ name: 'ci', url: 'http://127.0.0.1:8080/', headers: { 'X-Token': ['a', 'b'] } }]).map(resolveEndpoint);
  assert.deepEqual(e!.headers, { 'X-Token': 'a, b' });
  assert.equal(e!.threshold, 3);
  assert.equal(e!.disabled, false);
});

test('a bad endpoint stops start-up with the entry and field named', () => {
  const bad: Array<[unknown, RegExp]> = [
    [[{ name: 'a', url: 'ftp://x/' }], /endpoint 0 \(a\): url must be an absolute http\(s\) URL/],
    [[{ url: 'http://x/' }], /endpoint 0: name must be/],
    [[{ name: 'a', url: 'http://x/' }, { name: 'a', url: 'http://y/' }], /endpoint 1: the name a is used twice/],
    [[{ name: 'a', url: 'http://x/', tiemout: 5 }], /endpoint 0: unknown key tiemout/],
    [[{ name: 'a', url: 'http://x/', timeout: 0 }], /timeout must be a duration such as 500ms or 2s, or milliseconds above 0/],
    [[{ name: 'a', url: 'http://x/', ignoredActions: ['pul'] }], /ignoredActions: unknown pul/],
    [[{ name: 'a', url: 'http://x/', headers: { 'X-A': 'a\r\nInjected: 1' } }], /header X-A must be a string .* without line breaks/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => endpoints(value), (e: unknown) => e instanceof ConfigError && message.test(e.message) && /KEYPORT_NOTIFICATION_ENDPOINTS/.test(e.message), JSON.stringify(value));
  }
  assert.throws(() => loadConfig({ env: { KEYPORT_NOTIFICATION_ENDPOINTS: '[{' } }), /not valid JSON/);
  assert.throws(() => endpoints({ name: 'a', url: 'http://x/' }), /notifications\.endpoints/, 'one object instead of a list');
});
