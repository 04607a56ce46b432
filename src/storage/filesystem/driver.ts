import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import {
  checkDirPath,
  checkPath,
  InvalidOffsetError,
  PathNotFoundError,
  StorageError,
  StorageFullError,
  StorageIOError,
  StorageReadOnlyError,
  type FileInfo,
  type FileWriter,
  type StorageCondition,
  type StorageDriver,
  type WriteOptions,
} from '../driver.js';

export interface FilesystemOptions {
  root: string;
  /** fsync files and directories before a write is acknowledged. */
  fsync: boolean;
}

const TMP_PREFIX = '.tmp-';
/**
 * fs.readFile through its callback: for the small files a registry reads most (links,
 * manifests) it takes fewer thread-pool round trips than fs/promises' FileHandle
 * version, about 1.7 times the reads per second here.
 */
const readFile = promisify(fs.readFile);
const openFd = promisify(fs.open);
const readFd = promisify(fs.read);
const closeFd = promisify(fs.close);
/** Links and most manifests fit; a file this size or larger is read again whole. */
const SMALL_READ = 8 * 1024;

/**
 * A whole file in three thread-pool round trips (open, read, close) where readFile
 * takes four (it stats first): a read that comes back short of the buffer has reached
 * the end. Larger files fall back to readFile.
 */
async function readWhole(file: string): Promise<Buffer> {
  const fd = await openFd(file, 'r');
  let n: number;
  const buf = Buffer.allocUnsafe(SMALL_READ);
  try {
    ({ bytesRead: n } = await readFd(fd, buf, 0, SMALL_READ, 0));
  } finally {
    await closeFd(fd);
  }
  return n < SMALL_READ ? Buffer.from(buf.subarray(0, n)) : readFile(file);
}
/** How often a write is redone when a racing delete removed its directory. */
const RACING_DELETE_RETRIES = 5;

/**
 * Runs a write that creates its directory first. A delete of that directory racing it
 * (GC removing a link while a push writes it again) may remove the directory, or the
 * temporary file in it, between the write's steps, which then fail with ENOENT. The
 * write is then ordered after that delete and done again, so a racing delete never
 * fails a write. `mayRedo` says whether this ENOENT may be such a race.
 */
async function redoAfterRacingDelete<T>(write: () => Promise<T>, mayRedo: () => boolean | Promise<boolean> = () => true): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= RACING_DELETE_RETRIES || !(await mayRedo())) throw e;
    }
  }
}

function notFound(e: unknown, p: string): never {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') throw new PathNotFoundError(p);
  throw e;
}

async function exists(real: string): Promise<boolean> {
  try {
    await fsp.lstat(real);
    return true;
  } catch {
    return false;
  }
}

/** Free space below which the store counts as full: no blob fits any more. */
const FULL_BELOW = 1024 * 1024;

/**
 * The storage error for a failure of the filesystem itself, or undefined for any other
 * error (which then keeps its own meaning, e.g. ENOENT). The path names the driver
 * path only, never the real directory.
 */
function storageFault(e: unknown, p: string): StorageError | undefined {
  if (e instanceof StorageError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StorageFullError(`the store is full (${code} writing ${p})`);
  if (code === 'EROFS') return new StorageReadOnlyError(`the store is read-only (EROFS writing ${p})`);
  if (code === 'EIO') return new StorageIOError(`the store's device reports I/O errors (EIO on ${p})`);
  return undefined;
}

/**
 * Stores everything under one directory. Small objects and moves are atomic
 * (temporary file in the same directory, fsync, rename, fsync of the directory), so a
 * crash at any moment leaves either the old or the new content. Writers append to the
 * file in place; the registry only ever writes blob data to upload paths and moves it
 * into place after the digest is verified.
 */
export class FilesystemDriver implements StorageDriver {
  readonly name = 'filesystem';
  private readonly root: string;
  /** The last write the filesystem refused, until a write succeeds again (for the health check). */
  private lastWriteError: { message: string; at: string } | undefined;

  constructor(private readonly opts: FilesystemOptions) {
    this.root = path.resolve(opts.root);
    fs.mkdirSync(this.root, { recursive: true });
  }

  /**
   * Runs one driver operation, turning failures of the filesystem itself (full,
   * read-only, I/O errors) into storage errors. Writes (kind 'write') also record their
   * outcome for the health check: a refused write is reported until one succeeds.
   */
  private async op<T>(p: string, kind: 'read' | 'write' | 'cleanup', run: () => Promise<T>): Promise<T> {
    try {
      const v = await run();
      if (kind === 'write') this.lastWriteError = undefined;
      return v;
    } catch (e) {
      throw this.fault(e, p, kind === 'write');
    }
  }

  private fault(e: unknown, p: string, write: boolean): unknown {
    const fault = storageFault(e, p);
    if (!fault) return e;
    if (write && !(fault instanceof PathNotFoundError)) this.lastWriteError = { message: fault.message, at: new Date().toISOString() };
    return fault;
  }

  /** Maps a checked driver path to the real path; checkPath already refused '..'. */
  private real(p: string): string {
    return p === '/' ? this.root : path.join(this.root, p);
  }

  private async syncDir(dir: string): Promise<void> {
    if (!this.opts.fsync) return;
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(dir, 'r');
      await fh.sync();
    } catch {
      // Some filesystems refuse fsync on a directory; the rename itself is still atomic.
    } finally {
      await fh?.close();
    }
  }

  async getContent(p: string): Promise<Buffer> {
    checkPath(p);
    return this.op(p, 'read', async () => {
      try {
        return await readWhole(this.real(p));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw new PathNotFoundError(p);
        return notFound(e, p);
      }
    });
  }

  async putContent(p: string, content: Buffer, opts?: WriteOptions): Promise<void> {
    checkPath(p);
    return this.op(p, 'write', () => this.putContentNow(p, content, opts?.durable !== false));
  }

  private putContentNow(p: string, content: Buffer, durable = true): Promise<void> {
    return redoAfterRacingDelete(() => this.putContentOnce(p, content, durable));
  }

  private async putContentOnce(p: string, content: Buffer, durable: boolean): Promise<void> {
    const target = this.real(p);
    const dir = path.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `${TMP_PREFIX}${crypto.randomBytes(8).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(content);
      if (this.opts.fsync && durable) await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    try {
      await fh.close();
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    try {
      await fsp.rename(tmp, target);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    if (durable) await this.syncDir(dir);
  }

  async putExclusive(p: string, content: Buffer): Promise<boolean> {
    checkPath(p);
    return this.op(p, 'write', () => redoAfterRacingDelete(() => this.putExclusiveOnce(p, content)));
  }

  private async putExclusiveOnce(p: string, content: Buffer): Promise<boolean> {
    // The content is written to a temporary file first and then hard-linked into
    // place: link() fails with EEXIST when the target exists (also over NFS), and a
    // reader never sees a partly written object, which an open('wx') would show.
    const target = this.real(p);
    const dir = path.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `${TMP_PREFIX}${crypto.randomBytes(8).toString('hex')}`);
    try {
      const fh = await fsp.open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(content);
        if (this.opts.fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await fsp.link(tmp, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
      await this.syncDir(dir);
      return true;
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async reader(p: string, offset = 0): Promise<Readable> {
    checkPath(p);
    return this.op(p, 'read', () => this.openReader(p, offset));
  }

  private async openReader(p: string, offset: number): Promise<Readable> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.real(p), 'r');
    } catch (e) {
      return notFound(e, p);
    }
    let st: fs.Stats;
    try {
      st = await fh.stat();
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
    if (st.isDirectory()) {
      await fh.close();
      throw new PathNotFoundError(p);
    }
    if (offset < 0 || offset > st.size) {
      await fh.close();
      throw new InvalidOffsetError(p, offset);
    }
    return fh.createReadStream({ start: offset, highWaterMark: 1024 * 1024, autoClose: true });
  }

  async writer(p: string, append: boolean): Promise<FileWriter> {
    checkPath(p);
    const target = this.real(p);
    const fh = await this.op(p, 'write', () =>
      redoAfterRacingDelete(
        async () => {
          await fsp.mkdir(path.dirname(target), { recursive: true });
          return fsp.open(target, append ? 'a' : 'w', 0o644);
        },
        // An append is never redone: its earlier data went with the directory.
        () => !append,
      ),
    );
    // What earlier writers closed: a writer that does not close successfully truncates
    // the file back to this, so its bytes never count (see FileWriter).
    let start: number;
    try {
      start = append ? (await fh.stat()).size : 0;
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw this.fault(e, p, false);
    }
    let size = start;
    let done = false;
    const fsync = this.opts.fsync;
    // Network reads arrive in ~16 KiB pieces; one syscall (and thread-pool round trip)
    // per piece would cap throughput, so pieces are copied into 1 MiB batches (the
    // caller may reuse its buffer once write() resolves), one batch being written
    // while the next fills.
    const BATCH = 1024 * 1024;
    // Two buffers take turns (one being written, one filling): no garbage per batch.
    let spare: Buffer | undefined = Buffer.allocUnsafe(BATCH);
    let stage: Buffer = Buffer.allocUnsafe(BATCH);
    let staged = 0;
    // Background writes and syncs never reject: their first failure is kept here and
    // reported by the next call. A rejected promise nobody awaits yet (the caller is
    // waiting for more network data) would otherwise be an unhandled rejection.
    let failure: unknown;
    let inflight: Promise<void> = Promise.resolve();
    // Flushing to disk while the upload still streams spreads the fsync cost instead of
    // paying it all at the end.
    let unsynced = 0;
    let syncing: Promise<void> = Promise.resolve();
    const failed = (e: unknown) => {
      failure ??= e;
    };
    const check = () => {
      if (failure !== undefined) throw failure;
    };
    const writeAll = async (buf: Buffer) => {
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
    };
    const flush = async () => {
      if (staged === 0) return;
      const full = stage;
      const batch = stage.subarray(0, staged);
      unsynced += staged;
      await inflight; // the other buffer is free once its write finished
      check();
      stage = spare ?? Buffer.allocUnsafe(BATCH);
      spare = undefined;
      staged = 0;
      inflight = writeAll(batch).then(() => {
        spare = full;
      }, failed);
      if (fsync && unsynced >= 64 * 1024 * 1024) {
        unsynced = 0;
        const written = inflight;
        syncing = syncing.then(() => written).then(() => (failure === undefined ? fh.datasync() : undefined)).catch(failed);
      }
    };
    const settle = async () => {
      await inflight;
      await syncing;
    };
    /** Ends the writer without keeping its bytes: truncates back to what earlier writers closed. */
    const rollBack = async () => {
      await settle();
      try {
        await fh.truncate(start);
      } finally {
        await fh.close();
      }
    };
    const finish = async (sync: boolean) => {
      if (done) throw new StorageError('writer already closed');
      done = true;
      try {
        await flush();
        await settle();
        check();
        if (sync && fsync) await fh.sync();
      } catch (e) {
        await rollBack().catch(() => undefined);
        throw e;
      }
      await fh.close();
    };
    const writer: FileWriter = {
      get size() {
        return size;
      },
      async write(chunk: Buffer) {
        if (done) throw new StorageError('writer already closed');
        check();
        let off = 0;
        while (off < chunk.length) {
          const n = chunk.copy(stage, staged, off);
          staged += n;
          off += n;
          if (staged === BATCH) await flush();
        }
        size += chunk.length;
      },
      close: () => finish(true),
      commit: () => finish(true),
      cancel: async () => {
        if (!done) {
          done = true;
          await settle();
          await fh.close().catch(() => undefined);
        }
        await fsp.rm(target, { force: true });
      },
      abort: async () => {
        if (done) return;
        done = true;
        await rollBack();
      },
    };
    return {
      get size() {
        return writer.size;
      },
      write: (chunk: Buffer) =>
        writer.write(chunk).catch((e: unknown) => {
          throw this.fault(e, p, true);
        }),
      close: () => this.op(p, 'write', () => writer.close()),
      commit: () => this.op(p, 'write', () => writer.commit()),
      cancel: () => this.op(p, 'cleanup', () => writer.cancel()),
      abort: () => this.op(p, 'cleanup', () => writer.abort!()),
    };
  }

  async stat(p: string): Promise<FileInfo> {
    checkDirPath(p);
    return this.op(p, 'read', async () => {
      try {
        const st = await fsp.stat(this.real(p));
        return { path: p, size: st.isDirectory() ? 0 : st.size, modTime: st.mtime, isDir: st.isDirectory() };
      } catch (e) {
        return notFound(e, p);
      }
    });
  }

  async list(p: string): Promise<string[]> {
    checkDirPath(p);
    const entries = await this.op(p, 'read', async () => {
      try {
        return await fsp.readdir(this.real(p));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new PathNotFoundError(p);
        return notFound(e, p);
      }
    });
    const prefix = p === '/' ? '' : p;
    return entries
      .filter((e) => !e.startsWith(TMP_PREFIX))
      .sort()
      .map((e) => `${prefix}/${e}`);
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(source);
    checkPath(dest);
    const from = this.real(source);
    const to = this.real(dest);
    return this.op(dest, 'write', async () => {
      try {
        await redoAfterRacingDelete(
          async () => {
            await fsp.mkdir(path.dirname(to), { recursive: true });
            await fsp.rename(from, to);
          },
          // ENOENT with the source still there: the target's directory went, not the source.
          () => exists(from),
        );
      } catch (e) {
        return notFound(e, source);
      }
      await this.syncDir(path.dirname(to));
      if (path.dirname(from) !== path.dirname(to)) await this.syncDir(path.dirname(from));
    });
  }

  async delete(p: string, opts?: WriteOptions): Promise<void> {
    checkDirPath(p);
    const target = this.real(p);
    return this.op(p, 'cleanup', async () => {
      try {
        await fsp.lstat(target);
      } catch (e) {
        return notFound(e, p);
      }
      try {
        if (p === '/') {
          for (const e of await fsp.readdir(target)) await fsp.rm(path.join(target, e), { recursive: true, force: true });
        } else {
          await fsp.rm(target, { recursive: true, force: true });
        }
      } catch (e) {
        // rm removes a directory's entries before the directory itself, so ENOTEMPTY
        // means an entry was created after rm read the directory: a write racing this
        // delete (a push linking a layer again while GC removes the old link). Everything
        // that existed when the delete began is gone; the delete is ordered before that
        // write, whose content stays, which is what a write issued after it would give.
        if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw e;
      }
      if (opts?.durable !== false) await this.syncDir(path.dirname(target));
    });
  }

  async pruneEmpty(p: string): Promise<void> {
    checkDirPath(p);
    return this.op(p, 'cleanup', async () => {
      const prune = async (dir: string): Promise<void> => {
        let entries: fs.Dirent[];
        try {
          entries = await fsp.readdir(dir, { withFileTypes: true });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw e;
        }
        for (const e of entries) if (e.isDirectory()) await prune(path.join(dir, e.name));
        try {
          await fsp.rmdir(dir);
        } catch (e) {
          // ENOTEMPTY: it holds an object, or a write put one there since readdir; either
          // way it stays. ENOENT: someone else removed it.
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw e;
        }
      };
      await prune(this.real(p));
      await this.syncDir(path.dirname(this.real(p)));
    });
  }

  /**
   * Cheap enough to run every few seconds: two access() calls and one statfs(). A
   * store that cannot be read fails the check; one that is full or read-only passes
   * it with that condition, since pulls still work.
   */
  async healthCheck(): Promise<StorageCondition> {
    await this.op('/', 'read', () => fsp.access(this.root, fs.constants.R_OK));
    let writable: StorageCondition['writable'] = 'ok';
    try {
      // access(W_OK) answers EROFS on a read-only mount, even for root.
      await fsp.access(this.root, fs.constants.W_OK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EROFS') throw this.fault(e, '/', false);
      writable = 'read-only';
    }
    const st = await this.op('/', 'read', () => fsp.statfs(this.root));
    const freeBytes = st.bavail * st.bsize;
    // No inodes left is as full as no blocks left: ENOSPC either way.
    if (writable === 'ok' && (freeBytes < FULL_BELOW || (st.files > 0 && st.ffree === 0))) writable = 'full';
    const condition: StorageCondition = { writable, freeBytes, totalBytes: st.blocks * st.bsize };
    if (this.lastWriteError) condition.lastWriteError = this.lastWriteError;
    return condition;
  }
}
