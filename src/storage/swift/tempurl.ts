import crypto from 'node:crypto';
import { encodeName } from './client.js';

export interface TempUrlInput {
  /** Account URL, e.g. https://swift.example:8080/v1/AUTH_project. */
  storageUrl: string;
  container: string;
  object: string;
  method: string;
  /** Epoch seconds. */
  expires: number;
  key: string;
  digest: 'sha1' | 'sha256' | 'sha512';
}

/**
 * A Swift TempURL: HMAC over "METHOD\nEXPIRES\nPATH" with the account's (or container's)
 * Temp-URL key, PATH being the decoded request path (/v1/ACCOUNT/CONTAINER/OBJECT) as
 * the tempurl middleware rebuilds it. The hex digest length tells Swift the algorithm.
 */
export function tempUrl(i: TempUrlInput): string {
  const base = new URL(i.storageUrl);
  const accountPath = decodeURIComponent(base.pathname.replace(/\/+$/, ''));
  const path = `${accountPath}/${i.container}/${i.object}`;
  const sig = crypto.createHmac(i.digest, i.key).update(`${i.method}\n${i.expires}\n${path}`).digest('hex');
  const url = `${i.storageUrl.replace(/\/+$/, '')}/${encodeURIComponent(i.container)}/${encodeName(i.object)}`;
  return `${url}?temp_url_sig=${sig}&temp_url_expires=${i.expires}`;
}
