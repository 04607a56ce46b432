import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import type { SwiftSettings } from './settings.js';
import type { Logger } from '../../log/logger.js';
import {
  checkDirPath,
  checkPath,
  InvalidOffsetError,
  PathNotFoundError,
  StorageUnavailableError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
} from '../driver.js';
import { createAgents, destroyAgents, type Agents } from '../transport.js';
import { discard, encodeName, runLimited, SwiftClient, unexpected } from './client.js';
import { contentTypeWithSet, newId, setOfContentType, SwiftLayout } from './layout.js';
import { tempUrl } from './tempurl.js';
import { SwiftWriter, type SegmentEntry, type WriterContext } from './writer.js';

/** The object metadata that names which creator's putExclusive Swift kept. */
const CLAIM_HEADER = 'X-Object-Meta-Keyport-Claim';
/** The least time a creator waits for racing creators to land before it reads who won. */
const SETTLE_MS = 200;

export interface SwiftDriverOptions extends SwiftSettings {
  /**
   * Caps the segments of one manifest below the cluster's own limit (slo
   * max_manifest_segments from /info); lets tests exercise nested manifests cheaply.
   */
  maxManifestSegments?: number;
}

interface Head {
  size: number;
  modTime: Date;
  /** Segment set the object owns, if any (SLO manifest or upload placeholder). */
  set: string | undefined;
  slo: boolean;
}

/**
 * Stores everything in one OpenStack Swift container (Docker Distribution's swift
 * driver is the model). Small objects are single PUTs, which Swift makes atomic; large
 * ones are static large objects whose segments are written while the upload streams (see
 * SwiftWriter). No state lives outside Swift, so any number of registry processes can
 * share the container, and an upload started on one can be finished on another.
 */
export class SwiftDriver implements StorageDriver {
  readonly name = 'swift';
  readonly client: SwiftClient;
  readonly layout: SwiftLayout;
  private readonly agents: Agents;
  private readying: Promise<void> | undefined;
  private tempUrlReady = false;

  constructor(
    private readonly opts: SwiftDriverOptions,
    private readonly log: Logger,
  ) {
    this.agents = createAgents({ caFile: opts.caFile, insecureSkipVerify: opts.insecureSkipVerify });
    this.client = new SwiftClient(opts.container, opts, this.agents, opts.timeout, log);
    this.layout = new SwiftLayout(opts.container, opts.rootDirectory);
  }

  /**
   * Logs in, creates the container when missing and installs the TempURL key; done once,
   * and again after a failure (the store may have been down when the registry started).
   */
  private ready(): Promise<void> {
    if (!this.readying) {
      this.readying = this.prepare().catch((e: unknown) => {
        this.readying = undefined;
        throw e;
      });
    }
    return this.readying;
  }

  private async prepare(): Promise<void> {
    const res = await this.client.request({ method: 'HEAD', object: '' });
    if (res.status === 404) {
      const put = await this.client.request({ method: 'PUT', object: '' });
      if (put.status !== 201 && put.status !== 202) throw unexpected('create container', this.opts.container, put);
      this.log.info({ container: this.opts.container }, 'swift: created container');
    } else if (res.status >= 300) {
      throw unexpected('head container', this.opts.container, res);
    }
    if (this.opts.tempUrlKey) this.tempUrlReady = await this.installTempUrlKey();
  }

  /** Makes sure the account (or container) carries the TempURL key, in a free slot. */
  private async installTempUrlKey(): Promise<boolean> {
    const onContainer = this.opts.tempUrlContainerKey;
    const target = onContainer ? '' : null;
    const kind = onContainer ? 'Container' : 'Account';
    const res = await this.client.request({ method: 'HEAD', object: target });
    const h = (n: string) => String(res.headers[`x-${kind.toLowerCase()}-meta-temp-url-${n}`] ?? '');
    const key = this.opts.tempUrlKey;
    if (h('key') === key || h('key-2') === key) return true;
    const slot = !h('key') ? 'Key' : !h('key-2') ? 'Key-2' : undefined;
    if (!slot) {
      this.log.warn({ on: kind.toLowerCase() }, 'swift: both TempURL key slots hold other keys; redirects are off');
      return false;
    }
    const post = await this.client.request({ method: 'POST', object: target, headers: { [`X-${kind}-Meta-Temp-URL-${slot}`]: key } });
    if (post.status >= 300) {
      this.log.warn({ on: kind.toLowerCase(), status: post.status }, 'swift: cannot set the TempURL key; redirects are off');
      return false;
    }
    return true;
  }

  private async head(name: string): Promise<Head | undefined> {
    const res = await this.client.request({ method: 'HEAD', object: name });
    if (res.status === 404) return undefined;
    if (res.status >= 300) throw unexpected('head', name, res);
    const ts = Number(res.headers['x-timestamp']);
    const lm = Date.parse(String(res.headers['last-modified'] ?? ''));
    return {
      size: Number(res.headers['content-length'] ?? 0),
      modTime: new Date(Number.isFinite(ts) ? ts * 1000 : Number.isFinite(lm) ? lm : Date.now()),
      set: setOfContentType(String(res.headers['content-type'] ?? '')),
      slo: String(res.headers['x-static-large-object'] ?? '').toLowerCase() === 'true',
    };
  }

  async getContent(path: string): Promise<Buffer> {
    checkPath(path);
    await this.ready();
    const name = this.layout.object(path);
    const res = await this.client.request({ method: 'GET', object: name });
    if (res.status === 404) throw new PathNotFoundError(path);
    if (res.status !== 200) throw unexpected('get', name, res);
    return Buffer.from(res.data as ArrayBuffer);
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    checkPath(path);
    await this.ready();
    const name = this.layout.object(path);
    const res = await this.client.request({
      method: 'PUT',
      object: name,
      headers: { 'Content-Type': 'application/octet-stream', ETag: crypto.createHash('md5').update(content).digest('hex') },
      body: content,
    });
    if (res.status !== 201) throw unexpected('put', name, res);
  }

  async putExclusive(path: string, content: Buffer): Promise<boolean> {
    checkPath(path);
    await this.ready();
    const name = this.layout.object(path);
    // Swift checks If-None-Match: * when a PUT arrives at the object server and commits
    // the object when its body is in, so creators that arrive before the first commit
    // all pass the check and all get 201 (seen with 8 racers under load). Of the
    // objects they commit, Swift keeps the one with the newest X-Timestamp. So each
    // creator tags its object with a claim of its own and, after the racers that passed
    // the check beside it have had time to land, reads which claim Swift kept: only
    // that creator has won. Racers passed the check before this PUT was committed and
    // send the same few bytes, so they land within about this PUT's own time; the wait
    // is twice that, and at least SETTLE_MS.
    const claim = crypto.randomBytes(16).toString('hex');
    const started = Date.now();
    const res = await this.client.request({
      method: 'PUT',
      object: name,
      headers: {
        'Content-Type': 'application/octet-stream',
        ETag: crypto.createHash('md5').update(content).digest('hex'),
        'If-None-Match': '*',
        [CLAIM_HEADER]: claim,
      },
      body: content,
    });
    // 409: a racer with a newer timestamp committed first.
    if (res.status === 412 || res.status === 409) return false;
    if (res.status !== 201) throw unexpected('put', name, res);
    await new Promise((r) => setTimeout(r, Math.max(SETTLE_MS, 2 * (Date.now() - started))));
    const kept = await this.client.request({ method: 'HEAD', object: name });
    if (kept.status === 404) return false;
    if (kept.status >= 300) throw unexpected('head', name, kept);
    return kept.headers[CLAIM_HEADER.toLowerCase()] === claim;
  }

  async reader(path: string, offset = 0): Promise<Readable> {
    checkPath(path);
    if (!Number.isInteger(offset) || offset < 0) throw new InvalidOffsetError(path, offset);
    await this.ready();
    const name = this.layout.object(path);
    const res = await this.client.request({
      method: 'GET',
      object: name,
      headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
      responseType: 'stream',
    });
    if (res.status === 200 || res.status === 206) return res.data as Readable;
    discard(res);
    if (res.status === 404) throw new PathNotFoundError(path);
    if (res.status === 416) {
      // Swift refuses a range that starts at the end; reading there is just empty.
      const h = await this.head(name);
      if (!h) throw new PathNotFoundError(path);
      if (offset === h.size) return Readable.from([]);
      throw new InvalidOffsetError(path, offset);
    }
    throw unexpected('get', name, res);
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    checkPath(path);
    await this.ready();
    const name = this.layout.object(path);
    if (append) {
      const existing = await this.openExisting(name);
      if (existing) return new SwiftWriter(this.writerContext(), name, existing.set, existing.entries);
    } else {
      const h = await this.head(name);
      if (h) await this.discard(name, h.set);
    }
    // The placeholder names the segment set before any segment exists, so a writer killed
    // before its first close leaves segments that the next writer or a delete can find.
    const set = newId(16);
    const res = await this.client.request({
      method: 'PUT',
      object: name,
      headers: { 'Content-Type': contentTypeWithSet(set) },
      body: Buffer.alloc(0),
    });
    if (res.status !== 201) throw unexpected('create', name, res);
    return new SwiftWriter(this.writerContext(), name, set, []);
  }

  /** The segment set and manifest entries of an object a writer appends to. */
  private async openExisting(name: string): Promise<{ set: string; entries: SegmentEntry[] } | undefined> {
    const res = await this.client.request({
      method: 'GET',
      object: name,
      query: { 'multipart-manifest': 'get', format: 'raw' },
      responseType: 'stream',
    });
    if (res.status === 404) {
      discard(res);
      return undefined;
    }
    if (res.status !== 200) throw unexpected('read manifest', name, res);
    const set = setOfContentType(String(res.headers['content-type'] ?? ''));
    const slo = String(res.headers['x-static-large-object'] ?? '').toLowerCase() === 'true';
    const size = Number(res.headers['content-length'] ?? 0);
    if (slo) {
      const chunks: Buffer[] = [];
      for await (const c of res.data as Readable) chunks.push(c as Buffer);
      const entries = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as SegmentEntry[]).map((e) => ({
        path: e.path,
        etag: e.etag,
        size_bytes: e.size_bytes,
      }));
      return { set: set ?? newId(16), entries };
    }
    discard(res);
    const ownSet = set ?? newId(16);
    if (size === 0) return { set: ownSet, entries: [] };
    // A plain object (written with putContent) becomes the first segment, copied server-side.
    const seg = this.layout.segment(ownSet, 0, 'plain');
    const copy = await this.client.request({
      method: 'PUT',
      object: seg,
      headers: { 'X-Copy-From': `/${encodeURIComponent(this.opts.container)}/${encodeName(name)}`, 'Content-Length': '0' },
    });
    if (copy.status !== 201) throw unexpected('copy to segment', name, copy);
    const etag = String(copy.headers.etag ?? '').replace(/"/g, '');
    return { set: ownSet, entries: [{ path: this.layout.ref(seg), etag, size_bytes: size }] };
  }

  private writerContext(): WriterContext {
    return {
      client: this.client,
      layout: this.layout,
      chunkSize: this.opts.chunkSize,
      maxSegments: async () => {
        const cluster = (await this.client.capabilities()).maxManifestSegments;
        return Math.min(cluster, this.opts.maxManifestSegments ?? cluster);
      },
      pruneSet: (set, keep) => this.pruneSet(set, keep),
      discard: (name, set) => this.discard(name, set),
      log: this.log,
    };
  }

  /** Deletes the segments of `set` not named in `keep`. */
  private async pruneSet(set: string, keep: Set<string>): Promise<void> {
    const doomed: string[] = [];
    for await (const e of this.client.list(this.layout.setPrefix(set))) if (e.name && !keep.has(e.name)) doomed.push(e.name);
    await this.client.deleteObjects(doomed);
  }

  /** Deletes an object, then its segment set: readers never see a manifest without segments. */
  private async discard(name: string, set: string | undefined): Promise<void> {
    const res = await this.client.request({ method: 'DELETE', object: name });
    if (res.status >= 300 && res.status !== 404) throw unexpected('delete', name, res);
    if (set) await this.pruneSet(set, new Set());
  }

  async stat(path: string): Promise<FileInfo> {
    checkDirPath(path);
    await this.ready();
    if (path !== '/') {
      const h = await this.head(this.layout.object(path));
      if (h) return { path, size: h.size, modTime: h.modTime, isDir: false };
    }
    for await (const e of this.client.list(this.layout.dirPrefix(path), undefined, 1)) {
      return { path, size: 0, modTime: e.last_modified ? new Date(`${e.last_modified}Z`) : new Date(), isDir: true };
    }
    if (path === '/') return { path, size: 0, modTime: new Date(), isDir: true };
    throw new PathNotFoundError(path);
  }

  async list(path: string): Promise<string[]> {
    checkDirPath(path);
    await this.ready();
    const out: string[] = [];
    for await (const e of this.client.list(this.layout.dirPrefix(path), '/')) {
      const n = e.subdir ?? e.name;
      if (n) out.push(this.layout.path(n));
    }
    if (out.length === 0 && path !== '/') throw new PathNotFoundError(path);
    return out.sort();
  }

  async move(source: string, dest: string): Promise<void> {
    checkPath(source);
    checkPath(dest);
    await this.ready();
    const src = this.layout.object(source);
    const dst = this.layout.object(dest);
    const s = await this.head(src);
    if (!s) throw new PathNotFoundError(source);
    if (src === dst) return;
    const old = await this.head(dst);
    // For a large object only the manifest is copied: the new name takes over the
    // segments, and deleting the old name without multipart-manifest=delete keeps them.
    const copy = await this.client.request({
      method: 'PUT',
      object: dst,
      query: s.slo ? { 'multipart-manifest': 'get' } : undefined,
      headers: { 'X-Copy-From': `/${encodeURIComponent(this.opts.container)}/${encodeName(src)}`, 'Content-Length': '0' },
    });
    if (copy.status === 404) throw new PathNotFoundError(source);
    if (copy.status !== 201) throw unexpected('copy', src, copy);
    const del = await this.client.request({ method: 'DELETE', object: src });
    if (del.status >= 300 && del.status !== 404) throw unexpected('delete', src, del);
    // The replaced destination's segments belong to nothing now.
    if (old?.set && old.set !== s.set) await this.pruneSet(old.set, new Set());
  }

  async delete(path: string): Promise<void> {
    checkDirPath(path);
    await this.ready();
    const found: Array<{ name: string; set: string | undefined }> = [];
    if (path !== '/') {
      const name = this.layout.object(path);
      const h = await this.head(name);
      if (h) found.push({ name, set: h.set });
    }
    for await (const e of this.client.list(this.layout.dirPrefix(path))) {
      if (e.name) found.push({ name: e.name, set: setOfContentType(e.content_type) });
    }
    if (found.length === 0) throw new PathNotFoundError(path);
    await this.client.deleteObjects(found.map((f) => f.name));
    if (path === '/') {
      // Everything goes, including segments of uploads that never got a manifest.
      const all: string[] = [];
      for await (const e of this.client.list(this.layout.segmentsPrefix)) if (e.name) all.push(e.name);
      await this.client.deleteObjects(all);
      return;
    }
    const sets = [...new Set(found.map((f) => f.set).filter((s): s is string => !!s))];
    await runLimited(sets, 4, (s) => this.pruneSet(s, new Set()));
  }

  async redirectURL(path: string, method: 'GET' | 'HEAD'): Promise<string | undefined> {
    checkPath(path);
    if (!this.opts.redirect || !this.opts.tempUrlKey || !this.opts.tempUrlMethods.includes(method)) return undefined;
    await this.ready();
    if (!this.tempUrlReady) return undefined;
    const session = await this.client.auth.session();
    return tempUrl({
      storageUrl: session.storageUrl,
      container: this.opts.container,
      object: this.layout.object(path),
      method,
      expires: Math.floor(Date.now() / 1000) + this.opts.redirectExpiry,
      key: this.opts.tempUrlKey,
      digest: this.opts.tempUrlDigest,
    });
  }

  async healthCheck(): Promise<void> {
    await this.ready();
    const res = await this.client.request({ method: 'HEAD', object: '' });
    if (res.status >= 300) throw new StorageUnavailableError(`swift container ${this.opts.container} answered ${res.status}`);
  }

  async close(): Promise<void> {
    destroyAgents(this.agents);
  }
}
