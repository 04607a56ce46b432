import type { Request, Response } from 'express';
import type { EventSink } from '../../events/types.js';
import type { Logger } from '../../log/logger.js';
import type { VerifiedToken } from '../auth/token-verifier.js';
import type { Route } from '../routes.js';
import type { BlobStore } from '../store/blobs.js';
import type { CatalogStore } from '../store/catalog.js';
import type { ManifestStore } from '../store/manifests.js';
import type { UploadStore } from '../store/uploads.js';

export interface RegistrySettings {
  deleteEnabled: boolean;
  maxManifestSize: number;
  /** How long a manifest push's claim on its digests holds off GC (storage.gc.claimWindow), in ms. */
  gcClaimWindowMs?: number;
}

/** What every handler gets: the stores (its only way to storage), settings, the matched route and the caller's token. */
export interface Context<R extends Route = Route> {
  route: R;
  token: VerifiedToken;
  blobs: BlobStore;
  uploads: UploadStore;
  manifests: ManifestStore;
  catalog: CatalogStore;
  settings: RegistrySettings;
  log: Logger;
  /** Where pushes, pulls and deletes are reported (see src/events). */
  events: EventSink;
}

export type Handler<R extends Route = Route> = (ctx: Context<R>, req: Request, res: Response) => Promise<void>;

/** Link header for the next page of a paginated list. */
export function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}

/** Parses ?n=; undefined when absent. */
export function pageSize(value: unknown, invalid: (v: string) => Error): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d{1,6}$/.test(value)) throw invalid(String(value));
  return Number(value);
}
