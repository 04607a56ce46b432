import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CLI, freePort, KeyportProcess, tempDir } from '../helpers/keyport.js';
import { runGc } from '../../src/gc/run.js';
import { createLogger } from '../../src/log/logger.js';
import { FilesystemDriver } from '../../src/storage/filesystem/driver.js';
import { codes, RegistryClient, scrapeMetrics, sha256, startRegistry } from '../helpers/registry.js';
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
    // With grace 0 and a GC every second, a GC may collect a push's blobs before its
    // manifest arrives: the push then fails cleanly with MANIFEST_BLOB_UNKNOWN and the
    // client pushes again, as docker and skopeo do. Anything else is a failure.
    const push = async (tag: string) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await client.pushImage('alice/scheduled', tag, token);
        } catch (e) {
          if (attempt >= 5 || !/MANIFEST_BLOB_UNKNOWN/.test((e as Error).message)) throw e;
        }
      }
    };
    const kept = await push('kept');
    const gone = await push('gone');
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
    // A run logs when it ends, and the layer is gone from the middle of its sweep on, so
    // the line that counts the deletion may come a moment after the HEAD saw it gone.
    const auditLines = () =>
      [kp, second]
        .flatMap((p) => p.logText().split('\n'))
        .filter((l) => l.includes('"event":"gc"') && l.includes('"audit":true'))
        .map((l) => JSON.parse(l) as { deleted_blobs: number; trigger: string });
    let audit = auditLines();
    while (audit.reduce((s, a) => s + a.deleted_blobs, 0) < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      audit = auditLines();
    }
    assert.ok(audit.length >= 1);
    assert.ok(audit.every((a) => a.trigger === 'schedule'));
    assert.equal(audit.reduce((s, a) => s + a.deleted_blobs, 0) >= 3, true, JSON.stringify(audit));
  } finally {
    await second.stop();
    await kp.stop();
  }
});

test('GC during pushes: pushers on two registry processes keep pushing shared and new layers while GC runs again and again; every pushed image pulls', async () => {
  const env = { KEYPORT_STORAGE_DRIVER: 'filesystem', KEYPORT_STORAGE_GC_CLAIM_WINDOW: '3' };
  const { kp, minter, client } = await startRegistry(env);
  const second = await new KeyportProcess({
    command: 'registry',
    env: { ...env, KEYPORT_CERTS_DIR: kp.certsDir, KEYPORT_STORAGE_ROOT: path.join(kp.dir, 'data') },
  }).start();
  const driver = new FilesystemDriver({ root: path.join(kp.dir, 'data'), fsync: true });
  const clients = [client, new RegistryClient(second)];
  const repos = ['alice/soak-a', 'alice/soak-b'];
  const token = await minter.all(...repos);
  const base = crypto.randomBytes(8192);
  const pushed: Array<{ repo: string; tag: string; c: RegistryClient }> = [];
  let retries = 0;
  let stop = false;
  const pusher = async (n: number) => {
    const c = clients[n % 2]!;
    const repo = repos[n % repos.length]!;
    for (let i = 0; i < 6; i++) {
      const tag = `p${n}-${i}`;
      for (let attempt = 0; ; attempt++) {
        assert.ok(attempt < 10, `${repo}:${tag} kept failing`);
        const layers = [base, crypto.randomBytes(1024)];
        const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', tag }));
        const [cd, ...lds] = await Promise.all([config, ...layers].map((b) => c.pushBlob(repo, token, b)));
        const body = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length },
            layers: lds.map((d, k) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: layers[k]!.length })),
          }),
        );
        const r = await c.api('PUT', `/v2/${repo}/manifests/${tag}`, token, { body, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
        if (r.status === 201) break;
        // The only failure GC may cause: the client uploads again and retries.
        assert.deepEqual(codes(r), ['MANIFEST_BLOB_UNKNOWN'], r.text);
        retries++;
      }
      pushed.push({ repo, tag, c });
    }
  };
  let runs = 0;
  let deleted = 0;
  const collector = async () => {
    while (!stop) {
      const report = await runGc(
        driver,
        { dryRun: false, deleteUntagged: true, graceSeconds: 0, leaseTtlSeconds: 30, claimWindowSeconds: 3, trigger: 'test' },
        createLogger('silent'),
      );
      runs++;
      deleted += report.deleted_blobs;
    }
  };
  try {
    const gcLoop = collector();
    await Promise.all(Array.from({ length: 6 }, (_, n) => pusher(n)));
    stop = true;
    await gcLoop;
    assert.ok(runs >= 2, `GC ran ${runs} times during the pushes`);
    // Once the claims have aged, one more run must still leave every tagged image whole.
    await new Promise((r) => setTimeout(r, 3200));
    await runGc(driver, { dryRun: false, deleteUntagged: true, graceSeconds: 0, leaseTtlSeconds: 30, claimWindowSeconds: 3, trigger: 'test' }, createLogger('silent'));
    for (const { repo, tag, c } of pushed) {
      const m = await c.api('GET', `/v2/${repo}/manifests/${tag}`, token, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(m.status, 200, `${repo}:${tag}`);
      const doc = m.json() as { config: { digest: string }; layers: Array<{ digest: string }> };
      for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
        const b = await c.api('GET', `/v2/${repo}/blobs/${d}`, token);
        assert.equal(b.status, 200, `${repo}:${tag} lost ${d} (gc runs ${runs}, push retries ${retries}, deleted ${deleted})`);
        assert.equal(sha256(b.body), d);
      }
    }
    assert.equal(pushed.length, 36);
  } finally {
    stop = true;
    await second.stop();
    await kp.stop();
  }
});

test('keyport gc runs ten steps nicer than its caller, so a registry on the same host is served first', async () => {
  // A named pipe where the lease record should be: reading it blocks until a writer
  // comes, which holds the real command still long enough to look at it.
  const root = tempDir('gc-nice');
  const leaseDir = path.join(root, 'docker/registry/v2/_keyport/gc/lease');
  fs.mkdirSync(leaseDir, { recursive: true });
  execFileSync('mkfifo', [path.join(leaseDir, '1')]);
  const gc = spawn(process.execPath, [CLI, 'gc'], { env: { PATH: process.env.PATH, HOME: root, KEYPORT_STORAGE_ROOT: root, KEYPORT_CERTS_DIR: path.join(root, 'certs') }, stdio: 'ignore' });
  try {
    const want = Math.min(19, os.getPriority() + 10);
    let seen: number | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      assert.equal(gc.exitCode, null, 'keyport gc is still waiting for the lease record');
      // Field 19 of /proc/PID/stat, counted after the parenthesised command name.
      seen = Number(fs.readFileSync(`/proc/${gc.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[16]);
      if (seen === want) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(seen, want);
  } finally {
    gc.kill('SIGKILL');
  }
});
