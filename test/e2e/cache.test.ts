/**
 * The pull-through cache against real parts: Docker Distribution 2.8 (an open upstream
 * on TLS with its own CA) holding a plain and a multi-platform image, a real Keyport
 * (token server and registry) with Keystone users, skopeo pulling through it. A stub
 * upstream on loopback stands in only for what Distribution cannot be made to do:
 * answer 500 or 429, or send bytes that do not match their digest.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ensureCertificates } from '../../src/tls/certificates.js';
import { certDir, Docker, must, Podman, run } from '../helpers/clients.js';
import { anonymousTls, DistributionProcess } from '../helpers/distribution.js';
import { basic, request } from '../helpers/http.js';
import { makeTestImage, type TestImage } from '../helpers/image.js';
import { freePort, KeyportProcess, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser, type TestUser } from '../helpers/keystone-admin.js';
import { makeMultiPlatformImage, type MultiPlatformImage } from '../helpers/multi-platform.js';
import { scrapeMetrics } from '../helpers/registry.js';
import { dockerd, keystone, keystoneEnv, type DockerdService } from '../helpers/services.js';
import { TokenMinter } from '../helpers/tokens.js';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const sfx = KeystoneAdmin.suffix();
let kp: KeyportProcess;
/** A second Keyport with token auth: the upstream of kp-up/, so the bearer flow meets a real token server. */
let kpUp: KeyportProcess;
let bob: TestUser;
let dd: DockerdService | undefined;
let metricsPort: number;
/** Event envelopes the registry delivered to the test's receiver. */
const events: any[] = [];
let receiver: http.Server;
let dist: DistributionProcess;
let distTrust: string;
let alice: TestUser;
let app: TestImage;
let big: TestImage;
let multi: MultiPlatformImage;
let minter: TokenMinter;
let stub: Stub;
let ready = false;

/** What the stub upstream answers, and what it was asked. */
interface Stub {
  port: number;
  /** A 3 MiB blob of bad/app that the stub serves with its last byte changed. */
  bigDigest: string;
  bigSize: number;
  /** A 24 MiB blob of slow/app, served in two halves a moment apart. */
  slowDigest: string;
  slowSize: number;
  requests: string[];
  close(): Promise<void>;
}

const sha = (b: Buffer | string) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

/**
 * An upstream that misbehaves on purpose: `bad/app` names a layer and then serves
 * other bytes of the same length for it; `broken/app` answers 500; `busy/app` 429;
 * `slow/app` serves a good blob with a pause halfway, so a client can leave mid-transfer.
 */
async function startStub(): Promise<Stub> {
  const good = Buffer.from('the layer the manifest names\n'.repeat(100));
  const evil = Buffer.from(good.toString('utf8').replace(/names/g, 'NAMES'));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(good), size: good.length }],
    }),
  );
  const bigGood = crypto.randomBytes(3 * 1024 * 1024);
  const bigEvil = Buffer.from(bigGood);
  bigEvil[bigEvil.length - 1] = bigEvil[bigEvil.length - 1]! ^ 0xff;
  const slow = crypto.randomBytes(24 * 1024 * 1024);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (url === '/v2/bad/app/manifests/1') {
      return res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': manifest.length, 'docker-content-digest': sha(manifest) }).end(req.method === 'HEAD' ? undefined : manifest);
    }
    if (url === `/v2/bad/app/blobs/${sha(good)}`) return res.writeHead(200, { 'content-length': evil.length }).end(req.method === 'HEAD' ? undefined : evil);
    if (url === `/v2/bad/app/blobs/${sha(bigGood)}`) return res.writeHead(200, { 'content-length': bigEvil.length }).end(req.method === 'HEAD' ? undefined : bigEvil);
    if (url === `/v2/slow/app/blobs/${sha(slow)}`) {
      res.writeHead(200, { 'content-length': slow.length });
      if (req.method === 'HEAD') return res.end();
      res.write(slow.subarray(0, slow.length / 2));
      setTimeout(() => res.end(slow.subarray(slow.length / 2)), 500);
      return;
    }
    if (url.startsWith('/v2/broken/')) return res.writeHead(500, { 'content-type': 'text/plain' }).end('internal trouble');
    if (url.startsWith('/v2/busy/')) return res.writeHead(429, { 'retry-after': '17', 'content-type': 'application/json' }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NAME_UNKNOWN","message":"no such repository"}]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    bigDigest: sha(bigGood),
    bigSize: bigGood.length,
    slowDigest: sha(slow),
    slowSize: slow.length,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

before(async (t) => {
  const ks = keystone(t as unknown as TestContext);
  if (!ks) return;
  if (!DistributionProcess.available()) {
    if (process.env.CI) throw new Error('docker-registry is not installed');
    return;
  }
  dd = dockerd(t as unknown as TestContext);
  const admin = new KeystoneAdmin(ks);
  alice = await makeUser(admin, `alice-${sfx}`);
  bob = await makeUser(admin, `bob-${sfx}`);

  const upstreamCerts = tempDir('upstream-certs');
  ensureCertificates({ certsDir: upstreamCerts, names: [], tokenKeyType: 'ec' });
  const distCa = path.join(upstreamCerts, 'ca.crt');
  dist = await new DistributionProcess(anonymousTls(upstreamCerts)).start();
  distTrust = certDir(fs.readFileSync(distCa));
  app = makeTestImage(tempDir('app'), 'app:1', { marker: `app-${sfx}` });
  big = makeTestImage(tempDir('big'), 'big:1', { marker: `big-${sfx}`, extraBytes: 4 * 1024 * 1024 });
  multi = makeMultiPlatformImage(tempDir('multi'), ['linux/amd64', 'linux/arm64'], sfx);
  pushUpstream(['--all', `oci:${multi.ociDir}:latest`, 'library/multi:1']);
  pushUpstream([`oci:${app.ociDir}:latest`, 'library/app:1']);
  pushUpstream([`oci:${big.ociDir}:latest`, 'library/big:1']);
  pushUpstream([`oci:${app.ociDir}:latest`, 'library/moving:1']);
  stub = await startStub();

  // The second upstream: a Keyport whose bob holds an image only bob may pull.
  kpUp = await new KeyportProcess({ command: 'start', env: keystoneEnv(ks) }).start();
  must(
    run('skopeo', ['copy', '--dest-cert-dir', certDir(kpUp.ca), '--dest-creds', `${bob.name}:${bob.password}`, `oci:${app.ociDir}:latest`, `docker://127.0.0.1:${kpUp.registryPort}/${bob.name}/app:1`]),
    'push to the Keyport upstream',
  );
  const passwordFile = path.join(tempDir('secret'), 'bob.password');
  fs.writeFileSync(passwordFile, `${bob.password}\n`, { mode: 0o600 });

  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      events.push(...JSON.parse(Buffer.concat(chunks).toString('utf8')).events);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  metricsPort = await freePort();

  const upstreams = [
    { namespace: 'cache-ns', url: dist.url, caFile: distCa, tagTtl: 3600 },
    { namespace: 'cache-short', url: dist.url, caFile: distCa, tagTtl: 2 },
    { namespace: 'stub', url: `http://127.0.0.1:${stub.port}` },
    { namespace: 'kp-up', url: kpUp.registryUrl, caFile: path.join(kpUp.certsDir, 'ca.crt'), username: bob.name, passwordFile },
  ];
  kp = await new KeyportProcess({
    command: 'start',
    env: {
      ...keystoneEnv(ks),
      KEYPORT_UPSTREAMS: JSON.stringify(upstreams),
      KEYPORT_REGISTRY_METRICS_PORT: String(metricsPort),
      KEYPORT_NOTIFICATION_ENDPOINTS: JSON.stringify([{ name: 'rx', url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, backoff: 100 }]),
    },
  }).start();
  minter = new TokenMinter(kp.certsDir);
  ready = true;
});

after(async () => {
  await dist?.stop();
  await kp?.stop();
  await kpUp?.stop();
  await stub?.close();
  receiver?.close();
});

/** skopeo copy into the upstream, trusting its CA. */
function pushUpstream([flagOrSrc, ...rest]: string[]): void {
  const args = flagOrSrc === '--all' ? ['--all', rest[0]!, rest[1]!] : [flagOrSrc!, rest[0]!];
  const dest = args.pop()!;
  must(run('skopeo', ['copy', '--dest-cert-dir', distTrust, ...args, `docker://127.0.0.1:${dist.port}/${dest}`]), `skopeo copy to upstream ${dest}`);
}

/** The upstream's completed requests (Distribution's JSON access log) whose path starts with `prefix`. */
function upstreamRequests(prefix: string): Array<{ method: string; uri: string; status: number }> {
  return dist
    .logText()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((l) => l.msg === 'response completed' && typeof l['http.request.uri'] === 'string' && l['http.request.uri'].startsWith(prefix))
    .map((l) => ({ method: l['http.request.method'], uri: l['http.request.uri'], status: l['http.response.status'] }));
}

async function pull(repo: string, p: string, opts: { accept?: string; method?: string } = {}) {
  const token = await minter.mint([{ name: repo, actions: ['pull'] }], { subject: alice.name });
  return request(`${kp.registryUrl}/v2/${repo}/${p}`, {
    method: opts.method ?? 'GET',
    ca: kp.ca,
    // A fresh connection each time: a cut transfer must not take the next request with it.
    agent: false,
    headers: { authorization: `Bearer ${token}`, accept: opts.accept ?? ACCEPT },
  });
}

function skopeo(args: string[]) {
  return run('skopeo', [...args.slice(0, 1), '--src-cert-dir', certDir(kp.ca), '--src-creds', `${alice.name}:${alice.password}`, ...args.slice(1)]);
}

describe('pull-through cache', () => {
  it('skopeo pulls an upstream image through Keyport: same digests, stored, served again without the upstream', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const out = tempDir('pulled');
    must(skopeo(['copy', `docker://127.0.0.1:${kp.registryPort}/cache-ns/library/app:1`, `oci:${out}:app`]), 'skopeo copy through the cache');
    const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8'));
    assert.equal(index.manifests[0].digest, app.manifestDigest, 'the digest is the upstream one');
    assert.ok(fs.existsSync(path.join(out, 'blobs', 'sha256', app.layerDigest.slice(7))), 'the layer arrived');

    const fetched = upstreamRequests('/v2/library/app/').filter((r) => r.method === 'GET');
    assert.equal(fetched.filter((r) => r.uri.includes('/blobs/')).length, 2, 'config and layer fetched once each');

    // A second pull is served from the store: the upstream sees nothing.
    const before = upstreamRequests('/v2/library/app/').length;
    must(skopeo(['copy', `docker://127.0.0.1:${kp.registryPort}/cache-ns/library/app:1`, `oci:${tempDir('again')}:app`]), 'second pull');
    assert.equal(upstreamRequests('/v2/library/app/').length, before, 'no upstream request for a cached image');

    const fetchLines = kp.logLines().filter((l) => l.msg === 'cached a blob from upstream' && l.repository === 'cache-ns/library/app');
    assert.equal(fetchLines.length, 2);
    // The pull is noted for retention, under _keyport/ next to the content.
    const noted = path.join(kp.dir, 'data', '_keyport', 'cache', 'last-pulled', 'cache-ns', 'library', 'app', 'sha256', app.manifestDigest.slice(7));
    assert.ok(Date.now() - Date.parse(fs.readFileSync(noted, 'utf8')) < 120_000, 'last-pulled time recorded');
  });

  it('keeps a multi-platform index with all its platforms', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const r = await pull('cache-ns/library/multi', 'manifests/1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['docker-content-digest'], multi.indexDigest);
    for (const digest of Object.values(multi.images)) {
      const child = await pull('cache-ns/library/multi', `manifests/${digest}`);
      assert.equal(child.status, 200, child.text);
      assert.equal(sha(child.body), digest);
    }
    const out = tempDir('multi-pulled');
    must(skopeo(['copy', '--all', `docker://127.0.0.1:${kp.registryPort}/cache-ns/library/multi:1`, `oci:${out}:m`]), 'skopeo copy --all through the cache');
    for (const b of multi.blobs) assert.ok(fs.existsSync(path.join(out, 'blobs', 'sha256', b.slice(7))), `${b} arrived`);
  });

  it('an image the upstream does not have is MANIFEST_UNKNOWN; a blob it lacks is BLOB_UNKNOWN', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const r = await pull('cache-ns/library/nothing', 'manifests/1');
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json().errors[0].code, 'MANIFEST_UNKNOWN');
    const b = await pull('cache-ns/library/app', `blobs/${sha('no such blob')}`);
    assert.equal(b.status, 404, b.text);
    assert.equal(b.json().errors[0].code, 'BLOB_UNKNOWN');
  });

  it('20 concurrent pulls of an uncached image make one upstream request per manifest and blob', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const repo = 'cache-ns/library/big';
    const manifests = await Promise.all(Array.from({ length: 20 }, () => pull(repo, 'manifests/1')));
    for (const m of manifests) assert.equal(m.headers['docker-content-digest'], big.manifestDigest, m.text);
    const layers = await Promise.all(Array.from({ length: 20 }, () => pull(repo, `blobs/${big.layerDigest}`)));
    for (const l of layers) {
      assert.equal(l.status, 200, l.text);
      assert.equal(sha(l.body), big.layerDigest);
    }
    const asked = upstreamRequests('/v2/library/big/').filter((r) => r.method === 'GET');
    assert.equal(asked.filter((r) => r.uri.includes('/manifests/')).length, 1, 'one manifest request');
    assert.equal(asked.filter((r) => r.uri.includes(`/blobs/${big.layerDigest}`)).length, 1, 'one blob request');
  });

  it('pushes into a cache namespace are refused, pushes elsewhere work on the same registry', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const token = await minter.mint([{ name: 'cache-ns/library/app', actions: ['pull', 'push', 'delete'] }]);
    const r = await request(`${kp.registryUrl}/v2/cache-ns/library/app/blobs/uploads/`, { method: 'POST', ca: kp.ca, headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 403);
    assert.equal(r.json().errors[0].code, 'DENIED');
    assert.match(r.json().errors[0].message, /pull-through cache of https:\/\/127\.0\.0\.1:\d+: pushes are refused/);
    const put = await request(`${kp.registryUrl}/v2/cache-ns/library/app/manifests/2`, { method: 'PUT', ca: kp.ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: '{}' });
    assert.equal(put.status, 403);

    // skopeo as alice: the token server grants pull only there, the registry refuses anyway.
    const trust = certDir(kp.ca);
    const creds = `${alice.name}:${alice.password}`;
    const refused = run('skopeo', ['copy', '--dest-cert-dir', trust, '--dest-creds', creds, `oci:${app.ociDir}:latest`, `docker://127.0.0.1:${kp.registryPort}/cache-ns/library/mine:1`]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.out, /denied/i);
    must(run('skopeo', ['copy', '--dest-cert-dir', trust, '--dest-creds', creds, `oci:${app.ociDir}:latest`, `docker://127.0.0.1:${kp.registryPort}/${alice.name}/app:1`]), 'push to the own namespace');

    // whoami tells alice what she may do there.
    const who = await request(`${kp.tokenUrl}/whoami`, { ca: kp.ca, headers: { authorization: basic(alice.name, alice.password) } });
    assert.equal(who.status, 200, who.text);
    assert.deepEqual(who.json().namespaces.find((n: { namespace: string }) => n.namespace === 'cache-ns'), { namespace: 'cache-ns', kind: 'cache', actions: ['pull'] });
  });

  it('follows a moved upstream tag after tagTtl, and not before', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const repo = 'cache-short/library/moving';
    const first = await pull(repo, 'manifests/1');
    assert.equal(first.headers['docker-content-digest'], app.manifestDigest, first.text);
    pushUpstream([`oci:${big.ociDir}:latest`, 'library/moving:1']);
    const soon = await pull(repo, 'manifests/1');
    assert.equal(soon.headers['docker-content-digest'], app.manifestDigest, 'within tagTtl the cached tag is served');
    await new Promise((r) => setTimeout(r, 2100));
    const heads = upstreamRequests('/v2/library/moving/manifests/').filter((r) => r.method === 'HEAD').length;
    const later = await pull(repo, 'manifests/1');
    assert.equal(later.headers['docker-content-digest'], big.manifestDigest, 'after tagTtl the moved tag is followed');
    assert.equal(upstreamRequests('/v2/library/moving/manifests/').filter((r) => r.method === 'HEAD').length, heads + 1, 'checked with one HEAD');
    const old = await pull(repo, `manifests/${app.manifestDigest}`);
    assert.equal(old.status, 200, 'the old manifest stays reachable by digest');
  });

  it('misbehaving upstreams: 500 is 503 naming it, 429 passes Retry-After on, a bad digest is never stored', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const broken = await pull('stub/broken/app', 'manifests/1');
    assert.equal(broken.status, 503, broken.text);
    assert.equal(broken.json().errors[0].code, 'UNAVAILABLE');
    assert.match(broken.json().errors[0].message, new RegExp(`upstream http://127\\.0\\.0\\.1:${stub.port} is unavailable: it answered 500`));

    const busy = await pull('stub/busy/app', 'manifests/1');
    assert.equal(busy.status, 429, busy.text);
    assert.equal(busy.headers['retry-after'], '17');
    assert.equal(busy.json().errors[0].code, 'TOOMANYREQUESTS');

    const m = await pull('stub/bad/app', 'manifests/1');
    assert.equal(m.status, 200, m.text);
    const layer = JSON.parse(m.text).layers[0].digest as string;
    // The blob is one chunk: the mismatch is known before any byte went out, so the client gets a clean 503.
    const attempt = await pull('stub/bad/app', `blobs/${layer}`);
    assert.equal(attempt.status, 503, attempt.text);
    assert.match(attempt.json().errors[0].message, new RegExp(`upstream http://127\\.0\\.0\\.1:${stub.port} sent content for ${layer} whose digest is sha256:[0-9a-f]{64}; it was not stored`));
    const stored = path.join(kp.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', layer.slice(7, 9), layer.slice(7), 'data');
    assert.equal(fs.existsSync(stored), false, 'the bad bytes were not committed');
    // Once the failed fetch is over (a pull meanwhile would share its failure), the next pull asks the upstream again.
    await kp.waitForLog((l) => l.msg === 'upstream sent a blob that does not match its digest; nothing was stored' && l.digest === layer);
    const again = await pull('stub/bad/app', `blobs/${layer}`);
    assert.equal(again.status, 503);
    assert.equal(stub.requests.filter((r) => r === `GET /v2/bad/app/blobs/${layer}`).length, 2, 'nothing was cached: the second pull asked again');
    assert.equal(fs.existsSync(stored), false);

    // A large one streams: the client has headers and most bytes when the mismatch shows, and the transfer is cut.
    const cut = await pull('stub/bad/app', `blobs/${stub.bigDigest}`).then(
      (r) => `${r.status} with ${r.body.length} bytes`,
      (e: Error) => `cut: ${e.message}`,
    );
    assert.notEqual(cut, `200 with ${stub.bigSize} bytes`, 'never a complete transfer of the wrong bytes');
    assert.match(cut, /^cut: /);
    await kp.waitForLog((l) => l.msg === 'cache fetch of a blob failed mid-transfer' && l.digest === stub.bigDigest);
    const bigStored = path.join(kp.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', stub.bigDigest.slice(7, 9), stub.bigDigest.slice(7), 'data');
    assert.equal(fs.existsSync(bigStored), false, 'the bad bytes were not committed');
    const uploads = path.join(kp.dir, 'data', 'docker', 'registry', 'v2', 'repositories', 'stub', 'bad', 'app', '_uploads');
    assert.deepEqual(fs.existsSync(uploads) ? fs.readdirSync(uploads) : [], [], 'and no upload session is left holding them');
  });

  it('a client that leaves mid-transfer does not stop the fetch: the whole blob is stored once its digest checked out', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const digest = stub.slowDigest;
    const token = await minter.mint([{ name: 'stub/slow/app', actions: ['pull'] }], { subject: alice.name });
    // Takes the first bytes, then hangs up while the upstream is still sending.
    const got = await new Promise<number>((resolve, reject) => {
      const req = https.get(`${kp.registryUrl}/v2/stub/slow/app/blobs/${digest}`, { ca: kp.ca, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
        res.once('data', (c: Buffer) => {
          req.destroy();
          resolve(c.length);
        });
      });
      req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
    });
    assert.ok(got > 0 && got < stub.slowSize, 'the client left before the end');
    await kp.waitForLog((l) => l.msg === 'cached a blob from upstream' && l.digest === digest, 15_000);
    const stored = path.join(kp.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data');
    assert.equal(sha(fs.readFileSync(stored)), digest, 'the stored blob is complete and is what its digest names');
    const again = await pull('stub/slow/app', `blobs/${digest}`);
    assert.equal(again.status, 200);
    assert.equal(sha(again.body), digest);
    assert.equal(stub.requests.filter((r) => r === `GET /v2/slow/app/blobs/${digest}`).length, 1, 'served from the store: the upstream was asked once');
  });

  it('podman and docker pull through the cache; docker takes its platform from the cached index', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const reg = `127.0.0.1:${kp.registryPort}`;
    const p = new Podman();
    const certs = certDir(kp.ca);
    must(p.run(['login', '--cert-dir', certs, '-u', alice.name, '--password-stdin', reg], alice.password), 'podman login');
    must(p.run(['pull', '--cert-dir', certs, `${reg}/cache-ns/library/app:1`]), 'podman pull');
    const inspected = JSON.parse(must(p.run(['image', 'inspect', `${reg}/cache-ns/library/app:1`]), 'podman image inspect'));
    assert.equal(inspected[0].Digest, app.manifestDigest);
    if (!dd) {
      if (process.env.CI) throw new Error('dockerd is not available');
      return;
    }
    const d = new Docker(dd.socket);
    must(d.run(['login', reg, '-u', alice.name, '--password-stdin'], `${alice.password}\n`), 'docker login');
    const out = must(d.run(['pull', `${reg}/cache-ns/library/multi:1`]), 'docker pull of a multi-platform image');
    assert.match(out, new RegExp(`Digest: ${multi.indexDigest}`), 'docker sees the upstream index digest');
  });

  it('follows the bearer flow of a Keyport upstream, logged in with the configured user', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const r = await pull(`kp-up/${bob.name}/app`, 'manifests/1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['docker-content-digest'], app.manifestDigest);
    const out = tempDir('via-keyport');
    must(skopeo(['copy', `docker://127.0.0.1:${kp.registryPort}/kp-up/${bob.name}/app:1`, `oci:${out}:app`]), 'skopeo copy from a Keyport upstream');
    const audit = kpUp.logLines().filter((l) => l.msg === 'token issued' && l.user === bob.name && (l.granted ?? []).includes(`repository:${bob.name}/app:pull`));
    assert.ok(audit.length >= 1, 'the upstream token server issued bob a pull token');
    assert.ok(!kp.logText().includes(bob.password), 'the upstream password is never logged');
  });

  it('reports fetches from the upstream as events and counts the cache in metrics', async (t) => {
    if (!ready) return t.skip('services unavailable');
    const deadline = Date.now() + 10_000;
    const fetched = () => events.filter((e) => e.action === 'fetch' && e.target.repository === 'cache-ns/library/app');
    while (fetched().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const manifest = fetched().find((e) => e.target.tag === '1');
    assert.ok(manifest, JSON.stringify(events.map((e) => [e.action, e.target.repository, e.target.tag])));
    assert.equal(manifest.target.digest, app.manifestDigest);
    assert.equal(manifest.target.upstream, dist.url);
    assert.equal(manifest.actor.name, alice.name);
    assert.ok(fetched().some((e) => e.target.digest === app.layerDigest), 'the layer fetch too');
    const m = await scrapeMetrics(`https://127.0.0.1:${metricsPort}/metrics`, kp.ca);
    assert.ok(m.value('keyport_cache_requests_total', { upstream: 'cache-ns', kind: 'blob', result: 'miss' }) >= 2);
    assert.ok(m.value('keyport_cache_requests_total', { upstream: 'cache-ns', kind: 'blob', result: 'hit' }) >= 2);
    assert.equal(m.value('keyport_cache_upstream_requests_total', { upstream: 'cache-ns', kind: 'manifest' }) >= 1, true);
  });

  it('with the upstream stopped: cached images still pull, uncached ones get 503 naming the upstream', async (t) => {
    if (!ready) return t.skip('services unavailable');
    await dist.stop();
    must(skopeo(['copy', `docker://127.0.0.1:${kp.registryPort}/cache-ns/library/app:1`, `oci:${tempDir('offline')}:app`]), 'pull of a cached image with the upstream down');

    // A tag past its tagTtl is served as cached, with a warning.
    await new Promise((r) => setTimeout(r, 2100));
    const stale = await pull('cache-short/library/moving', 'manifests/1');
    assert.equal(stale.status, 200, stale.text);
    assert.equal(stale.headers['docker-content-digest'], big.manifestDigest);
    assert.ok(kp.logLines().some((l) => l.msg === 'upstream unavailable; serving the cached tag' && l.level === 'warn'));
    const m = await scrapeMetrics(`https://127.0.0.1:${metricsPort}/metrics`, kp.ca);
    assert.ok(m.value('keyport_cache_stale_served_total', { upstream: 'cache-short' }) >= 1);

    const r = await pull('cache-ns/library/uncached', 'manifests/1');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json().errors[0].code, 'UNAVAILABLE');
    assert.match(r.json().errors[0].message, new RegExp(`upstream https://127\\.0\\.0\\.1:${dist.port} is unavailable: cannot connect`));
  });
});
