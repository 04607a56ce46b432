import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { resolveUpstream, upstreamFor } from '../../src/config/upstreams.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function upstreams(list: unknown) {
  return loadConfig({ env: { KEYPORT_UPSTREAMS: JSON.stringify(list) } }).upstreams;
}

test('the README\'s cache example is a valid configuration, and defaults fill the rest', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Pull-through cache'), readme.indexOf('## Registry events'));
  const json = /```json\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(json, 'the README shows a configuration');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'keyport-upstreams-')), 'cache.json');
  fs.writeFileSync(file, json);
  const list = loadConfig({ file, env: {} }).upstreams.map(resolveUpstream);
  assert.deepEqual(list.map((u) => [u.namespace, u.url, u.tagTtl, u.pull]), [
    ['dockerhub', 'https://registry-1.docker.io', 300, []],
    ['quay', 'https://quay.io', 3600, ['demo', 'ops:reader']],
  ]);
});

test('off by default; the variable holds the same list as JSON', () => {
  assert.deepEqual(loadConfig({ env: {} }).upstreams, []);
  const [u] = upstreams([{ namespace: 'hub', url: 'http://127.0.0.1:5000' }]).map(resolveUpstream);
  assert.equal(u!.tagTtl, 300);
  assert.equal(u!.insecure, false);
  assert.deepEqual(upstreamFor([u!], 'hub/library/app'), { upstream: u, remote: 'library/app' });
  assert.equal(upstreamFor([u!], 'hubx/library/app'), undefined);
  assert.equal(upstreamFor([u!], 'hub'), undefined, 'the namespace itself names no upstream repository');
});

test('tagTtl takes a duration with units, or seconds', () => {
  const list = upstreams([
    { namespace: 'a', url: 'https://a.example', tagTtl: '5m' },
    { namespace: 'b', url: 'https://b.example', tagTtl: '1h30m' },
    { namespace: 'c', url: 'https://c.example', tagTtl: 90 },
    { namespace: 'd', url: 'https://d.example', tagTtl: '0' },
  ]).map(resolveUpstream);
  assert.deepEqual(list.map((u) => u.tagTtl), [300, 5400, 90, 0]);
});

test('a bad upstream stops start-up with the entry and field named', () => {
  const bad: Array<[unknown, RegExp]> = [
    [5, /must be a list of upstreams/],
    [[{ namespace: 'Hub', url: 'https://x' }], /upstream 0: namespace must be a repository name prefix/],
    [[{ namespace: 'hub/', url: 'https://x' }], /upstream 0: namespace must be a repository name prefix/],
    [[{ namespace: 'hub', url: 'ftp://x' }], /upstream 0 \(hub\): url must be an absolute http\(s\) URL/],
    [[{ namespace: 'hub', url: 'https://x/v2/' }], /url must name the registry host only/],
    [[{ namespace: 'hub', url: 'https://u:p@x' }], /put credentials in username and password/],
    [[{ namespace: 'hub', url: 'https://x' }, { namespace: 'hub', url: 'https://y' }], /upstream 1: the namespace hub is used twice/],
    [[{ namespace: 'mirror', url: 'https://x' }, { namespace: 'mirror/quay', url: 'https://y' }], /upstream 1: the namespace mirror\/quay and the namespace mirror lie inside one another/],
    [[{ namespace: 'hub', url: 'https://x', tagttl: 5 }], /upstream 0: unknown key tagttl/],
    [[{ namespace: 'hub', url: 'https://x', tagTtl: -1 }], /tagTtl must be a duration such as 30s, 5m, 1h or a whole number of seconds/],
    [[{ namespace: 'hub', url: 'https://x', tagTtl: '5 minutes' }], /tagTtl must be a duration .* got "5 minutes"/],
    [[{ namespace: 'hub', url: 'https://x', password: 'p' }], /a password needs a username/],
    [[{ namespace: 'hub', url: 'https://x', username: 'u' }], /username "u" needs a password or passwordFile/],
    [[{ namespace: 'hub', url: 'https://x', username: 'u', password: 'p', passwordFile: '/f' }], /password or passwordFile, not both/],
    [[{ namespace: 'hub', url: 'https://x', pull: ['demo reader'] }], /pull: "demo reader" is neither a project namespace/],
  ];
  for (const [value, message] of bad) {
    assert.throws(() => upstreams(value), (e: unknown) => e instanceof ConfigError && message.test(e.message) && /KEYPORT_UPSTREAMS/.test(e.message), JSON.stringify(value));
  }
  assert.throws(() => loadConfig({ env: { KEYPORT_UPSTREAMS: '[{' } }), /KEYPORT_UPSTREAMS.*not valid JSON/);
});
