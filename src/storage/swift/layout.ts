import crypto from 'node:crypto';

/**
 * Where things live in the container. Driver paths map to `<root>/files<path>`; the
 * segments of large objects live under `<root>/segments/<set>/`, one set (a random id)
 * per object, so deleting an object can remove its set without ever listing another
 * object's segments. The object (an SLO manifest, or a zero-byte placeholder while an
 * upload has not closed yet) names its set in a content-type parameter, which container
 * listings return: a prefix delete finds every set without a request per object.
 */
export class SwiftLayout {
  readonly filesPrefix: string;
  readonly segmentsPrefix: string;

  constructor(
    readonly container: string,
    rootDirectory: string,
  ) {
    const root = rootDirectory.replace(/^\/+|\/+$/g, '');
    this.filesPrefix = root ? `${root}/files` : 'files';
    this.segmentsPrefix = root ? `${root}/segments/` : 'segments/';
  }

  /** Object name of a checked driver path ('/' is the files root itself). */
  object(path: string): string {
    return path === '/' ? this.filesPrefix : this.filesPrefix + path;
  }

  /** Listing prefix for the children of a driver directory. */
  dirPrefix(path: string): string {
    return `${this.object(path)}/`;
  }

  /** Driver path of an object name or listing subdir under the files prefix. */
  path(name: string): string {
    return name.slice(this.filesPrefix.length).replace(/\/$/, '');
  }

  setPrefix(set: string): string {
    return `${this.segmentsPrefix}${set}/`;
  }

  /** Segments sort by the offset they start at; the writer id keeps concurrent writers apart. */
  segment(set: string, offset: number, writerId: string): string {
    return `${this.setPrefix(set)}${String(offset).padStart(16, '0')}-${writerId}`;
  }

  /** A nested manifest grouping earlier segments of the same set. */
  subManifest(set: string, offset: number, writerId: string): string {
    return `${this.segment(set, offset, writerId)}.slo`;
  }

  /** The reference an SLO manifest uses for an object of this container. */
  ref(name: string): string {
    return `/${this.container}/${name}`;
  }

  /** Object name from an SLO reference. */
  nameOfRef(ref: string): string {
    const p = `/${this.container}/`;
    return ref.startsWith(p) ? ref.slice(p.length) : ref.replace(/^\/[^/]+\//, '');
  }
}

export function newId(bytes: number): string {
  return crypto.randomBytes(bytes).toString('hex');
}

const SET_PARAM = 'keyport-segments';

export function contentTypeWithSet(set: string): string {
  return `application/octet-stream;${SET_PARAM}=${set}`;
}

export function setOfContentType(ct: string | undefined): string | undefined {
  if (!ct) return undefined;
  const m = new RegExp(`;\\s*${SET_PARAM}=([0-9a-f]+)`).exec(ct);
  return m?.[1];
}
