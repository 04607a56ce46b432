import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
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

const BODY_METHODS = new Set(['PUT', 'POST', 'PATCH', 'COPY']);

/**
 * Whether the connection that carried `req` may carry another request after `res`.
 *
 * A store that refuses a request with a body (401 from an expired token, 413, 5xx) often
 * answers before it has read the body. The bytes still in flight then reach the server
 * after the answer, where they are read as the start of a next request, and the server's
 * reply to that garbage is what the next request on the same keep-alive socket parses
 * ("Parse Error: Expected HTTP/"), or a request reuses a socket the server is about to
 * close. Any answer other than success to a request with a body, and every 401, 408 and
 * 5xx, therefore ends its connection instead of returning it to the pool.
 */
export function reusableAfter(method: string, hasBody: boolean, status: number): boolean {
  if (status === 401 || status === 408 || status >= 500) return false;
  if ((hasBody || BODY_METHODS.has(method)) && (status < 200 || status >= 300)) return false;
  return true;
}

function hasBody(req: http.ClientRequest): boolean {
  const len = req.getHeader('content-length');
  if (len !== undefined) return Number(len) > 0;
  return /chunked/i.test(String(req.getHeader('transfer-encoding') ?? ''));
}

/**
 * Guards one request: when its answer makes the connection unsafe to reuse, the socket is
 * destroyed as the response ends. Node returns a keep-alive socket to the pool (or hands it
 * to a waiting request) on the tick after the response's 'end' listeners have run, and a
 * destroyed socket is never reused, so the next request opens a fresh connection.
 */
function guard(req: http.ClientRequest): void {
  req.once('response', (res: http.IncomingMessage) => {
    if (reusableAfter(req.method, hasBody(req), res.statusCode ?? 0)) return;
    const socket: Duplex | null = res.socket;
    res.once('end', () => socket?.destroy());
  });
}

/*
 * Node's Agent calls addRequest() for every request it serves (axios and the AWS SDK both
 * go through these agents); it is the one place every exchange with the store passes.
 */
type AddRequest = (req: http.ClientRequest, options: unknown) => void;

class GuardedHttpAgent extends http.Agent {
  addRequest(req: http.ClientRequest, options: unknown): void {
    guard(req);
    ((http.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest).call(this, req, options);
  }
}

class GuardedHttpsAgent extends https.Agent {
  addRequest(req: http.ClientRequest, options: unknown): void {
    guard(req);
    ((https.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest).call(this, req, options);
  }
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
    httpAgent: new GuardedHttpAgent(common),
    httpsAgent: new GuardedHttpsAgent({ ...common, ca, rejectUnauthorized: !tls.insecureSkipVerify }),
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
  'ERR_STREAM_PREMATURE_CLOSE',
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

/**
 * True for any failure of the exchange itself rather than of our own code: a connection
 * problem, a timeout, or an answer that is not HTTP (a parser error: HPE_*). Such a store is
 * unavailable to this request, whatever the exact cause.
 */
export function isTransportError(e: unknown): boolean {
  if (isNetworkError(e)) return true;
  const err = e as { code?: string; cause?: { code?: string }; isAxiosError?: boolean; response?: unknown } | undefined;
  if (!err) return false;
  if (/^HPE_/.test(err.code ?? '') || /^HPE_/.test(err.cause?.code ?? '')) return true;
  if (/^(ERR_HTTP|ERR_STREAM|ERR_SOCKET|ERR_TLS|ERR_SSL|UNABLE_TO|CERT_|DEPTH_ZERO|SELF_SIGNED)/.test(err.code ?? '')) return true;
  // An axios failure without a response never got an answer it could read; ERR_BAD_RESPONSE
  // is an answer that broke off or could not be decoded.
  return err.isAxiosError === true && (err.response === undefined || err.code === 'ERR_BAD_RESPONSE');
}
