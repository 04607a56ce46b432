import { isValidRepositoryName, isValidTag, parseDigest } from '../oci/reference.js';

/** An image named on the command line. `registry` is host[:port]; none means this Keyport. */
export interface ImageReference {
  registry?: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export class ReferenceError extends Error {
  override name = 'ReferenceError';
}

const DOCKER_HUB = 'docker.io';

/** Where a registry host's API lives (Docker Hub's API is not on docker.io itself). */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

/** repository[:tag][@digest], checked against the OCI grammar. */
function parseNameAndReference(text: string, what: string): Omit<ImageReference, 'registry'> {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!parseDigest(digest)) throw new ReferenceError(`${what}: ${JSON.stringify(digest)} is not a sha256 or sha512 digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new ReferenceError(`${what}: ${JSON.stringify(tag)} is not a valid tag`);
  }
  if (!isValidRepositoryName(rest)) {
    throw new ReferenceError(`${what}: ${JSON.stringify(rest)} is not a valid repository name (lowercase components separated by "/")`);
  }
  return { repository: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/**
 * SOURCE: `docker://host[:port]/repository[:tag|@digest]` on any registry (as skopeo
 * writes it; without a host part the name is Docker Hub's, `library/` added to
 * one-component names) or `repository[:tag|@digest]` on this Keyport. No tag and no
 * digest means `latest`, as docker pull has it.
 */
export function parseSource(text: string): ImageReference {
  if (text.startsWith('docker://')) {
    const rest = text.slice('docker://'.length);
    const slash = rest.indexOf('/');
    const first = slash < 0 ? '' : rest.slice(0, slash);
    const isHost = first !== '' && (first.includes('.') || first.includes(':') || first === 'localhost');
    const registry = isHost ? first : DOCKER_HUB;
    let path = isHost ? rest.slice(slash + 1) : rest;
    if (registry === DOCKER_HUB && !path.split(/[:@]/)[0]!.includes('/')) path = `library/${path}`;
    const ref = parseNameAndReference(path, 'SOURCE');
    return withDefaultTag({ registry, ...ref });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(text)) throw new ReferenceError(`SOURCE: only docker:// references are supported, got ${JSON.stringify(text)}`);
  return withDefaultTag(parseNameAndReference(text, 'SOURCE'));
}

function withDefaultTag(ref: ImageReference): ImageReference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref;
}

/** DEST: `repository:tag` on this Keyport; the tag is required, it is what the copy writes. */
export function parseDestination(text: string): { repository: string; tag: string } {
  if (text.includes('://')) throw new ReferenceError(`DEST: give repository:tag on this Keyport, not ${JSON.stringify(text)}`);
  const ref = parseNameAndReference(text, 'DEST');
  if (ref.digest !== undefined) throw new ReferenceError('DEST: name a tag (repository:tag); the digest is the source\'s');
  if (ref.tag === undefined) throw new ReferenceError(`DEST: name a tag, e.g. ${text}:1`);
  return { repository: ref.repository, tag: ref.tag };
}

/** The reference a registry path takes: the digest when there is one (it pins the content), else the tag. */
export function apiReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

export function formatReference(registry: string | undefined, repository: string, ref: { tag?: string; digest?: string }): string {
  const name = registry ? `${registry}/${repository}` : repository;
  return ref.digest ? `${name}@${ref.digest}` : `${name}:${ref.tag ?? 'latest'}`;
}
