/**
 * The Prometheus endpoint: storage latency per driver operation and outcome, and the
 * health gauge, on their own port; summed over the workers when the registry runs several.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { request } from '../helpers/http.js';
import { freePort } from '../helpers/keyport.js';
import { scrapeMetrics, sha256, startRegistry } from '../helpers/registry.js';

describe('registry metrics', () => {
  it('report storage operations by outcome, on a port of their own', async (t) => {
    const port = await freePort();
    const { kp, minter, client } = await startRegistry({ KEYPORT_REGISTRY_METRICS_PORT: String(port), KEYPORT_STORAGE_DRIVER: 'filesystem' });
    t.after(() => kp.stop());
    const token = await minter.all('alice/metrics');
    await client.pushImage('alice/metrics', 'v1', token);
    const missing = sha256(crypto.randomBytes(8));
    assert.equal((await client.api('HEAD', `/v2/alice/metrics/blobs/${missing}`, token)).status, 404);

    const m = await scrapeMetrics(`https://127.0.0.1:${port}/metrics`, kp.ca);
    const ops = (operation: string, outcome: string) =>
      m.value('keyport_storage_operation_seconds_count', { driver: 'filesystem', operation, outcome });
    assert.ok(ops('writer_commit', 'ok') >= 2 && ops('move', 'ok') >= 2, 'blob writes are timed: each upload is committed, then moved into place');
    assert.ok(ops('put_content', 'ok') >= 1, 'small objects too');
    assert.ok(ops('get_content', 'not_found') >= 1, 'a missing blob is its own outcome');
    assert.equal(m.value('keyport_storage_errors_total'), 0, 'a missing path is not an error');
    assert.ok(m.value('keyport_storage_bytes_written_total', { driver: 'filesystem' }) > 1000);
    assert.equal(m.value('keyport_storage_healthy'), 1);
    assert.ok(m.value('process_resident_memory_bytes') > 0, 'process figures too');

    // Requests by route pattern (never the raw path), method and status, and body bytes.
    const http = (labels: Record<string, string>) => m.value('keyport_http_request_duration_seconds_count', { server: 'registry', ...labels });
    assert.equal(http({ route: '/v2/<name>/blobs/<digest>', method: 'HEAD', status: '404' }), 1);
    assert.equal(http({ route: '/v2/<name>/blobs/uploads/', method: 'POST', status: '201' }), 2);
    assert.equal(http({ route: '/v2/<name>/manifests/<reference>', method: 'PUT', status: '201' }), 1);
    assert.ok(m.value('keyport_http_request_duration_seconds_bucket', { route: '/v2/<name>/manifests/<reference>', le: '+Inf' }) >= 1, 'a histogram');
    assert.ok(m.value('keyport_http_request_bytes_total', { server: 'registry', route: '/v2/<name>/blobs/uploads/', method: 'POST' }) > 1024, 'bytes in');
    assert.ok(!/route="[^"]*alice/.test(m.text), 'no route label carries a repository name');
    const manifest = await client.api('GET', `/v2/alice/metrics/manifests/v1`, token, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const after = await scrapeMetrics(`https://127.0.0.1:${port}/metrics`, kp.ca);
    assert.equal(after.value('keyport_http_response_bytes_total', { route: '/v2/<name>/manifests/<reference>', method: 'GET' }), manifest.body.length, 'bytes out');

    // The public API port does not expose them.
    assert.equal((await request(`${kp.registryUrl}/metrics`, { ca: kp.ca })).status, 404);
  });

  it('are summed over the workers by the primary', async (t) => {
    const port = await freePort();
    const { kp, minter, client } = await startRegistry({ KEYPORT_REGISTRY_METRICS_PORT: String(port), KEYPORT_REGISTRY_WORKERS: '2' });
    t.after(() => kp.stop());
    const token = await minter.all('alice/metrics2');
    // Fresh connections, so the requests spread over both workers.
    for (let i = 0; i < 6; i++) await client.api('HEAD', `/v2/alice/metrics2/blobs/${sha256(String(i))}`, token, { agent: false });
    const m = await scrapeMetrics(`https://127.0.0.1:${port}/metrics`, kp.ca);
    // Each HEAD of a missing blob looks for its repository link with one stat.
    assert.ok(m.value('keyport_storage_operation_seconds_count', { operation: 'stat', outcome: 'not_found' }) >= 6, m.text.slice(0, 400));
    assert.equal(m.value('keyport_storage_healthy'), 1, 'the gauge is the minimum over workers, not their sum');
    assert.equal(m.value('keyport_http_request_duration_seconds_count', { route: '/v2/<name>/blobs/<digest>', method: 'HEAD', status: '404' }), 6, 'requests are summed too');
  });
});
