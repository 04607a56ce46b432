import { Readable } from 'node:stream';
import {
  checkDirPath,
  checkPath,
  InvalidOffsetError,
  PathNotFoundError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
} from '../driver.js';

interface Entry {
  chunks: Buffer[];
  size: number;
  modTime: Date;
}

/** Keeps everything in process memory. For tests and throwaway runs only. */
export class MemoryDriver implements StorageDriver {
  readonly name = 'memory';
  private files = new Map<string, Entry>();

  private content(e: Entry): Buffer {
    if (e.chunks.length !== 1) e.chunks = [Buffer.concat(e.chunks)];
    return e.chunks[0] ?? Buffer.alloc(0);
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(path);
    const e = this.files.get(path);
    if (!e) throw new PathNotFoundError(path);
    return Buffer.from(this.content(e));
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(path);
    this.files.set(path, { chunks: [Buffer.from(content)], size: content.length, modTime: new Date() });
  }

  async putExclusive(path: string, content: Buffer): Promise<boolean> {
    checkPath(path);
    if (this.files.has(path)) return false;
    await this.putContent(path, content);
    return true;
  }

  async reader(path: string, offset = 0): Promise<Readable> {
    checkPath(path);
    const e = this.files.get(path);
    if (!e) throw new PathNotFoundError(path);
    if (offset < 0 || offset > e.size) throw new InvalidOffsetError(path, offset);
    const data = this.content(e).subarray(offset);
    return Readable.from(data.length > 0 ? [data] : []);
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(path);
    let e = this.files.get(path);
    if (!e || !append) {
      e = { chunks: [], size: 0, modTime: new Date() };
      this.files.set(path, e);
    }
    const entry = e;
    // What earlier writers closed; abort() cuts the content back to it.
    const start = entry.size;
    let done = false;
    const files = this.files;
    return {
      get size() {
        return entry.size;
      },
      async write(chunk: Buffer) {
        if (done) throw new Error('writer already closed');
        entry.chunks.push(Buffer.from(chunk));
        entry.size += chunk.length;
        entry.modTime = new Date();
      },
      async close() {
        done = true;
      },
      async commit() {
        done = true;
      },
      async cancel() {
        done = true;
        if (files.get(path) === entry) files.delete(path);
      },
      async abort() {
        if (done) return;
        done = true;
        entry.chunks = [Buffer.concat(entry.chunks).subarray(0, start)];
        entry.size = start;
      },
    };
  }

  async stat(path: string): Promise<FileInfo> {
    checkDirPath(path);
    const e = this.files.get(path);
    if (e) return { path, size: e.size, modTime: e.modTime, isDir: false };
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const k of this.files.keys()) if (k.startsWith(prefix)) return { path, size: 0, modTime: new Date(), isDir: true };
    throw new PathNotFoundError(path);
  }

  async list(path: string): Promise<string[]> {
    checkDirPath(path);
    const prefix = path === '/' ? '/' : `${path}/`;
    const out = new Set<string>();
    for (const k of this.files.keys()) {
      if (!k.startsWith(prefix)) continue;
      const rest = k.slice(prefix.length);
      out.add(prefix + rest.split('/')[0]);
    }
    if (out.size === 0 && path !== '/') throw new PathNotFoundError(path);
    return [...out].sort();
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(source);
    checkPath(dest);
    const e = this.files.get(source);
    if (!e) throw new PathNotFoundError(source);
    this.files.delete(source);
    this.files.set(dest, e);
  }

  async delete(path: string): Promise<void> {
    checkDirPath(path);
    let found = this.files.delete(path);
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const k of [...this.files.keys()]) {
      if (k.startsWith(prefix)) {
        this.files.delete(k);
        found = true;
      }
    }
    if (!found) throw new PathNotFoundError(path);
  }
}
