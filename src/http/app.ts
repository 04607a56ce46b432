import crypto from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from '../log/logger.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** Per-request id, echoed in X-Request-Id and on every log line of the request. */
    id: string;
    log: Logger;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * An Express app with what every Keyport HTTP server shares: helmet headers, a request
 * id, a child logger per request and one access-log line per response.
 */
export function createApp(log: Logger): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  const security = securityHeaders();
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.setHeaders(security);
    const given = req.get('x-request-id');
    req.id = given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    req.log = log.child({ reqId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const start = process.hrtime.bigint();
    res.locals.started = Date.now();
    res.on('finish', () => {
      if (res.locals.logged) return; // the handler wrote a fuller line itself
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      req.log.info(
        {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          ms: Math.round(ms * 10) / 10,
          remote: req.socket.remoteAddress,
          bytesOut: Number(res.getHeader('content-length') ?? 0) || undefined,
        },
        'request',
      );
    });
    next();
  });
  return app;
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
