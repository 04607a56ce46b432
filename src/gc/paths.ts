import type { Digest } from '../oci/reference.js';

/**
 * Keyport's own coordination objects, next to Distribution's layout (which ignores
 * everything outside blobs/ and repositories/, so a store stays readable by it).
 */
const ROOT = '/docker/registry/v2/_keyport';

export const keyportPaths = {
  leaseDir: () => `${ROOT}/gc/lease`,
  lease: (generation: number) => `${ROOT}/gc/lease/${generation}`,
  /** Written by a manifest PUT for every digest it references, before it checks them. */
  inUse: (d: Digest) => `${ROOT}/inuse/${d.algorithm}/${d.hex}`,
  inUseRoot: () => `${ROOT}/inuse`,
  /** Written by GC for a digest it is about to delete, before its last re-check. */
  tombstone: (d: Digest) => `${ROOT}/tombstones/${d.algorithm}/${d.hex}`,
  tombstonesRoot: () => `${ROOT}/tombstones`,
  /**
   * The same pair for a tag, between a manifest PUT of the tag and retention removing
   * it. `_`-prefixed names cannot be repository path components, so these never
   * collide with a nested repository's own directory.
   */
  tagInUse: (name: string, tag: string) => `${ROOT}/tags/${name}/_inuse/${tag}`,
  tagsRoot: () => `${ROOT}/tags`,
  tagTombstone: (name: string, tag: string) => `${ROOT}/tags/${name}/_tombstones/${tag}`,
  tagTombstonesDir: (name: string) => `${ROOT}/tags/${name}/_tombstones`,
};
