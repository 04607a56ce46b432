import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers/keyport.js';

const noFiles = tempDir('storage-config');
const load = (env: Record<string, string>) => loadConfig({ env, configDir: noFiles });

const swiftEnv = {
  KEYPORT_STORAGE_DRIVER: 'swift',
  KEYPORT_SWIFT_AUTH_URL: 'https://keystone.example:5000/v3',
  KEYPORT_SWIFT_USERNAME: 'registry',
  KEYPORT_SWIFT_PASSWORD: 'secret',
};

test('swift settings come from KEYPORT_SWIFT_* with Distribution-like defaults', () => {
  const c = load({
    ...swiftEnv,
    KEYPORT_SWIFT_TENANT: 'images',
    KEYPORT_SWIFT_DOMAIN: 'Default',
    KEYPORT_SWIFT_CONTAINER: 'docker_registry',
    KEYPORT_SWIFT_ROOT_DIRECTORY: '/swift/object/name/prefix',
    KEYPORT_SWIFT_INSECURE_SKIP_VERIFY: 'true',
    KEYPORT_SWIFT_TEMPURL_METHODS: 'GET,HEAD',
    KEYPORT_SWIFT_AUTH_VERSION: '3',
    KEYPORT_STORAGE_HEALTH_INTERVAL: '5',
  });
  assert.equal(c.storage.swift.tenant, 'images');
  assert.equal(c.storage.swift.container, 'docker_registry');
  assert.equal(c.storage.swift.rootDirectory, '/swift/object/name/prefix');
  assert.equal(c.storage.swift.insecureSkipVerify, true);
  assert.equal(c.storage.swift.authVersion, 3);
  assert.equal(c.storage.swift.chunkSize, 20 * 1024 * 1024);
  assert.equal(c.storage.swift.endpointType, 'public');
  assert.deepEqual(c.storage.swift.tempUrlMethods, ['GET', 'HEAD']);
  assert.deepEqual(c.storage.health, { enabled: true, interval: 5, threshold: 3 });
});

test('an incomplete or unsafe swift configuration stops start-up with a message naming the key', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ ...swiftEnv, KEYPORT_SWIFT_AUTH_URL: '' }, /KEYPORT_SWIFT_AUTH_URL/],
    [{ ...swiftEnv, KEYPORT_SWIFT_PASSWORD: '' }, /storage\.swift\.password/],
    [{ ...swiftEnv, KEYPORT_SWIFT_APPLICATION_CREDENTIAL_ID: 'abc' }, /applicationCredentialSecret/],
    [{ ...swiftEnv, KEYPORT_SWIFT_CHUNK_SIZE: '1000' }, /KEYPORT_SWIFT_CHUNK_SIZE/],
    [{ ...swiftEnv, KEYPORT_SWIFT_REDIRECT: 'true' }, /KEYPORT_SWIFT_TEMPURL_KEY/],
    [{ ...swiftEnv, KEYPORT_SWIFT_ROOT_DIRECTORY: 'a/../b' }, /KEYPORT_SWIFT_ROOT_DIRECTORY/],
    [{ ...swiftEnv, KEYPORT_SWIFT_TEMPURL_METHODS: 'GET,PATCH' }, /PATCH/],
    [{ ...swiftEnv, KEYPORT_SWIFT_AUTH_VERSION: '4' }, /KEYPORT_SWIFT_AUTH_VERSION/],
    [{ ...swiftEnv, KEYPORT_SWIFT_ENDPOINT_TYPE: 'private' }, /KEYPORT_SWIFT_ENDPOINT_TYPE/],
  ];
  for (const [env, re] of cases) {
    assert.throws(() => load(env), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(env));
  }
  // An application credential needs no password.
  load({ ...swiftEnv, KEYPORT_SWIFT_PASSWORD: '', KEYPORT_SWIFT_APPLICATION_CREDENTIAL_ID: 'abc', KEYPORT_SWIFT_APPLICATION_CREDENTIAL_SECRET: 's' });
});

test('s3 settings: bucket required, part size at least 5 MiB, keys both or neither', () => {
  const base = { KEYPORT_STORAGE_DRIVER: 's3', KEYPORT_S3_BUCKET: 'registry', KEYPORT_S3_ENDPOINT: 'https://s3.example', KEYPORT_S3_FORCE_PATH_STYLE: 'yes' };
  const c = load(base);
  assert.equal(c.storage.s3.forcePathStyle, true);
  assert.equal(c.storage.s3.chunkSize, 10 * 1024 * 1024);
  assert.throws(() => load({ ...base, KEYPORT_S3_BUCKET: '' }), /KEYPORT_S3_BUCKET/);
  assert.throws(() => load({ ...base, KEYPORT_S3_CHUNK_SIZE: String(4 * 1024 * 1024) }), /KEYPORT_S3_CHUNK_SIZE/);
  assert.throws(() => load({ ...base, KEYPORT_S3_ACCESS_KEY: 'AKIA' }), /secretKey/);
});

test('cloud settings are not checked while another driver is selected', () => {
  const c = load({ KEYPORT_SWIFT_CHUNK_SIZE: '1000', KEYPORT_S3_CHUNK_SIZE: '1' });
  assert.equal(c.storage.driver, 'filesystem');
});
