/**
 * Registry errors: typed values with the OCI distribution-spec error codes. The one
 * mapping to HTTP is in http-errors.ts.
 */
export type ErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'UNAVAILABLE'
  | 'UNKNOWN';

const STATUS: Record<ErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
};

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly status: number;
  readonly headers: Record<string, string> = {};

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly detail?: unknown,
    status?: number,
  ) {
    super(message);
    this.status = status ?? STATUS[code];
  }
}

export const errors = {
  blobUnknown: (digest: string) => new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest }),
  uploadUnknown: () => new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry'),
  uploadInvalid: (why: string) => new RegistryError('BLOB_UPLOAD_INVALID', `blob upload invalid: ${why}`),
  digestInvalid: (why: string, detail?: unknown) => new RegistryError('DIGEST_INVALID', `provided digest did not match uploaded content: ${why}`, detail),
  digestMalformed: (value: string) => new RegistryError('DIGEST_INVALID', 'invalid digest', { digest: value }),
  manifestUnknown: (reference: string) => new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { reference }),
  manifestInvalid: (why: string) => new RegistryError('MANIFEST_INVALID', `manifest invalid: ${why}`),
  descriptorSizeInvalid: (descriptor: string, digest: string, declared: number, stored: number) =>
    new RegistryError('MANIFEST_INVALID', `manifest invalid: ${descriptor} declares size ${declared} but ${digest} is ${stored} bytes`, {
      descriptor,
      digest,
      size: declared,
      storedSize: stored,
    }),
  manifestBlobUnknown: (digest: string) => new RegistryError('MANIFEST_BLOB_UNKNOWN', 'manifest references a blob or manifest unknown to this repository', { digest }),
  nameInvalid: (name: string) => new RegistryError('NAME_INVALID', 'invalid repository name', { name }),
  nameUnknown: (name: string) => new RegistryError('NAME_UNKNOWN', 'repository name not known to registry', { name }),
  sizeInvalid: (why: string) => new RegistryError('SIZE_INVALID', `provided length did not match content length: ${why}`),
  tagInvalid: (tag: string) => new RegistryError('MANIFEST_INVALID', 'invalid tag or digest reference', { reference: tag }),
  unsupported: (why: string) => new RegistryError('UNSUPPORTED', `the operation is unsupported: ${why}`),
  rangeInvalid: (why: string, size: number) => {
    const e = new RegistryError('RANGE_INVALID', `requested range not satisfiable: ${why}`, undefined, 416);
    e.headers['Content-Range'] = `bytes */${size}`;
    return e;
  },
  uploadRangeInvalid: (offset: number) => {
    const e = new RegistryError('RANGE_INVALID', 'content range does not continue the upload', { offset }, 416);
    e.headers.Range = `0-${Math.max(0, offset - 1)}`;
    return e;
  },
  tooLarge: (what: string, limit: number) => new RegistryError('SIZE_INVALID', `${what} larger than ${limit} bytes`, { limit }, 413),
  paginationInvalid: (value: string) => new RegistryError('PAGINATION_NUMBER_INVALID', 'invalid number of results requested', { n: value }),
  unavailable: (why: string) => new RegistryError('UNAVAILABLE', `service unavailable: ${why}`),
};
