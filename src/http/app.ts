import { AsyncLocalStorage } from 'node:async_hooks';
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from '../log/logger.js';
import { bytesConsumed } from '../util/chunks.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** Per-request id, echoed in X-Request-Id and on every log line of the request. */
    id: string;
    log: Logger;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * The id of the request whose work is running, for errors that escape every handler
 * (see process-guard.ts): callbacks and promises started while serving a request
 * carry it along.
 */
const requestContext = new AsyncLocalStorage<string>();

export function currentRequestId(): string | undefined {
  return requestContext.getStore();
}

/** One finished (or abandoned) request, as the metrics see it. */
export interface RequestRecord {
  /** The route pattern (`/v2/<name>/blobs/<digest>`), never the raw path: label values stay few. */
  route: string;
  method: string;
  status: number | 'aborted';
  seconds: number;
  bytesIn: number;
  bytesOut: number;
}

export interface AppOptions {
  /** Told about every request once it ends (see src/metrics/http.ts). */
  observe?: (r: RequestRecord) => void;
}

/**
 * The fields a server adds to a request's access-log line: who (user), what (action,
 * repository, tag, digest). Handlers fill it in as they learn them.
 */
export function accessFields(res: Response): Record<string, unknown> {
  return ((res.locals.access as Record<string, unknown> | undefined) ??= {});
}

/** Route pattern set by a server that routes by itself (the registry); else Express's own. */
export function setRoutePattern(res: Response, pattern: string): void {
  res.locals.route = pattern;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * An Express app with what every Keyport HTTP server shares: helmet headers, a request
 * id, a child logger per request and one access-log line per response.
 *
 * Nothing here may throw once the handler has run: the listeners below run from
 * socket events, outside any error handler, where a throw would be an uncaught
 * exception. They read only what they captured when the request arrived (`req.socket`
 * may be null by the time a response finishes, e.g. after a body stream was
 * destroyed).
 */
export function createApp(log: Logger, opts: AppOptions = {}): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  const begin = requestStarter(log, opts);
  app.use((req: Request, res: Response, next: NextFunction) => {
    begin(req, res, res.locals, () => req.path, () => (req.route as { path?: unknown } | undefined)?.path);
    requestContext.run(req.id, next);
  });
  return app;
}

/** A request served outside Express, with what createApp's requests carry too. */
export interface RawRequest extends IncomingMessage {
  id: string;
  log: Logger;
}

/**
 * The shared per-request start for servers that answer some requests on the raw node
 * request event, before Express (the token server's hot routes): the same headers,
 * request id, logger, access-log line and metrics as createApp. `run` is called within
 * the request's context; `locals` plays the part of Express's res.locals.
 */
export function rawRequestStarter(log: Logger, opts: AppOptions = {}) {
  const begin = requestStarter(log, opts);
  return (req: IncomingMessage, res: ServerResponse, locals: Record<string, unknown>, path: string, run: (req: RawRequest) => void): void => {
    const r = req as RawRequest;
    begin(r, res, locals, () => path, () => undefined);
    requestContext.run(r.id, run, r);
  };
}

/** Sends a JSON answer as Express's res.json does (same Content-Type, length, no ETag). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

function requestStarter(log: Logger, opts: AppOptions) {
  const security = securityHeaders();
  return (
    req: IncomingMessage & { id: string; log: Logger },
    res: ServerResponse,
    locals: Record<string, unknown>,
    pathOf: () => string,
    expressRoute: () => unknown,
  ): void => {
    res.setHeaders(security);
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    req.log = log.child({ reqId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const start = process.hrtime.bigint();
    const remote = req.socket?.remoteAddress;
    locals.started = Date.now();
    // Body bytes: what a handler read through chunksOf, else (a body parser read it)
    // the announced length of a body that was read to its end.
    const bytesIn = () => bytesConsumed(req) ?? (req.readableEnded ? Number(req.headers['content-length']) || 0 : 0);
    const bytesOut = () => (req.method === 'HEAD' ? 0 : Number(res.getHeader('content-length') ?? 0) || 0);
    const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
    const line = (status: number | 'aborted') => ({
      method: req.method,
      path: pathOf(),
      status,
      ms: Math.round(elapsed() * 1e4) / 10,
      remote,
      ...(locals.access as Record<string, unknown> | undefined),
      bytesIn: bytesIn(),
      bytesOut: status === 'aborted' ? 0 : bytesOut(),
    });
    const observe = (status: number | 'aborted') => {
      if (!opts.observe) return;
      const route = (locals.route as string | undefined) ?? expressRoute();
      const method = req.method ?? 'other';
      opts.observe({
        route: typeof route === 'string' ? route : 'unmatched',
        method: METHODS.has(method) ? method : 'other',
        status,
        seconds: elapsed(),
        bytesIn: bytesIn(),
        bytesOut: status === 'aborted' ? 0 : bytesOut(),
      });
    };
    res.on('finish', () => {
      try {
        // An answer sent before the body was read to its end (an error while the client
        // still sends): the rest is read and dropped, so the client, which reads the
        // answer while it sends, gets it, and the connection stays usable.
        if (!req.complete && !req.destroyed) req.resume();
        observe(res.statusCode);
        if (locals.logged) return; // the handler wrote a fuller line itself
        req.log.info(line(res.statusCode), 'request');
      } catch (e) {
        log.error({ err: e, reqId: req.id }, 'request logging failed');
      }
    });
    res.on('close', () => {
      try {
        if (res.writableFinished) return;
        observe('aborted');
        if (!locals.logged) req.log.info(line('aborted'), 'request ended before its answer was sent');
      } catch (e) {
        log.error({ err: e, reqId: req.id }, 'request logging failed');
      }
    });
    // Stream errors of a request or response are the connection failing; the handler
    // (or Node) already deals with the request. Without a listener, an 'error' event
    // would be thrown as an uncaught exception.
    req.on('error', (e: Error) => req.log.debug({ err: e.message }, 'request stream error'));
    res.on('error', (e: Error) => req.log.debug({ err: e.message }, 'response stream error'));
  };
}

/**
 * The headers helmet sets, computed once. helmet's headers do not depend on the
 * request, and running its fifteen middlewares per request costs more than the rest
 * of a cached token request.
 */
function securityHeaders(): Map<string, string> {
  const middleware = helmet({
    // JSON/binary APIs: no documents to protect with CSP, but keep nosniff, HSTS, frame denial.
    contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-site' },
  });
  const headers = new Map<string, string>();
  const fake = {
    setHeader: (k: string, v: string | number | string[]) => headers.set(k, Array.isArray(v) ? v.join(', ') : String(v)),
    removeHeader: (k: string) => headers.delete(k),
    getHeader: (k: string) => headers.get(k),
  };
  let done = false;
  (middleware as unknown as (req: unknown, res: unknown, next: (err?: unknown) => void) => void)({ headers: {} }, fake, (err) => {
    if (err) throw err;
    done = true;
  });
  if (!done) throw new Error('helmet did not complete synchronously');
  return headers;
}
