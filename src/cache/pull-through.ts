import crypto from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import type { Request, Response } from 'express';
import { resolveUpstream, upstreamFor, type Upstream, type UpstreamInput } from '../config/upstreams.js';
import type { Logger } from '../log/logger.js';
import { parseDigest, type Digest } from '../oci/reference.js';
import { RegistryError } from '../registry/errors.js';
import type { Context, Handler } from '../registry/handlers/context.js';
import { isIndexMediaType, accepts } from '../registry/manifest.js';
import { BLOB_MEDIA_TYPE, notify } from '../registry/notify.js';
import type { Route } from '../registry/routes.js';
import type { BlobStore } from '../registry/store/blobs.js';
import { type ManifestStore, parseReference, type Reference, type StoredManifest } from '../registry/store/manifests.js';
import type { UploadStore } from '../registry/store/uploads.js';
import type { Stores } from '../registry/store/stores.js';
import type { StorageDriver } from '../storage/driver.js';
import { isUpstreamOutage, UpstreamDigestError, UpstreamUnavailableError } from './errors.js';
import { cacheMetrics, type CacheResult } from './metrics.js';
import { CacheRecords } from './records.js';
import { SingleFlight } from './single-flight.js';
import { UpstreamClient } from './upstream.js';

export interface PullThroughOptions {
  driver: StorageDriver;
  stores: Stores;
  upstreams: readonly UpstreamInput[];
  log: Logger;
  maxManifestSize: number;
  /** Milliseconds without an answer or a byte before an upstream counts as unavailable. */
  timeoutMs?: number;
  userAgent?: string;
  now?: () => number;
}

interface Mapped {
  upstream: Upstream;
  client: UpstreamClient;
  /** The repository's name on the upstream. */
  remote: string;
}

/** Requests that write into a repository; never allowed in a cache namespace (deletes are, for admins). */
const WRITES: Partial<Record<Route['kind'], ReadonlySet<string>>> = {
  manifest: new Set(['PUT']),
  uploads: new Set(['POST']),
  upload: new Set(['GET', 'PATCH', 'PUT', 'DELETE']),
};

const DEFAULT_TIMEOUT_MS = 30_000;
/** Bytes the client of a streamed fetch may have queued before the upstream is paused. */
const QUEUED_MAX = 4 * 1024 * 1024;
/**
 * Pieces queued for the store that pause the upstream, and the level that resumes it.
 * Counted in pieces: a TLS socket hands its reads over in pieces of at most 16 KiB, so
 * at most 8 MiB wait.
 */
const STORE_HIGH = 512;
const STORE_LOW = 128;

/**
 * The pull-through cache: reads in a namespace mapped to an upstream registry are
 * served from the store, and what the store lacks is fetched from the upstream first.
 * Everything fetched is ordinary content afterwards (same layout, same GC, same
 * policy); only writes are refused there, so the namespace stays a faithful copy.
 *
 * Correctness notes:
 *  - Nothing reaches the store unverified. A manifest is hashed before it is stored (a
 *    digest reference must match); a blob goes through the upload store, which checks
 *    the digest before the bytes become the blob, and the copy streamed to the client
 *    is cut before its last byte when the digest does not match.
 *  - Linking a blob into a cache repository exposes it to everyone who may pull there,
 *    so a blob the store holds for another repository is linked only after the
 *    upstream confirmed that this repository has it; otherwise any user could read any
 *    blob by digest through a cache namespace.
 *  - Concurrent misses for one manifest, tag or blob of a repository share one flight
 *    (SingleFlight): one upstream request, the others wait for it and are then served
 *    from the store.
 */
export class PullThroughCache {
  private readonly mapped: Array<{ upstream: Upstream; client: UpstreamClient }>;
  private readonly blobs: BlobStore;
  private readonly manifests: ManifestStore;
  private readonly uploads: UploadStore;
  readonly records: CacheRecords;
  private readonly manifestFlights = new SingleFlight<void>();
  private readonly blobFlights = new SingleFlight<void>();
  private readonly metrics = cacheMetrics();
  private readonly now: () => number;

  constructor(private readonly opts: PullThroughOptions) {
    this.now = opts.now ?? Date.now;
    const clientOpts = { userAgent: opts.userAgent ?? 'keyport-cache', timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS };
    this.mapped = opts.upstreams.map(resolveUpstream).map((upstream) => ({ upstream, client: new UpstreamClient(upstream, clientOpts) }));
    // The process's own stores: an upload the cache starts has the same single owner as one
    // a client starts (one set of locks, one purge).
    this.blobs = opts.stores.blobs;
    this.manifests = opts.stores.manifests;
    this.uploads = opts.stores.uploads;
    this.records = new CacheRecords(opts.driver, this.now);
  }

  get enabled(): boolean {
    return this.mapped.length > 0;
  }

  close(): void {
    for (const m of this.mapped) m.client.close();
  }

  private map(name: string): Mapped | undefined {
    const hit = upstreamFor(this.mapped.map((m) => ({ ...m, namespace: m.upstream.namespace })), name);
    return hit ? { upstream: hit.upstream.upstream, client: hit.upstream.client, remote: hit.remote } : undefined;
  }

  /** DENIED (403) for a write into a cache namespace; checked before authentication, since no token can allow it. */
  refuseWrite(route: Route, method: string): void {
    if (!('name' in route) || !WRITES[route.kind]?.has(method)) return;
    const m = this.map(route.name);
    if (!m) return;
    throw new RegistryError('DENIED', `${m.upstream.namespace}/ is a pull-through cache of ${m.upstream.url}: pushes are refused there`, { repository: route.name, upstream: m.upstream.url }, 403);
  }

  /** Runs `handler` for the request, first bringing in from the upstream what a read in a cache namespace needs. */
  async handle(ctx: Context, req: Request, res: Response, handler: Handler<any>): Promise<void> {
    const route = ctx.route;
    const m = 'name' in route && (req.method === 'GET' || req.method === 'HEAD') ? this.map(route.name) : undefined;
    if (!m) return handler(ctx, req, res);
    if (route.kind === 'manifest') {
      const stored = await this.ensureManifest(ctx, req, m, route.reference);
      if (stored) {
        await this.ensureAcceptableChild(ctx, req, m, stored);
        await this.records.pulled(route.name, stored).catch((e: unknown) => ctx.log.warn({ err: (e as Error).message }, 'could not note the pull of a cached manifest'));
      }
      return handler(ctx, req, res);
    }
    if (route.kind === 'blob') {
      const digest = parseDigest(route.digest);
      if (digest && (await this.ensureBlob(ctx, req, res, m, digest))) return;
      return handler(ctx, req, res);
    }
    return handler(ctx, req, res);
  }

  private count(m: Mapped, kind: 'manifest' | 'blob', result: CacheResult): void {
    this.metrics.requests.inc({ upstream: m.upstream.namespace, kind, result });
  }

  private asked(m: Mapped, kind: 'manifest' | 'blob'): void {
    this.metrics.upstreamRequests.inc({ upstream: m.upstream.namespace, kind });
  }

  // ---- manifests ------------------------------------------------------------

  /**
   * Makes sure the reference can be served from the store; returns the digest it
   * resolves to, or undefined when the reference is malformed (the handler answers).
   */
  private async ensureManifest(ctx: Context, req: Request, m: Mapped, reference: string): Promise<Digest | undefined> {
    const name = (ctx.route as { name: string }).name;
    const ref = parseReference(reference);
    if (!ref) return undefined;
    const local = await this.manifests.resolve(name, ref);
    if (ref.kind === 'digest') {
      // Content by digest never changes: present is current.
      if (local) {
        this.count(m, 'manifest', 'hit');
        return local;
      }
      await this.fly(m, 'manifest', `${name}@${ref.digest.value}`, () => this.fetchManifest(ctx, req, m, name, ref));
      return ref.digest;
    }
    if (local && (await this.fresh(m, name, ref.tag))) {
      this.count(m, 'manifest', 'hit');
      return local;
    }
    if (!local) {
      await this.fly(m, 'manifest', `${name}:${ref.tag}`, () => this.fetchManifest(ctx, req, m, name, ref));
      return this.manifests.resolve(name, ref);
    }
    // Cached but due for a check.
    try {
      await this.fly(m, 'manifest', `${name}:${ref.tag}`, () => this.revalidate(ctx, req, m, name, ref.tag, local), false);
    } catch (e) {
      if (!isUpstreamOutage(e)) {
        this.count(m, 'manifest', 'error');
        throw e;
      }
      this.count(m, 'manifest', 'stale');
      this.metrics.staleServed.inc({ upstream: m.upstream.namespace });
      ctx.log.warn({ upstream: m.upstream.url, repository: name, tag: ref.tag, err: (e as Error).message }, 'upstream unavailable; serving the cached tag');
      return local;
    }
    return this.manifests.resolve(name, ref);
  }

  /**
   * Runs a fetch as one flight per key; a joiner waits for it, and counts as a hit once
   * it landed. A failed flight counts as an error unless the caller serves cached
   * content instead (`countFailure: false`; it counts that itself).
   */
  private async fly(m: Mapped, kind: 'manifest' | 'blob', key: string, work: () => Promise<void>, countFailure = true): Promise<void> {
    const flights = kind === 'manifest' ? this.manifestFlights : this.blobFlights;
    const { promise, joined } = flights.run(key, work);
    try {
      await promise;
    } catch (e) {
      if (countFailure) this.count(m, kind, 'error');
      throw e;
    }
    if (joined) this.count(m, kind, 'hit');
  }

  private async fresh(m: Mapped, name: string, tag: string): Promise<boolean> {
    const ttl = m.upstream.tagTtl * 1000;
    if (this.now() - (await this.records.tagCheckedAt(name, tag)) < ttl) return true;
    // Another instance on the same store may have checked meanwhile.
    this.records.forgetTagCheck(name, tag);
    return this.now() - (await this.records.tagCheckedAt(name, tag)) < ttl;
  }

  /** HEAD upstream: unchanged, the check is noted; moved (or no digest said), the manifest is fetched again. */
  private async revalidate(ctx: Context, req: Request, m: Mapped, name: string, tag: string, local: Digest): Promise<void> {
    this.asked(m, 'manifest');
    const digest = await m.client.headManifest(m.remote, tag);
    if (digest === local.value) {
      await this.records.tagChecked(name, tag);
      this.count(m, 'manifest', 'revalidated');
      return;
    }
    ctx.log.info({ upstream: m.upstream.url, repository: name, tag, from: local.value, to: digest ?? '(not said)' }, 'cached tag moved upstream; fetching it again');
    await this.fetchManifest(ctx, req, m, name, { kind: 'tag', tag });
  }

  private async fetchManifest(ctx: Context, req: Request, m: Mapped, name: string, ref: Reference): Promise<void> {
    const reference = ref.kind === 'tag' ? ref.tag : ref.digest.value;
    this.asked(m, 'manifest');
    const got = await m.client.getManifest(m.remote, reference, this.opts.maxManifestSize);
    if (ref.kind === 'digest') {
      const actual = crypto.createHash(ref.digest.algorithm).update(got.body).digest('hex');
      if (actual !== ref.digest.hex) throw new UpstreamDigestError(m.upstream.url, ref.digest.value, `${ref.digest.algorithm}:${actual}`);
    }
    const stored = await this.manifests.put(name, ref, got.body, got.contentType, { checkTargets: false });
    if (ref.kind === 'tag') await this.records.tagChecked(name, ref.tag);
    this.count(m, 'manifest', 'miss');
    ctx.log.info({ upstream: m.upstream.url, repository: name, reference, digest: stored.digest.value, mediaType: stored.mediaType }, 'cached a manifest from upstream');
    notify(ctx, req, 'fetch', 'manifests', {
      repository: name,
      digest: stored.digest.value,
      mediaType: stored.mediaType,
      size: got.body.length,
      upstream: m.upstream.url,
      ...(ref.kind === 'tag' ? { tag: ref.tag } : {}),
    });
  }

  /**
   * A client that does not accept an index is served the linux/amd64 image of it
   * (see the manifest handler); that image must be in the store too.
   */
  private async ensureAcceptableChild(ctx: Context, req: Request, m: Mapped, digest: Digest): Promise<void> {
    const accept = req.get('accept');
    if (!accept) return;
    let stored: StoredManifest;
    try {
      stored = await this.manifests.get((ctx.route as { name: string }).name, { kind: 'digest', digest });
    } catch {
      return;
    }
    if (!isIndexMediaType(stored.mediaType) || accepts(accept, stored.mediaType)) return;
    const child = stored.parsed.manifests.find(
      (e) => e.descriptor.platform?.os === 'linux' && e.descriptor.platform?.architecture === 'amd64' && accepts(accept, e.descriptor.mediaType),
    );
    if (child) await this.ensureManifest(ctx, req, m, child.digest.value).catch(() => undefined);
  }

  // ---- blobs ----------------------------------------------------------------

  /** True when the request was answered here; false when the handler can serve it from the store. */
  private async ensureBlob(ctx: Context, req: Request, res: Response, m: Mapped, digest: Digest): Promise<boolean> {
    const name = (ctx.route as { name: string }).name;
    if ((await this.blobs.describe(name, digest)) !== undefined) {
      this.count(m, 'blob', 'hit');
      return false;
    }
    const key = `${name}@${digest.value}`;
    if ((await this.blobs.size(digest)) !== undefined) {
      // The bytes are here for another repository: link them once the upstream confirms.
      await this.fly(m, 'blob', key, async () => {
        this.asked(m, 'blob');
        await m.client.headBlob(m.remote, digest.value);
        await this.blobs.link(name, digest);
        this.count(m, 'blob', 'miss');
      });
      return false;
    }
    if (req.method === 'HEAD') {
      // A HEAD stores nothing: answer with what the upstream says.
      this.asked(m, 'blob');
      const size = await m.client.headBlob(m.remote, digest.value);
      res.setHeader('Docker-Content-Digest', digest.value);
      res.setHeader('ETag', `"${digest.value}"`);
      res.setHeader('Content-Type', 'application/octet-stream');
      if (size !== undefined) res.setHeader('Content-Length', size);
      res.status(200).end();
      return true;
    }
    // A range asks for part of the blob: store all of it first, then serve the part.
    const streamTo = req.get('range') ? undefined : res;
    const { promise, joined } = this.blobFlights.run(key, () => this.fetchBlob(ctx, req, m, name, digest, streamTo));
    try {
      await promise;
    } catch (e) {
      this.count(m, 'blob', 'error');
      if (!joined && streamTo && res.headersSent) {
        // The client has headers and some bytes; cutting the connection is all that is left.
        ctx.log.warn({ upstream: m.upstream.url, repository: name, digest: digest.value, err: (e as Error).message }, 'cache fetch of a blob failed mid-transfer');
        res.destroy();
        return true;
      }
      throw e;
    }
    if (joined) this.count(m, 'blob', 'hit');
    return !joined && streamTo !== undefined;
  }

  /**
   * Streams the upstream's blob to the client (when there is one) and into an upload
   * of the store in the same pass. The slower of the two sets the pace; a client that
   * goes away leaves the store to finish on its own. The bytes are hashed on the way:
   * on a mismatch the store's upload is destroyed (nothing is committed) and the
   * client's response is cut before it completes.
   */
  private async fetchBlob(ctx: Context, req: Request, m: Mapped, name: string, digest: Digest, res: Response | undefined): Promise<void> {
    this.asked(m, 'blob');
    const { stream, size } = await m.client.getBlob(m.remote, digest.value);
    const id = await this.uploads.start(name);
    const hash = crypto.createHash(digest.algorithm);
    // The upstream is paused while any side holds it (see hold/release below).
    let holds = 0;
    const hold = () => {
      if (holds++ === 0) stream.pause();
    };
    const release = () => {
      if (--holds === 0) stream.resume();
    };
    // The store's side: a queue the upload reads at its own pace. The upstream is held
    // when the queue passes STORE_HIGH and released once the upload has read it down to
    // STORE_LOW (the stream's highWaterMark, below which it calls read()), so the upload
    // still has MiBs to write while the upstream gets going again, instead of idling
    // after every pause. In object mode a read takes one piece as it came; a byte-mode
    // stream would copy everything queued into one new buffer on every read.
    let heldForStore = false;
    const releaseStore = () => {
      if (!heldForStore) return;
      heldForStore = false;
      release();
    };
    const sink = new Readable({ objectMode: true, highWaterMark: STORE_LOW, read: releaseStore });
    // The upload reports a destroyed sink through its promise; the upload may not be
    // reading yet (it opens its session first), so the stream's own error event must
    // not go unheard.
    sink.on('error', () => undefined);
    let storeError: unknown;
    const stored = this.uploads
      .finish(name, id, digest, sink, {
        ...(size !== undefined && Number.isSafeInteger(size) ? { length: size } : {}),
        // The bytes are hashed here anyway; the upload checks its digest with this hash.
        ...(digest.algorithm === 'sha256' ? { sha256: hash } : {}),
      })
      .catch((e) => {
        storeError = e;
      })
      // An upload that gave up reads no more: it must not keep the upstream held.
      .finally(releaseStore);
    let client = res;
    let heldForClient = false;
    if (client) {
      client.setHeader('Content-Type', 'application/octet-stream');
      client.setHeader('Docker-Content-Digest', digest.value);
      client.setHeader('ETag', `"${digest.value}"`);
      client.setHeader('Cache-Control', 'max-age=31536000');
      if (size !== undefined) client.setHeader('Content-Length', size);
      client.status(200);
      client.once('close', () => (client = undefined));
    }
    // The client gets each chunk once the next one arrived; the last one only after the
    // digest checked out, so a client is never handed a complete blob that is not what
    // its digest names.
    let held: Buffer | undefined;
    try {
      // 'data' events rather than an async iterator: a network read arrives in ~16 KiB
      // pieces, and a promise per piece costs a visible share of the throughput.
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          if (storeError === undefined) {
            sink.push(chunk);
            if (!heldForStore && sink.readableLength > STORE_HIGH) {
              heldForStore = true;
              hold();
            }
          }
          if (client && held) client.write(held);
          held = chunk;
          // Held only when the client has a few MiB queued: waiting for every piece to
          // drain costs an event-loop turn each and caps the transfer.
          if (client && !heldForClient && client.writableLength > QUEUED_MAX) {
            heldForClient = true;
            hold();
            void drained(client).then(() => {
              heldForClient = false;
              release();
            });
          }
        });
        stream.once('end', resolve);
        stream.once('error', reject);
        stream.once('close', () => reject(new Error('the connection closed before the end of the blob')));
      });
    } catch (e) {
      stream.destroy();
      sink.destroy(e as Error);
      await stored;
      throw new UpstreamUnavailableError(m.upstream.url, `the transfer of ${digest.value} broke off: ${(e as Error).message}`);
    }
    // copy(): the upload still reads this hash to check the digest before its commit.
    const actual = `${digest.algorithm}:${hash.copy().digest('hex')}`;
    if (actual !== digest.value) {
      const e = new UpstreamDigestError(m.upstream.url, digest.value, actual);
      sink.destroy(e);
      await stored;
      ctx.log.error({ upstream: m.upstream.url, repository: name, digest: digest.value, actual }, 'upstream sent a blob that does not match its digest; nothing was stored');
      throw e;
    }
    sink.push(null);
    client?.end(held);
    await stored;
    if (storeError !== undefined) {
      ctx.log.warn({ repository: name, digest: digest.value, err: (storeError as Error).message }, 'served a blob from upstream but could not store it');
      throw storeError;
    }
    this.count(m, 'blob', 'miss');
    ctx.log.info({ upstream: m.upstream.url, repository: name, digest: digest.value, size: size ?? null }, 'cached a blob from upstream');
    notify(ctx, req, 'fetch', 'blobs', { repository: name, digest: digest.value, mediaType: BLOB_MEDIA_TYPE, upstream: m.upstream.url, ...(size !== undefined ? { size } : {}) });
  }
}

/** Resolves when the stream wants more, or is gone. */
function drained(stream: Writable): Promise<unknown> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
