import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { Digest } from '../../oci/reference.js';
import { PathNotFoundError, type FileWriter, type StorageDriver } from '../../storage/driver.js';
import { chunksOf } from '../../util/chunks.js';
import type { BlobStore } from './blobs.js';
import { DigestMismatch, RangeInvalid, SizeInvalid, UploadUnknown } from './errors.js';
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

export interface FinishOptions extends AppendOptions {
  /**
   * A SHA-256 the caller keeps of exactly the bytes `body` carries, each chunk added
   * before it is handed over (the pull-through cache hashes them anyway, to check the
   * digest before its client gets the last byte). For a whole blob it stands in for the
   * store's own hash, so the bytes are hashed once; the digest is still checked against
   * it before anything is committed. The store reads it with copy(): the caller must not
   * finish it with digest().
   */
  sha256?: crypto.Hash;
}

/**
 * Upload sessions, the one owner of an upload's life: start, append, status, finish,
 * cancel and purge. Everything about a session lives in storage (its data file and
 * start time), so an upload survives a restart and can be finished by another
 * registry instance; one UploadStore per process serves every request and the purge.
 *
 * The data file is written by driver writers. Each PATCH appends with a writer it
 * closes (durable, resumable, not yet final); the finishing PUT appends its last chunk,
 * if any, with a writer it commits once the digest checked out, and the committed bytes
 * are then moved into the blob store. A cancel (DELETE, purge, failed digest) cancels a
 * writer on the data, so the driver drops everything it holds for the upload (S3's
 * multipart upload and parts, Swift's segments), not only what a delete would find.
 * Nothing becomes visible in the blob store before its digest checked out.
 *
 * The digest is computed while the bytes stream in; the running hash is kept in memory
 * as a fast path and recomputed from storage whenever it is missing or out of step.
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

  /** Bytes received so far; UploadUnknown when there is no such session. */
  async size(name: string, id: string): Promise<number> {
    if (!isUploadId(id)) throw new UploadUnknown();
    try {
      await this.driver.stat(paths.uploadStarted(name, id));
    } catch (e) {
      if (e instanceof PathNotFoundError) throw new UploadUnknown();
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
    return this.exclusive(name, id, async () => {
      const stored = await this.size(name, id);
      const { writer, state } = await this.open(name, id, stored, opts);
      try {
        await this.stream(writer, body, opts, state);
        await writer.close();
      } catch (e) {
        await this.rollBack(name, id, writer);
        throw e;
      }
      this.keepHash(name, id, writer, state);
      return writer.size;
    });
  }

  /**
   * A writer appending to an upload that holds `stored` bytes, with the running hash
   * when it is in step. The hash leaves the cache until the caller puts it back, so a
   * failed append can never leave a hash of bytes the upload does not hold.
   */
  private async open(name: string, id: string, stored: number, opts: AppendOptions): Promise<{ writer: FileWriter; state: HashState | undefined }> {
    if (opts.start !== undefined && opts.start !== stored) throw new RangeInvalid(stored);
    const key = this.key(name, id);
    let state = this.hashes.get(key);
    if (state && state.size !== stored) state = undefined;
    this.hashes.delete(key);
    const writer = await this.driver.writer(paths.uploadData(name, id), true);
    return { writer, state };
  }

  /**
   * Streams a body into a writer, hashing as it goes. All or nothing: the caller rolls
   * the writer back when this throws (client gone, store full, wrong length), so the
   * upload holds exactly what earlier answers acknowledged: GET and the Range header
   * report that, and the client's retry of the failed chunk carries the same
   * Content-Range as its first try.
   */
  private async stream(writer: FileWriter, body: Readable, opts: AppendOptions, state: HashState | undefined): Promise<void> {
    let received = 0;
    for await (const chunk of chunksOf(body)) {
      received += chunk.length;
      if (opts.length !== undefined && received > opts.length) throw new SizeInvalid('more bytes than announced');
      state?.hash.update(chunk);
      await writer.write(chunk);
    }
    if (opts.length !== undefined && received !== opts.length) throw new SizeInvalid(`got ${received} of ${opts.length} bytes`);
  }

  private keepHash(name: string, id: string, writer: FileWriter, state: HashState | undefined): void {
    if (!state) return;
    state.size = writer.size;
    this.hashes.set(this.key(name, id), state);
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
   * Completes an upload: appends an optional last chunk, checks the digest, commits the
   * writer, links the blob into the repository and moves the bytes into the blob store
   * (unless an identical blob is already there).
   *
   * A body sent to an upload that holds nothing yet is the whole blob in one request
   * (POST ?digest=, or PUT right after POST). The client has no session to resume
   * then, so when that request fails the session is cancelled at once with all its
   * bytes: a refused push never keeps the store full.
   */
  finish(name: string, id: string, digest: Digest, body?: Readable, opts: FinishOptions = {}): Promise<number> {
    return this.exclusive(name, id, async () => {
      const stored = await this.size(name, id);
      const whole = body !== undefined && stored === 0;
      let writer: FileWriter | undefined;
      try {
        const opened = await this.open(name, id, stored, body ? opts : {});
        writer = opened.writer;
        // The caller's hash can stand for the upload's only when the body is all it holds.
        const given: HashState | undefined = whole && opts.sha256 ? { hash: opts.sha256, size: 0 } : undefined;
        const state = given ?? opened.state;
        if (body) {
          try {
            await this.stream(writer, body, opts, given ? undefined : state);
          } catch (e) {
            if (!whole) await this.rollBack(name, id, writer);
            throw e;
          }
          // The hash now covers the last chunk too; without this it would look out of
          // step, and complete() would re-read the whole upload from storage to hash it.
          if (state) state.size = writer.size;
        }
        await this.complete(name, id, digest, writer, state);
        return writer.size;
      } catch (e) {
        // A digest mismatch has cancelled the upload already.
        if (whole && !(e instanceof DigestMismatch)) await this.discard(name, id, writer).catch(() => undefined);
        throw e;
      }
    });
  }

  /**
   * Digest check, commit, link, move. With the running hash at hand the digest is
   * checked before the commit, and content that does not match is cancelled unseen.
   * Without it (a restart, another instance, another algorithm) the bytes must be read,
   * and object stores serve only committed content: the writer commits first, then the
   * committed bytes are hashed. That exposes nothing either, since the data file sits
   * in the session, which no read path serves; only the link and the move below make a
   * blob visible, and they come after the check in both orders.
   */
  private async complete(name: string, id: string, digest: Digest, writer: FileWriter, state: HashState | undefined): Promise<void> {
    const size = writer.size;
    const known = digest.algorithm === 'sha256' && state !== undefined && state.size === size;
    if (known && state.hash.copy().digest('hex') !== digest.hex) {
      await this.discard(name, id, writer);
      throw new DigestMismatch(digest.value, 'the content does not match the digest');
    }
    await writer.commit();
    // Should the link or the move below fail (a full store), a retried PUT needs no re-read.
    if (known) this.keepHash(name, id, writer, state);
    if (!known && (await this.hashStored(name, id, digest.algorithm, size)) !== digest.hex) {
      await this.remove(name, id);
      throw new DigestMismatch(digest.value, 'the content does not match the digest');
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

  /** Ends an upload without a blob (DELETE): its writer is cancelled and the session dropped. */
  async cancel(name: string, id: string): Promise<void> {
    await this.size(name, id); // UploadUnknown for unknown sessions
    await this.exclusive(name, id, () => this.discard(name, id));
  }

  /**
   * Cancels the upload's data through a writer, `writer` or a fresh one, so the driver
   * releases what only it knows of (multipart uploads, segments), then removes the
   * session. A data file whose writer cannot be opened or cancelled (damaged upload
   * state, a full disk) is removed with the session all the same: the delete takes
   * whatever the driver can find, and fails, as it should, when the store is unreachable.
   */
  private async discard(name: string, id: string, writer?: FileWriter): Promise<void> {
    this.hashes.delete(this.key(name, id));
    try {
      await (writer ?? (await this.driver.writer(paths.uploadData(name, id), true))).cancel();
    } catch {
      // The delete below removes what is left.
    }
    await this.remove(name, id);
  }

  private async remove(name: string, id: string): Promise<void> {
    this.hashes.delete(this.key(name, id));
    try {
      await this.driver.delete(paths.upload(name, id));
    } catch (e) {
      if (!(e instanceof PathNotFoundError)) throw e;
    }
  }

  /** The digest of the committed data file, read once. */
  private async hashStored(name: string, id: string, algorithm: Digest['algorithm'], size: number): Promise<string> {
    const hash = crypto.createHash(algorithm);
    if (size > 0) for await (const chunk of await this.driver.reader(paths.uploadData(name, id))) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }

  /** Cancels sessions older than maxAgeMs in every repository; returns how many. */
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
          if (!(e instanceof PathNotFoundError)) throw e;
        }
        if (Date.now() - started > maxAgeMs) {
          await this.exclusive(name, id, () => this.discard(name, id));
          removed++;
        }
      }
    }
    return removed;
  }
}
