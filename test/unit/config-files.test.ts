/**
 * Configuration as operators write it: YAML or JSON files, Docker Distribution's own
 * config.yml, durations with units, and errors that say which key, which variable and
 * what is expected.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseDurationMs } from '../../src/config/duration.js';
import { ConfigError, loadConfig, loadConfigWithWarnings } from '../../src/config/load.js';
import { settings } from '../../src/config/reference.js';
import { tempDir } from '../helpers/keyport.js';

const noFiles = tempDir('config-empty');

function file(name: string, text: string): string {
  const f = path.join(tempDir('config-file'), name);
  fs.writeFileSync(f, text);
  return f;
}

function refused(env: Record<string, string>, configFile?: string): string {
  try {
    loadConfig({ env, configDir: noFiles, ...(configFile ? { file: configFile } : {}) });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail(`accepted ${JSON.stringify(env)}`);
}

test('durations: Go notation or a bare number in the documented unit', () => {
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('10s'), 10_000);
  assert.equal(parseDurationMs('5m'), 300_000);
  assert.equal(parseDurationMs('1h30m'), 5_400_000);
  assert.equal(parseDurationMs('1.5s'), 1500);
  assert.equal(parseDurationMs('10'), undefined, 'a bare number has no unit of its own');
  assert.equal(parseDurationMs('10 parsecs'), undefined);
  const c = loadConfig({
    configDir: noFiles,
    env: { KEYPORT_TOKEN_LIFETIME: '5m', KEYPORT_KEYSTONE_TIMEOUT: '2s', KEYPORT_THROTTLE_WINDOW: '1h', KEYPORT_REFRESH_LIFETIME: '0', KEYPORT_LOGIN_CACHE_TTL: '90' },
  });
  assert.equal(c.token.lifetime, 300, 'seconds');
  assert.equal(c.keystone.timeout, 2000, 'milliseconds');
  assert.equal(c.throttle.window, 3600);
  assert.equal(c.token.refreshLifetime, 0);
  assert.equal(c.keystone.cacheTtl, 90, 'a bare number keeps its unit');
  const y = loadConfig({ configDir: noFiles, env: {}, file: file('d.yml', 'token:\n  lifetime: 10m\nkeystone:\n  timeout: 1500ms\n') });
  assert.equal(y.token.lifetime, 600);
  assert.equal(y.keystone.timeout, 1500);
});

// Every setting documented in seconds or milliseconds, found from the reference the README
// is made of, so a duration setting added later cannot miss the units.
test('every duration setting takes units (2m) and a bare number in its documented unit', () => {
  const value = (c: unknown, key: string) => key.split('.').reduce((o, k) => (o as Record<string, unknown>)[k], c);
  const durations = settings().filter((s) => /\b(seconds|milliseconds)\b/i.test(s.doc));
  assert.ok(durations.length >= 15, `found ${durations.length}`);
  for (const s of durations) {
    const bare = /\bmilliseconds\b/i.test(s.doc) ? '120000' : '120';
    const withUnit = loadConfig({ configDir: noFiles, env: { [s.env]: '2m' } });
    const plain = loadConfig({ configDir: noFiles, env: { [s.env]: bare } });
    assert.equal(value(withUnit, s.key), Number(bare), `${s.env}=2m`);
    assert.equal(value(plain, s.key), Number(bare), `${s.env}=${bare}`);
  }
  const gc = loadConfig({ configDir: noFiles, env: {}, file: file('gc.yml', 'storage:\n  gc:\n    interval: 6h\n    grace: 1h30m\n    claimWindow: 15m\n    leaseTtl: 1m\n') });
  assert.deepEqual([gc.storage.gc.interval, gc.storage.gc.grace, gc.storage.gc.claimWindow, gc.storage.gc.leaseTtl], [21600, 5400, 900, 60]);
});

// Each bad setting: the message names the key, the variable with its value, and what is expected.
const BAD: Array<[string, Record<string, string>, RegExp]> = [
  ['a port that is not a number', { KEYPORT_TOKEN_PORT: 'abc' }, /token\.port \(KEYPORT_TOKEN_PORT=abc\): must be a TCP port number \(0-65535\)/],
  ['a port out of range', { KEYPORT_REGISTRY_PORT: '70000' }, /registry\.port \(KEYPORT_REGISTRY_PORT=70000\): must be a TCP port number/],
  ['a duration with a unit nobody knows', { KEYPORT_TOKEN_LIFETIME: '5 minutes' }, /token\.lifetime \(KEYPORT_TOKEN_LIFETIME=5 minutes\): must be a duration such as 30s, 5m, 1h or a whole number of seconds above 0/],
  ['a duration finer than its unit', { KEYPORT_THROTTLE_WINDOW: '1500ms' }, /throttle\.window \(KEYPORT_THROTTLE_WINDOW=1500ms\): must be a duration/],
  ['a zero where zero means nothing', { KEYPORT_KEYSTONE_TIMEOUT: '0' }, /keystone\.timeout \(KEYPORT_KEYSTONE_TIMEOUT=0\): must be a duration such as 500ms, 10s or a whole number of milliseconds above 0/],
  ['a count that is not one', { KEYPORT_TOKEN_WORKERS: '-1' }, /token\.workers \(KEYPORT_TOKEN_WORKERS=-1\): must be a whole number \(0 or more\)/],
  ['a boolean typo', { KEYPORT_DELETE_ENABLED: 'nope' }, /registry\.deleteEnabled \(KEYPORT_DELETE_ENABLED=nope\): must be true or false/],
  ['a log format', { KEYPORT_LOG_FORMAT: 'xml' }, /log\.format \(KEYPORT_LOG_FORMAT=xml\): must be one of the possible values: \["json","text"\]/],
  ['a misspelt variable', { KEYPORT_REGISTY_PORT: '9001' }, /KEYPORT_REGISTY_PORT: no such setting \(did you mean KEYPORT_REGISTRY_PORT\?\)/],
  ['a variable nothing is near', { KEYPORT_FROBNICATE: '1' }, /KEYPORT_FROBNICATE: no such setting; `keyport env` lists every variable/],
  ['a service user without its password', { KEYPORT_KEYSTONE_SERVICE_USER: 'svc' }, /keystone\.servicePassword \(KEYPORT_KEYSTONE_SERVICE_PASSWORD\) must be set when keystone\.serviceUser \(KEYPORT_KEYSTONE_SERVICE_USER\) is/],
  ['a secret is never echoed', { KEYPORT_NOTIFICATION_ENDPOINTS: '[{"name":"a","url":"nope","headers":{"Authorization":"Bearer hunter2"}}]' }, /notifications\.endpoints \(KEYPORT_NOTIFICATION_ENDPOINTS=\(hidden\)\): endpoint 0 \(a\): url must be an absolute http\(s\) URL$/],
];

for (const [name, env, message] of BAD) {
  test(`config error: ${name}`, () => {
    assert.match(refused(env), message);
  });
}

test('config error: every unknown variable is named at once', () => {
  const m = refused({ KEYPORT_TOKNE_PORT: '1', KEYPORT_LOG_LEVL: 'debug' });
  assert.match(m, /KEYPORT_LOG_LEVL: no such setting \(did you mean KEYPORT_LOG_LEVEL\?\)/);
  assert.match(m, /KEYPORT_TOKNE_PORT: no such setting \(did you mean KEYPORT_TOKEN_PORT\?\)/);
});

test('variables Keyport reads outside the schema are known', () => {
  const env = { KEYPORT_CONFIG: '', KEYPORT_USERNAME: 'alice', KEYPORT_PASSWORD: 'x', KEYPORT_TEST_DIR: '/tmp', KEYPORT_SOURCE: 'a', KEYPORT_DEST: 'b', KEYPORT_DIGEST: 'c' };
  assert.doesNotThrow(() => loadConfig({ env, configDir: noFiles }));
});

test('config files: a bad value names the key, its variable and the value found', () => {
  assert.match(refused({}, file('bad.yml', 'token:\n  port: abc\n')), /token\.port \(KEYPORT_TOKEN_PORT\): must be a TCP port number \(0-65535\), got "abc"/);
  assert.match(refused({}, file('typo.json', JSON.stringify({ token: { realm: 'https://x/token', lifetim: 5 } }))), /token\.lifetim: not a Keyport setting \(did you mean token\.lifetime\?\)/);
  assert.match(refused({}, file('broken.yml', 'token:\n  port: [1\n')), /config file .*broken\.yml is not valid YAML/);
  assert.match(refused({}, file('list.yml', '- a\n- b\n')), /must hold a mapping of settings, not a list/);
  assert.match(refused({}, file('broken.json', '{"token": ')), /is not valid JSON/);
  // Formats that name the value themselves: it is named once.
  const flag = refused({}, file('flag.yml', 'registry:\n  deleteEnabled: maybe\n'));
  assert.match(flag, /registry\.deleteEnabled \(KEYPORT_DELETE_ENABLED\): must be true or false, got "maybe"$/m);
  assert.equal(flag.match(/got/g)?.length, 1, flag);
  const url = refused({}, file('url.yml', 'keystone:\n  url: keystone:5000\n'));
  assert.equal(url.match(/got/g)?.length, 1, url);
});

test('YAML and JSON files give the same configuration', () => {
  const yaml = loadConfig({ env: {}, configDir: noFiles, file: file('k.yaml', 'token:\n  port: 9100\n  issuer: yaml-issuer\npolicy:\n  sharedNamespaces: [public, library]\n') });
  const json = loadConfig({ env: {}, configDir: noFiles, file: file('k.json', JSON.stringify({ token: { port: 9100, issuer: 'yaml-issuer' }, policy: { sharedNamespaces: ['public', 'library'] } })) });
  assert.deepEqual(yaml, json);
  assert.equal(yaml.token.port, 9100);
  assert.deepEqual([...yaml.policy.sharedNamespaces], ['public', 'library']);
});

test('a Distribution config.yml maps onto Keyport settings', () => {
  const yml = `version: 0.1
log:
  level: debug
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: true
      age: 72h
      interval: 12h
      dryrun: false
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:5000
  host: https://registry.example.com:5000
  secret: asecretforlocaldevelopment
  headers:
    X-Content-Type-Options: [nosniff]
  debug:
    addr: localhost:5001
    prometheus:
      enabled: true
      path: /metrics
  tls:
    certificate: /etc/registry/certs/server.crt
    key: /etc/registry/certs/server.key
auth:
  token:
    realm: https://registry.example.com:9002/token
    service: registry.example.com
    issuer: keystone-tokens
    rootcertbundle: /etc/registry/token.crt
notifications:
  endpoints:
    - name: scanner
      url: https://scanner.example/events
      headers:
        Authorization: [Bearer abc]
      timeout: 500ms
      threshold: 5
      backoff: 1s
      ignore:
        actions: [pull]
`;
  const { config: c, warnings } = loadConfigWithWarnings({ env: {}, configDir: noFiles, file: file('config.yml', yml) });
  assert.equal(c.log.level, 'debug');
  assert.equal(c.log.format, 'text');
  assert.equal(c.storage.driver, 'filesystem');
  assert.equal(c.storage.root, '/var/lib/registry');
  assert.equal(c.registry.deleteEnabled, true);
  assert.deepEqual({ ...c.registry.uploadPurging }, { enabled: true, age: 72 * 3600, interval: 12 * 3600 });
  assert.equal(c.bind, '127.0.0.1');
  assert.equal(c.registry.port, 5000);
  assert.equal(c.publicHost, 'registry.example.com');
  assert.equal(c.registry.metricsBind, '127.0.0.1');
  assert.equal(c.registry.metricsPort, 5001);
  assert.equal(c.tls.certsDir, '/etc/registry/certs');
  assert.equal(c.realm, 'https://registry.example.com:9002/token');
  assert.equal(c.token.service, 'registry.example.com');
  assert.equal(c.token.issuer, 'keystone-tokens');
  assert.equal(c.registry.trustedTokenCerts, '/etc/registry/token.crt');
  const [endpoint] = c.notifications.endpoints;
  assert.equal(endpoint!.name, 'scanner');
  assert.equal(endpoint!.timeout, '500ms', 'read as a duration when the endpoint is set up');
  assert.deepEqual([...endpoint!.ignoredActions!], ['pull']);
  for (const key of ['log.fields', 'storage.cache', 'http.secret', 'http.headers']) {
    assert.ok(warnings.some((w) => w.includes(`${key} is ignored`)), `${key} is ignored with a warning: ${warnings.join('; ')}`);
  }
});

test('a Distribution config.yml with unsupported settings names every one of them in one error', () => {
  const yml = `version: 0.1
storage:
  azure:
    accountname: x
  maintenance:
    readonly:
      enabled: true
http:
  addr: :5000
  prefix: /registry
  tls:
    certificate: /certs/domain.crt
    key: /certs/domain.key
    clientcas: [/certs/ca.pem]
auth:
  htpasswd:
    realm: basic
    path: /auth/htpasswd
proxy:
  remoteurl: https://registry-1.docker.io
  redisurl: x
middleware:
  storage:
    - name: cloudfront
frobnicate: true
`;
  const m = refused({}, file('config.yml', yml));
  for (const key of [
    'storage.azure: the azure driver is not supported',
    'storage.maintenance.readonly: Keyport has no read-only mode',
    'http.prefix:',
    'http.tls.certificate: Keyport reads its server certificate as server.crt in tls.certsDir (KEYPORT_CERTS_DIR); copy or link /certs/domain.crt to /certs/server.crt',
    'http.tls.key:',
    'http.tls.clientcas:',
    'auth.htpasswd:',
    'proxy.redisurl: not supported by Keyport',
    'middleware:',
    'frobnicate: not supported by Keyport',
  ]) {
    assert.ok(m.includes(`  - ${key}`), `names ${key}:\n${m}`);
  }
  assert.match(m, /a Docker Distribution configuration/);
});

test("Distribution's proxy.remoteurl becomes an upstream under a namespace of its own, with a warning that says where", () => {
  const noFiles = tempDir('no-config');
  const hub = loadConfigWithWarnings({ env: {}, configDir: noFiles, file: file('hub.yml', 'version: 0.1\nproxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 168h\n') });
  assert.deepEqual(hub.config.upstreams.map((u) => [u.namespace, u.url]), [['dockerhub', 'https://registry-1.docker.io']]);
  assert.ok(hub.warnings.some((w) => /proxy\.remoteurl: .* cached under the namespace dockerhub: pull dockerhub\/<repository>/.test(w)), hub.warnings.join('; '));
  assert.ok(hub.warnings.some((w) => w.includes('proxy.ttl is ignored')), hub.warnings.join('; '));
  // A mirror with a login: the credentials go with the upstream and are never echoed.
  const quay = loadConfigWithWarnings({ env: {}, configDir: noFiles, file: file('quay.yml', 'version: 0.1\nproxy:\n  remoteurl: https://quay.io\n  username: robot\n  password: hunter2\n') });
  const [u] = quay.config.upstreams;
  assert.equal(u!.namespace, 'quay');
  assert.equal(u!.username, 'robot');
  assert.ok(!quay.warnings.join('\n').includes('hunter2'));
  const bad = refused({}, file('bad-proxy.yml', 'version: 0.1\nproxy:\n  remoteurl: not a url\n'));
  assert.match(bad, /proxy\.remoteurl: must be the upstream registry's URL/);
});

test('a bad value in a Distribution config.yml is named by its Distribution key too', () => {
  const yml = file('values.yml', 'version: 0.1\nstorage:\n  delete:\n    enabled: maybe\n  maintenance:\n    uploadpurging:\n      age: 3 days\nhealth:\n  storagedriver:\n    interval: 10 s\n');
  const m = refused({}, yml);
  assert.match(m, new RegExp(`registry\\.deleteEnabled \\(KEYPORT_DELETE_ENABLED; storage\\.delete\\.enabled in ${yml.replace(/[.]/g, '\\.')}\\): must be true or false, got "maybe"`));
  assert.match(m, /registry\.uploadPurging\.age \(KEYPORT_UPLOAD_PURGING_AGE; storage\.maintenance\.uploadpurging\.age in .*\): must be a duration/);
  assert.match(m, /storage\.health\.interval \(KEYPORT_STORAGE_HEALTH_INTERVAL; health\.storagedriver\.interval in .*\): must be a duration/);
  // Set by the variable, the variable is what to fix.
  assert.match(refused({ KEYPORT_DELETE_ENABLED: 'nope' }, yml), /registry\.deleteEnabled \(KEYPORT_DELETE_ENABLED=nope\): must be true or false/);
});

test('Distribution durations reach Keyport duration settings; swift and s3 keys map', () => {
  const swift = loadConfig({
    env: {},
    configDir: noFiles,
    file: file('swift.yml', `version: 0.1
storage:
  swift:
    authurl: https://keystone.example:5000/v3
    username: registry
    password: secret
    tenant: services
    domain: Default
    region: RegionOne
    container: registry
    rootdirectory: /docker
    insecureskipverify: true
    chunksize: 5242880
    secretkey: tempurl-secret
  redirect:
    disable: false
`),
  });
  assert.equal(swift.storage.driver, 'swift');
  assert.equal(swift.storage.swift.authUrl, 'https://keystone.example:5000/v3');
  assert.equal(swift.storage.swift.tenant, 'services');
  assert.equal(swift.storage.swift.rootDirectory, '/docker');
  assert.equal(swift.storage.swift.insecureSkipVerify, true);
  assert.equal(swift.storage.swift.tempUrlKey, 'tempurl-secret');
  assert.equal(swift.storage.swift.redirect, true);
  const s3 = loadConfig({
    env: {},
    configDir: noFiles,
    file: file('s3.yml', 'version: 0.1\nstorage:\n  s3:\n    bucket: images\n    region: us-east-1\n    regionendpoint: http://127.0.0.1:9000\n    forcepathstyle: true\n    accesskey: AK\n    secretkey: SK\n  redirect:\n    disable: true\n'),
  });
  assert.equal(s3.storage.driver, 's3');
  assert.equal(s3.storage.s3.endpoint, 'http://127.0.0.1:9000');
  assert.equal(s3.storage.s3.forcePathStyle, true);
  assert.equal(s3.storage.s3.redirect, false);
});

test('keyport config prints a file that --config accepts, giving the same configuration', () => {
  const cli = path.resolve('dist', 'cli.js');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    KEYPORT_TOKEN_LIFETIME: '10m',
    KEYPORT_TLS_NAMES: 'a.example,b.example',
    KEYPORT_NOTIFICATION_ENDPOINTS: '[{"name":"x","url":"https://x.example/","headers":{"Authorization":"Bearer s3cret"}}]',
    KEYPORT_SWIFT_PASSWORD: 'swift-s3cret',
  };
  const first = execFileSync(process.execPath, [cli, 'config'], { env, encoding: 'utf8' });
  assert.ok(!first.includes('s3cret'), 'secrets are left out');
  const saved = file('saved.json', first);
  const again = spawnSync(process.execPath, [cli, 'config', '--config', saved], { env: { PATH: env.PATH }, encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), JSON.parse(first), 'the same settings, read back from the file');
  assert.equal(JSON.parse(first).token.lifetime, 600);
});
