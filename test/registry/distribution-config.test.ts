/**
 * Moving from Docker Distribution: Keyport starts from Distribution's own config.yml
 * (Debian's docker-registry ships this one), with its htpasswd section swapped for
 * token auth as Distribution documents it, and serves pushes and pulls as configured.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import YAML from 'yaml';
import { request } from '../helpers/http.js';
import { CLI, freePort, KeyportProcess, tempDir } from '../helpers/keyport.js';
import { RegistryClient } from '../helpers/registry.js';
import { TokenMinter } from '../helpers/tokens.js';

/** /etc/docker/registry/config.yml of Debian's docker-registry 2.8, as shipped. */
const DISTRIBUTION_CONFIG = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: basic-realm
    path: /etc/docker/registry
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`;

it("Keyport starts from Distribution's config.yml with token auth and serves pushes", async (t) => {
  const dir = tempDir('distribution-config');
  const certs = path.join(dir, 'certs');
  const data = path.join(dir, 'registry-data');
  const port = await freePort();
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
  // The certificates a Distribution operator already has; here Keyport makes them.
  const made = spawnSync(process.execPath, [CLI, 'certs'], { env: { ...env, KEYPORT_CERTS_DIR: certs }, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);

  // Unchanged as shipped it names htpasswd, which Keyport refuses by name.
  const shipped = path.join(dir, 'shipped.yml');
  fs.writeFileSync(shipped, DISTRIBUTION_CONFIG);
  const refused = spawnSync(process.execPath, [CLI, 'config', '--config', shipped], { env, encoding: 'utf8' });
  assert.equal(refused.status, 78);
  assert.match(refused.stderr, /auth\.htpasswd: Keyport authenticates through its token server and Keystone/);

  const doc = YAML.parse(DISTRIBUTION_CONFIG);
  doc.storage.filesystem.rootdirectory = data;
  doc.http.addr = `127.0.0.1:${port}`;
  doc.http.tls = { certificate: path.join(certs, 'server.crt'), key: path.join(certs, 'server.key') };
  doc.auth = {
    token: {
      realm: 'https://auth.example:9002/token',
      service: 'registry.example',
      issuer: 'example-issuer',
      rootcertbundle: path.join(certs, 'token.crt'),
    },
  };
  const configFile = path.join(dir, 'config.yml');
  fs.writeFileSync(configFile, YAML.stringify(doc));

  const log = path.join(dir, 'registry.log');
  const out = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [CLI, 'registry', '--config', configFile], { cwd: dir, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  t.after(() => {
    child.kill('SIGTERM');
  });
  const kp = new KeyportProcess({ command: 'registry', dir, registryPort: port, env: { KEYPORT_CERTS_DIR: certs } });
  let challenge: string | undefined;
  for (let i = 0; i < 100 && challenge === undefined; i++) {
    try {
      const r = await request(`${kp.registryUrl}/v2/`, { ca: kp.ca, agent: false });
      challenge = String(r.headers['www-authenticate']);
    } catch {
      if (child.exitCode !== null) assert.fail(`keyport exited: ${fs.readFileSync(log, 'utf8')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.equal(challenge, 'Bearer realm="https://auth.example:9002/token",service="registry.example"', 'the realm and service of auth.token');

  const minter = new TokenMinter(certs, 'example-issuer', 'registry.example');
  const client = new RegistryClient(kp);
  const token = await minter.mint([{ name: 'alice/app', actions: ['pull', 'push', 'delete'] }], { subject: 'alice' });
  const pushed = await client.pushImage('alice/app', 'v1', token);
  const pulled = await client.api('GET', '/v2/alice/app/manifests/v1', token, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(pulled.status, 200);
  assert.equal(String(pulled.headers['docker-content-digest']), pushed.digest);
  assert.ok(fs.existsSync(path.join(data, 'docker/registry/v2/repositories/alice/app/_manifests/tags/v1/current/link')), 'stored under rootdirectory');
  assert.equal((await client.api('DELETE', `/v2/alice/app/manifests/${pushed.digest}`, token)).status, 202, 'storage.delete.enabled');
  const stranger = await minter.mint([{ name: 'alice/app', actions: ['pull'] }], { issuer: 'keyport' });
  assert.equal((await client.api('GET', '/v2/alice/app/tags/list', stranger)).status, 401, 'only the configured issuer is trusted');

  const lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  for (const key of ['log.fields', 'storage.cache', 'http.headers']) {
    assert.ok(lines.some((l) => l.level === 'warn' && String(l.msg).includes(`${key} is ignored`)), `a warning for ${key}`);
  }
});
