/**
 * Online garbage collection against a real registry process and the real store, the
 * same suite on every driver: what GC deletes, that tagged images still pull, the
 * lease between concurrent runs, and pushes racing a run at each step of the protocol.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { Collector } from '../../src/gc/collector.js';
import { Lease, LeaseHeldError, LeaseLostError } from '../../src/gc/lease.js';
import { keyportPaths } from '../../src/gc/paths.js';
import { createLogger } from '../../src/log/logger.js';
import { paths } from '../../src/registry/store/paths.js';
import { createStorageDriver } from '../../src/storage/drivers.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { CLI, type KeyportProcess } from '../helpers/keyport.js';
import { codes, RegistryClient, sha256, startRegistry } from '../helpers/registry.js';
import type { TokenMinter } from '../helpers/tokens.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const JSON_KEYS = ['marked_blobs', 'deleted_blobs', 'deleted_bytes', 'deleted_manifests', 'deleted_links', 'duration_s', 'dry_run', 'retention_deleted_tags', 'retention_deleted_manifests'];
const log = createLogger('silent');


interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function gcSuite(title: string, storage: () => Promise<Record<string, string> | undefined>, opts: { claimWindowS: number; leaseTtlS: number }): void {
  const CLAIM_WINDOW_S = opts.claimWindowS;
  const pastClaims = () => new Promise((r) => setTimeout(r, CLAIM_WINDOW_S * 1000 + 200));
  describe(title, () => {
    let kp: KeyportProcess;
    let client: RegistryClient;
    let minter: TokenMinter;
    let token: string;
    let env: Record<string, string>;
    let driver: StorageDriver;
    let available = true;

    before(async () => {
      const s = await storage();
      if (!s) {
        available = false;
        return;
      }
      // A short claim window, the same for the registry and GC, so that a test need
      // not wait the default 15 minutes before what a push referenced can go.
      const gcEnv = { KEYPORT_STORAGE_GC_CLAIM_WINDOW: String(CLAIM_WINDOW_S), ...s };
      ({ kp, minter, client } = await startRegistry(gcEnv));
      env = { KEYPORT_STORAGE_ROOT: path.join(kp.dir, 'data'), ...gcEnv };
      token = await minter.all('alice/gcapp', 'alice/gcempty', 'alice/race', 'alice/lease');
      driver = await createStorageDriver(loadConfig({ env }).storage, log);
    });
    after(async () => {
      await kp?.stop();
      await driver?.close?.();
    });
    const test = (name: string, fn: () => Promise<void>) =>
      it(name, async (t) => {
        if (!available) return t.skip('storage unavailable');
        await fn();
      });

    /** `keyport gc` as a user runs it, with the registry's storage settings. */
    const gc = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, 'gc', ...args], {
          cwd: kp.dir,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: kp.dir, KEYPORT_CERTS_DIR: kp.certsDir, ...env, ...extra },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const lastJson = (r: CliResult): Record<string, unknown> => {
      assert.equal(r.code, 0, `keyport gc failed: ${r.stderr}${r.stdout}`);
      const lines = r.stdout.trim().split('\n');
      const obj = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
      assert.deepEqual(Object.keys(obj), JSON_KEYS, 'exactly the documented keys, in order');
      return obj;
    };

    const blob = async (repo: string, data: Buffer) => ({ digest: await client.pushBlob(repo, token, data), size: data.length });
    const manifest = async (repo: string, ref: string, doc: Record<string, unknown>) => {
      const body = Buffer.from(JSON.stringify(doc));
      const r = await client.api('PUT', `/v2/${repo}/manifests/${ref}`, token, { body, headers: { 'content-type': OCI_MANIFEST } });
      return { r, digest: sha256(body), size: body.length };
    };
    const image = (config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>, extra: Record<string, unknown> = {}) => ({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
      ...extra,
    });
    /** Pulls a manifest and every blob it names, checking each digest. */
    const pullsCompletely = async (repo: string, ref: string) => {
      const m = await client.api('GET', `/v2/${repo}/manifests/${ref}`, token, { headers: { accept: OCI_MANIFEST } });
      assert.equal(m.status, 200, `${repo}:${ref}: ${m.text}`);
      const doc = m.json() as { config: { digest: string }; layers: Array<{ digest: string }> };
      for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
        const b = await client.api('GET', `/v2/${repo}/blobs/${d}`, token);
        assert.equal(b.status, 200, `${repo}:${ref} blob ${d}`);
        assert.equal(sha256(b.body), d);
      }
    };
    /** Whether the store still holds the blob's data (whichever repositories link it). */
    const blobPresent = async (d: string) => {
      const [algorithm, hex] = d.split(':') as ['sha256', string];
      return driver.stat(paths.blobData({ algorithm, hex, value: d })).then(
        () => true,
        () => false,
      );
    };
    const rand = (n = 2048) => crypto.randomBytes(n);

    test('collects exactly the garbage; --dry-run deletes nothing; tagged images and live referrers still pull', async () => {
      const R = 'alice/gcapp';
      const base = await blob(R, rand(4096));
      const [lK, lG, lU, sK, sG] = await Promise.all([rand(), rand(), rand(), rand(300), rand(300)].map((b) => blob(R, b)));
      const [cK, cG, cU] = await Promise.all(['keep', 'gone', 'untagged'].map((t) => blob(R, Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', t, n: rand(4).toString('hex') })))));
      const empty = await blob(R, Buffer.from('{}'));
      const keep = await manifest(R, 'keep', image(cK!, [base, lK!]));
      const gone = await manifest(R, 'gone', image(cG!, [base, lG!]));
      const u = image(cU!, [lU!]);
      const uBody = Buffer.from(JSON.stringify(u));
      const mU = await manifest(R, sha256(uBody), u);
      const sig = (layer: { digest: string; size: number }, subject: { digest: string; size: number }) => ({
        ...image(empty, [layer]),
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', ...empty },
        subject: { mediaType: OCI_MANIFEST, ...subject },
      });
      const sigKeepDoc = sig(sK!, keep);
      const sigGoneDoc = sig(sG!, gone);
      const sigKeep = await manifest(R, sha256(Buffer.from(JSON.stringify(sigKeepDoc))), sigKeepDoc);
      const sigGone = await manifest(R, sha256(Buffer.from(JSON.stringify(sigGoneDoc))), sigGoneDoc);
      for (const m of [keep, gone, mU, sigKeep, sigGone]) assert.equal(m.r.status, 201, m.r.text);
      assert.equal((await client.api('DELETE', `/v2/${R}/manifests/${gone.digest}`, token)).status, 202);
      const lonely = await blob('alice/gcempty', rand(1000));
      await new Promise((r) => setTimeout(r, 50));

      // A dry run reports both passes' worth and deletes nothing.
      const dry = await gc(['--dry-run', '--delete-untagged', '--grace', '0', '--json']);
      const dryReport = lastJson(dry);
      assert.equal(dryReport.dry_run, true);
      assert.equal(dryReport.deleted_blobs, 9);
      assert.equal(dryReport.deleted_manifests, 2);
      assert.equal(dryReport.deleted_links, 6);
      assert.match(dry.stdout, /^alice\/gcapp: would delete 2 manifests, 5 layer links$/m);
      assert.match(dry.stdout, /^alice\/gcempty: would delete 0 manifests, 1 layer links$/m);
      assert.match(dry.stdout, new RegExp(`^  manifest ${mU.digest}$`, 'm'));
      for (const d of [cG!, lG!, gone, lonely, mU, lU!]) assert.ok(await blobPresent(d.digest), `dry run kept ${d.digest}`);
      assert.equal((await client.api('GET', `/v2/${R}/manifests/${mU.digest}`, token)).status, 200);

      // Without --delete-untagged: the deleted image's own blobs, its links, the lone blob.
      await pastClaims();
      const first = lastJson(await gc(['--grace', '0', '--json']));
      assert.equal(first.dry_run, false);
      assert.equal(first.deleted_blobs, 4);
      assert.equal(first.deleted_bytes, cG!.size + lG!.size + gone.size + lonely.size);
      assert.equal(first.deleted_manifests, 0);
      assert.equal(first.deleted_links, 3);
      for (const d of [cG!, lG!, gone, lonely]) assert.equal(await blobPresent(d.digest), false, `${d.digest} collected`);
      await pullsCompletely(R, 'keep');
      await pullsCompletely(R, mU.digest);
      await pullsCompletely(R, sigGone.digest);
      const cat = (await client.api('GET', '/v2/_catalog', await minter.mint([{ type: 'registry', name: 'catalog', actions: ['*'] }]))).json() as { repositories: string[] };
      assert.ok(!cat.repositories.includes('alice/gcempty'), 'the emptied repository is gone');

      // With it: untagged manifests and referrers of dead subjects go; the live signature stays.
      const second = lastJson(await gc(['--grace', '0', '--delete-untagged', '--json']));
      assert.equal(second.deleted_manifests, 2);
      assert.equal(second.deleted_blobs, 5);
      assert.equal(second.deleted_links, 3);
      assert.equal((await client.api('GET', `/v2/${R}/manifests/${mU.digest}`, token)).status, 404);
      assert.equal((await client.api('GET', `/v2/${R}/manifests/${sigGone.digest}`, token)).status, 404);
      await pullsCompletely(R, 'keep');
      await pullsCompletely(R, sigKeep.digest);
      const refs = (await client.api('GET', `/v2/${R}/referrers/${keep.digest}`, token)).json() as { manifests: Array<{ digest: string }> };
      assert.deepEqual(refs.manifests.map((m) => m.digest), [sigKeep.digest]);
      // Nothing left to collect: a third run deletes nothing.
      const third = lastJson(await gc(['--grace', '0', '--delete-untagged', '--json']));
      assert.equal(third.deleted_blobs, 0);
      assert.equal(third.deleted_links, 0);
    });

    test('the grace period keeps recent blobs, links and untagged manifests', async () => {
      const R = 'alice/gcapp';
      const fresh = await blob(R, rand());
      const r = lastJson(await gc(['--delete-untagged', '--json']));
      assert.equal(r.deleted_blobs, 0);
      assert.ok(await blobPresent(fresh.digest));
    });

    /**
     * A push whose blobs are GC candidates (grace 0), with the manifest PUT placed at
     * each step of the sweep through a hook in the store GC writes to: it must either
     * keep its blobs or fail with MANIFEST_BLOB_UNKNOWN, never succeed without them.
     */
    const race = async (when: 'before-tombstone' | 'before-recheck' | 'before-delete') => {
      const R = 'alice/race';
      const config = await blob(R, Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', when, n: rand(4).toString('hex') })));
      const layer = await blob(R, rand());
      await new Promise((res) => setTimeout(res, 50));
      let pushed: Awaited<ReturnType<typeof manifest>> | undefined;
      let pushing: Promise<void> | undefined;
      // Once, however many of GC's parallel store calls reach the hook.
      const push = () =>
        (pushing ??= manifest(R, `race-${when}`, image(config, [layer])).then((m) => {
          pushed = m;
        }));
      const hooked: StorageDriver = Object.create(driver) as StorageDriver;
      hooked.putContent = async (p, c) => {
        if (when === 'before-tombstone' && p.startsWith(keyportPaths.tombstonesRoot())) await push();
        return driver.putContent(p, c);
      };
      hooked.stat = async (p) => {
        if (when === 'before-recheck' && p.startsWith(keyportPaths.inUseRoot())) await push();
        return driver.stat(p);
      };
      hooked.delete = async (p) => {
        if (when === 'before-delete' && p.includes('/blobs/')) await push();
        return driver.delete(p);
      };
      const report = await new Collector(hooked, { dryRun: false, deleteUntagged: false, graceMs: 0, claimWindowMs: CLAIM_WINDOW_S * 1000 }).run();
      assert.ok(pushed, 'the push ran during the sweep');
      const present = await Promise.all([config, layer].map(async (b) => (await client.api('HEAD', `/v2/${R}/blobs/${b.digest}`, token)).status === 200));
      if (pushed.r.status === 201) {
        assert.deepEqual(present, [true, true], 'a manifest that was accepted has all its blobs');
        await pullsCompletely(R, `race-${when}`);
      } else {
        assert.equal(pushed.r.status, 400, pushed.r.text);
        assert.deepEqual(codes(pushed.r), ['MANIFEST_BLOB_UNKNOWN']);
      }
      const retry = () => manifest(R, `race-${when}`, image(config, [layer]));
      return { status: pushed.r.status, present, report, retry };
    };

    test('a push finished before the tombstones: its blobs are kept', async () => {
      const r = await race('before-tombstone');
      assert.equal(r.status, 201);
      assert.ok(r.report.kept_in_use >= 2, 'its claims kept both blobs');
    });
    test('a push between tombstone and re-check: it fails cleanly and GC keeps the blobs it claimed', async () => {
      const r = await race('before-recheck');
      assert.equal(r.status, 400);
      assert.deepEqual(r.present, [true, true]);
      // The client's retry succeeds: the run is over, its tombstones are gone.
      assert.equal((await r.retry()).r.status, 201);
      await pullsCompletely('alice/race', 'race-before-recheck');
    });
    test('a push after the re-check: it fails cleanly, the blobs are deleted', async () => {
      const r = await race('before-delete');
      assert.equal(r.status, 400);
      assert.deepEqual(r.present, [false, false]);
    });

    test('one GC at a time: a held lease makes keyport gc exit 75; a killed holder frees it after its expiry', async () => {
      const lease = await Lease.acquire(driver, { ttlMs: 60_000, owner: 'test-holder' });
      try {
        const busy = await gc(['--json']);
        assert.equal(busy.code, 75, busy.stderr);
        assert.match(busy.stderr, /another garbage collection holds the lease: test-holder/);
      } finally {
        await lease.release();
      }
      assert.equal((await gc(['--json'])).code, 0, 'released: the next run goes ahead');

      // A holder killed with SIGKILL, never releasing.
      const holder = spawn(
        process.execPath,
        ['--import', 'tsx', '-e', `
          const { loadConfig } = await import(${JSON.stringify(path.resolve('src/config/load.ts'))});
          const { createStorageDriver } = await import(${JSON.stringify(path.resolve('src/storage/drivers.ts'))});
          const { Lease } = await import(${JSON.stringify(path.resolve('src/gc/lease.ts'))});
          const { createLogger } = await import(${JSON.stringify(path.resolve('src/log/logger.ts'))});
          const d = await createStorageDriver(loadConfig({ env: process.env }).storage, createLogger('silent'));
          await Lease.acquire(d, { ttlMs: ${opts.leaseTtlS * 1000}, owner: 'doomed' });
          console.log('held');
          setInterval(() => {}, 1000);
        `],
        { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((res, rej) => {
        holder.stdout!.on('data', (c: Buffer) => c.toString().includes('held') && res());
        holder.once('exit', (code) => rej(new Error(`lease holder exited with ${code}`)));
      });
      const heldAt = Date.now();
      holder.kill('SIGKILL');
      const during = await gc([]);
      assert.equal(during.code, 75, 'the dead holder\'s lease still counts until it expires');
      assert.match(during.stderr, /doomed/);
      await new Promise((res) => setTimeout(res, Math.max(0, heldAt + opts.leaseTtlS * 1000 + 500 - Date.now())));
      const afterExpiry = await gc(['--json']);
      assert.equal(afterExpiry.code, 0, afterExpiry.stderr);
    });

    test('racing for the lease from two instances: exactly one wins', async () => {
      const other = await createStorageDriver(loadConfig({ env }).storage, log);
      try {
        // Fresh connections on both: a keep-alive socket the store closed while earlier
        // tests ran must not count as a lost race.
        await Promise.all([driver, other].map((d) => d.list('/').catch(() => undefined)));
        const results = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) => Lease.acquire(i % 2 ? other : driver, { ttlMs: 30_000, owner: `racer-${i}` })),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
        for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof LeaseHeldError, String(r.reason));
        await (won[0] as PromiseFulfilledResult<Lease>).value.release();
        const next = await Lease.acquire(other, { ttlMs: 30_000 });
        assert.ok(next.valid());
        await next.release();
      } finally {
        await other.close?.();
      }
    });

    test('a holder whose generation another owner also won stops at its next heartbeat', async () => {
      // Beats every 2 s; without the owner check it would stay valid until 4.5 s.
      const lease = await Lease.acquire(driver, { ttlMs: 6_000, owner: 'first' });
      try {
        assert.ok(lease.valid());
        // What a store whose conditional create let two creators through leaves: the
        // other creator's record in the same generation.
        const intruder = { owner: 'second', expires: Date.now() + 60_000, host: 'elsewhere', pid: 1, acquired: new Date().toISOString() };
        await driver.putContent(keyportPaths.lease(lease.generation), Buffer.from(JSON.stringify(intruder)));
        const deadline = Date.now() + 3_500;
        while (lease.valid() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(lease.valid(), false, 'the first holder gave up its lease');
        assert.throws(() => lease.check(), LeaseLostError);
      } finally {
        await lease.release();
        // Released, as the second holder would leave it, so later tests can take the lease.
        const released = { owner: 'second', expires: 0, host: 'elsewhere', pid: 1, acquired: new Date().toISOString() };
        await driver.putContent(keyportPaths.lease(lease.generation), Buffer.from(JSON.stringify(released)));
      }
    });
  });
}
