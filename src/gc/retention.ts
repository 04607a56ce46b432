import { CacheRecords } from '../cache/records.js';
import type { RetentionRule } from '../config/retention.js';
import { parseDigest, type Digest } from '../oci/reference.js';
import { paths } from '../registry/store/paths.js';
import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';
import type { Lease } from './lease.js';
import { keyportPaths } from './paths.js';
import { COORDINATION, DEFAULT_CLAIM_WINDOW_MS, TOMBSTONE_BOUND_MS } from './protocol.js';
import { dropStaleTombstones, ignoreMissing } from './store-objects.js';

/** One removal retention made (or, in a dry run, would make). */
export interface RetentionDeletion {
  repository: string;
  tag?: string;
  digest: string;
  rule: number;
}

/** The first rule whose pattern matches the repository applies to it; none: keep all. */
export function ruleFor(rules: readonly RetentionRule[], repository: string): RetentionRule | undefined {
  return rules.find((r) => r.repositories.test(repository));
}

interface TagLink {
  tag: string;
  digest: Digest;
  modTime: number;
}

/**
 * The tag half of retention, before the mark: for each repository a rule applies to,
 * the tags it condemns (beyond the `keepLast` newest, or not pulled for
 * `notPulledFor`; never one `keepTags` matches) are removed. Only tag links go; the
 * manifests and blobs they leave unreachable are the ordinary mark and sweep's to
 * free, with all of its protection of concurrent pushes. Untagged revisions are the
 * collector's (see untaggedOlderThan in collector.ts), because which of them an index
 * or a subject still reaches is what its mark computes.
 */
export async function applyTagRetention(
  driver: StorageDriver,
  rules: readonly RetentionRule[],
  repositories: readonly string[],
  opts: { dryRun: boolean; now: number; claimWindowMs?: number; lease?: Lease; onDeletion: (d: RetentionDeletion) => void },
): Promise<void> {
  const records = new CacheRecords(driver);
  const claimWindowMs = opts.claimWindowMs ?? DEFAULT_CLAIM_WINDOW_MS;
  for (const name of repositories) {
    const rule = ruleFor(rules, name);
    if (!rule || (rule.keepLast === undefined && rule.notPulledForMs === undefined)) continue;
    if (!opts.dryRun) await dropStaleTombstones(driver, keyportPaths.tagTombstonesDir(name));
    // L of the tag protocol: a push of a tag landing after this read is protected by
    // its marker, which must be at least this recent less the claim window.
    const listedAt = Date.now();
    const tags = (await tagLinks(driver, name)).filter((t) => !rule.keepTags?.test(t.tag));
    // Newest first; equal times by name, so a run is reproducible.
    tags.sort((a, b) => b.modTime - a.modTime || a.tag.localeCompare(b.tag));
    for (const [i, t] of tags.entries()) {
      let condemned = rule.keepLast !== undefined && i >= rule.keepLast;
      if (!condemned && rule.notPulledForMs !== undefined) {
        const pulled = (await records.lastPulled(name, t.digest))?.getTime() ?? t.modTime;
        condemned = pulled < opts.now - rule.notPulledForMs;
      }
      if (!condemned) continue;
      if (!opts.dryRun) {
        opts.lease?.check();
        if (!(await deleteTagIfUnchanged(driver, name, t, listedAt - claimWindowMs))) continue;
      }
      opts.onDeletion({ repository: name, tag: t.tag, digest: t.digest.value, rule: rule.index });
    }
  }
}

/**
 * R1 to R4 of the tag protocol (src/gc/protocol.ts): removes the tag only while its
 * current link is the one retention judged (same digest, same write time) and no push
 * of it claimed it since `claimedSince`. A tag pushed since the listing is kept; the
 * next run judges it afresh.
 */
async function deleteTagIfUnchanged(driver: StorageDriver, name: string, t: TagLink, claimedSince: number): Promise<boolean> {
  const tombstone = keyportPaths.tagTombstone(name, t.tag);
  const written = Date.now();
  await driver.putContent(tombstone, Buffer.from(new Date(written).toISOString()), COORDINATION);
  try {
    const now = await readTagLink(driver, name, t.tag);
    if (!now || now.digest.value !== t.digest.value || now.modTime !== t.modTime) return false;
    if ((await modTimeOf(driver, keyportPaths.tagInUse(name, t.tag))) >= claimedSince) return false;
    // Past the bound a push may take the tombstone for a stale one: keep the tag.
    if (Date.now() - written > TOMBSTONE_BOUND_MS) return false;
    try {
      await driver.delete(paths.tag(name, t.tag));
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
    await ignoreMissing(driver.delete(keyportPaths.tagInUse(name, t.tag), COORDINATION));
    return true;
  } finally {
    // Last, so that a push that saw no tombstone comes after the removal.
    await ignoreMissing(driver.delete(tombstone, COORDINATION));
  }
}

/** The write time of an object in ms, or -Infinity when there is none. */
async function modTimeOf(driver: StorageDriver, p: string): Promise<number> {
  try {
    return (await driver.stat(p)).modTime.getTime();
  } catch (e) {
    if (e instanceof PathNotFoundError) return -Infinity;
    throw e;
  }
}

async function tagLinks(driver: StorageDriver, name: string): Promise<TagLink[]> {
  let dirs: string[];
  try {
    dirs = await driver.list(paths.tagsRoot(name));
  } catch (e) {
    if (e instanceof PathNotFoundError) return [];
    throw e;
  }
  const out: TagLink[] = [];
  for (const dir of dirs) {
    const t = await readTagLink(driver, name, dir.slice(dir.lastIndexOf('/') + 1));
    if (t) out.push(t);
  }
  return out;
}

async function readTagLink(driver: StorageDriver, name: string, tag: string): Promise<TagLink | undefined> {
  try {
    const p = paths.tagCurrent(name, tag);
    const st = await driver.stat(p);
    const digest = parseDigest((await driver.getContent(p)).toString('utf8').trim());
    return digest ? { tag, digest, modTime: st.modTime.getTime() } : undefined;
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
}
