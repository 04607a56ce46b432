import { CacheRecords } from '../cache/records.js';
import type { RetentionRule } from '../config/retention.js';
import { parseDigest, type Digest } from '../oci/reference.js';
import { paths } from '../registry/store/paths.js';
import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';
import type { Lease } from './lease.js';

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
  opts: { dryRun: boolean; now: number; lease?: Lease; onDeletion: (d: RetentionDeletion) => void },
): Promise<void> {
  const records = new CacheRecords(driver);
  for (const name of repositories) {
    const rule = ruleFor(rules, name);
    if (!rule || (rule.keepLast === undefined && rule.notPulledForMs === undefined)) continue;
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
        if (!(await deleteTagIfUnchanged(driver, name, t))) continue;
      }
      opts.onDeletion({ repository: name, tag: t.tag, digest: t.digest.value, rule: rule.index });
    }
  }
}

/**
 * Removes the tag only while its current link is the one retention judged: same
 * digest and same write time. A push of the tag since the listing rewrote the link
 * (a newer time, maybe another digest), and that tag is now the newest and recently
 * written, which the decision did not see; so it is kept and the next run judges it
 * afresh. The re-check is right before the delete, leaving only the time of one
 * store call in which a re-push could land unseen.
 */
async function deleteTagIfUnchanged(driver: StorageDriver, name: string, t: TagLink): Promise<boolean> {
  const now = await readTagLink(driver, name, t.tag);
  if (!now || now.digest.value !== t.digest.value || now.modTime !== t.modTime) return false;
  try {
    await driver.delete(paths.tag(name, t.tag));
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
  return true;
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
