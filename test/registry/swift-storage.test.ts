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
import { codes, startRegistry } from '../helpers/registry.js';
import { swift, type SwiftService } from '../helpers/services.js';
import { extraProxy } from '../helpers/swift.js';

function swiftEnv(sw: SwiftService, authUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYPORT_STORAGE_DRIVER: 'swift',
    KEYPORT_SWIFT_AUTH_URL: authUrl,
    KEYPORT_SWIFT_USERNAME: sw.tempauth.user,
    KEYPORT_SWIFT_PASSWORD: sw.tempauth.key,
    KEYPORT_SWIFT_CONTAINER: `registry-${crypto.randomBytes(4).toString('hex')}`,
    KEYPORT_SWIFT_CHUNK_SIZE: String(1024 * 1024),
    ...extra,
  };
}

const until = async (what: string, ok: () => Promise<boolean>, ms: number) => {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

describe('registry on Swift', () => {
  it('Swift stopped: /healthz turns unhealthy, requests get 503 in the OCI format, nothing is lost, and service resumes', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const port = await freePort();
    extraProxy(sw, 'up', port);
    t.after(() => extraProxy(sw, 'down', port));
    const { kp, minter, client } = await startRegistry(
      swiftEnv(sw, `http://127.0.0.1:${port}/auth/v1.0`, {
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

    extraProxy(sw, 'up', port);
    await until('/healthz to recover', async () => (await health()).status === 200, 10_000);
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
      swiftEnv(sw, sw.authV1, {
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
