import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { Digest } from '../../oci/reference.js';
import { PathNotFoundError, type FileWriter, type StorageDriver } from '../../storage/driver.js';
import { chunksOf } from '../../util/chunks.js';
import { errors, RegistryError } from '../errors.js';
import type { BlobStore } from './blobs.js';
import { paths } from './paths.js';

const UPLOAD_ID = /^[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$/;

export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

/** Running SHA-256 of an upload's bytes, valid while `size` matches what is stored. */
interface HashState {
  hash: crypto.Hash;
  size: number;
}

export interface AppendOptions {
  /** Offset the client says this chunk starts at (Content-Range); checked against the stored size. */
  start?: number;
  /** Length the client announced; the chunk must have exactly this many bytes. */
  length?: number;
}

/**
 * Upload sessions. Everything about a session lives in storage (its data file and
 * start time), so an upload survives a restart and can be finished by another
 * registry instance. The digest is computed while the bytes stream in; the running
 * hash is kept in memory as a fast path and recomputed from storage whenever it is
 * missing or out of step. Bytes reach the blob store only after their digest checked
 * out, so a partial or corrupt upload is never served.
 */
export class UploadStore {
  private readonly hashes = new LRUCache<string, HashState>({ max: 10_000 });
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
  ) {}

  private key(name: string, id: string): string {
    return `${name}\0${id}`;
  }

  /** Runs fn with the upload to itself; concurrent requests on one upload queue up. */
  private async exclusive<T>(name: string, id: string, fn: () => Promise<T>): Promise<T> {
    const key = this.key(name, id);
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(fn);
    this.locks.set(key, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === run) this.locks.delete(key);
    }
  }

  async start(name: string): Promise<string> {
    const id = crypto.randomUUID();
    try {
      await this.driver.putContent(paths.uploadStarted(name, id), Buffer.from(new Date().toISOString()));
    } catch (e) {
      // A full store may have taken the session's directory but not its file.
      await this.remove(name, id).catch(() => undefined);
      throw e;
    }
    this.hashes.set(this.key(name, id), { hash: crypto.createHash('sha256'), size: 0 });
    return id;
  }

  /** Bytes received so far; BLOB_UPLOAD_UNKNOWN when there is no such session. */
  async size(name: string, id: string): Promise<number> {
    if (!isUploadId(id)) throw errors.uploadUnknown();
    try {
      await this.driver.stat(paths.uploadStarted(name, id));
    } catch (e) {
      if (e instanceof PathNotFoundError) throw errors.uploadUnknown();
      throw e;
    }
    try {
      return (await this.driver.stat(paths.uploadData(name, id))).size;
    } catch (e) {
      if (e instanceof PathNotFoundError) return 0;
      throw e;
    }
  }

  /** Appends a request body to the upload; returns the new size. */
  append(name: string, id: string, body: Readable, opts: AppendOptions = {}): Promise<number> {
    return this.exclusive(name, id, async () => this.appendLocked(name, id, body, opts, await this.size(name, id)));
  }

  /**
   * Streams a body onto an upload that holds `stored` bytes. All or nothing: the body
   * counts only once all of it is stored. One that fails mid-way (client gone, store
   * full, wrong length) is rolled back, so the upload holds exactly what earlier
   * answers acknowledged: GET and the Range header report that, and the client's retry
   * of the failed chunk carries the same Content-Range as its first try.
   */
  private async appendLocked(name: string, id: string, body: Readable, opts: AppendOptions, stored: number): Promise<number> {
    if (opts.start !== undefined && opts.start !== stored) throw errors.uploadRangeInvalid(stored);
    const key = this.key(name, id);
    let state = this.hashes.get(key);
    if (state && state.size !== stored) state = undefined;
    this.hashes.delete(key); // re-added only if this append completes cleanly
    const writer = await this.driver.writer(paths.uploadData(name, id), true);
    let received = 0;
    try {
      for await (const chunk of chunksOf(body)) {
        received += chunk.length;
        if (opts.length !== undefined && received > opts.length) throw errors.sizeInvalid('more bytes than announced');
        state?.hash.update(chunk);
        await writer.write(chunk);
      }
      if (opts.length !== undefined && received !== opts.length) throw errors.sizeInvalid(`got ${received} of ${opts.length} bytes`);
      await writer.close();
    } catch (e) {
      await this.rollBack(name, id, writer);
      throw e;
    }
    if (state) {
      state.size = writer.size;
      this.hashes.set(key, state);
    }
    return writer.size;
  }

  /** Drops what a failed writer accepted; an upload that may still hold such bytes is not kept. */
  private async rollBack(name: string, id: string, writer: FileWriter): Promise<void> {
    try {
      // Object-store writers have nothing to drop: unclosed bytes never counted there.
      await writer.abort?.();
    } catch {
      await this.remove(name, id).catch(() => undefined);
    }
  }

  /**
   * Completes an upload: appends an optional last chunk, checks the digest, moves the
   * bytes into the blob store (unless an identical blob is already there) and links
   * the blob into the repository.
   *
   * A body sent to an upload that holds nothing yet is the whole blob in one request
   * (POST ?digest=, or PUT right after POST). The client has no session to resume
   * then, so when that request fails the session goes at once with all its bytes:
   * a refused push never keeps the store full.
   */
  finish(name: string, id: string, digest: Digest, body?: Readable, opts: AppendOptions = {}): Promise<number> {
    return this.exclusive(name, id, async () => {
      const stored = await this.size(name, id);
      const whole = body !== undefined && stored === 0;
      try {
        const size = body ? await this.appendLocked(name, id, body, opts, stored) : stored;
        await this.complete(name, id, digest, size);
        return size;
      } catch (e) {
        if (whole) await this.remove(name, id).catch(() => undefined);
        throw e;
      }
    });
  }

  private async complete(name: string, id: string, digest: Digest, size: number): Promise<void> {
    const actual = await this.digestOf(name, id, digest.algorithm, size);
    if (actual !== digest.hex) {
      await this.remove(name, id);
      throw errors.digestInvalid('the content does not match the digest', { digest: digest.value });
    }
    const existing = await this.blobs.size(digest);
    // The link goes first: a link without its blob is invisible (a blob is served only
    // when linked and present), while a blob moved in before a link that then fails
    // (a full store) would hold its space with nothing pointing at it.
    await this.blobs.link(name, digest);
    if (existing !== size) {
      if (size === 0) await this.driver.putContent(paths.blobData(digest), Buffer.alloc(0));
      else await this.driver.move(paths.uploadData(name, id), paths.blobData(digest));
    }
    await this.remove(name, id);
  }

  async cancel(name: string, id: string): Promise<void> {
    await this.size(name, id); // BLOB_UPLOAD_UNKNOWN for unknown sessions
    await this.exclusive(name, id, () => this.remove(name, id));
  }

  private async remove(name: string, id: string): Promise<void> {
    this.hashes.delete(this.key(name, id));
    try {
      await this.driver.delete(paths.upload(name, id));
    } catch (e) {
      if (!(e instanceof PathNotFoundError)) throw e;
    }
  }

  private async digestOf(name: string, id: string, algorithm: Digest['algorithm'], size: number): Promise<string> {
    const state = this.hashes.get(this.key(name, id));
    if (algorithm === 'sha256' && state && state.size === size) return state.hash.copy().digest('hex');
    // The running hash is gone (restart, another instance) or another algorithm is
    // wanted: read the stored bytes once.
    const hash = crypto.createHash(algorithm);
    if (size > 0) for await (const chunk of await this.driver.reader(paths.uploadData(name, id))) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  /** Removes sessions older than maxAgeMs in every repository; returns how many. */
  async purge(repositories: string[], maxAgeMs: number): Promise<number> {
    let removed = 0;
    for (const name of repositories) {
      let ids: string[];
      try {
        ids = (await this.driver.list(paths.uploadsRoot(name))).map((p) => p.slice(p.lastIndexOf('/') + 1));
      } catch (e) {
        if (e instanceof PathNotFoundError) continue;
        throw e;
      }
      for (const id of ids) {
        let started = 0;
        try {
          started = Date.parse((await this.driver.getContent(paths.uploadStarted(name, id))).toString()) || 0;
        } catch (e) {
          if (!(e instanceof PathNotFoundError) && !(e instanceof RegistryError)) throw e;
        }
        if (Date.now() - started > maxAgeMs) {
          await this.remove(name, id);
          removed++;
        }
      }
    }
    return removed;
  }
}
