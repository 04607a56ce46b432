import { parseDigest, type Digest } from '../../oci/reference.js';
import { PathNotFoundError, type StorageDriver } from '../../storage/driver.js';

/** The digest a link object names, or undefined when there is no link. */
export async function readLink(driver: StorageDriver, path: string): Promise<Digest | undefined> {
  try {
    return parseDigest((await driver.getContent(path)).toString('utf8').trim());
  } catch (e) {
    if (e instanceof PathNotFoundError) return undefined;
    throw e;
  }
}

/**
 * Whether a link whose path already names its digest (a layer or revision link) is
 * there. One stat instead of reading it: on a filesystem that is one system call
 * instead of three (open, read, close), each a round trip through libuv's thread pool,
 * and these checks are on every HEAD and GET. Links are written whole (a temporary
 * file renamed into place, or one object), so a link that is there names the digest
 * its path does, as in any store Docker Distribution wrote; an empty one does not count.
 */
export async function linkPresent(driver: StorageDriver, path: string): Promise<boolean> {
  try {
    const st = await driver.stat(path);
    return !st.isDir && st.size > 0;
  } catch (e) {
    if (e instanceof PathNotFoundError) return false;
    throw e;
  }
}
