import { paths } from '../registry/store/paths.js';
import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';
import type { Lease } from './lease.js';
import { keyportPaths } from './paths.js';
import { COORDINATION, TOMBSTONE_BOUND_MS } from './protocol.js';
import { dropStaleTombstones, ignoreMissing, listOrEmpty } from './store-objects.js';

/**
 * Removes the in-use markers of tags that no longer exist (deleted through the API,
 * or never written because their push failed), so that a store where tags come and
 * go for years does not keep one marker per tag ever pushed. Steps C1 to C4 of the
 * tag protocol in protocol.ts, which also argues why no push loses its marker while
 * it still needs it. Run under the GC lease, so never beside retention.
 *
 * `liveTags` ("<repository>:<tag>") are the tags the mark listed: their markers are
 * not even looked at. Returns how many markers went.
 */
export async function dropOrphanTagMarkers(
  driver: StorageDriver,
  liveTags: ReadonlySet<string>,
  opts: { claimWindowMs: number; lease?: Lease },
): Promise<number> {
  let removed = 0;
  for await (const { name, tag } of tagMarkers(driver, keyportPaths.tagsRoot(), '')) {
    if (liveTags.has(`${name}:${tag}`)) continue;
    opts.lease?.check();
    if (await dropIfOrphan(driver, name, tag, opts.claimWindowMs)) removed++;
  }
  // Directories of repositories left without markers (filesystem only: on object
  // stores a prefix without objects does not exist). A push writing a marker there
  // meanwhile redoes its write (see the filesystem driver's racing deletes).
  if (removed && driver.pruneEmpty) await ignoreMissing(driver.pruneEmpty(keyportPaths.tagsRoot()));
  return removed;
}

/** C1 to C4 for one marker. */
async function dropIfOrphan(driver: StorageDriver, name: string, tag: string, claimWindowMs: number): Promise<boolean> {
  const tombstone = keyportPaths.tagTombstone(name, tag);
  const written = Date.now();
  await driver.putContent(tombstone, Buffer.from(new Date(written).toISOString()), COORDINATION);
  try {
    if (await exists(driver, paths.tagCurrent(name, tag))) return false;
    const marker = keyportPaths.tagInUse(name, tag);
    let modTime: number;
    try {
      modTime = (await driver.stat(marker)).modTime.getTime();
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
    // A marker written within the claim window may belong to a push still between its
    // claim and its tag write.
    if (modTime >= Date.now() - claimWindowMs) return false;
    // Past the bound a push may take the tombstone for a stale one.
    if (Date.now() - written > TOMBSTONE_BOUND_MS) return false;
    await ignoreMissing(driver.delete(marker, COORDINATION));
    return true;
  } finally {
    await ignoreMissing(driver.delete(tombstone, COORDINATION));
  }
}

/**
 * Every tag marker under `dir` (<tags root>/<repository>/_inuse/<tag>). Tombstones
 * older than their TTL met on the way (left by a killed run) go too.
 */
async function* tagMarkers(driver: StorageDriver, dir: string, name: string): AsyncGenerator<{ name: string; tag: string }> {
  for (const child of await listOrEmpty(driver, dir)) {
    const base = child.slice(child.lastIndexOf('/') + 1);
    if (base === '_inuse') {
      for (const marker of await listOrEmpty(driver, child)) yield { name, tag: marker.slice(marker.lastIndexOf('/') + 1) };
    } else if (base === '_tombstones') {
      await dropStaleTombstones(driver, child);
    } else {
      yield* tagMarkers(driver, child, name ? `${name}/${base}` : base);
    }
  }
}

async function exists(driver: StorageDriver, p: string): Promise<boolean> {
  try {
    await driver.stat(p);
    return true;
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
}
