/**
 * A registry store for the GC benchmark, written straight in Docker Distribution's
 * layout (pushing 1,000 images through a registry would take far longer than the GC
 * being measured). Both Keyport and Distribution read this layout, so one template can
 * be copied and collected by each.
 *
 * Images share base layers as real ones do; some are then untagged (the revision stays,
 * only --delete-untagged frees it) and some deleted as the API's manifest DELETE does
 * (revision link and tag gone, blobs left behind), so there is garbage of both kinds.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface StoreShape {
  images: number;
  /** Images per repository. */
  perRepository: number;
  /** Layers every image has of its own. */
  ownLayers: number;
  /** Base layers in the store, and how many of them each image starts from. */
  baseLayers: number;
  basesPerImage: number;
  /** Share of images untagged, and share deleted. */
  untagged: number;
  deleted: number;
}

export interface BuiltStore {
  /** Blob digests (sha256:…) in the store. */
  blobs: Set<string>;
  /** Blobs a --delete-untagged GC must keep: those of still-tagged images. */
  live: Set<string>;
  /** Still-tagged images, for clients to pull. */
  tagged: Array<{ repository: string; tag: string; manifest: string; mediaType: string; blobs: string[] }>;
  repositories: number;
  files: number;
}

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const sha256 = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
const hexOf = (d: string) => d.slice('sha256:'.length);

/** The store root's docker/registry/v2 tree under `root` (which must not exist yet). */
export function buildStore(root: string, shape: StoreShape, mtime: Date): BuiltStore {
  const v2 = path.join(root, 'docker', 'registry', 'v2');
  let files = 0;
  const write = (p: string, data: Buffer | string) => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
    // Older than any grace period: age alone protects nothing, only the mark does.
    fs.utimesSync(p, mtime, mtime);
    files++;
  };
  const blobs = new Set<string>();
  const putBlob = (data: Buffer): string => {
    const d = sha256(data);
    if (!blobs.has(d)) write(path.join(v2, 'blobs', 'sha256', hexOf(d).slice(0, 2), hexOf(d), 'data'), data);
    blobs.add(d);
    return d;
  };
  const link = (p: string, d: string) => write(p, d);

  const bases = Array.from({ length: shape.baseLayers }, () => crypto.randomBytes(2048));
  const baseDigests = bases.map(putBlob);
  const live = new Set<string>();
  const tagged: BuiltStore['tagged'] = [];
  const repositories = Math.ceil(shape.images / shape.perRepository);
  for (let i = 0; i < shape.images; i++) {
    const repository = `bench/app${String(Math.floor(i / shape.perRepository)).padStart(4, '0')}`;
    const repo = path.join(v2, 'repositories', repository);
    const tag = `v${i % shape.perRepository}`;
    const layers: Array<{ digest: string; size: number }> = [];
    for (let b = 0; b < shape.basesPerImage; b++) {
      const k = (i + b) % shape.baseLayers;
      layers.push({ digest: baseDigests[k]!, size: bases[k]!.length });
    }
    for (let l = 0; l < shape.ownLayers; l++) {
      const data = crypto.randomBytes(256 + (l % 8) * 128);
      layers.push({ digest: putBlob(data), size: data.length });
    }
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, created: new Date(mtime.getTime() + i).toISOString() }));
    const configDigest = putBlob(config);
    // Half Docker schema 2, half OCI, as a real store mixes them.
    const oci = i % 2 === 1;
    const mediaType = oci ? OCI_MANIFEST : DOCKER_MANIFEST;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType,
        config: { mediaType: oci ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: config.length },
        layers: layers.map((l) => ({ mediaType: oci ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.docker.image.rootfs.diff.tar.gzip', ...l })),
      }),
    );
    const manifestDigest = putBlob(manifest);
    // As a push leaves it: layer links for the layers and the config, the revision, the tag.
    for (const d of [...layers.map((l) => l.digest), configDigest]) link(path.join(repo, '_layers', 'sha256', hexOf(d), 'link'), d);
    // Spread the garbage over every repository: image i's fate depends on its place in its repository.
    const fate = ((i % shape.perRepository) + 0.5) / shape.perRepository;
    const deleted = fate > 1 - shape.deleted;
    const untagged = !deleted && fate > 1 - shape.deleted - shape.untagged;
    if (!deleted) link(path.join(repo, '_manifests', 'revisions', 'sha256', hexOf(manifestDigest), 'link'), manifestDigest);
    if (!deleted && !untagged) {
      link(path.join(repo, '_manifests', 'tags', tag, 'current', 'link'), manifestDigest);
      link(path.join(repo, '_manifests', 'tags', tag, 'index', 'sha256', hexOf(manifestDigest), 'link'), manifestDigest);
      const own = [manifestDigest, configDigest, ...layers.map((l) => l.digest)];
      for (const d of own) live.add(d);
      tagged.push({ repository, tag, manifest: manifestDigest, mediaType, blobs: [configDigest, ...layers.map((l) => l.digest)] });
    }
  }
  return { blobs, live, tagged, repositories, files };
}

/** Blob digests present under a store root (blobs/sha256/xx/<hex>/data). */
export function storedBlobs(root: string): Set<string> {
  const out = new Set<string>();
  const dir = path.join(root, 'docker', 'registry', 'v2', 'blobs', 'sha256');
  for (const prefix of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    for (const hex of fs.readdirSync(path.join(dir, prefix))) {
      if (fs.existsSync(path.join(dir, prefix, hex, 'data'))) out.add(`sha256:${hex}`);
    }
  }
  return out;
}
