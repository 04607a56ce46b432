/**
 * The registry on the Swift driver, for what only a registry process shows: the storage
 * health check turning /healthz and the API to 503 while Swift is away (and back), and
 * blob downloads redirected to Swift TempURLs.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { certDir, must, run } from '../helpers/clients.js';
import { request } from '../helpers/http.js';
import { freePort, tempDir } from '../helpers/keyport.js';
import { codes, RegistryClient, scrapeMetrics, sha256, startRegistry } from '../helpers/registry.js';
import { KeyportProcess } from '../helpers/keyport.js';
import https from 'node:https';
import { swift } from '../helpers/services.js';
import { extraProxy, swiftRegistryEnv } from '../helpers/swift.js';


const until = async (what: string, ok: () => Promise<boolean>, ms: number) => {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

describe('registry on Swift', () => {
  it('two registry processes on one container: push through one, pull through the other, push together, finish a killed upload', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const env = swiftRegistryEnv(sw, sw.authV1);
    const a = await startRegistry(env);
    t.after(() => a.kp.stop());
    // The second instance shares the store and the certificates (so the same tokens).
    const bkp = await new KeyportProcess({ command: 'registry', env: { ...env, KEYPORT_CERTS_DIR: a.kp.certsDir } }).start();
    t.after(() => bkp.stop());
    const b = new RegistryClient(bkp);
    const token = await a.minter.all('alice/shared', 'alice/both', 'alice/killed');
    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };

    const image = await a.client.pushImage('alice/shared', 'v1', token, { layer: crypto.randomBytes(1536 * 1024) });
    const m = await b.api('GET', '/v2/alice/shared/manifests/v1', token, { headers: accept });
    assert.equal(m.status, 200);
    assert.ok(m.body.equals(image.body));
    const layer = await b.api('GET', `/v2/alice/shared/blobs/${image.layer}`, token);
    assert.equal(sha256(layer.body), image.layer);

    const same = crypto.randomBytes(2 * 1024 * 1024 + 17);
    const [ra, rb] = await Promise.all([a.client.pushImage('alice/both', 'v1', token, { layer: same }), b.pushImage('alice/both', 'v1', token, { layer: same })]);
    assert.equal(ra.digest, rb.digest);
    for (const c of [a.client, b]) {
      const got = await c.api('GET', `/v2/alice/both/blobs/${ra.layer}`, token);
      assert.equal(sha256(got.body), sha256(same));
    }

    // A chunked upload on the first instance; it dies (SIGKILL) in the middle of a chunk.
    const data = crypto.randomBytes(3 * 1024 * 1024);
    const digest = sha256(data);
    const started = await a.client.api('POST', '/v2/alice/killed/blobs/uploads/', token);
    let loc = String(started.headers.location);
    const first = await a.client.api('PATCH', loc, token, {
      body: data.subarray(0, 1024 * 1024),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${1024 * 1024 - 1}` },
    });
    assert.equal(first.status, 202);
    loc = String(first.headers.location);
    const stalled = https.request(new URL(`${a.kp.registryUrl}${loc}`), {
      method: 'PATCH',
      ca: a.kp.ca,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': 2 * 1024 * 1024 },
    });
    stalled.on('error', () => {});
    stalled.write(data.subarray(1024 * 1024, 2560 * 1024));
    await new Promise((r) => setTimeout(r, 1000));
    await a.kp.stop('SIGKILL');
    stalled.destroy();

    const status = await b.api('GET', loc, token);
    assert.equal(status.status, 204, 'the other instance knows the upload');
    const stored = Number(String(status.headers.range).split('-')[1]) + 1;
    assert.ok(stored >= 1024 * 1024 && stored < data.length, `stored ${stored} bytes`);
    const rest = await b.api('PATCH', loc, token, {
      body: data.subarray(stored),
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${stored}-${data.length - 1}` },
    });
    assert.equal(rest.status, 202, rest.text);
    const done = await b.api('PUT', `${String(rest.headers.location)}${String(rest.headers.location).includes('?') ? '&' : '?'}digest=${digest}`, token);
    assert.equal(done.status, 201, done.text);
    const got = await b.api('GET', `/v2/alice/killed/blobs/${digest}`, token);
    assert.equal(sha256(got.body), digest, 'finished on the second instance with the right bytes');
  });

  it('Swift stopped: /healthz turns unhealthy, requests get 503 in the OCI format, nothing is lost, and service resumes', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const port = await freePort();
    const metricsPort = await freePort();
    extraProxy(sw, 'up', port);
    t.after(() => extraProxy(sw, 'down', port));
    const { kp, minter, client } = await startRegistry(
      swiftRegistryEnv(sw, `http://127.0.0.1:${port}/auth/v1.0`, {
        KEYPORT_REGISTRY_METRICS_PORT: String(metricsPort),
        KEYPORT_STORAGE_HEALTH_INTERVAL: '1',
        KEYPORT_STORAGE_HEALTH_THRESHOLD: '2',
        KEYPORT_SWIFT_TIMEOUT: '2000',
      }),
    );
    t.after(() => kp.stop());
    const token = await minter.all('alice/outage');
    const image = await client.pushImage('alice/outage', 'v1', token, { layer: crypto.randomBytes(3 * 1024 * 1024) });
    const health = () => request(`${kp.registryUrl}/healthz`, { ca: kp.ca });
    assert.equal((await health()).status, 200);

    extraProxy(sw, 'down', port);
    // Before the threshold is reached a request fails on its own, still with a clear 503.
    const early = await client.api('GET', `/v2/alice/outage/manifests/v1`, token, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(early.status, 503);
    assert.deepEqual(codes(early), ['UNAVAILABLE']);
    await until('/healthz to report unhealthy', async () => (await health()).status === 503, 10_000);
    const h = (await health()).json();
    assert.equal(h.status, 'unhealthy');
    assert.equal(h.storage.driver, 'swift');
    const t0 = Date.now();
    const refused = await client.api('GET', `/v2/alice/outage/blobs/${image.layer}`, token);
    assert.equal(refused.status, 503);
    assert.deepEqual(codes(refused), ['UNAVAILABLE']);
    assert.ok(refused.headers['retry-after']);
    assert.ok(Date.now() - t0 < 1000, 'answered at once, without waiting on Swift');
    const down = await scrapeMetrics(`https://127.0.0.1:${metricsPort}/metrics`, kp.ca);
    assert.equal(down.value('keyport_storage_healthy'), 0, 'the health gauge shows the outage');
    assert.ok(down.value('keyport_storage_errors_total', { driver: 'swift', outcome: 'unavailable' }) >= 2, 'failed Swift calls are counted');

    extraProxy(sw, 'up', port);
    await until('/healthz to recover', async () => (await health()).status === 200, 10_000);
    assert.equal((await scrapeMetrics(`https://127.0.0.1:${metricsPort}/metrics`, kp.ca)).value('keyport_storage_healthy'), 1);
    const m = await client.api('GET', `/v2/alice/outage/manifests/v1`, token, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200);
    assert.ok(m.body.equals(image.body), 'the manifest stored before the outage is intact');
    const blob = await client.api('GET', `/v2/alice/outage/blobs/${image.layer}`, token);
    assert.equal(blob.status, 200);
    assert.equal('sha256:' + crypto.createHash('sha256').update(blob.body).digest('hex'), image.layer);
  });

  it('redirect mode answers blob GETs with 307 to a Swift TempURL that serves the bytes', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const { kp, minter, client } = await startRegistry(
      swiftRegistryEnv(sw, sw.authV1, {
        KEYPORT_SWIFT_REDIRECT: 'true',
        KEYPORT_SWIFT_TEMPURL_KEY: crypto.randomBytes(16).toString('hex'),
        KEYPORT_SWIFT_TEMPURL_CONTAINER_KEY: 'true',
        KEYPORT_SWIFT_REDIRECT_EXPIRY: '300',
      }),
    );
    t.after(() => kp.stop());
    const token = await minter.all('alice/redirect');
    // Real gzip, so skopeo keeps the layer as it is instead of compressing it.
    const layer = zlib.gzipSync(crypto.randomBytes(2 * 1024 * 1024 + 3), { level: 0 });
    const image = await client.pushImage('alice/redirect', 'v1', token, { layer });
    const r = await client.api('GET', `/v2/alice/redirect/blobs/${image.layer}`, token);
    assert.equal(r.status, 307);
    const location = String(r.headers.location);
    assert.ok(location.startsWith(`${sw.url}/v1/AUTH_test/`), location);
    assert.match(location, /temp_url_sig=[0-9a-f]{64}&temp_url_expires=\d+$/);
    const bytes = await request(location);
    assert.equal(bytes.status, 200);
    assert.ok(bytes.body.equals(layer));
    const head = await client.api('HEAD', `/v2/alice/redirect/blobs/${image.layer}`, token);
    assert.equal(head.status, 200, 'HEAD is still answered by the registry');

    // A real client follows the redirect: skopeo pulls the image, the layer from Swift.
    const out = tempDir('skopeo-redirect');
    const host = new URL(kp.registryUrl).host;
    must(
      run('skopeo', ['copy', '--src-cert-dir', certDir(kp.ca), '--src-registry-token', token, `docker://${host}/alice/redirect:v1`, `oci:${out}:v1`]),
      'skopeo copy through the redirect',
    );
    const pulled = fs.readFileSync(path.join(out, 'blobs', 'sha256', image.layer.slice('sha256:'.length)));
    assert.ok(pulled.equals(layer), 'skopeo got the layer bytes from the TempURL');
    const log = kp.logText();
    assert.ok(!log.includes('temp_url_sig='), 'signed URLs are not logged');
  });
});
