/**
 * Retention rules on the filesystem driver, against a real registry process and
 * `keyport gc` as a user runs it: which tags and untagged manifests each rule removes,
 * that what must remain still pulls whole, dry run, off by default, bad rules refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { recordPaths } from '../../src/cache/records.js';
import { compileRetention } from '../../src/config/retention.js';
import { keyportPaths } from '../../src/gc/paths.js';
import { InUseMarkers } from '../../src/gc/protocol.js';
import { applyTagRetention } from '../../src/gc/retention.js';
import { dropOrphanTagMarkers } from '../../src/gc/tag-markers.js';
import { parseDigest } from '../../src/oci/reference.js';
import { paths } from '../../src/registry/store/paths.js';
import type { StorageDriver } from '../../src/storage/driver.js';
import { FilesystemDriver } from '../../src/storage/filesystem/driver.js';
import { CLI, KeyportProcess } from '../helpers/keyport.js';
import { RegistryClient, sha256, startRegistry } from '../helpers/registry.js';
import type { TokenMinter } from '../helpers/tokens.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const HOUR = 3600_000;

describe('GC retention rules on the filesystem driver', () => {
  let kp: KeyportProcess;
  let client: RegistryClient;
  let minter: TokenMinter;
  let token: string;
  let root: string;

  before(async () => {
    ({ kp, minter, client } = await startRegistry({ KEYPORT_STORAGE_DRIVER: 'filesystem', KEYPORT_STORAGE_GC_CLAIM_WINDOW: '1' }));
    root = path.join(kp.dir, 'data');
    token = await minter.all('alice/last', 'alice/pattern', 'alice/untagged', 'mirror/hub', 'alice/dry', 'alice/off', 'other/none', 'alice/race-before-recheck', 'alice/race-before-delete', 'alice/markers');
  });
  after(async () => {
    await kp?.stop();
  });

  const gc = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'gc', '--grace', '0', ...args], {
        cwd: kp.dir,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: kp.dir, KEYPORT_CERTS_DIR: kp.certsDir, KEYPORT_STORAGE_ROOT: root, KEYPORT_STORAGE_GC_CLAIM_WINDOW: '1', ...env },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const withRules = async (rules: unknown[], args: string[] = []) => {
    // Past the claim window, so that what retention leaves unreachable is collected.
    await new Promise((r) => setTimeout(r, 1200));
    // debug, so that the CLI's log on stderr carries the audit lines (info is hushed there).
    const r = await gc(['--json', ...args], { KEYPORT_STORAGE_GC_RETENTION: JSON.stringify(rules), KEYPORT_LOG_LEVEL: 'debug' });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const lines = r.stdout.trim().split('\n');
    return { out: r.stdout, json: JSON.parse(lines[lines.length - 1]!) as Record<string, number | boolean>, stderr: r.stderr };
  };
  /** Dates a file back by `ms`. */
  const age = async (storePath: string, ms: number) => {
    const t = new Date(Date.now() - ms);
    await fs.utimes(path.join(root, storePath), t, t);
  };
  const tagPath = (repo: string, tag: string) => paths.tagCurrent(repo, tag);
  const status = async (repo: string, ref: string) => (await client.api('GET', `/v2/${repo}/manifests/${ref}`, token, { headers: { accept: OCI_MANIFEST } })).status;
  const blobStatus = async (repo: string, d: string) => (await client.api('HEAD', `/v2/${repo}/blobs/${d}`, token)).status;
  const pullsWhole = async (repo: string, ref: string) => {
    const m = await client.api('GET', `/v2/${repo}/manifests/${ref}`, token, { headers: { accept: OCI_MANIFEST } });
    assert.equal(m.status, 200, `${repo}:${ref}`);
    const doc = m.json() as { config: { digest: string }; layers: Array<{ digest: string }> };
    for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
      const b = await client.api('GET', `/v2/${repo}/blobs/${d}`, token);
      assert.equal(b.status, 200, `${repo}:${ref} blob ${d}`);
      assert.equal(sha256(b.body), d);
    }
  };
  /** Pushes tags with write times `hoursAgo` before now. */
  const pushAged = async (repo: string, tags: Record<string, number>) => {
    const out: Record<string, Awaited<ReturnType<RegistryClient['pushImage']>>> = {};
    for (const [tag, hoursAgo] of Object.entries(tags)) {
      out[tag] = await client.pushImage(repo, tag, token);
      await age(tagPath(repo, tag), hoursAgo * HOUR);
    }
    return out;
  };

  const cases: Array<{ name: string; repo: string; rule: Record<string, unknown>; tags: Record<string, number>; gone: string[]; kept: string[] }> = [
    { name: 'keepLast keeps the newest N tags', repo: 'alice/last', rule: { keepLast: 2 }, tags: { a: 5, b: 4, c: 3, d: 2 }, gone: ['a', 'b'], kept: ['c', 'd'] },
    { name: 'keepTags always keeps matching tags', repo: 'alice/pattern', rule: { keepLast: 1, keepTags: '^(v[0-9.]+|stable)$' }, tags: { 'v1.0': 9, stable: 8, dev1: 3, dev2: 2 }, gone: ['dev1'], kept: ['v1.0', 'stable', 'dev2'] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const pushed = await pushAged(c.repo, c.tags);
      // A removed tag leaves its revision, as a tag delete does; --delete-untagged frees it in the same run.
      const { json, stderr } = await withRules([{ repositories: '^nomatch/', keepLast: 0 }, { repositories: `^${c.repo}$`, ...c.rule }], ['--delete-untagged']);
      assert.equal(json.retention_deleted_tags, c.gone.length);
      for (const t of c.gone) {
        assert.equal(await status(c.repo, t), 404, `${t} removed`);
        assert.equal(await blobStatus(c.repo, pushed[t]!.layer), 404, `${t}'s layer collected by the same run`);
        assert.match(stderr, new RegExp(`"event":"gc-retention".*"repository":"${c.repo}".*"tag":"${t.replace('.', '\\.')}".*"rule":1`));
      }
      for (const t of c.kept) await pullsWhole(c.repo, t);
    });
  }

  it('untaggedOlderThan removes old untagged revisions only', async () => {
    const R = 'alice/untagged';
    const tagged = await client.pushImage(R, 'live', token);
    const old = await client.pushImage(R, 'tmp-old', token);
    const young = await client.pushImage(R, 'tmp-young', token);
    // Untag both by pushing other images over their tags; then age one revision.
    await client.pushImage(R, 'tmp-old', token);
    await client.pushImage(R, 'tmp-young', token);
    await age(paths.revisionLink(R, parseDigest(old.digest)!), 48 * HOUR);
    await age(paths.revisionLink(R, parseDigest(young.digest)!), 1 * HOUR);
    const { json } = await withRules([{ repositories: '^alice/untagged$', untaggedOlderThan: '24h' }]);
    assert.equal(json.retention_deleted_manifests, 1);
    assert.equal(json.retention_deleted_tags, 0);
    assert.equal(await status(R, old.digest), 404);
    assert.equal(await blobStatus(R, old.layer), 404);
    await pullsWhole(R, young.digest);
    await pullsWhole(R, tagged.digest);
    await pullsWhole(R, 'live');
  });

  it('notPulledFor removes tags whose last pull (or, never pulled, write) is older', async () => {
    const R = 'mirror/hub';
    const pushed = await pushAged(R, { pulledRecently: 30 * 24, pulledLongAgo: 1, neverPulledOld: 30 * 24, neverPulledNew: 1 });
    const pulledAt = async (tag: string, hoursAgo: number) => {
      const p = path.join(root, recordPaths.lastPulled(R, parseDigest(pushed[tag]!.digest)!));
      await fs.mkdir(path.dirname(p), { recursive: true });
      await fs.writeFile(p, new Date(Date.now() - hoursAgo * HOUR).toISOString());
    };
    await pulledAt('pulledRecently', 2);
    await pulledAt('pulledLongAgo', 24 * 10);
    const { json } = await withRules([{ repositories: '^mirror/', notPulledFor: '168h' }]);
    assert.equal(json.retention_deleted_tags, 2);
    assert.equal(await status(R, 'pulledLongAgo'), 404);
    assert.equal(await status(R, 'neverPulledOld'), 404);
    await pullsWhole(R, 'pulledRecently');
    await pullsWhole(R, 'neverPulledNew');
  });

  /**
   * A push of a tag that retention has judged and is removing, placed by a hook in the
   * store retention writes to: right before its re-check, and right between the
   * re-check and the delete. The push was acknowledged, so the tag must stay, naming
   * the pushed image.
   */
  for (const when of ['before-recheck', 'before-delete'] as const) {
    it(`a tag pushed again while retention removes it stays (${when})`, async () => {
      const R = `alice/race-${when}`;
      await pushAged(R, { old: 5, newer: 1 });
      // The new image's blobs first, so that only the manifest PUT races retention.
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, when }));
      const layer = Buffer.from(`${when} ${Date.now()}`);
      const body = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await client.pushBlob(R, token, config), size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await client.pushBlob(R, token, layer), size: layer.length }],
        }),
      );
      await new Promise((r) => setTimeout(r, 1200)); // the first pushes' markers are past the claim window
      let pushing: Promise<{ status: number; text: string }> | undefined;
      const push = async () => {
        pushing ??= client.api('PUT', `/v2/${R}/manifests/old`, token, { body, headers: { 'content-type': OCI_MANIFEST } });
        // Long enough for the PUT to finish, unless it waits for retention.
        await Promise.race([pushing, new Promise((r) => setTimeout(r, 800))]);
      };
      const driver = new FilesystemDriver({ root, fsync: true });
      const hooked: StorageDriver = Object.create(driver) as StorageDriver;
      hooked.stat = async (p) => {
        if (when === 'before-recheck' && p === paths.tagCurrent(R, 'old') && (await driver.stat(keyportPaths.tagTombstone(R, 'old')).catch(() => undefined))) await push();
        return driver.stat(p);
      };
      hooked.delete = async (p) => {
        if (when === 'before-delete' && p === paths.tag(R, 'old')) await push();
        return driver.delete(p);
      };
      const removed: string[] = [];
      await applyTagRetention(hooked, compileRetention([{ repositories: `^${R}$`, keepLast: 1 }]), [R], {
        dryRun: false,
        now: Date.now(),
        claimWindowMs: 1000,
        onDeletion: (d) => removed.push(d.tag!),
      });
      assert.ok(pushing, 'the push ran during retention');
      const r = await pushing;
      assert.equal(r.status, 201, r.text);
      const m = await client.api('GET', `/v2/${R}/manifests/old`, token, { headers: { accept: OCI_MANIFEST } });
      assert.equal(m.status, 200, 'the pushed tag is there');
      assert.equal(sha256(m.body), sha256(body), 'and names the pushed image');
      assert.equal(await fs.stat(path.join(root, keyportPaths.tagTombstone(R, 'old'))).catch(() => undefined), undefined, 'no tombstone left');
      // Before the re-check the push's marker keeps the tag; after it, the old tag goes and the push lands after.
      assert.deepEqual(removed, when === 'before-recheck' ? [] : ['old']);
    });
  }

  it('a tag tombstone left by a killed run: a push waits for it, then gets 503 UNAVAILABLE; once stale it is ignored', async () => {
    const R = 'alice/race-before-recheck';
    const at = path.join(root, keyportPaths.tagTombstone(R, 'held'));
    await fs.mkdir(path.dirname(at), { recursive: true });
    await fs.writeFile(at, new Date().toISOString());
    const t0 = Date.now();
    await assert.rejects(client.pushImage(R, 'held', token), /push manifest alice\/race-before-recheck:held: 503 .*"code":"UNAVAILABLE".*being removed by retention/);
    const waited = Date.now() - t0;
    assert.ok(waited >= 9_000 && waited < 30_000, `waited ${waited} ms`);
    const stale = new Date(Date.now() - 11 * 60_000);
    await fs.utimes(at, stale, stale);
    const pushed = await client.pushImage(R, 'held', token);
    await pullsWhole(R, 'held');
    assert.equal((await client.api('GET', `/v2/${R}/manifests/held`, token, { headers: { accept: OCI_MANIFEST } })).headers['docker-content-digest'], pushed.digest);
  });

  it('--dry-run lists what retention would remove and removes nothing', async () => {
    const R = 'alice/dry';
    const pushed = await pushAged(R, { old: 3, new: 1 });
    const { out, json } = await withRules([{ repositories: '^alice/dry$', keepLast: 1 }], ['--dry-run', '--delete-untagged']);
    assert.equal(json.dry_run, true);
    assert.equal(json.retention_deleted_tags, 1);
    // Its counts are a real run's: the image the removed tag leaves untagged goes too.
    assert.match(out, /^alice\/dry: would delete 1 tags \(retention\), 1 manifests, /m);
    assert.match(out, new RegExp(`^  manifest ${pushed.old!.digest}$`, 'm'));
    assert.match(out, new RegExp(`^blob ${pushed.old!.layer}$`, 'm'));
    assert.match(out, /^  tag old$/m);
    await pullsWhole(R, 'old');
    await pullsWhole(R, 'new');
    assert.equal(await blobStatus(R, pushed.old!.layer), 200);
  });

  it('off by default: without rules no tag is removed', async () => {
    const R = 'alice/off';
    await pushAged(R, { a: 1000, b: 2000 });
    await new Promise((r) => setTimeout(r, 1200));
    const r = await gc(['--json', '--delete-untagged']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
    assert.equal(json.retention_deleted_tags, 0);
    assert.equal(json.retention_deleted_manifests, 0);
    await pullsWhole(R, 'a');
    await pullsWhole(R, 'b');
  });

  /**
   * Tag markers of tags that are gone: a store where tags come and go for years must
   * not keep one marker per tag ever pushed.
   */
  it('GC removes the markers of deleted tags, keeps those of live tags and of pushes in flight', async () => {
    const R = 'alice/markers';
    const marker = (tag: string) => path.join(root, keyportPaths.tagInUse(R, tag));
    const exists = (p: string) => fs.stat(p).then(() => true, () => false);
    await client.pushImage(R, 'kept', token);
    await client.pushImage(R, 'gone', token);
    const del = await client.api('DELETE', `/v2/${R}/manifests/gone`, token);
    assert.equal(del.status, 202, del.text);
    assert.ok(await exists(marker('gone')), 'the deleted tag left its marker');
    await new Promise((r) => setTimeout(r, 1200)); // past the claim window
    // A push of a new tag between its claim and its tag write.
    await fs.writeFile(marker('inflight'), new Date().toISOString());
    const r = await gc(['--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await exists(marker('gone')), false, 'the deleted tag\'s marker went');
    assert.ok(await exists(marker('kept')), 'a live tag keeps its marker');
    assert.ok(await exists(marker('inflight')), 'a fresh marker stays: its push may still write the tag');
    assert.equal((await fs.readdir(path.dirname(path.join(root, keyportPaths.tagTombstone(R, 'x')))).catch(() => [])).length, 0, 'no tombstone left');
    await pullsWhole(R, 'kept');
    // The tag can be pushed again, and claims it again.
    await client.pushImage(R, 'gone', token);
    await pullsWhole(R, 'gone');
    assert.ok(await exists(marker('gone')));
    await fs.rm(marker('inflight'));
  });

  /**
   * The interleavings of C2 < T1 < C3 (protocol.ts): GC found the marker stale, then
   * a push wrote it, then GC deleted it. The push checks for the tag's tombstone
   * either before GC removed it (it waits and claims again) or after (T2' finds its
   * marker gone and claims again); either way it ends with its marker in place.
   */
  for (const when of ['tombstone-seen', 'tombstone-gone'] as const) {
    it(`a push claiming a tag while GC removes its orphan marker ends with its marker in place (${when})`, async () => {
      const R = 'alice/markers';
      const tag = `racing-${when}`;
      const driver = new FilesystemDriver({ root, fsync: true });
      const markerPath = keyportPaths.tagInUse(R, tag);
      const stale = new Date(Date.now() - 5000);
      await driver.putContent(markerPath, Buffer.from(stale.toISOString()));
      await fs.utimes(path.join(root, markerPath), stale, stale);
      const signal = () => {
        let done!: () => void;
        const p = new Promise<void>((r) => (done = r));
        return { p, done };
      };
      const t1 = signal(); // the push wrote its marker
      const t2 = signal(); // the push looked for the tombstone
      const gcDone = signal();
      const pushSide: StorageDriver = Object.create(driver) as StorageDriver;
      pushSide.putContent = async (p, b, o) => {
        await driver.putContent(p, b, o);
        if (p === markerPath) t1.done();
      };
      let looked = false;
      pushSide.stat = async (p) => {
        if (p === keyportPaths.tagTombstone(R, tag) && !looked) {
          looked = true;
          if (when === 'tombstone-gone') await gcDone.p;
          t2.done();
        }
        return driver.stat(p);
      };
      let claiming: Promise<number> | undefined;
      const gcSide: StorageDriver = Object.create(driver) as StorageDriver;
      gcSide.delete = async (p, o) => {
        if (p === markerPath && !claiming) {
          claiming = new InUseMarkers(pushSide, 1000).claim([], { name: R, tag });
          await (when === 'tombstone-seen' ? t2.p : t1.p);
        }
        return driver.delete(p, o);
      };
      assert.equal(await dropOrphanTagMarkers(gcSide, new Set([`${R}:kept`, `${R}:gone`]), { claimWindowMs: 1000 }), 1);
      gcDone.done();
      assert.ok(claiming, 'the push claimed the tag during the removal');
      await claiming;
      assert.ok(looked);
      assert.ok((await driver.stat(markerPath)).modTime.getTime() > stale.getTime(), 'the push\'s marker is there');
      await driver.delete(markerPath);
    });
  }

  it('a bad rule stops start-up with a message naming the rule and field', async () => {
    const bad = JSON.stringify([{ repositories: '^ok/', keepLast: 1 }, { repositories: '^x/', untaggedOlderThan: 'soon' }]);
    const r = await gc([], { KEYPORT_STORAGE_GC_RETENTION: bad });
    assert.equal(r.code, 78);
    assert.match(r.stderr, /retention rule 1: untaggedOlderThan must be a duration/);
    const reg = new KeyportProcess({ command: 'registry', env: { KEYPORT_CERTS_DIR: kp.certsDir, KEYPORT_STORAGE_ROOT: root, KEYPORT_STORAGE_GC_RETENTION: '[{"repositories":"(","keepLast":1}]' } });
    await assert.rejects(reg.start());
    assert.match(reg.logText(), /retention rule 0: repositories is not a valid regular expression/);
    await reg.stop().catch(() => undefined);
  });
});
