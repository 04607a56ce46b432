import { ManifestTypes, type Descriptor, type Manifest } from '../client/registry.js';

const INDEX_TYPES = new Set<string>([ManifestTypes.ociIndex, ManifestTypes.dockerList]);
const IMAGE_TYPES = new Set<string>([ManifestTypes.ociManifest, ManifestTypes.dockerManifest]);

export class ManifestError extends Error {
  override name = 'ManifestError';
}

interface Parsed {
  kind: 'index' | 'image';
  /** index: its entries; image: config and layers whose bytes live in the registry. */
  descriptors: Descriptor[];
}

function isDescriptor(d: unknown): d is Descriptor {
  const x = d as Descriptor | undefined;
  return !!x && typeof x === 'object' && typeof x.digest === 'string' && typeof x.mediaType === 'string' && Number.isSafeInteger(x.size) && x.size >= 0;
}

/** Layers kept elsewhere (Windows base layers): registries do not hold their bytes, so they are not copied. */
function isForeign(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 && /foreign|nondistributable/.test(d.mediaType);
}

/** What a manifest references: the entries of an index, or the blobs of an image. */
export function parseManifest(m: Manifest, where: string): Parsed {
  if (m.mediaType === ManifestTypes.dockerSchema1 || m.mediaType === ManifestTypes.dockerSchema1Signed) {
    throw new ManifestError(`${where} is a Docker schema 1 manifest; those cannot be copied (re-push it with a current client)`);
  }
  let doc: { schemaVersion?: unknown; manifests?: unknown; config?: unknown; layers?: unknown };
  try {
    doc = JSON.parse(m.body.toString('utf8'));
  } catch {
    throw new ManifestError(`${where} is not valid JSON`);
  }
  if (doc.schemaVersion === 1) throw new ManifestError(`${where} is a Docker schema 1 manifest; those cannot be copied (re-push it with a current client)`);
  const isIndex = INDEX_TYPES.has(m.mediaType) || (!IMAGE_TYPES.has(m.mediaType) && Array.isArray(doc.manifests));
  if (isIndex) {
    if (!Array.isArray(doc.manifests) || !doc.manifests.every(isDescriptor)) throw new ManifestError(`${where}: an index needs a list of descriptors`);
    return { kind: 'index', descriptors: doc.manifests };
  }
  if (!isDescriptor(doc.config) || !Array.isArray(doc.layers) || !doc.layers.every(isDescriptor)) {
    throw new ManifestError(`${where} (${m.mediaType || 'no media type'}) is neither an image manifest nor an index`);
  }
  return { kind: 'image', descriptors: [doc.config, ...doc.layers.filter((l) => !isForeign(l))] };
}
