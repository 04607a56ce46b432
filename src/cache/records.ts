import { LRUCache } from 'lru-cache';
import type { Digest } from '../oci/reference.js';
import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';

/**
 * Small records the cache keeps next to the content, under /_keyport/cache/ (outside
 * Distribution's tree, so a store moved to Distribution still reads the same):
 *
 *  - when a cached tag was last checked against its upstream, shared by every registry
 *    instance on the store (a memory copy saves the read while it is fresh);
 *  - when a cached manifest was last pulled, for a retention rule that expires images
 *    nobody pulls. Written at most once per `pulledEvery` per manifest and process, so
 *    a busy image costs one small write an hour, not one per pull.
 */
const ROOT = '/_keyport/cache';

export const recordPaths = {
  tagChecked: (name: string, tag: string) => `${ROOT}/tag-checked/${name}/${tag}`,
  lastPulled: (name: string, d: Digest) => `${ROOT}/last-pulled/${name}/${d.algorithm}/${d.hex}`,
};

export const PULLED_EVERY_MS = 3600 * 1000;

export class CacheRecords {
  private readonly checked = new LRUCache<string, number>({ max: 50_000 });
  private readonly pulledAt = new LRUCache<string, number>({ max: 50_000 });

  constructor(
    private readonly driver: StorageDriver,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds since the epoch when the tag was last checked upstream; 0 when never. */
  async tagCheckedAt(name: string, tag: string): Promise<number> {
    const key = `${name}:${tag}`;
    const known = this.checked.get(key);
    if (known !== undefined) return known;
    try {
      const at = Date.parse((await this.driver.getContent(recordPaths.tagChecked(name, tag))).toString('utf8')) || 0;
      this.checked.set(key, at);
      return at;
    } catch (e) {
      if (e instanceof PathNotFoundError) return 0;
      throw e;
    }
  }

  /** Forgets the memory copy, so the next question reads what another instance may have written. */
  forgetTagCheck(name: string, tag: string): void {
    this.checked.delete(`${name}:${tag}`);
  }

  async tagChecked(name: string, tag: string): Promise<void> {
    const at = this.now();
    await this.driver.putContent(recordPaths.tagChecked(name, tag), Buffer.from(new Date(at).toISOString()));
    this.checked.set(`${name}:${tag}`, at);
  }

  /** Notes a pull of the manifest, unless this process noted one within the hour. */
  async pulled(name: string, d: Digest): Promise<void> {
    const key = `${name}@${d.value}`;
    const at = this.now();
    const last = this.pulledAt.get(key);
    if (last !== undefined && at - last < PULLED_EVERY_MS) return;
    this.pulledAt.set(key, at);
    await this.driver.putContent(recordPaths.lastPulled(name, d), Buffer.from(new Date(at).toISOString()));
  }

  /** When the manifest was last noted as pulled (by any instance), or undefined. */
  async lastPulled(name: string, d: Digest): Promise<Date | undefined> {
    try {
      const at = Date.parse((await this.driver.getContent(recordPaths.lastPulled(name, d))).toString('utf8'));
      return Number.isNaN(at) ? undefined : new Date(at);
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }
}
