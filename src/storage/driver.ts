import type { Readable } from 'node:stream';

/**
 * The storage driver interface. It is shaped for object stores as much as for disks
 * (Docker Distribution's storagedriver is the model): whole small objects, streams in
 * and out, stat, list, move, delete, reads at an offset and resumable writes.
 *
 * Paths are absolute, '/'-separated, and made only of [A-Za-z0-9._:-] components;
 * drivers reject anything else with InvalidPathError, so a path can never leave the
 * driver's root.
 */
/**
 * `durable: false` marks a write or delete that only has to be atomic and visible to
 * every reader at once, not to survive a crash of the host: GC's coordination objects
 * (in-use markers, tombstones), which order processes running at the same moment and
 * mean nothing to processes started after a crash. A driver may then skip flushing
 * to stable storage (the filesystem's fsync); object stores ignore it.
 */
export interface WriteOptions {
  durable?: boolean;
}

export interface StorageDriver {
  readonly name: string;

  /** The whole content of a small object. Throws PathNotFoundError. */
  getContent(path: string): Promise<Buffer>;

  /** Stores a small object atomically: readers see the old or the new content, never a mix. */
  putContent(path: string, content: Buffer, opts?: WriteOptions): Promise<void>;

  /**
   * Stores a small object only when nothing is at the path yet, atomically like
   * putContent; false when an object was already there (it is left as it was). Of
   * any number of concurrent calls on one path, on any host, at most one returns true:
   * leases are built on it. A store that cannot decide this (an S3 API without
   * conditional writes) throws ConditionalWriteUnsupportedError rather than guess.
   */
  putExclusive(path: string, content: Buffer): Promise<boolean>;

  /** Streams an object from `offset`. Throws PathNotFoundError, InvalidOffsetError. */
  reader(path: string, offset?: number): Promise<Readable>;

  /**
   * Opens a resumable writer. With `append`, writing continues after what earlier
   * writers to the same path closed or committed (possibly in another process or on
   * another host); without it any previous content is discarded. What close() has made
   * durable is reported by `stat(path).size`, but only commit() makes it an object that
   * can be read and moved: an object store cannot serve an upload in progress. The
   * registry commits a writer when it finishes an upload and cancels one when it drops
   * an upload, so drivers never have to guess.
   */
  writer(path: string, append: boolean): Promise<FileWriter>;

  /** Size and modification time; directories (prefixes) report isDir. Throws PathNotFoundError. */
  stat(path: string): Promise<FileInfo>;

  /** Direct children of a directory (prefix), as full paths. Throws PathNotFoundError. */
  list(path: string): Promise<string[]>;

  /** Moves an object, replacing the destination atomically. Throws PathNotFoundError. */
  move(source: string, dest: string): Promise<void>;

  /** Deletes an object or a whole directory (prefix). Throws PathNotFoundError. */
  delete(path: string, opts?: WriteOptions): Promise<void>;

  /**
   * Removes the directory and every directory below it that holds no object, and never
   * an object: whatever a racing write creates meanwhile stays, with the directories
   * that lead to it. Only drivers with real directories have it; on an object store a
   * prefix without objects does not exist, so there is nothing to remove.
   */
  pruneEmpty?(path: string): Promise<void>;

  /**
   * A URL from which a client can fetch the object directly (Swift TempURL, S3
   * presigned URL), or undefined when the driver cannot or is configured not to.
   */
  redirectURL?(path: string, method: 'GET' | 'HEAD'): Promise<string | undefined>;

  /**
   * Throws when the backing store is unreachable; used by the health checker. A store
   * that answers but cannot take writes (full, read-only) is not unreachable: the
   * driver reports that as its condition instead, since reads still work.
   */
  healthCheck?(): Promise<StorageCondition | void>;

  /** Releases connections and timers. */
  close?(): Promise<void>;
}

export interface FileInfo {
  path: string;
  size: number;
  modTime: Date;
  isDir: boolean;
}

/** What a health check found about a store that answers. */
export interface StorageCondition {
  /** 'ok', or why writes fail while reads still work. */
  writable: 'ok' | 'full' | 'read-only';
  freeBytes?: number;
  totalBytes?: number;
  /** The last write that failed because of the store itself (full, read-only, I/O error), if no write succeeded since. */
  lastWriteError?: { message: string; at: string };
}

/**
 * A writer's bytes count only once close() or commit() succeeded: a writer that ends
 * any other way (abort(), a failed close(), a crash of an object-store writer) leaves
 * the object as earlier writers closed it, so a failed request never adds bytes that
 * the client was not told about.
 */
export interface FileWriter {
  /** Bytes in the file: what earlier writers closed plus what this one accepted. */
  readonly size: number;
  /** Appends a chunk; the promise resolves when the driver can take more (backpressure). */
  write(chunk: Buffer): Promise<void>;
  /** Makes what was written durable so a later writer can append to it; ends this writer. */
  close(): Promise<void>;
  /** Makes the whole content durable and readable at the path; ends this writer. */
  commit(): Promise<void>;
  /** Discards everything written to the path, including by earlier writers. */
  cancel(): Promise<void>;
  /**
   * Ends this writer and drops what it accepted; what earlier writers closed stays.
   * Drivers that write in place (filesystem, memory) must implement it. Object-store
   * writers record their bytes only at close() (Swift's manifest, S3's upload state),
   * so for them a writer that is never closed already has this effect, and they may
   * leave it out.
   */
  abort?(): Promise<void>;
}

export class StorageError extends Error {
  override name = 'StorageError';
}

export class PathNotFoundError extends StorageError {
  override name = 'PathNotFoundError';
  constructor(readonly path: string) {
    super(`path not found: ${path}`);
  }
}

export class InvalidPathError extends StorageError {
  override name = 'InvalidPathError';
  constructor(readonly path: string) {
    super(`invalid path: ${JSON.stringify(path)}`);
  }
}

export class InvalidOffsetError extends StorageError {
  override name = 'InvalidOffsetError';
  constructor(
    readonly path: string,
    readonly offset: number,
  ) {
    super(`invalid offset ${offset} for ${path}`);
  }
}

/** The store cannot create an object only-if-absent, so nothing that needs it (the GC lease) can run on it. */
export class ConditionalWriteUnsupportedError extends StorageError {
  override name = 'ConditionalWriteUnsupportedError';
}

/** The backing store cannot be reached or is failing; the registry answers 503. */
export class StorageUnavailableError extends StorageError {
  override name = 'StorageUnavailableError';
}

/**
 * The store has no room for the write (ENOSPC: no space or no inodes left, EDQUOT:
 * quota exhausted). Reads still work, and writes work again once space is freed.
 */
export class StorageFullError extends StorageUnavailableError {
  override name = 'StorageFullError';
}

/** The store refuses every write (EROFS); reads still work. */
export class StorageReadOnlyError extends StorageUnavailableError {
  override name = 'StorageReadOnlyError';
}

/** The device under the store reports I/O errors (EIO). */
export class StorageIOError extends StorageUnavailableError {
  override name = 'StorageIOError';
}

const PATH_RE = /^(\/[A-Za-z0-9._:-]+)+$/;

/** Throws InvalidPathError unless `p` is a clean absolute driver path. */
export function checkPath(p: string): void {
  if (!PATH_RE.test(p) || p.split('/').some((c) => c === '.' || c === '..')) throw new InvalidPathError(p);
}

/** Like checkPath, but "/" (the root) is also accepted, for list and delete. */
export function checkDirPath(p: string): void {
  if (p !== '/') checkPath(p);
}
