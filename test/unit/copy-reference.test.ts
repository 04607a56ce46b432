import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChallenges } from '../../src/client/auth.js';
import { parseDestination, parseSource, registryApiHost } from '../../src/copy/reference.js';
import { selectPlatform } from '../../src/copy/platform.js';

test('SOURCE: docker:// on any registry, or a repository on this Keyport; no tag means latest', () => {
  assert.deepEqual(parseSource('docker://mirror.example:5000/library/nginx:1.27'), { registry: 'mirror.example:5000', repository: 'library/nginx', tag: '1.27' });
  const d = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(parseSource(`docker://127.0.0.1:5000/a/b@${d}`), { registry: '127.0.0.1:5000', repository: 'a/b', digest: d });
  assert.deepEqual(parseSource('docker://localhost/app'), { registry: 'localhost', repository: 'app', tag: 'latest' });
  assert.deepEqual(parseSource('docker://busybox:1.36'), { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' });
  assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
  assert.deepEqual(parseSource('demo/candidates/app:1'), { repository: 'demo/candidates/app', tag: '1' });
  assert.throws(() => parseSource('oci:/tmp/x'), /not a valid repository name/);
  assert.throws(() => parseSource('http://x/y:1'), /only docker:\/\/ references/);
  assert.throws(() => parseSource('demo/App:1'), /not a valid repository name/);
  assert.throws(() => parseSource('demo/app@sha256:zz'), /not a sha256 or sha512 digest/);
});

test('DEST: repository:tag on this Keyport, the tag required', () => {
  assert.deepEqual(parseDestination('demo/stable/app:1'), { repository: 'demo/stable/app', tag: '1' });
  assert.throws(() => parseDestination('demo/stable/app'), /name a tag, e\.g\. demo\/stable\/app:1/);
  assert.throws(() => parseDestination(`demo/app@sha256:${'b'.repeat(64)}`), /name a tag/);
  assert.throws(() => parseDestination('docker://x/y:1'), /not "docker:\/\/x\/y:1"/);
});

test('platform selection: exact variant when asked, else no variant, then arm64 v8', () => {
  const m = (architecture: string, variant?: string) => ({ mediaType: 'm', digest: `${architecture}${variant ?? ''}`, size: 1, platform: { os: 'linux', architecture, ...(variant ? { variant } : {}) } });
  const list = [m('arm', 'v6'), m('arm', 'v7'), m('arm64', 'v8'), m('amd64')];
  assert.equal(selectPlatform(list, { os: 'linux', architecture: 'amd64' })?.digest, 'amd64');
  assert.equal(selectPlatform(list, { os: 'linux', architecture: 'arm64' })?.digest, 'arm64v8');
  assert.equal(selectPlatform(list, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, 'armv7');
  assert.equal(selectPlatform(list, { os: 'linux', architecture: 's390x' }), undefined);
  assert.equal(selectPlatform(list, { os: 'windows', architecture: 'amd64' }), undefined);
});

test('WWW-Authenticate challenges as registries send them', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://r:9002/token",service="keyport-registry",scope="repository:a/b:pull,push",error="insufficient_scope"'), [
    { scheme: 'bearer', params: { realm: 'https://r:9002/token', service: 'keyport-registry', scope: 'repository:a/b:pull,push', error: 'insufficient_scope' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.deepEqual(parseChallenges(['Negotiate', 'Basic realm=x, Bearer realm="y",service="a\\"b"']), [
    { scheme: 'basic', params: { realm: 'x' } },
    { scheme: 'bearer', params: { realm: 'y', service: 'a"b' } },
  ]);
  assert.deepEqual(parseChallenges(undefined), []);
});
