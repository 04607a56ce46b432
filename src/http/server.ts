import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import type { Express } from 'express';
import type { Logger } from '../log/logger.js';
import type { ServerTls } from '../tls/certificates.js';

/**
 * TLS 1.3 suites in the server's order, AES-128-GCM first: as strong for these tokens and
 * blobs, and about a tenth cheaper per byte than AES-256-GCM, which clients (curl, Go)
 * would otherwise pick for large pulls. TLS 1.2 keeps Node's defaults.
 */
const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  ...tls.DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_')),
].join(':');

export interface ListenOptions {
  bind: string;
  port: number;
  tls: ServerTls;
  log: Logger;
  /** Body sent when the HTTP parser rejects a request before the app sees it. */
  parserErrorBody: (status: number, message: string) => object;
  /** 0 disables the whole-request deadline (long blob uploads); idle sockets still time out. */
  requestTimeoutMs: number;
  idleTimeoutMs?: number;
  /**
   * Answers the requests it takes on the raw request event, before Express (hot routes,
   * where Express's own per-request work costs more than the answer); false hands the
   * request to the app.
   */
  fastPath?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

/**
 * Starts an HTTPS server for an app. Requests Node's parser rejects (oversized headers,
 * garbage) still get an answer in the API's own JSON error format.
 */
export async function listenHttps(app: Express, opts: ListenOptions): Promise<https.Server> {
  const server = https.createServer(
    {
      cert: opts.tls.cert,
      key: opts.tls.key,
      minVersion: 'TLSv1.2',
      ciphers: CIPHERS,
      honorCipherOrder: true,
      maxHeaderSize: 16 * 1024,
      requestTimeout: opts.requestTimeoutMs,
      headersTimeout: 30_000,
      keepAliveTimeout: 65_000,
    },
    opts.fastPath ? (req, res) => opts.fastPath!(req, res) || app(req, res) : app,
  );
  server.setTimeout(opts.idleTimeoutMs ?? 300_000, (socket: Socket) => socket.destroy());
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const [status, reason, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'request headers are too large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'request timed out']
          : [400, 'Bad Request', 'malformed HTTP request'];
    const body = JSON.stringify(opts.parserErrorBody(status, message));
    opts.log.debug({ code: err.code }, 'rejected malformed request');
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  server.on('tlsClientError', (err) => opts.log.debug({ err: err.message }, 'TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Stops accepting connections and waits for in-flight requests, up to a limit. */
export async function closeServer(server: https.Server, graceMs = 10_000): Promise<void> {
  const done = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await done;
  clearTimeout(timer);
}
