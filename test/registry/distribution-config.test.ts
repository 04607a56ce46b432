/**
 * Moving from Docker Distribution: Keyport starts from Distribution's own config.yml
 * (Debian's docker-registry ships this one), with its htpasswd section swapped for
 * token auth as Distribution documents it, and serves pushes and pulls as configured.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { it, type TestContext } from 'node:test';
import YAML from 'yaml';
import { request } from '../helpers/http.js';
import { CLI, freePort, KeyportProcess, tempDir } from '../helpers/keyport.js';
import { RegistryClient } from '../helpers/registry.js';
import { TokenMinter } from '../helpers/tokens.js';
import { swift } from '../helpers/services.js';
import { certDir, must, run } from '../helpers/clients.js';
import { makeTestImage } from '../helpers/image.js';
import { anonymousTls, DistributionProcess } from '../helpers/distribution.js';
import { ensureCertificates } from '../../src/tls/certificates.js';
import { rawList } from '../helpers/swift.js';

/** `keyport registry --config FILE` in `dir` with no KEYPORT_* variables; resolves once it answers. */
async function startFrom(t: TestContext, dir: string, configFile: string, port: number, certs: string, extraEnv: Record<string, string> = {}): Promise<{ kp: KeyportProcess; challenge: string; log: string }> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...extraEnv };
  const log = path.join(dir, 'registry.log');
  const out = fs.openSync(log, 'a');
  const child = spawn(process.execPath, [CLI, 'registry', '--config', configFile], { cwd: dir, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  t.after(() => {
    child.kill('SIGTERM');
  });
  const kp = new KeyportProcess({ command: 'registry', dir, registryPort: port, env: { KEYPORT_CERTS_DIR: certs } });
  for (let i = 0; i < 300; i++) {
    try {
      const r = await request(`${kp.registryUrl}/v2/`, { ca: kp.ca, agent: false });
      return { kp, challenge: String(r.headers['www-authenticate']), log };
    } catch {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.fail(`keyport did not start: ${fs.readFileSync(log, 'utf8')}`);
}

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

  const { kp, challenge, log } = await startFrom(t, dir, configFile, port, certs);
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

/**
 * An OpenStack guide's Swift example of config.yml, with the test Swift's credentials
 * (its tempauth account instead of the guide's Keystone v2 tenant) and a free port.
 */
it("Keyport starts from a Distribution config.yml on Swift and stores pushes under its rootdirectory", async (t) => {
  const sw = swift(t as unknown as TestContext);
  if (!sw) return;
  const dir = tempDir('distribution-swift');
  const port = await freePort();
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
  // No tls or auth section: Keyport's certificates in ./certs, tokens signed by ./certs/token.key.
  const made = spawnSync(process.execPath, [CLI, 'certs'], { cwd: dir, env, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const container = `distribution-${crypto.randomBytes(4).toString('hex')}`;
  const configFile = path.join(dir, 'config.yml');
  fs.writeFileSync(
    configFile,
    `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  swift:
    username: ${sw.tempauth.user}
    password: ${sw.tempauth.key}
    authurl: ${sw.authV1}
    insecureskipverify: true
    container: ${container}
    rootdirectory: /swift/object/name/prefix
http:
  addr: 127.0.0.1:${port}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`,
  );
  const certs = path.join(dir, 'certs');
  const { kp, challenge, log } = await startFrom(t, dir, configFile, port, certs);
  assert.match(challenge, /^Bearer realm="https:\/\/[^"]+:9002\/token",service="keyport-registry"$/, "Keyport's own token server by default");
  const minter = new TokenMinter(certs);
  const client = new RegistryClient(kp);
  const token = await minter.mint([{ name: 'alice/busybox', actions: ['pull', 'push'] }], { subject: 'alice' });
  const pushed = await client.pushImage('alice/busybox', 'latest', token);
  const names = (await rawList(sw, container)).map((e) => e.name);
  assert.ok(names.includes(`swift/object/name/prefix/files/docker/registry/v2/repositories/alice/busybox/_manifests/tags/latest/current/link`), names.join('\n'));
  const pulled = await client.api('GET', `/v2/alice/busybox/blobs/${pushed.layer}`, token);
  assert.equal(pulled.status, 200);
  const warned = fs.readFileSync(log, 'utf8');
  assert.match(warned, /auth: none configured; Keyport always requires tokens/);
});

it("Distribution's proxy.remoteurl: Keyport caches that registry under a namespace, pulls through it, and still takes pushes", async (t) => {
  if (!DistributionProcess.available()) {
    if (process.env.CI) throw new Error('docker-registry is not installed');
    return;
  }
  const upstreamCerts = tempDir('proxy-upstream-certs');
  ensureCertificates({ certsDir: upstreamCerts, names: [], tokenKeyType: 'ec' });
  const dist = await new DistributionProcess(anonymousTls(upstreamCerts)).start();
  t.after(() => dist.stop());
  const upstreamCa = fs.readFileSync(path.join(upstreamCerts, 'ca.crt'));
  const img = makeTestImage(tempDir('proxy-image'), 'app:1', { marker: crypto.randomBytes(4).toString('hex') });
  must(run('skopeo', ['copy', '--dest-cert-dir', certDir(upstreamCa), `oci:${img.ociDir}:latest`, `docker://127.0.0.1:${dist.port}/library/app:1`]), 'skopeo copy to the upstream');
  const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
  const direct = await request(`${dist.url}/v2/library/app/manifests/1`, { ca: upstreamCa, headers: { accept } });
  assert.equal(direct.status, 200, direct.text);
  const image = { digest: String(direct.headers['docker-content-digest']), layer: (direct.json<{ layers: Array<{ digest: string }> }>()).layers[0]!.digest };

  const dir = tempDir('distribution-proxy');
  const certs = path.join(dir, 'certs');
  const port = await freePort();
  const made = spawnSync(process.execPath, [CLI, 'certs'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KEYPORT_CERTS_DIR: certs }, encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const configFile = path.join(dir, 'config.yml');
  fs.writeFileSync(
    configFile,
    YAML.stringify({
      version: 0.1,
      storage: { filesystem: { rootdirectory: path.join(dir, 'data') } },
      http: { addr: `127.0.0.1:${port}`, tls: { certificate: path.join(certs, 'server.crt'), key: path.join(certs, 'server.key') } },
      auth: { token: { realm: 'https://auth.example:9002/token', service: 'registry.example', issuer: 'example-issuer', rootcertbundle: path.join(certs, 'token.crt') } },
      proxy: { remoteurl: dist.url },
    }),
  );
  // Distribution's proxy trusts the system's CAs; so does Keyport, plus NODE_EXTRA_CA_CERTS.
  const { kp, log } = await startFrom(t, dir, configFile, port, certs, { NODE_EXTRA_CA_CERTS: path.join(upstreamCerts, 'ca.crt') });
  const minter = new TokenMinter(certs, 'example-issuer', 'registry.example');
  const client = new RegistryClient(kp);
  const token = await minter.mint([{ name: 'mirror/library/app', actions: ['pull'] }], { subject: 'alice' });
  const m = await client.api('GET', '/v2/mirror/library/app/manifests/1', token, { headers: { accept } });
  assert.equal(m.status, 200, m.text);
  assert.equal(String(m.headers['docker-content-digest']), image.digest, 'the upstream\'s image, byte for byte');
  const layer = await client.api('GET', `/v2/mirror/library/app/blobs/${image.layer}`, token);
  assert.equal(layer.status, 200);
  assert.equal(`sha256:${crypto.createHash('sha256').update(layer.body).digest('hex')}`, image.layer);
  // Unlike Distribution's proxy mode, the registry is not read-only.
  const push = await minter.mint([{ name: 'alice/app', actions: ['pull', 'push'] }], { subject: 'alice' });
  await client.pushImage('alice/app', 'v1', push);
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.level === 'warn' && /proxy\.remoteurl: .* cached under the namespace mirror/.test(String(l.msg))), 'a warning says where the images are');
});
