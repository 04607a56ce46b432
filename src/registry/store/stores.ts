import type { StorageDriver } from '../../storage/driver.js';
import { BlobStore } from './blobs.js';
import { CatalogStore } from './catalog.js';
import { ManifestStore } from './manifests.js';
import { UploadStore } from './uploads.js';

/**
 * The registry's stores over one driver. A process makes one set and shares it between
 * the API and its timers (the upload purge), so upload sessions have a single owner:
 * one set of per-upload locks and one cache of running hashes.
 */
export interface Stores {
  blobs: BlobStore;
  uploads: UploadStore;
  manifests: ManifestStore;
  catalog: CatalogStore;
}

export interface StoreOptions {
  /** storage.gc.claimWindow in ms: how long a manifest push's claim on its blobs holds off GC. */
  gcClaimWindowMs?: number;
}

export function createStores(driver: StorageDriver, opts: StoreOptions = {}): Stores {
  const blobs = new BlobStore(driver);
  return {
    blobs,
    uploads: new UploadStore(driver, blobs),
    manifests: new ManifestStore(driver, blobs, opts.gcClaimWindowMs),
    catalog: new CatalogStore(driver),
  };
}
