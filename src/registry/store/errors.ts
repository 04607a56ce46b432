/**
 * What the stores refuse, in their own terms. They know nothing of HTTP; the one
 * mapping to OCI error codes and statuses is in ../http-errors.ts.
 */
export class StoreError extends Error {
  override name = 'StoreError';
}

/** No upload session of that id in that repository (never started, finished, cancelled or purged). */
export class UploadUnknown extends StoreError {
  override name = 'UploadUnknown';
  constructor() {
    super('blob upload unknown to registry');
  }
}

/** A chunk that does not start where the upload stands. */
export class RangeInvalid extends StoreError {
  override name = 'RangeInvalid';
  /** `stored`: the bytes the upload holds, where the next chunk must start. */
  constructor(readonly stored: number) {
    super('content range does not continue the upload');
  }
}

/** A body of another length than the client announced. */
export class SizeInvalid extends StoreError {
  override name = 'SizeInvalid';
  constructor(readonly why: string) {
    super(`provided length did not match content length: ${why}`);
  }
}

/** Content whose digest is not the one the client named. */
export class DigestMismatch extends StoreError {
  override name = 'DigestMismatch';
  constructor(
    readonly digest: string,
    readonly why: string,
  ) {
    super(`provided digest did not match uploaded content: ${why}`);
  }
}

/** A manifest reference that is neither a valid tag nor a supported digest. */
export class ReferenceInvalid extends StoreError {
  override name = 'ReferenceInvalid';
  constructor(
    readonly reference: string,
    readonly kind: 'tag' | 'digest',
  ) {
    super(kind === 'digest' ? 'invalid digest' : 'invalid tag or digest reference');
  }
}

/** A manifest that cannot be parsed or breaks the rules of its media type. */
export class ManifestInvalid extends StoreError {
  override name = 'ManifestInvalid';
  constructor(readonly why: string) {
    super(`manifest invalid: ${why}`);
  }
}

/** A descriptor whose size is not the stored size of what it points at. */
export class DescriptorSizeMismatch extends StoreError {
  override name = 'DescriptorSizeMismatch';
  constructor(
    readonly descriptor: string,
    readonly digest: string,
    readonly declared: number,
    readonly stored: number,
  ) {
    super(`manifest invalid: ${descriptor} declares size ${declared} but ${digest} is ${stored} bytes`);
  }
}

/** A manifest pointing at a blob or manifest the repository does not have. */
export class ManifestBlobUnknown extends StoreError {
  override name = 'ManifestBlobUnknown';
  constructor(readonly digest: string) {
    super('manifest references a blob or manifest unknown to this repository');
  }
}

/** No manifest under that tag or digest in the repository. */
export class ManifestUnknown extends StoreError {
  override name = 'ManifestUnknown';
  constructor(readonly reference: string) {
    super('manifest unknown');
  }
}

/** A repository that does not exist. */
export class NameUnknown extends StoreError {
  override name = 'NameUnknown';
  constructor(readonly repository: string) {
    super('repository name not known to registry');
  }
}

/**
 * A tag that retention is removing at this very moment (or that a retention run killed
 * mid-removal left marked, for at most the tombstone TTL): the push of it is to be
 * retried, and then lands after the removal.
 */
export class TagBusy extends StoreError {
  override name = 'TagBusy';
  constructor(readonly tag: string) {
    super(`tag ${tag} is being removed by retention; retry the push`);
  }
}
