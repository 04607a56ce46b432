import type { ConfigShape } from './schema.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TEMPURL_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];
/** Object name prefixes use the driver path alphabet, so they can never hide a traversal. */
const ROOT_RE = /^\/?([A-Za-z0-9._:-]+\/)*[A-Za-z0-9._:-]*\/?$/;

function rootProblem(key: string, root: string): string | undefined {
  if (root === '') return undefined;
  if (!ROOT_RE.test(root) || root.split('/').some((c) => c === '.' || c === '..')) {
    return `${key}: must be a plain prefix of [A-Za-z0-9._:-] components separated by "/", got ${JSON.stringify(root)}`;
  }
  return undefined;
}

/**
 * Cross-key rules of the cloud storage drivers that convict's per-key formats cannot
 * express; only the selected driver is checked, so unused sections may stay empty.
 */
export function storageProblems(storage: ConfigShape['storage']): string[] {
  const out: string[] = [];
  if (storage.driver === 'swift') {
    const s = storage.swift;
    if (!s.authUrl) out.push('storage.swift.authUrl (KEYPORT_SWIFT_AUTH_URL): must be set for the swift driver');
    const appCred = !!(s.applicationCredentialId || s.applicationCredentialName);
    if (appCred) {
      if (!s.applicationCredentialSecret) out.push('storage.swift.applicationCredentialSecret: must be set with an application credential');
      if (!s.applicationCredentialId && !s.username) out.push('storage.swift.username: must be set with applicationCredentialName');
    } else if (!s.username || !s.password) {
      out.push('storage.swift.username and storage.swift.password (or an application credential) must be set for the swift driver');
    }
    if (s.chunkSize < MiB || s.chunkSize > 5 * GiB) out.push('storage.swift.chunkSize (KEYPORT_SWIFT_CHUNK_SIZE): must be between 1 MiB and 5 GiB');
    if (s.redirect && !s.tempUrlKey) out.push('storage.swift.redirect needs storage.swift.tempUrlKey (KEYPORT_SWIFT_TEMPURL_KEY)');
    const bad = s.tempUrlMethods.filter((m) => !TEMPURL_METHODS.includes(m));
    if (bad.length) out.push(`storage.swift.tempUrlMethods: unknown methods ${bad.join(', ')} (allowed: ${TEMPURL_METHODS.join(', ')})`);
    const r = rootProblem('storage.swift.rootDirectory (KEYPORT_SWIFT_ROOT_DIRECTORY)', s.rootDirectory);
    if (r) out.push(r);
    if (s.container.includes('/')) out.push('storage.swift.container: must not contain "/"');
  }
  if (storage.driver === 's3') {
    const s = storage.s3;
    if (!s.bucket) out.push('storage.s3.bucket (KEYPORT_S3_BUCKET): must be set for the s3 driver');
    if (!!s.accessKey !== !!s.secretKey) out.push('storage.s3.accessKey and storage.s3.secretKey: set both or neither');
    if (s.chunkSize < 5 * MiB || s.chunkSize > 5 * GiB) out.push('storage.s3.chunkSize (KEYPORT_S3_CHUNK_SIZE): must be between 5 MiB and 5 GiB');
    const r = rootProblem('storage.s3.rootDirectory (KEYPORT_S3_ROOT_DIRECTORY)', s.rootDirectory);
    if (r) out.push(r);
  }
  return out;
}
