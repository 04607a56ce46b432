import { parseDigest, type Digest } from '../oci/reference.js';
import type { Descriptor } from '../oci/descriptor.js';
import { ManifestInvalid } from './store/errors.js';

export const MediaTypes = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

const IMAGE_TYPES = new Set<string>([MediaTypes.dockerManifest, MediaTypes.ociManifest]);
const INDEX_TYPES = new Set<string>([MediaTypes.dockerManifestList, MediaTypes.ociIndex]);
/** Layers that live elsewhere (Windows base layers); their bytes are not in the registry. */
const FOREIGN_LAYERS = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

export function isManifestMediaType(t: string): boolean {
  return IMAGE_TYPES.has(t) || INDEX_TYPES.has(t);
}

export function isIndexMediaType(t: string): boolean {
  return INDEX_TYPES.has(t);
}

export type { Descriptor };

/** What a descriptor points at: digest and declared size, and where it sits ("layers[2]"). */
export interface Target {
  field: string;
  digest: Digest;
  size: number;
}

export interface ParsedManifest {
  mediaType: string;
  /** Blobs the repository must hold (config and layers), each of its declared size. */
  blobs: Target[];
  /** Manifests the repository must hold (index entries), each of its declared size. */
  manifests: Array<Target & { descriptor: Descriptor }>;
  subject?: Digest;
  artifactType?: string;
  annotations?: Record<string, string>;
  configMediaType?: string;
}

function descriptor(raw: unknown, where: string): Descriptor & { parsed: Digest } {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ManifestInvalid(`${where} is not a descriptor`);
  const d = raw as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw new ManifestInvalid(`${where}.mediaType missing`);
  if (typeof d.digest !== 'string') throw new ManifestInvalid(`${where}.digest missing`);
  const parsed = parseDigest(d.digest);
  if (!parsed) throw new ManifestInvalid(`${where}.digest ${JSON.stringify(d.digest)} is not a supported digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw new ManifestInvalid(`${where}.size must be a non-negative integer`);
  const out: Descriptor & { parsed: Digest } = { mediaType: d.mediaType, digest: d.digest, size: d.size, parsed };
  if (typeof d.artifactType === 'string') out.artifactType = d.artifactType;
  if (d.annotations && typeof d.annotations === 'object') out.annotations = d.annotations as Record<string, string>;
  if (d.platform && typeof d.platform === 'object') out.platform = d.platform as Descriptor['platform'];
  if (Array.isArray(d.urls)) out.urls = d.urls.filter((u): u is string => typeof u === 'string');
  return out;
}

/**
 * Parses and checks a manifest as uploaded. The media type comes from the manifest's
 * own mediaType field or, when it has none (allowed for OCI), from Content-Type or
 * the shape of the document; both must agree when both are given.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ManifestInvalid('not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new ManifestInvalid('not a JSON object');
  const ct = contentType?.split(';')[0]!.trim().toLowerCase();
  if (doc.schemaVersion === 1 || ct === MediaTypes.dockerSchema1 || ct === MediaTypes.dockerSchema1Signed) {
    throw new ManifestInvalid('Docker schema 1 manifests are not supported; push with a current client');
  }
  if (doc.schemaVersion !== 2) throw new ManifestInvalid('schemaVersion must be 2');
  let mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (mediaType && ct && isManifestMediaType(ct) && ct !== mediaType) {
    throw new ManifestInvalid(`Content-Type ${ct} does not match the manifest's mediaType ${mediaType}`);
  }
  if (!mediaType) {
    if (ct && isManifestMediaType(ct)) mediaType = ct;
    else mediaType = Array.isArray(doc.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest;
  }
  if (!isManifestMediaType(mediaType)) throw new ManifestInvalid(`unsupported manifest media type ${mediaType}`);

  const out: ParsedManifest = { mediaType, blobs: [], manifests: [] };
  if (typeof doc.artifactType === 'string') out.artifactType = doc.artifactType;
  if (doc.annotations && typeof doc.annotations === 'object') out.annotations = doc.annotations as Record<string, string>;
  if (doc.subject !== undefined) out.subject = descriptor(doc.subject, 'subject').parsed;

  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw new ManifestInvalid('an index needs a manifests list');
    doc.manifests.forEach((m, i) => {
      const field = `manifests[${i}]`;
      const { parsed, ...rest } = descriptor(m, field);
      out.manifests.push({ field, digest: parsed, size: rest.size, descriptor: rest });
    });
    return out;
  }
  const config = descriptor(doc.config, 'config');
  out.configMediaType = config.mediaType;
  out.blobs.push({ field: 'config', digest: config.parsed, size: config.size });
  if (!Array.isArray(doc.layers)) throw new ManifestInvalid('an image manifest needs a layers list');
  doc.layers.forEach((l, i) => {
    const field = `layers[${i}]`;
    const d = descriptor(l, field);
    if (FOREIGN_LAYERS.has(d.mediaType) && d.urls && d.urls.length > 0) return;
    out.blobs.push({ field, digest: d.parsed, size: d.size });
  });
  return out;
}

/** The artifact type a referrers response reports for a manifest. */
export function artifactTypeOf(m: ParsedManifest): string | undefined {
  if (m.artifactType) return m.artifactType;
  if (IMAGE_TYPES.has(m.mediaType)) return m.configMediaType;
  return undefined;
}

/** Whether a client's Accept header admits a media type. No Accept admits everything. */
export function accepts(acceptHeader: string | undefined, mediaType: string): boolean {
  if (!acceptHeader) return true;
  for (const part of acceptHeader.split(',')) {
    const t = part.split(';')[0]!.trim().toLowerCase();
    if (t === mediaType || t === '*/*' || t === 'application/*') return true;
  }
  return false;
}
