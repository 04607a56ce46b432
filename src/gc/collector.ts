import { parseDigest, type Digest } from '../oci/reference.js';
import { parseManifest } from '../registry/manifest.js';
import { CatalogStore } from '../registry/store/catalog.js';
import { readLink } from '../registry/store/links.js';
import { paths } from '../registry/store/paths.js';
import { PathNotFoundError, StorageError, type StorageDriver } from '../storage/driver.js';
import type { RetentionRule } from '../config/retention.js';
import type { Lease } from './lease.js';
import { keyportPaths } from './paths.js';
import { COORDINATION, DEFAULT_CLAIM_WINDOW_MS, limited, TOMBSTONE_BOUND_MS } from './protocol.js';
import { dropStaleTombstones, ignoreMissing, listOrEmpty } from './store-objects.js';
import { dropOrphanTagMarkers } from './tag-markers.js';
import { applyTagRetention, ruleFor, type RetentionDeletion } from './retention.js';

export interface GcOptions {
  dryRun: boolean;
  /** Also delete manifest revisions no tag reaches (Distribution's --delete-untagged). */
  deleteUntagged: boolean;
  /** Blobs, links and revisions written less than this long before the mark are kept. */
  graceMs: number;
  /** storage.gc.claimWindow in ms: how recent an in-use marker must be to keep its digest. */
  claimWindowMs?: number;
  /** Held for the whole run; checked before every destructive step. */
  lease?: Lease;
  onProgress?: (phase: string, done: number, total: number) => void;
  /** storage.gc.retention, compiled; applied before the mark. */
  retention?: readonly RetentionRule[];
  /** Called for every tag or revision retention removes (or would, in a dry run). */
  onRetention?: (d: RetentionDeletion) => void;
}

export interface RepositoryReport {
  manifests: string[];
  links: string[];
  /** Tags retention removed. */
  tags: string[];
}

export interface GcReport {
  marked_blobs: number;
  deleted_blobs: number;
  deleted_bytes: number;
  deleted_manifests: number;
  deleted_links: number;
  deleted_repositories: number;
  /** Candidates a concurrent push claimed during the run, and so kept. */
  kept_in_use: number;
  /** Tags retention rules removed, and untagged revisions only a rule's untaggedOlderThan condemned. */
  retention_deleted_tags: number;
  retention_deleted_manifests: number;
  duration_s: number;
  dry_run: boolean;
  repositories: Record<string, RepositoryReport>;
  blobs: string[];
}

interface Revision {
  digest: Digest;
  modTime: number;
}

interface RepoScan {
  name: string;
  /** Names of the tags the scan listed. */
  tags: Set<string>;
  tagged: Digest[];
  revisions: Map<string, Revision>;
  layers: Map<string, Revision>;
  /** Manifests and blobs live in this repository. */
  live: Set<string>;
  /** The retention rule whose untaggedOlderThan condemns old untagged revisions here. */
  untaggedRule?: RetentionRule;
}

/** A manifest's references, read once per run (the same manifest is in many repositories). */
interface Refs {
  blobs: Digest[];
  manifests: Digest[];
  subject?: Digest;
}

const BATCH = 256;
/**
 * Storage operations in flight at once where their order does not matter (reads of the
 * mark, deletions of one batch's condemned digests): each one waits mostly on the store
 * (a round trip to Swift, an fsync of a directory), so one at a time leaves it idle.
 */
const PARALLEL = 8;

/**
 * Mark and sweep over Distribution's layout, online: see protocol.ts for how it stays
 * correct while other instances push. What is live, per repository: the manifests its
 * tags point at (and, without deleteUntagged, every revision it has), the manifests an
 * index among them lists (recursively), the manifests whose subject is live (referrers:
 * signatures and SBOMs stay with their image), and every blob those manifests name,
 * their configs included. A blob is live when any repository has it live. Anything
 * else older than the grace period is garbage: blobs, layer links, untagged revisions
 * (with deleteUntagged) and repositories left with nothing in them.
 */
export class Collector {
  private readonly refsCache = new Map<string, Refs | null>();
  /** Tags a dry run's retention would remove, "<repository>:<tag>": its mark leaves them out, so its counts are a real run's. */
  private readonly dryRunRemovedTags = new Set<string>();
  private markStart = 0;

  constructor(
    private readonly driver: StorageDriver,
    private readonly opts: GcOptions,
  ) {}

  async run(): Promise<GcReport> {
    const t0 = Date.now();
    this.markStart = t0;
    const report: GcReport = {
      marked_blobs: 0,
      deleted_blobs: 0,
      deleted_bytes: 0,
      deleted_manifests: 0,
      deleted_links: 0,
      deleted_repositories: 0,
      kept_in_use: 0,
      retention_deleted_tags: 0,
      retention_deleted_manifests: 0,
      duration_s: 0,
      dry_run: this.opts.dryRun,
      repositories: {},
      blobs: [],
    };
    if (!this.opts.dryRun) await this.dropStaleTombstones();
    const cutoff = t0 - this.opts.graceMs;

    const names = await new CatalogStore(this.driver).repositories();
    // Retention first, so that what its removed tags leave unreachable is garbage to
    // this very run's mark.
    const rules = this.opts.retention ?? [];
    if (rules.length) {
      await applyTagRetention(this.driver, rules, names, {
        dryRun: this.opts.dryRun,
        now: t0,
        claimWindowMs: this.opts.claimWindowMs,
        lease: this.opts.lease,
        onDeletion: (d) => {
          this.entry(report, d.repository).tags.push(d.tag!);
          if (this.opts.dryRun) this.dryRunRemovedTags.add(`${d.repository}:${d.tag}`);
          report.retention_deleted_tags++;
          this.opts.onRetention?.(d);
        },
      });
    }

    // Mark.
    // Repositories are scanned side by side: each scan only reads, and what one finds
    // does not depend on another's (the manifests cache is shared, a double read harmless).
    const scans: RepoScan[] = new Array(names.length);
    let n = 0;
    await limited([...names.keys()], PARALLEL / 2, async (i) => {
      scans[i] = await this.scan(names[i]!, cutoff);
      this.opts.onProgress?.('mark', ++n, names.length);
    });

    // Untagged revisions first: a kept one (a push claimed it) makes its own references live.
    const manifestCandidates: Array<{ repo: RepoScan; digest: Digest }> = [];
    for (const repo of scans) {
      for (const r of repo.revisions.values()) if (!repo.live.has(r.digest.value)) manifestCandidates.push({ repo, digest: r.digest });
    }
    // One batch: a kept revision can make any other candidate live, so none may be
    // deleted before all were re-checked.
    await this.sweep(manifestCandidates.map((c) => c.digest), report, Infinity, async (kept) => {
      // Every kept one first, so what they reach is live before anything is deleted;
      // then the rest side by side (each deletion touches its own revision only).
      for (const c of manifestCandidates) if (kept.has(c.digest.value)) await this.closeOver(c.repo, [c.digest]);
      const condemned = manifestCandidates.filter((c) => !kept.has(c.digest.value) && !c.repo.live.has(c.digest.value));
      const removed = new Set<(typeof condemned)[number]>();
      await limited(condemned, PARALLEL, async (c) => {
        if (this.opts.dryRun || (await this.deleteRevision(c.repo.name, c.digest))) removed.add(c);
      });
      for (const c of condemned) {
        if (!removed.has(c)) continue;
        this.entry(report, c.repo.name).manifests.push(c.digest.value);
        report.deleted_manifests++;
        if (c.repo.untaggedRule && !this.opts.deleteUntagged) {
          report.retention_deleted_manifests++;
          this.opts.onRetention?.({ repository: c.repo.name, digest: c.digest.value, rule: c.repo.untaggedRule.index });
        }
        c.repo.revisions.delete(c.digest.value);
      }
    });

    // Then links and blobs.
    const globalLive = new Set<string>();
    const recentLink = new Set<string>();
    for (const repo of scans) {
      for (const d of repo.live) globalLive.add(d);
      for (const l of repo.layers.values()) if (l.modTime >= cutoff) recentLink.add(l.digest.value);
    }
    const linkCandidates: Array<{ repo: RepoScan; digest: Digest }> = [];
    for (const repo of scans) {
      for (const l of repo.layers.values()) {
        if (!repo.live.has(l.digest.value) && l.modTime < cutoff) linkCandidates.push({ repo, digest: l.digest });
      }
    }
    const blobCandidates: Array<{ digest: Digest; size: number }> = [];
    for await (const b of this.blobs()) {
      if (globalLive.has(b.digest.value)) report.marked_blobs++;
      else if (b.modTime < cutoff && !recentLink.has(b.digest.value)) blobCandidates.push(b);
    }
    const digests = [...linkCandidates.map((c) => c.digest), ...blobCandidates.map((c) => c.digest)];
    await this.sweep(digests, report, BATCH, async (kept, batch) => {
      // The batch's deletions run side by side: every digest in it is tombstoned and
      // re-checked already, and all of them finish before sweep removes a tombstone. Per
      // blob the order stays: data first, then its marker.
      const deletions: Array<() => Promise<void>> = [];
      for (const c of linkCandidates) {
        if (!batch.has(c.digest.value) || kept.has(c.digest.value)) continue;
        this.entry(report, c.repo.name).links.push(c.digest.value);
        report.deleted_links++;
        if (!this.opts.dryRun) deletions.push(() => ignoreMissing(this.driver.delete(paths.layerLink(c.repo.name, c.digest).replace(/\/link$/, ''))));
        c.repo.layers.delete(c.digest.value);
      }
      for (const b of blobCandidates) {
        if (!batch.has(b.digest.value)) continue;
        if (kept.has(b.digest.value)) {
          report.marked_blobs++;
          continue;
        }
        report.blobs.push(b.digest.value);
        report.deleted_blobs++;
        report.deleted_bytes += b.size;
        if (!this.opts.dryRun) {
          deletions.push(async () => {
            await ignoreMissing(this.driver.delete(paths.blobData(b.digest).replace(/\/data$/, '')));
            await ignoreMissing(this.driver.delete(keyportPaths.inUse(b.digest), COORDINATION));
          });
        }
      }
      await limited(deletions, PARALLEL, (del) => del());
    });

    // Repositories with nothing left in them. Only their empty directories go, never an
    // object: a push may start an upload session or link a layer there at any moment
    // after the check, and a recursive delete would take that with it (the client's
    // next PATCH would find its upload unknown). On object stores a repository without
    // objects does not exist, so there is nothing to remove.
    for (const repo of scans) {
      if (repo.revisions.size || repo.tagged.length || repo.layers.size) continue;
      if (await this.hasAnyObject(paths.repository(repo.name))) continue;
      this.entry(report, repo.name);
      report.deleted_repositories++;
      if (!this.opts.dryRun && this.driver.pruneEmpty) {
        this.opts.lease?.check();
        await ignoreMissing(this.driver.pruneEmpty(paths.repository(repo.name)));
      }
    }
    if (!this.opts.dryRun) {
      const liveTags = new Set(scans.flatMap((repo) => [...repo.tags].map((tag) => `${repo.name}:${tag}`)));
      await dropOrphanTagMarkers(this.driver, liveTags, { claimWindowMs: this.opts.claimWindowMs ?? DEFAULT_CLAIM_WINDOW_MS, lease: this.opts.lease });
    }
    report.duration_s = Math.round((Date.now() - t0) / 10) / 100;
    return report;
  }

  private entry(report: GcReport, name: string): RepositoryReport {
    return (report.repositories[name] ??= { manifests: [], links: [], tags: [] });
  }

  /**
   * G2 to G4 of the protocol for a list of digests, in batches: tombstones, then the
   * re-check of in-use markers, then `act` with the digests to keep, then the
   * tombstones go. A batch that took longer than TOMBSTONE_BOUND is redone from its
   * tombstones, so a push never ignores a tombstone as stale while GC still acts on it.
   */
  private async sweep(
    all: Digest[],
    report: GcReport,
    size: number,
    act: (kept: Set<string>, batch: Set<string>) => Promise<void>,
  ): Promise<void> {
    const unique = [...new Map(all.map((d) => [d.value, d])).values()];
    for (let i = 0; i < unique.length; i += size) {
      const batch = unique.slice(i, i + size);
      const batchSet = new Set(batch.map((d) => d.value));
      if (this.opts.dryRun) {
        await act(new Set(), batchSet);
        continue;
      }
      for (;;) {
        this.opts.lease?.check();
        const written = Date.now();
        await limited(batch, 8, (d) => this.driver.putContent(keyportPaths.tombstone(d), Buffer.from(new Date(written).toISOString()), COORDINATION));
        const kept = new Set<string>();
        await limited(batch, 8, async (d) => {
          if (await this.claimedSinceMark(d)) kept.add(d.value);
        });
        if (Date.now() - written > TOMBSTONE_BOUND_MS) continue;
        this.opts.lease?.check();
        report.kept_in_use += kept.size;
        await act(kept, batchSet);
        await limited(batch, 8, (d) => ignoreMissing(this.driver.delete(keyportPaths.tombstone(d), COORDINATION)));
        break;
      }
      this.opts.onProgress?.('sweep', Math.min(i + size, unique.length), unique.length);
    }
  }

  /** G3: a marker written recently enough that a push may be between its check and its write. */
  private async claimedSinceMark(d: Digest): Promise<boolean> {
    try {
      const st = await this.driver.stat(keyportPaths.inUse(d));
      return st.modTime.getTime() >= this.markStart - (this.opts.claimWindowMs ?? DEFAULT_CLAIM_WINDOW_MS);
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
  }

  /** Tags, revisions and layer links of one repository, and what is live in it. */
  private async scan(name: string, cutoff: number): Promise<RepoScan> {
    const repo: RepoScan = { name, tags: new Set(), tagged: [], revisions: new Map(), layers: new Map(), live: new Set() };
    for (const tagDir of await this.listOrEmpty(paths.tagsRoot(name))) {
      const tag = tagDir.slice(tagDir.lastIndexOf('/') + 1);
      if (this.dryRunRemovedTags.has(`${name}:${tag}`)) continue;
      repo.tags.add(tag);
      const d = await readLink(this.driver, paths.tagCurrent(name, tag));
      if (d) repo.tagged.push(d);
    }
    for (const r of await this.linkedDigests(`${paths.revisionsRoot(name)}`)) repo.revisions.set(r.digest.value, r);
    for (const l of await this.linkedDigests(`${paths.repository(name)}/_layers`)) repo.layers.set(l.digest.value, l);
    const roots = repo.tagged.filter((d) => repo.revisions.has(d.value));
    // Untagged revisions are roots unless --delete-untagged or the repository's rule
    // condemns them: what an index or a live subject reaches stays live all the same.
    const rule = ruleFor(this.opts.retention ?? [], name);
    if (rule?.untaggedOlderThanMs !== undefined) repo.untaggedRule = rule;
    const ruleCutoff = repo.untaggedRule ? Math.min(cutoff, this.markStart - rule!.untaggedOlderThanMs!) : -Infinity;
    for (const r of repo.revisions.values()) {
      const condemned = (this.opts.deleteUntagged && r.modTime < cutoff) || r.modTime < ruleCutoff;
      if (!condemned) roots.push(r.digest);
    }
    await this.closeOver(repo, roots);
    return repo;
  }

  /**
   * Adds `roots` and everything they reach to the repository's live set: child
   * manifests, blobs, and referrers of anything live, until nothing changes.
   */
  private async closeOver(repo: RepoScan, roots: Digest[]): Promise<void> {
    const queue = [...roots];
    for (;;) {
      while (queue.length) {
        const d = queue.pop()!;
        if (repo.live.has(d.value)) continue;
        repo.live.add(d.value);
        const refs = await this.refs(d);
        if (!refs) continue;
        for (const b of refs.blobs) repo.live.add(b.value);
        for (const m of refs.manifests) if (!repo.live.has(m.value)) queue.push(m);
      }
      // Referrers: a revision whose subject became live is live too.
      for (const r of repo.revisions.values()) {
        if (repo.live.has(r.digest.value)) continue;
        const refs = await this.refs(r.digest);
        if (refs?.subject && repo.live.has(refs.subject.value)) queue.push(r.digest);
      }
      if (queue.length === 0) return;
    }
  }

  /** What a stored manifest references; null when its blob is missing or not a manifest. */
  private async refs(d: Digest): Promise<Refs | null> {
    const cached = this.refsCache.get(d.value);
    if (cached !== undefined) return cached;
    let refs: Refs | null = null;
    try {
      const parsed = parseManifest(await this.driver.getContent(paths.blobData(d)), undefined);
      refs = { blobs: parsed.blobs.map((t) => t.digest), manifests: parsed.manifests.map((t) => t.digest), subject: parsed.subject };
    } catch (e) {
      if (e instanceof StorageError && !(e instanceof PathNotFoundError)) throw e;
      refs = null;
    }
    this.refsCache.set(d.value, refs);
    return refs;
  }

  /** Digests under a Distribution link tree (<root>/<algorithm>/<hex>/link) with the links' times. */
  private async linkedDigests(root: string): Promise<Revision[]> {
    const out: Revision[] = [];
    for (const algDir of await this.listOrEmpty(root)) {
      await limited(await this.listOrEmpty(algDir), PARALLEL / 2, async (dir) => {
        const d = parseDigest(`${algDir.slice(algDir.lastIndexOf('/') + 1)}:${dir.slice(dir.lastIndexOf('/') + 1)}`);
        if (!d) return;
        try {
          const st = await this.driver.stat(`${dir}/link`);
          out.push({ digest: d, modTime: st.modTime.getTime() });
        } catch (e) {
          if (!(e instanceof PathNotFoundError)) throw e;
        }
      });
    }
    return out;
  }

  /** Every blob in the store: blobs/<algorithm>/<2 hex>/<hex>/data. */
  private async *blobs(): AsyncGenerator<{ digest: Digest; size: number; modTime: number }> {
    for (const algDir of await this.listOrEmpty(paths.blobsRoot())) {
      const alg = algDir.slice(algDir.lastIndexOf('/') + 1);
      for (const prefixDir of await this.listOrEmpty(algDir)) {
        // One prefix directory's blobs are looked at side by side, then handed out.
        const found: Array<{ digest: Digest; size: number; modTime: number }> = [];
        await limited(await this.listOrEmpty(prefixDir), PARALLEL, async (dir) => {
          const d = parseDigest(`${alg}:${dir.slice(dir.lastIndexOf('/') + 1)}`);
          if (!d) return;
          try {
            const st = await this.driver.stat(paths.blobData(d));
            if (!st.isDir) found.push({ digest: d, size: st.size, modTime: st.modTime.getTime() });
          } catch (e) {
            if (!(e instanceof PathNotFoundError)) throw e;
          }
        });
        yield* found;
      }
    }
  }

  private async revisionHasTag(name: string, d: Digest): Promise<string[]> {
    const tags: string[] = [];
    for (const tagDir of await this.listOrEmpty(paths.tagsRoot(name))) {
      const tag = tagDir.slice(tagDir.lastIndexOf('/') + 1);
      if ((await readLink(this.driver, paths.tagCurrent(name, tag)))?.value === d.value) tags.push(tag);
    }
    return tags;
  }

  /** Removes an untagged revision, its referrers entry and tag-history entries. */
  private async deleteRevision(name: string, d: Digest): Promise<boolean> {
    // A tag pushed onto it since the mark makes it live again.
    if ((await this.revisionHasTag(name, d)).length) return false;
    const refs = await this.refs(d);
    if (refs?.subject) await ignoreMissing(this.driver.delete(paths.referrer(name, refs.subject, d).replace(/\/link$/, '')));
    await ignoreMissing(this.driver.delete(paths.revisionLink(name, d).replace(/\/link$/, '')));
    for (const tagDir of await this.listOrEmpty(paths.tagsRoot(name))) {
      const tag = tagDir.slice(tagDir.lastIndexOf('/') + 1);
      await ignoreMissing(this.driver.delete(paths.tagIndex(name, tag, d).replace(/\/link$/, '')));
    }
    return true;
  }

  /** Old tombstones are left by a run that was killed; pushes ignore them already. */
  private async dropStaleTombstones(): Promise<void> {
    for (const algDir of await this.listOrEmpty(keyportPaths.tombstonesRoot())) await dropStaleTombstones(this.driver, algDir);
  }

  private async hasAnyObject(dir: string): Promise<boolean> {
    for (const child of await this.listOrEmpty(dir)) {
      const st = await this.driver.stat(child).catch(() => undefined);
      if (!st) continue;
      if (!st.isDir) return true;
      if (await this.hasAnyObject(child)) return true;
    }
    return false;
  }

  private listOrEmpty(p: string): Promise<string[]> {
    return listOrEmpty(this.driver, p);
  }
}
