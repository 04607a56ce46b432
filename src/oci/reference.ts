/**
 * Grammar of repository names, tags and digests (OCI distribution-spec, Docker
 * reference package). Everything that reaches storage paths is checked here first, so
 * no name or reference can climb out of the storage root.
 */

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const COMPONENT_RE = new RegExp(`^${COMPONENT}$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
/** Any syntactically plausible digest, to tell "unsupported algorithm" from "garbage". */
const DIGEST_SHAPE_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Docker Distribution's limit on the whole name. */
export const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function isValidPathComponent(s: string): boolean {
  return COMPONENT_RE.test(s);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export type DigestAlgorithm = 'sha256' | 'sha512';

export interface Digest {
  algorithm: DigestAlgorithm;
  hex: string;
  /** "algorithm:hex" */
  value: string;
}

export function parseDigest(s: string): Digest | undefined {
  if (!DIGEST_RE.test(s)) return undefined;
  const i = s.indexOf(':');
  return { algorithm: s.slice(0, i) as DigestAlgorithm, hex: s.slice(i + 1), value: s };
}

/** Looks like a digest (algorithm:encoded) even if not one Keyport supports. */
export function looksLikeDigest(s: string): boolean {
  return DIGEST_SHAPE_RE.test(s);
}
