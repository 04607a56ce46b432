import { Transform, type Readable } from 'node:stream';
import { ConnectionError } from '../client/http.js';
import type { Descriptor, Manifest, RegistryClient } from '../client/registry.js';
import { parseManifest } from './manifest.js';
import { formatPlatform, selectPlatform, type Platform } from './platform.js';

export interface Endpoint {
  client: RegistryClient;
  repository: string;
}

export interface CopyRequest {
  source: Endpoint & { reference: string };
  dest: Endpoint & { tag: string };
  /** Source and destination are the same registry: blobs are mounted, not sent. */
  sameRegistry: boolean;
  /** Copy an index with all its platforms; otherwise only `platform` from it. */
  allPlatforms: boolean;
  platform: Platform;
  referrers: boolean;
  /** Runs before anything is written; throwing stops the copy. */
  check?: (digest: string) => Promise<void>;
  progress: Progress;
}

export interface Progress {
  /** One finished step ("mounted blob sha256:..."). */
  step(message: string): void;
  /** Bytes moved since the last call. */
  bytes(n: number): void;
}

export interface CopyResult {
  digest: string;
  mediaType: string;
  /** The platforms copied; empty for a single image that names none. */
  platforms: string[];
  blobs: { copied: number; mounted: number; present: number };
  bytes: number;
  /** Manifests written, the tagged one included. */
  manifests: number;
  referrers: number;
}

export class CopyError extends Error {
  override name = 'CopyError';
}

const BLOB_CONCURRENCY = 4;
const BLOB_ATTEMPTS = 3;
const MAX_DEPTH = 4;

/** Passes exactly `size` bytes on; a stream that ends early or runs long is an error, not a short blob. */
function exactly(size: number, onBytes: (n: number) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > size) return cb(new CopyError(`the source sent more than the ${size} bytes its manifest declares`));
      onBytes(chunk.length);
      cb(null, chunk);
    },
    flush(cb) {
      cb(seen === size ? null : new CopyError(`the source sent ${seen} of ${size} bytes`));
    },
  });
}

async function inPool<T>(items: T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await run(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * Copies one image, index or artifact, in the order that makes it safe to stop at any
 * moment: blobs, then the manifests an index names (by digest), then referrers (by
 * digest), and the destination tag last. Until that last PUT nothing carries the tag:
 * a copy that fails, is refused or is killed half-way leaves only untagged content
 * (which garbage collection removes), never a tag pointing at part of an image.
 */
export async function copyImage(req: CopyRequest): Promise<CopyResult> {
  const { source, dest, progress } = req;
  const result: CopyResult = { digest: '', mediaType: '', platforms: [], blobs: { copied: 0, mounted: 0, present: 0 }, bytes: 0, manifests: 0, referrers: 0 };
  const where = `${source.client.host}/${source.repository}`;

  let root = await source.client.getManifest(source.repository, source.reference);
  let parsed = parseManifest(root, `${where}:${source.reference}`);
  if (parsed.kind === 'index' && !req.allPlatforms) {
    const entry = selectPlatform(parsed.descriptors, req.platform);
    if (!entry) {
      const have = parsed.descriptors.map((d) => formatPlatform(d.platform)).join(', ');
      throw new CopyError(`${where}:${source.reference} has no ${formatPlatform(req.platform)} image (it has ${have}); choose one with --platform or copy all with --all-platforms`);
    }
    result.platforms.push(formatPlatform(entry.platform));
    root = await source.client.getManifest(source.repository, entry.digest);
    parsed = parseManifest(root, `${where}@${entry.digest}`);
  }
  result.digest = root.digest;
  result.mediaType = root.mediaType;

  await req.check?.(root.digest);

  // Everything below the root: the blobs, and the manifests an index names, each after its own children.
  const children = new Map<string, Manifest>();
  const blobs = new Map<string, Descriptor>();
  const collect = async (p: ReturnType<typeof parseManifest>, depth: number, platforms: boolean): Promise<void> => {
    if (p.kind === 'image') {
      for (const d of p.descriptors) blobs.set(d.digest, d);
      return;
    }
    if (depth >= MAX_DEPTH) throw new CopyError(`${where}: indexes nested more than ${MAX_DEPTH} deep`);
    for (const entry of p.descriptors) {
      if (platforms && entry.platform) result.platforms.push(formatPlatform(entry.platform));
      if (children.has(entry.digest)) continue;
      const child = await source.client.getManifest(source.repository, entry.digest);
      await collect(parseManifest(child, `${where}@${entry.digest}`), depth + 1, false);
      children.set(entry.digest, child);
    }
  };
  await collect(parsed, 0, true);

  const referrers: Manifest[] = [];
  if (req.referrers) {
    const seen = new Set<string>([root.digest]);
    const walk = async (subject: string, depth: number): Promise<void> => {
      if (depth >= MAX_DEPTH) return;
      for (const d of await source.client.referrers(source.repository, subject)) {
        if (seen.has(d.digest)) continue;
        seen.add(d.digest);
        const m = await source.client.getManifest(source.repository, d.digest);
        await collect(parseManifest(m, `${where}@${d.digest} (a referrer)`), 1, false);
        referrers.push(m);
        await walk(d.digest, depth + 1);
      }
    };
    await walk(root.digest, 0);
  }

  await inPool([...blobs.values()], BLOB_CONCURRENCY, (d) => transferBlob(req, d, result));

  for (const m of children.values()) {
    await dest.client.putManifest(dest.repository, m.digest, m);
    result.manifests++;
  }
  for (const m of referrers) {
    await dest.client.putManifest(dest.repository, m.digest, m);
    result.manifests++;
    result.referrers++;
    progress.step(`referrer ${m.digest} written`);
  }
  const tagged = await dest.client.putManifest(dest.repository, dest.tag, root);
  result.manifests++;
  if (tagged !== root.digest) throw new CopyError(`the destination stored ${dest.repository}:${dest.tag} as ${tagged}, not ${root.digest}`);
  progress.step(`${dest.repository}:${dest.tag} tagged ${root.digest}`);
  return result;
}

/** One blob into the destination: already there, mounted within the registry, or streamed across. */
async function transferBlob(req: CopyRequest, d: Descriptor, result: CopyResult): Promise<void> {
  const { source, dest, progress } = req;
  const short = d.digest.slice(0, 19);
  if ((await dest.client.blobSize(dest.repository, d.digest)) !== undefined) {
    result.blobs.present++;
    progress.step(`blob ${short} already there`);
    return;
  }
  if (req.sameRegistry && (await dest.client.mountBlob(dest.repository, d.digest, source.repository))) {
    result.blobs.mounted++;
    progress.step(`blob ${short} mounted`);
    return;
  }
  for (let attempt = 1; ; attempt++) {
    let moved = 0;
    try {
      const { stream, size } = await source.client.getBlob(source.repository, d.digest);
      if (size !== undefined && size !== d.size) {
        (stream as Readable).destroy();
        throw new CopyError(`${source.client.host}/${source.repository}@${d.digest} is ${size} bytes, its manifest says ${d.size}`);
      }
      const counted = stream.pipe(
        exactly(d.size, (n) => {
          moved += n;
          progress.bytes(n);
        }),
      );
      stream.once('error', (e) => counted.destroy(e));
      await dest.client.pushBlob(dest.repository, d.digest, d.size, counted);
      result.blobs.copied++;
      result.bytes += d.size;
      progress.step(`blob ${short} copied (${formatBytes(d.size)})`);
      return;
    } catch (e) {
      // A broken connection is worth another try; a refusal is not.
      if (!(e instanceof ConnectionError) || attempt >= BLOB_ATTEMPTS) throw e;
      progress.bytes(-moved);
      progress.step(`blob ${short}: ${(e as Error).message}; trying again`);
    }
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
