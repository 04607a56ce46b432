/**
 * What can go wrong between the cache and an upstream, as domain errors; the registry
 * maps them to its API's errors in src/registry/http-errors.ts.
 */

/** The upstream cannot be asked now: unreachable, too slow, 5xx, or an answer that makes no sense. */
export class UpstreamUnavailableError extends Error {
  override name = 'UpstreamUnavailableError';
  constructor(
    /** The upstream's URL, as configured. */
    readonly upstream: string,
    readonly reason: string,
  ) {
    super(`upstream ${upstream} is unavailable: ${reason}`);
  }
}

/** The upstream does not have it (404), or refuses it to the cache's login (401/403: private or absent). */
export class UpstreamNotFoundError extends Error {
  override name = 'UpstreamNotFoundError';
  constructor(
    readonly upstream: string,
    readonly kind: 'manifest' | 'blob',
    readonly reference: string,
    readonly status: number,
  ) {
    super(`upstream ${upstream} has no ${kind} ${reference}${status === 404 ? '' : ` (it answered ${status})`}`);
  }
}

/** The upstream rate-limits the cache (429); its Retry-After is passed on. */
export class UpstreamThrottledError extends Error {
  override name = 'UpstreamThrottledError';
  constructor(
    readonly upstream: string,
    readonly retryAfter: string | undefined,
  ) {
    super(`upstream ${upstream} asks to slow down (429 Too Many Requests)`);
  }
}

/** The upstream sent content that does not match its digest; nothing of it was kept. */
export class UpstreamDigestError extends Error {
  override name = 'UpstreamDigestError';
  constructor(
    readonly upstream: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`upstream ${upstream} sent content for ${expected} whose digest is ${actual}; it was not stored`);
  }
}

/** Errors that mean "the upstream cannot answer now", so cached content is served instead. */
export function isUpstreamOutage(e: unknown): boolean {
  return e instanceof UpstreamUnavailableError || e instanceof UpstreamThrottledError;
}
