import { StorageError, StorageUnavailableError } from '../driver.js';
import { isTransportError } from '../transport.js';

interface SdkError {
  name?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

export function statusOf(e: unknown): number | undefined {
  return (e as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/** True when S3 says the key (or upload) does not exist. */
export function isNotFound(e: unknown): boolean {
  const err = e as SdkError | undefined;
  return statusOf(e) === 404 || err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.name === 'NoSuchUpload';
}

/**
 * Maps an SDK failure to the driver's typed errors: unreachable, timed out or failing
 * (5xx) stores are StorageUnavailableError, and so is an SDK failure that carries no HTTP
 * status (no answer, or one that could not be parsed); anything else keeps its S3 code in
 * the message. Credentials never appear: the SDK does not put them in errors.
 */
export function mapS3Error(op: string, what: string, e: unknown): Error {
  if (e instanceof StorageError) return e;
  const err = e as SdkError;
  const status = statusOf(e);
  const detail = `${err?.name ?? 'Error'}${status ? ` (${status})` : ''}: ${err?.message ?? String(e)}`;
  const sdkFailure = err !== null && typeof err === 'object' && '$metadata' in err;
  if (isTransportError(e) || (status !== undefined && status >= 500) || err?.name === 'TimeoutError' || (sdkFailure && status === undefined)) {
    return new StorageUnavailableError(`s3 ${op} ${what} failed: ${detail}`);
  }
  return new StorageError(`s3 ${op} ${what} failed: ${detail}`);
}
