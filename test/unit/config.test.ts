import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers/keyport.js';

const noFiles = tempDir('config-empty');

test('defaults match the documented ports and paths', () => {
  const c = loadConfig({ env: {}, configDir: noFiles });
  assert.equal(c.token.port, 9002);
  assert.equal(c.registry.port, 9001);
  assert.equal(c.tls.certsDir, './certs');
  assert.equal(c.storage.root, './data');
  assert.equal(c.keystone.url, 'http://127.0.0.1:5000/v3');
  assert.equal(c.token.lifetime, 300);
});

test('KEYPORT_* variables override files, which override defaults', () => {
  const dir = tempDir('config');
  fs.writeFileSync(path.join(dir, 'a.json'), JSON.stringify({ token: { port: 9100, issuer: 'from-file' } }));
  const extra = path.join(dir, 'extra.conf.json');
  fs.writeFileSync(extra, JSON.stringify({ token: { issuer: 'from-config-flag' }, registry: { port: 9200 } }));
  const c = loadConfig({
    configDir: dir,
    file: extra,
    env: {
      KEYPORT_ISSUER: 'from-env',
      KEYPORT_KEYSTONE_URL: 'https://keystone.example:5000/v3',
      KEYPORT_BIND: '127.0.0.1',
      KEYPORT_CERTS_DIR: '/etc/keyport/certs',
      KEYPORT_STORAGE_ROOT: '/var/lib/keyport',
      KEYPORT_SERVICE: 'registry.example',
      KEYPORT_REALM: 'https://registry.example:9002/token/',
    },
  });
  assert.equal(c.token.port, 9100, 'config/*.json value');
  assert.equal(c.registry.port, 9200, '--config file value');
  assert.equal(c.token.issuer, 'from-env', 'environment wins');
  assert.equal(c.keystone.url, 'https://keystone.example:5000/v3');
  assert.equal(c.bind, '127.0.0.1');
  assert.equal(c.tls.certsDir, '/etc/keyport/certs');
  assert.equal(c.storage.root, '/var/lib/keyport');
  assert.equal(c.token.service, 'registry.example');
  assert.equal(c.realm, 'https://registry.example:9002/token/');
});

test('the realm defaults to the public host and token port', () => {
  const c = loadConfig({ env: { KEYPORT_PUBLIC_HOST: 'reg.example', KEYPORT_TOKEN_PORT: '9443' }, configDir: noFiles });
  assert.equal(c.realm, 'https://reg.example:9443/token');
});

for (const [name, env, key] of [
  ['a non-numeric port', { KEYPORT_TOKEN_PORT: 'abc' }, 'KEYPORT_TOKEN_PORT'],
  ['a port out of range', { KEYPORT_REGISTRY_PORT: '70000' }, 'KEYPORT_REGISTRY_PORT'],
  ['a Keystone URL that is not a URL', { KEYPORT_KEYSTONE_URL: 'keystone:5000' }, 'KEYPORT_KEYSTONE_URL'],
  ['a boolean typo', { KEYPORT_DELETE_ENABLED: 'nope' }, 'KEYPORT_DELETE_ENABLED'],
  ['an empty issuer', { KEYPORT_ISSUER: ' ' }, 'KEYPORT_ISSUER'],
  ['a bad bind address', { KEYPORT_BIND: 'not an address' }, 'KEYPORT_BIND'],
  ['a bad storage driver', { KEYPORT_STORAGE_DRIVER: 'tape' }, 'KEYPORT_STORAGE_DRIVER'],
] as const) {
  test(`${name} stops start-up with a message naming the key`, () => {
    assert.throws(
      () => loadConfig({ env: { ...env }, configDir: noFiles }),
      (e: unknown) => e instanceof ConfigError && e.message.includes(key),
    );
  });
}

test('unknown keys and broken JSON in a config file are refused', () => {
  const dir = tempDir('config-bad');
  const unknown = path.join(dir, 'unknown.json');
  fs.writeFileSync(unknown, JSON.stringify({ tokne: { port: 1 } }));
  assert.throws(() => loadConfig({ env: {}, configDir: noFiles, file: unknown }), /tokne/);
  const broken = path.join(dir, 'broken.json');
  fs.writeFileSync(broken, '{ "token": ');
  assert.throws(() => loadConfig({ env: {}, configDir: noFiles, file: broken }), /not valid JSON/);
  assert.throws(() => loadConfig({ env: {}, configDir: noFiles, file: path.join(dir, 'missing.json') }), /does not exist/);
});

test('the same port for both servers is refused', () => {
  assert.throws(
    () => loadConfig({ env: { KEYPORT_TOKEN_PORT: '9001' }, configDir: noFiles }),
    /must differ/,
  );
});
