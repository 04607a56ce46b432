import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  checkDirPath,
  checkPath,
  InvalidOffsetError,
  PathNotFoundError,
  StorageError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
} from './driver.js';

export interface FilesystemOptions {
  root: string;
  /** fsync files and directories before a write is acknowledged. */
  fsync: boolean;
}

const TMP_PREFIX = '.tmp-';

function notFound(e: unknown, p: string): never {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') throw new PathNotFoundError(p);
  throw e;
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

  constructor(private readonly opts: FilesystemOptions) {
    this.root = path.resolve(opts.root);
    fs.mkdirSync(this.root, { recursive: true });
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
    try {
      return await fsp.readFile(this.real(p));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw new PathNotFoundError(p);
      return notFound(e, p);
    }
  }

  async putContent(p: string, content: Buffer): Promise<void> {
    checkPath(p);
    const target = this.real(p);
    const dir = path.dirname(target);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `${TMP_PREFIX}${crypto.randomBytes(8).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(content);
      if (this.opts.fsync) await fh.sync();
    } catch (e) {
      await fh.close();
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    try {
      await fsp.rename(tmp, target);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await this.syncDir(dir);
  }

  async reader(p: string, offset = 0): Promise<Readable> {
    checkPath(p);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(this.real(p), 'r');
    } catch (e) {
      return notFound(e, p);
    }
    const st = await fh.stat();
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
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const fh = await fsp.open(target, append ? 'a' : 'w', 0o644);
    let size = append ? (await fh.stat()).size : 0;
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
    let inflight: Promise<void> = Promise.resolve();
    // Flushing to disk while the upload still streams spreads the fsync cost instead of
    // paying it all at the end.
    let unsynced = 0;
    let syncing: Promise<void> = Promise.resolve();
    const writeAll = async (buf: Buffer) => {
      let off = 0;
      while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
    };
    const flush = async () => {
      if (staged === 0) return;
      const full = stage;
      const batch = stage.subarray(0, staged);
      unsynced += staged;
      const previous = inflight;
      await previous; // the other buffer is free once its write finished
      stage = spare ?? Buffer.allocUnsafe(BATCH);
      spare = undefined;
      staged = 0;
      inflight = writeAll(batch).then(() => {
        spare = full;
      });
      if (fsync && unsynced >= 64 * 1024 * 1024) {
        unsynced = 0;
        const written = inflight;
        syncing = syncing.then(() => written).then(() => fh.datasync());
      }
    };
    const finish = async (sync: boolean) => {
      if (done) return;
      done = true;
      try {
        await flush();
        await inflight;
        await syncing;
        if (sync && fsync) await fh.sync();
      } finally {
        await fh.close();
      }
    };
    return {
      get size() {
        return size;
      },
      async write(chunk: Buffer) {
        if (done) throw new StorageError('writer already closed');
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
        await finish(false);
        await fsp.rm(target, { force: true });
      },
    };
  }

  async stat(p: string): Promise<FileInfo> {
    checkDirPath(p);
    try {
      const st = await fsp.stat(this.real(p));
      return { path: p, size: st.isDirectory() ? 0 : st.size, modTime: st.mtime, isDir: st.isDirectory() };
    } catch (e) {
      return notFound(e, p);
    }
  }

  async list(p: string): Promise<string[]> {
    checkDirPath(p);
    let entries: string[];
    try {
      entries = await fsp.readdir(this.real(p));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new PathNotFoundError(p);
      return notFound(e, p);
    }
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
    await fsp.mkdir(path.dirname(to), { recursive: true });
    try {
      await fsp.rename(from, to);
    } catch (e) {
      return notFound(e, source);
    }
    await this.syncDir(path.dirname(to));
    if (path.dirname(from) !== path.dirname(to)) await this.syncDir(path.dirname(from));
  }

  async delete(p: string): Promise<void> {
    checkDirPath(p);
    const target = this.real(p);
    try {
      await fsp.lstat(target);
    } catch (e) {
      return notFound(e, p);
    }
    if (p === '/') {
      for (const e of await fsp.readdir(target)) await fsp.rm(path.join(target, e), { recursive: true, force: true });
    } else {
      await fsp.rm(target, { recursive: true, force: true });
    }
    await this.syncDir(path.dirname(target));
  }

  async healthCheck(): Promise<void> {
    await fsp.access(this.root, fs.constants.R_OK | fs.constants.W_OK);
  }
}
