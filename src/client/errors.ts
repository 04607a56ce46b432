/** What a registry or token server said when it refused a request. */
export class RegistryRequestError extends Error {
  override name = 'RegistryRequestError';
  constructor(
    message: string,
    readonly status: number,
    /** The first OCI error code of the answer (MANIFEST_UNKNOWN, DENIED, ...), when it had one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Logging in failed: wrong credentials, or the token server refused or was unreachable. */
export class LoginError extends Error {
  override name = 'LoginError';
}

/**
 * The human part of an error answer: the OCI `errors[0]` (registries), the OAuth
 * `error_description` (token servers), else the start of the body.
 */
export function errorMessageOf(body: Buffer): { message?: string; code?: string } {
  const text = body.toString('utf8');
  try {
    const doc = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }>; error_description?: unknown; error?: unknown; details?: unknown };
    const first = Array.isArray(doc.errors) ? doc.errors[0] : undefined;
    if (typeof doc.error_description === 'string') return { message: doc.error_description, ...(typeof first?.code === 'string' ? { code: first.code } : {}) };
    if (first && typeof first.message === 'string') return { message: first.message, ...(typeof first.code === 'string' ? { code: first.code } : {}) };
    if (typeof doc.details === 'string') return { message: doc.details };
    if (typeof doc.error === 'string') return { message: doc.error };
  } catch {
    /* not JSON */
  }
  const plain = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return plain ? { message: plain } : {};
}
