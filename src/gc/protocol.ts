import type { Digest } from '../oci/reference.js';
import { ManifestBlobUnknown, TagBusy } from '../registry/store/errors.js';
import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';
import { keyportPaths } from './paths.js';

/**
 * How a manifest PUT on any instance and a GC run on any other agree on what may be
 * deleted, with no lock on the push path.
 *
 * Push (for the set D of digests a manifest references, its own digest included):
 *   P1. write an in-use marker for every d in D (its mtime is the time of this push);
 *   P2. check that no fresh tombstone exists for any d, and that every d exists;
 *   P3. write the manifest (blob, revision link, tag), at most PUSH_BOUND after P1,
 *       else start again at P1.
 * A tombstoned or missing digest fails the push with MANIFEST_BLOB_UNKNOWN: the client
 * uploads the blob again and retries, and nothing is stored that points at nothing.
 *
 * GC (mark start S; then for each candidate digest d, in batches):
 *   G1. mark: from tags (and untagged revisions, unless --delete-untagged) compute the
 *       live set, reading the store after S;
 *   G2. write a tombstone for d;
 *   G3. re-check: a marker for d with mtime >= S - MARKER_WINDOW keeps d (its
 *       tombstone is removed);
 *   G4. delete d (blob data, links, revision), then its marker and tombstone, all
 *       within TOMBSTONE_BOUND of G2, else write the tombstones again and redo G3.
 *
 * Why nothing live is lost. Take a push P of a manifest referencing d, and a GC run
 * that deletes d. If P3 happened before G1 read P's repository, the mark saw the
 * manifest and d is live: not a candidate. Otherwise P3 came after S, so P1 came after
 * S - PUSH_BOUND, which is after S - MARKER_WINDOW (the difference absorbs clock
 * differences between instances and the store; PUSH_BOUND is a third of the
 * window, leaving two thirds for clock differences). Now order P1 against G3:
 *   - P1 before G3: G3 finds the marker, fresh enough, and keeps d. Contradiction.
 *   - P1 after G3: then P2 comes after G3, hence after G2, so P2 either sees the
 *     tombstone (fresh: GC deletes within TOMBSTONE_BOUND, well under TOMBSTONE_TTL)
 *     or, once GC removed the tombstone in G4, sees d missing. Either way P fails.
 * So a push succeeds only if d is kept: marker-before-check on the push side and
 * tombstone-before-recheck on the GC side mean one of the two sees the other.
 *
 * Uploads and mounts while GC runs are protected by the grace period: a blob or link
 * written since S - grace is never a candidate. Blob data lives under the repository's
 * _uploads until the digest checks out, so an open upload session holds no blob.
 *
 * The price: a blob a manifest push referenced less than MARKER_WINDOW ago is kept
 * even when that manifest was deleted since, so the effective grace period for such
 * blobs is at least the claim window (15 minutes by default, below the default grace).
 *
 * Leftovers are bounded: a marker is removed when its digest is deleted, and a stale
 * one (older than MARKER_WINDOW) keeps nothing; a tombstone left by a GC killed
 * between G2 and G4 is ignored by pushes after TOMBSTONE_TTL and removed by the next
 * run.
 *
 * Tags and retention. Retention removes a tag it judged on a listing read at time L;
 * a push of the same tag landing after that read must not be removed with it (the
 * push was acknowledged; losing it loses the image). The same pair of objects, keyed
 * by repository and tag, orders the two:
 *   push: T1 write the tag's in-use marker (with P1); T2 check for a fresh tag
 *         tombstone (with P2): while there is one, wait for it to go and start again at
 *         T1 (after a while, fail with TagBusy: the client retries); T3 write the tag
 *         (P3, within PUSH_BOUND of T1).
 *   retention: R1 write the tag's tombstone; R2 re-check: the tag still names what was
 *         judged, and no marker for it has mtime >= L - MARKER_WINDOW, else keep it;
 *         R3 delete the tag, within TOMBSTONE_BOUND of R1 (else keep it for the next
 *         run); R4 delete its marker, then its tombstone.
 * Why an acknowledged push survives. If T3 came before L, the listing saw the new tag
 * and retention judged that one. Otherwise T1 came after L - PUSH_BOUND, and:
 *   - T1 before R2: R2 finds a fresh marker and keeps the tag;
 *   - T1 after R2: T2 comes after R1, so it sees the tombstone (fresh until R4) and
 *     waits until R4, which comes after R3; or it comes after R4. Either way T3 writes
 *     the tag after R3 deleted the old one, and the tag stays.
 * A push between R2 and R4 sees the tombstone and writes its marker again.
 *
 * Markers of tags that no longer exist. A tag deleted through the API (or never
 * written: its push failed) leaves its marker; GC removes those, so they do not grow
 * with every tag ever pushed. Under the lease, after the sweep, for a marker whose tag
 * the mark did not list:
 *   C1 write the tag's tombstone; C2 re-check: the tag does not exist and the marker
 *   was last written before now - MARKER_WINDOW, else keep it; C3 delete the marker,
 *   within TOMBSTONE_BOUND of C1; C4 delete the tombstone.
 * and the push adds one step, T2' (after T2): its tag marker still exists, else it
 * starts again at T1.
 * Why a push never reaches T3 without its marker. Take a push whose marker, written at
 * T1, C3 deleted. If T1 came before C2, C2 found a marker older than the claim window,
 * so T1 is more than PUSH_BOUND before C2: the push wrote its tag before C2 or starts
 * again at T1 when it checks the bound before T3. Otherwise T1 is after C2, so T2 is after C1: before C4 it sees the fresh
 * tombstone and waits, then starts again at T1; after C4, T2' comes after C3 and finds
 * the marker gone, and starts again at T1. A marker written again after C3 is a new
 * object that nothing deletes before the next run, whose C2 sees it fresh.
 */
/** MARKER_WINDOW (storage.gc.claimWindow) by default; PUSH_BOUND is a third of it. */
export const DEFAULT_CLAIM_WINDOW_MS = 15 * 60_000;
export const TOMBSTONE_BOUND_MS = 4 * 60_000;
export const TOMBSTONE_TTL_MS = 10 * 60_000;
/**
 * Markers and tombstones order processes running at the same moment: they must be
 * atomic and visible at once, not durable. A crash of the host ends every process
 * that wrote or read them there, and after it a marker or tombstone that never
 * reached the disk is one for a push or GC that no longer runs. (A tombstone removal
 * undone by a crash is a stale tombstone: ignored after TOMBSTONE_TTL.) Without the
 * fsyncs a manifest push costs two flushes less per digest it references.
 */
export const COORDINATION = { durable: false } as const;

/** How long a push of a tag waits for retention to finish removing it. */
const TAG_WAIT_MS = 10_000;
const TAG_POLL_MS = 100;

export function pushBoundMs(claimWindowMs: number): number {
  return Math.floor(claimWindowMs / 3);
}

/** The push side of the protocol (P1, P2 and the PUSH_BOUND check before P3). */
export class InUseMarkers {
  private readonly pushBound: number;

  constructor(
    private readonly driver: StorageDriver,
    claimWindowMs = DEFAULT_CLAIM_WINDOW_MS,
  ) {
    this.pushBound = pushBoundMs(claimWindowMs);
  }

  /**
   * P1 and P2 (with T1 and T2 for a tag); returns when the markers were written, for
   * `stillFresh`.
   */
  async claim(digests: Digest[], tag?: { name: string; tag: string }): Promise<number> {
    const unique = [...new Map(digests.map((d) => [d.value, d])).values()];
    const markers = unique.map((d) => keyportPaths.inUse(d));
    if (tag) markers.push(keyportPaths.tagInUse(tag.name, tag.tag));
    const waitUntil = Date.now() + TAG_WAIT_MS;
    for (;;) {
      const started = Date.now();
      const stamp = Buffer.from(new Date(started).toISOString());
      await limited(markers, 8, (p) => this.driver.putContent(p, stamp, COORDINATION));
      const tombstones = unique.map((d) => ({ path: keyportPaths.tombstone(d), digest: d.value }));
      const tagTombstone = tag ? [{ path: keyportPaths.tagTombstone(tag.name, tag.tag), digest: undefined }] : [];
      let busy = false;
      await limited([...tombstones, ...tagTombstone], 8, async (t) => {
        if (!(await this.fresh(t.path))) return;
        if (t.digest !== undefined) throw new ManifestBlobUnknown(t.digest);
        busy = true;
      });
      // T2': GC may have removed the tag's marker as an orphan between T1 and T2.
      if (!busy && tag && !(await this.exists(keyportPaths.tagInUse(tag.name, tag.tag)))) busy = true;
      if (!busy) return started;
      // Retention removes a tag within milliseconds of its tombstone; one that stays
      // was left by a killed run, and is ignored once past TOMBSTONE_TTL.
      if (Date.now() >= waitUntil) throw new TagBusy(tag!.tag);
      await new Promise((r) => setTimeout(r, TAG_POLL_MS));
    }
  }

  /** The bound between P1 and P3: past it the markers may no longer protect the push. */
  stillFresh(claimedAt: number): boolean {
    return Date.now() - claimedAt < this.pushBound;
  }

  private async exists(p: string): Promise<boolean> {
    try {
      await this.driver.stat(p);
      return true;
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
  }

  /** A tombstone written recently enough that its writer may still act on it. */
  private async fresh(tombstone: string): Promise<boolean> {
    try {
      const st = await this.driver.stat(tombstone);
      return Date.now() - st.modTime.getTime() < TOMBSTONE_TTL_MS;
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure wins. */
export async function limited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
