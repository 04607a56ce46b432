import type { Digest } from '../../oci/reference.js';

/**
 * Where things live in the store. The layout is Docker Distribution's, so data can
 * move between the two: content-addressed blobs stored once, and per-repository links
 * that say which blobs, manifests and tags a repository has.
 */
const ROOT = '/docker/registry/v2';

export const paths = {
  blobData: (d: Digest) => `${ROOT}/blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}/data`,
  blobsRoot: () => `${ROOT}/blobs`,
  repositoriesRoot: () => `${ROOT}/repositories`,
  repository: (name: string) => `${ROOT}/repositories/${name}`,
  layerLink: (name: string, d: Digest) => `${ROOT}/repositories/${name}/_layers/${d.algorithm}/${d.hex}/link`,
  revisionLink: (name: string, d: Digest) => `${ROOT}/repositories/${name}/_manifests/revisions/${d.algorithm}/${d.hex}/link`,
  revisionsRoot: (name: string) => `${ROOT}/repositories/${name}/_manifests/revisions`,
  tagsRoot: (name: string) => `${ROOT}/repositories/${name}/_manifests/tags`,
  tag: (name: string, tag: string) => `${ROOT}/repositories/${name}/_manifests/tags/${tag}`,
  tagCurrent: (name: string, tag: string) => `${ROOT}/repositories/${name}/_manifests/tags/${tag}/current/link`,
  tagIndex: (name: string, tag: string, d: Digest) => `${ROOT}/repositories/${name}/_manifests/tags/${tag}/index/${d.algorithm}/${d.hex}/link`,
  referrersOf: (name: string, subject: Digest) => `${ROOT}/repositories/${name}/_referrers/${subject.algorithm}/${subject.hex}`,
  referrer: (name: string, subject: Digest, d: Digest) => `${ROOT}/repositories/${name}/_referrers/${subject.algorithm}/${subject.hex}/${d.algorithm}/${d.hex}/link`,
  uploadsRoot: (name: string) => `${ROOT}/repositories/${name}/_uploads`,
  upload: (name: string, id: string) => `${ROOT}/repositories/${name}/_uploads/${id}`,
  uploadData: (name: string, id: string) => `${ROOT}/repositories/${name}/_uploads/${id}/data`,
  uploadStarted: (name: string, id: string) => `${ROOT}/repositories/${name}/_uploads/${id}/startedat`,
};

/** Directory names that mark repository internals, never parts of a repository name. */
export const INTERNAL_DIRS = new Set(['_layers', '_manifests', '_uploads', '_referrers']);
