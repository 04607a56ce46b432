import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { StorageError } from './driver.js';

export interface TlsOptions {
  /** PEM bundle to verify the store's certificates; empty uses the system store. */
  caFile: string;
  /** Skip certificate verification (testing only). */
  insecureSkipVerify: boolean;
}

export interface Agents {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

/**
 * Keep-alive agents shared by every request a driver makes: a registry talks to its
 * store constantly, and a fresh TCP (and TLS) handshake per object would dominate the
 * cost of small objects.
 */
export function createAgents(tls: TlsOptions): Agents {
  let ca: Buffer | undefined;
  if (tls.caFile) {
    try {
      ca = fs.readFileSync(tls.caFile);
    } catch (e) {
      throw new StorageError(`cannot read CA bundle ${tls.caFile}: ${(e as Error).message}`);
    }
  }
  const common = { keepAlive: true, maxSockets: 64, maxFreeSockets: 16 };
  return {
    httpAgent: new http.Agent(common),
    httpsAgent: new https.Agent({ ...common, ca, rejectUnauthorized: !tls.insecureSkipVerify }),
  };
}

export function destroyAgents(a: Agents): void {
  a.httpAgent.destroy();
  a.httpsAgent.destroy();
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ERR_CANCELED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'UND_ERR_SOCKET',
  'TimeoutError',
  'RequestTimeout',
]);

/** True for failures that mean "the store cannot be reached", as opposed to a refused request. */
export function isNetworkError(e: unknown): boolean {
  const err = e as { code?: string; name?: string; cause?: { code?: string } } | undefined;
  if (!err) return false;
  return (
    NETWORK_CODES.has(err.code ?? '') ||
    NETWORK_CODES.has(err.name ?? '') ||
    NETWORK_CODES.has(err.cause?.code ?? '') ||
    err.name === 'AbortError' ||
    err.name === 'CanceledError'
  );
}
