import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { freePort, KeyportProcess } from '../helpers/keyport.js';
import { scrapeMetrics, sha256, startRegistry } from '../helpers/registry.js';
import { gcSuite } from './gc-suite.js';

gcSuite('online GC on the filesystem driver', async () => ({}), { claimWindowS: 3, leaseTtlS: 4 });

test('scheduled GC inside the registry: two instances on one store, one lease; metrics and an audit line per run', async () => {
  const port = await freePort();
  const schedule = {
    KEYPORT_STORAGE_DRIVER: 'filesystem',
    KEYPORT_STORAGE_GC_INTERVAL: '1',
    KEYPORT_STORAGE_GC_GRACE: '0',
    KEYPORT_STORAGE_GC_CLAIM_WINDOW: '2',
    KEYPORT_STORAGE_GC_DELETE_UNTAGGED: 'true',
  };
  const { kp, minter, client } = await startRegistry({ ...schedule, KEYPORT_REGISTRY_METRICS_PORT: String(port) });
  const second = await new KeyportProcess({
    command: 'registry',
    env: { ...schedule, KEYPORT_CERTS_DIR: kp.certsDir, KEYPORT_STORAGE_ROOT: path.join(kp.dir, 'data') },
  }).start();
  try {
    const token = await minter.all('alice/scheduled');
    const kept = await client.pushImage('alice/scheduled', 'kept', token);
    const gone = await client.pushImage('alice/scheduled', 'gone', token);
    assert.equal((await client.api('DELETE', `/v2/alice/scheduled/manifests/${gone.digest}`, token)).status, 202);
    const layerOf = (d: string) => client.api('HEAD', `/v2/alice/scheduled/blobs/${d}`, token);
    const deadline = Date.now() + 30_000;
    while ((await layerOf(gone.layer)).status === 200) {
      assert.ok(Date.now() < deadline, 'the scheduled GC collected the deleted image within 30 s');
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal((await layerOf(kept.layer)).status, 200);
    const pulled = await client.api('GET', `/v2/alice/scheduled/blobs/${kept.layer}`, token);
    assert.equal(sha256(pulled.body), kept.layer);
    const m = await scrapeMetrics(`https://127.0.0.1:${port}/metrics`, kp.ca);
    const runs = m.value('keyport_gc_runs_total', { outcome: 'ok' }) + m.value('keyport_gc_runs_total', { outcome: 'busy' });
    assert.ok(runs >= 1, m.text);
    assert.ok(m.value('keyport_gc_deleted_blobs_total') + m.value('keyport_gc_runs_total', { outcome: 'busy' }) >= 0);
    // Both instances log their runs; together they deleted the image's three blobs once.
    const audit = [kp, second]
      .flatMap((p) => p.logText().split('\n'))
      .filter((l) => l.includes('"event":"gc"') && l.includes('"audit":true'))
      .map((l) => JSON.parse(l) as { deleted_blobs: number; trigger: string });
    assert.ok(audit.length >= 1);
    assert.ok(audit.every((a) => a.trigger === 'schedule'));
    assert.equal(audit.reduce((s, a) => s + a.deleted_blobs, 0) >= 3, true, JSON.stringify(audit));
  } finally {
    await second.stop();
    await kp.stop();
  }
});
