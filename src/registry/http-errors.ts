import type { NextFunction, Request, Response } from 'express';
import {
  InvalidPathError,
  StorageFullError,
  StorageIOError,
  StorageReadOnlyError,
  StorageUnavailableError,
} from '../storage/driver.js';
import { UpstreamDigestError, UpstreamNotFoundError, UpstreamThrottledError, UpstreamUnavailableError } from '../cache/errors.js';
import { errors, RegistryError } from './errors.js';
import {
  DescriptorSizeMismatch,
  DigestMismatch,
  ManifestBlobUnknown,
  ManifestInvalid,
  ManifestUnknown,
  NameUnknown,
  RangeInvalid,
  ReferenceInvalid,
  SizeInvalid,
  StoreError,
  TagBusy,
  UploadUnknown,
} from './store/errors.js';

export function errorBody(code: string, message: string, detail?: unknown) {
  return { errors: [{ code, message, detail: detail ?? null }] };
}

/** What a store refused, as the OCI error the distribution spec names for it. */
function fromStore(err: StoreError): RegistryError {
  if (err instanceof UploadUnknown) return errors.uploadUnknown();
  if (err instanceof RangeInvalid) return errors.uploadRangeInvalid(err.stored);
  if (err instanceof SizeInvalid) return errors.sizeInvalid(err.why);
  if (err instanceof DigestMismatch) return errors.digestInvalid(err.why, { digest: err.digest });
  if (err instanceof ReferenceInvalid) return err.kind === 'digest' ? errors.digestMalformed(err.reference) : errors.tagInvalid(err.reference);
  if (err instanceof ManifestInvalid) return errors.manifestInvalid(err.why);
  if (err instanceof DescriptorSizeMismatch) return errors.descriptorSizeInvalid(err.descriptor, err.digest, err.declared, err.stored);
  if (err instanceof ManifestBlobUnknown) return errors.manifestBlobUnknown(err.digest);
  if (err instanceof ManifestUnknown) return errors.manifestUnknown(err.reference);
  if (err instanceof NameUnknown) return errors.nameUnknown(err.repository);
  if (err instanceof TagBusy) {
    const e = new RegistryError('UNAVAILABLE', err.message, { tag: err.tag }, 503);
    e.headers['Retry-After'] = '5';
    return e;
  }
  return new RegistryError('UNKNOWN', 'internal error');
}

/** Client gone mid-request: nothing to answer. */
function isClientAbort(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err as Error)?.message === 'aborted';
}

/** The one place registry errors become HTTP responses, in the OCI error format. */
export function registryErrorHandler(err: unknown, req: Request, res: Response, _next: NextFunction): void {
  let e: RegistryError;
  if (err instanceof RegistryError) e = err;
  else if (err instanceof StoreError) e = fromStore(err);
  else if (err instanceof StorageFullError) {
    // 507 Insufficient Storage (RFC 4918): the request was fine, the store has no room
    // for it. Retrying at once will not help, so no Retry-After.
    req.log.warn({ err: err.message }, 'storage full');
    e = new RegistryError('UNAVAILABLE', 'the registry storage is full: pushes fail until space is freed', { storage: 'full' }, 507);
  } else if (err instanceof StorageReadOnlyError) {
    req.log.warn({ err: err.message }, 'storage read-only');
    e = new RegistryError('UNAVAILABLE', 'the registry storage is read-only: pushes and deletes fail until it is writable again', { storage: 'read-only' }, 503);
  } else if (err instanceof StorageIOError) {
    req.log.error({ err: err.message }, 'storage I/O error');
    e = new RegistryError('UNAVAILABLE', 'the registry storage is failing (I/O errors); try again later', { storage: 'failing' }, 503);
    e.headers['Retry-After'] = '10';
  } else if (err instanceof StorageUnavailableError) {
    req.log.warn({ err: err.message }, 'storage unavailable');
    e = errors.unavailable('the storage backend is unreachable; try again later');
    e.headers['Retry-After'] = '10';
  } else if (err instanceof UpstreamNotFoundError) {
    const code = err.kind === 'manifest' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN';
    e = new RegistryError(code, `${err.kind === 'manifest' ? 'manifest' : 'blob'} unknown: ${err.message}`, { reference: err.reference, upstream: err.upstream, upstreamStatus: err.status });
  } else if (err instanceof UpstreamThrottledError) {
    req.log.warn({ upstream: err.upstream }, 'upstream rate-limits the cache');
    e = new RegistryError('TOOMANYREQUESTS', `too many requests: ${err.message}`, { upstream: err.upstream });
    if (err.retryAfter) e.headers['Retry-After'] = err.retryAfter;
  } else if (err instanceof UpstreamUnavailableError || err instanceof UpstreamDigestError) {
    req.log.warn({ upstream: err.upstream, err: err.message }, 'upstream unavailable');
    e = new RegistryError('UNAVAILABLE', `service unavailable: ${err.message}`, { upstream: err.upstream });
  } else if (err instanceof InvalidPathError) e = errors.nameInvalid(err.path);
  else if (isClientAbort(err)) {
    req.log.info({ err: (err as Error).message }, 'client went away');
    if (!res.headersSent) res.status(400);
    res.destroy();
    return;
  } else {
    req.log.error({ err }, 'unexpected error');
    e = new RegistryError('UNKNOWN', 'internal error');
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  res.status(e.status);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  res.json(errorBody(e.code, e.message, e.detail));
}
