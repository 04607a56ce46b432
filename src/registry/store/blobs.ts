import type { Readable } from 'node:stream';
import type { Digest } from '../../oci/reference.js';
import { PathNotFoundError, type StorageDriver } from '../../storage/driver.js';
import { linkPresent } from './links.js';
import { paths } from './paths.js';

/**
 * Content-addressed blob data, stored once however many repositories use it, and the
 * per-repository links that decide who can see it. Deleting from a repository removes
 * only its link, so a blob another manifest or repository uses is never lost.
 */
export class BlobStore {
  constructor(private readonly driver: StorageDriver) {}

  /** Size of the stored blob, or undefined when there is none. */
  async size(d: Digest): Promise<number | undefined> {
    try {
      const st = await this.driver.stat(paths.blobData(d));
      return st.isDir ? undefined : st.size;
    } catch (e) {
      if (e instanceof PathNotFoundError) return undefined;
      throw e;
    }
  }

  isLinked(name: string, d: Digest): Promise<boolean> {
    return linkPresent(this.driver, paths.layerLink(name, d));
  }

  /** The blob's size when the repository may serve it (linked and present). */
  async describe(name: string, d: Digest): Promise<number | undefined> {
    if (!(await this.isLinked(name, d))) return undefined;
    return this.size(d);
  }

  async link(name: string, d: Digest): Promise<void> {
    await this.driver.putContent(paths.layerLink(name, d), Buffer.from(d.value));
  }

  /** Removes the repository's link; false when there was none. */
  async unlink(name: string, d: Digest): Promise<boolean> {
    try {
      await this.driver.delete(paths.layerLink(name, d).replace(/\/link$/, ''));
      return true;
    } catch (e) {
      if (e instanceof PathNotFoundError) return false;
      throw e;
    }
  }

  open(d: Digest, offset = 0): Promise<Readable> {
    return this.driver.reader(paths.blobData(d), offset);
  }

  async read(d: Digest): Promise<Buffer> {
    return this.driver.getContent(paths.blobData(d));
  }

  /** Stores small content (manifests) under its digest unless already there. */
  async putSmall(d: Digest, content: Buffer): Promise<void> {
    if ((await this.size(d)) === content.length) return;
    await this.driver.putContent(paths.blobData(d), content);
  }

  redirectURL(d: Digest, method: 'GET' | 'HEAD'): Promise<string | undefined> {
    return this.driver.redirectURL ? this.driver.redirectURL(paths.blobData(d), method) : Promise.resolve(undefined);
  }
}
