import crypto from 'node:crypto';
import type { Logger } from '../../log/logger.js';
import { ChunkPipeline } from '../chunker.js';
import { StorageError, type FileWriter } from '../driver.js';
import { unexpected, type SwiftClient } from './client.js';
import { contentTypeWithSet, newId, type SwiftLayout } from './layout.js';

/** One entry of a static large object manifest, as Swift takes it (multipart-manifest=put). */
export interface SegmentEntry {
  path: string;
  etag: string;
  size_bytes: number;
}

export interface WriterContext {
  client: SwiftClient;
  layout: SwiftLayout;
  chunkSize: number;
  /** Most segments one manifest may list (the cluster's slo.max_manifest_segments). */
  maxSegments: () => Promise<number>;
  /** Deletes every object of a segment set except those named in `keep`. */
  pruneSet: (set: string, keep: Set<string>) => Promise<void>;
  /** Deletes the object and its whole segment set. */
  discard: (name: string, set: string) => Promise<void>;
  log: Logger;
}

export function isSubManifest(e: SegmentEntry): boolean {
  return e.path.endsWith('.slo');
}

export function manifestSize(entries: SegmentEntry[]): number {
  return entries.reduce((n, e) => n + e.size_bytes, 0);
}

/**
 * Streams an object into Swift as segments of `chunkSize` bytes, uploaded while data
 * keeps arriving. close() and commit() write a static large object manifest listing every
 * segment so far at the object's name: that manifest is the upload's progress, so a writer
 * opened later with append (in any process) reads it and carries on. Manifests longer than
 * the cluster allows are folded into nested manifests.
 */
export class SwiftWriter implements FileWriter {
  private readonly writerId = newId(4);
  private readonly pipeline: ChunkPipeline;
  private written: number;
  private nextOffset: number;
  private finished = false;

  constructor(
    private readonly ctx: WriterContext,
    private readonly name: string,
    private readonly set: string,
    private readonly entries: SegmentEntry[],
  ) {
    this.written = manifestSize(entries);
    this.nextOffset = this.written;
    this.pipeline = new ChunkPipeline(ctx.chunkSize, (chunk) => this.uploadSegment(chunk));
  }

  get size(): number {
    return this.written;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.finished) throw new StorageError('writer already closed');
    await this.pipeline.write(chunk);
    this.written += chunk.length;
  }

  async close(): Promise<void> {
    this.end();
    await this.persist();
  }

  async commit(): Promise<void> {
    this.end();
    await this.persist();
    // Segments of writers that died before closing are referenced by nothing: drop them.
    await this.ctx.pruneSet(this.set, await this.referenced());
  }

  async cancel(): Promise<void> {
    this.finished = true;
    await this.pipeline.settle();
    await this.ctx.discard(this.name, this.set);
  }

  private end(): void {
    if (this.finished) throw new StorageError('writer already closed');
    this.finished = true;
  }

  private async uploadSegment(chunk: Buffer): Promise<void> {
    const { client, layout } = this.ctx;
    const name = layout.segment(this.set, this.nextOffset, this.writerId);
    this.nextOffset += chunk.length;
    const etag = crypto.createHash('md5').update(chunk).digest('hex');
    // The ETag makes Swift verify the bytes it stored (422 on a mismatch).
    const res = await client.request({
      method: 'PUT',
      object: name,
      headers: { 'Content-Type': 'application/octet-stream', ETag: etag },
      body: chunk,
    });
    if (res.status !== 201) throw unexpected('segment upload', name, res);
    this.entries.push({ path: layout.ref(name), etag, size_bytes: chunk.length });
  }

  /** Uploads what is buffered and writes the manifest: everything written so far is durable. */
  private async persist(): Promise<void> {
    const rest = await this.pipeline.drain();
    if (rest.length > 0) await this.uploadSegment(rest);
    if (this.entries.length === 0) return; // the placeholder object already stands for "empty"
    await this.fold();
    await this.putManifest(this.name, this.entries, contentTypeWithSet(this.set));
  }

  private async putManifest(name: string, entries: SegmentEntry[], contentType: string): Promise<string> {
    const res = await this.ctx.client.request({
      method: 'PUT',
      object: name,
      query: { 'multipart-manifest': 'put' },
      headers: { 'Content-Type': contentType },
      body: JSON.stringify(entries),
    });
    if (res.status !== 201) {
      const detail = Buffer.isBuffer(res.data) ? res.data.toString('utf8').slice(0, 300) : '';
      throw new StorageError(`swift manifest ${name}: status ${res.status} ${detail}`.trim());
    }
    return String(res.headers.etag ?? '').replace(/"/g, '');
  }

  /**
   * Keeps the manifest within the cluster's segment limit: runs of plain segments after
   * the leading nested manifests are replaced by one nested manifest each, so nesting
   * stays one level deep.
   */
  private async fold(): Promise<void> {
    const max = await this.ctx.maxSegments();
    let subs = 0;
    while (subs < this.entries.length && isSubManifest(this.entries[subs]!)) subs++;
    while (this.entries.length > max) {
      const group = this.entries.slice(subs, subs + max);
      if (group.length < 2) throw new StorageError(`object ${this.name} has more segments than a manifest can hold`);
      const offset = manifestSize(this.entries.slice(0, subs));
      const name = this.ctx.layout.subManifest(this.set, offset, this.writerId);
      const etag = await this.putManifest(name, group, 'application/octet-stream');
      this.entries.splice(subs, group.length, { path: this.ctx.layout.ref(name), etag, size_bytes: manifestSize(group) });
      subs++;
    }
  }

  private async referenced(): Promise<Set<string>> {
    const { client, layout } = this.ctx;
    const keep = new Set<string>();
    for (const e of this.entries) {
      const name = layout.nameOfRef(e.path);
      keep.add(name);
      if (!isSubManifest(e)) continue;
      const res = await client.request({ method: 'GET', object: name, query: { 'multipart-manifest': 'get', format: 'raw' }, responseType: 'json' });
      if (res.status !== 200 || !Array.isArray(res.data)) throw unexpected('read nested manifest', name, res);
      for (const s of res.data as SegmentEntry[]) keep.add(layout.nameOfRef(s.path));
    }
    return keep;
  }
}
