import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';

/** An answer whose body has not been read yet. */
export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body stream; read it (or call `discard`) so the connection is reused. */
  body: http.IncomingMessage;
  url: URL;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string | number>;
  body?: Buffer | Readable;
  /** Follow 301/302/303/307/308 (GET and HEAD only), dropping Authorization when the host changes. */
  followRedirects?: boolean;
}

/** The peer could not be reached or the exchange broke off: nothing was answered. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/**
 * HTTPS with one keep-alive agent per trust setting: a copy makes many small requests
 * (HEAD per blob, manifests, token) to the same two hosts. `idleTimeoutMs` bounds how
 * long a request may go without any byte moving, not how long a transfer may take.
 */
export class HttpTransport {
  private readonly agent: https.Agent;
  private readonly plain: http.Agent;

  constructor(
    private readonly opts: { ca?: Array<string | Buffer>; userAgent: string; idleTimeoutMs: number; insecure?: boolean; maxSockets?: number },
  ) {
    const maxSockets = opts.maxSockets ?? 16;
    this.agent = new https.Agent({ keepAlive: true, maxSockets, ...(opts.ca ? { ca: opts.ca } : {}), ...(opts.insecure ? { rejectUnauthorized: false } : {}) });
    this.plain = new http.Agent({ keepAlive: true, maxSockets });
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let headers = { ...(req.headers ?? {}) };
    for (let hop = 0; ; hop++) {
      const res = await this.once(req.method, url, headers, req.body);
      const location = res.headers.location;
      if (!req.followRedirects || !REDIRECTS.has(res.status) || !location || hop >= MAX_REDIRECTS) return res;
      discard(res);
      const next = new URL(location, url);
      if (next.host !== url.host) {
        // A redirect to a store (Swift TempURL, S3 presigned URL) carries its own
        // authorisation; the registry token must not travel there.
        const { authorization: _dropped, Authorization: _dropped2, ...rest } = headers as Record<string, string | number>;
        headers = rest;
      }
      url = next;
    }
  }

  private once(method: string, url: URL, headers: Record<string, string | number>, body: Buffer | Readable | undefined): Promise<HttpResponse> {
    const mod = url.protocol === 'http:' ? http : https;
    const agent = url.protocol === 'http:' ? this.plain : this.agent;
    return new Promise((resolve, reject) => {
      const r = mod.request(url, { method, agent, headers: { 'user-agent': this.opts.userAgent, ...headers } }, (res) => {
        res.setTimeout(this.opts.idleTimeoutMs, () => res.destroy(new ConnectionError(`${url.host} stopped sending (no data for ${this.opts.idleTimeoutMs / 1000} s)`)));
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      });
      r.setTimeout(this.opts.idleTimeoutMs, () => r.destroy(new ConnectionError(`${url.host} did not answer within ${this.opts.idleTimeoutMs / 1000} s`)));
      r.on('error', (e: NodeJS.ErrnoException) => reject(e instanceof ConnectionError ? e : new ConnectionError(describeNetworkError(url, e))));
      if (body === undefined) r.end();
      else if (Buffer.isBuffer(body)) r.end(body);
      else {
        body.on('error', (e) => r.destroy(e));
        body.pipe(r);
      }
    });
  }

  close(): void {
    this.agent.destroy();
    this.plain.destroy();
  }
}

/** Reads a body up to `limit` bytes; more is an error (a registry answer is never that large). */
export async function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) {
      res.body.destroy();
      throw new ConnectionError(`${res.url.host} sent more than ${limit} bytes for ${res.url.pathname}`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Drops an unread body so the connection goes back to the pool. */
export function discard(res: HttpResponse): void {
  res.body.resume();
}

function describeNetworkError(url: URL, e: NodeJS.ErrnoException): string {
  const where = url.host;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `cannot connect to ${where}: connection refused`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve ${url.hostname}`;
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the TLS certificate of ${where} is not trusted (${e.message})`;
    default:
      return `${where}: ${e.message}`;
  }
}
