import { PathNotFoundError, type StorageDriver } from '../storage/driver.js';
import { TOMBSTONE_TTL_MS } from './protocol.js';

/** Awaits a removal; what is already gone (another run, a racing delete) is not an error. */
export async function ignoreMissing(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof PathNotFoundError)) throw e;
  }
}

/** The entries of a directory (prefix), none when it does not exist. */
export async function listOrEmpty(driver: StorageDriver, p: string): Promise<string[]> {
  try {
    return await driver.list(p);
  } catch (e) {
    if (e instanceof PathNotFoundError) return [];
    throw e;
  }
}

/**
 * Removes the tombstones in `dir` older than TOMBSTONE_TTL: a run killed between
 * writing and removing one left it, and pushes ignore it already.
 */
export async function dropStaleTombstones(driver: StorageDriver, dir: string): Promise<void> {
  for (const p of await listOrEmpty(driver, dir)) {
    const st = await driver.stat(p).catch(() => undefined);
    if (st && !st.isDir && Date.now() - st.modTime.getTime() > TOMBSTONE_TTL_MS) await ignoreMissing(driver.delete(p));
  }
}
