import type { IncomingMessage, ServerResponse } from 'node:http';
import querystring from 'node:querystring';
import { rawRequestStarter, sendJson, type AppOptions, type RawRequest } from '../http/app.js';
import type { Logger } from '../log/logger.js';
import { errorAnswer, getTokenRequest, recordIssued, TOKEN_HEADERS, tokenBody, type RouteDeps } from './routes.js';

/**
 * The token server's hot routes, `GET /token` and `GET /healthz`, answered on the raw
 * request event. Express's router, query and response wrappers cost more per request
 * than a cached token itself (a cached login and a signature); everything else (POST
 * forms, HEAD, other methods, other paths) goes on to the Express app, which answers
 * it as before.
 *
 * Why the answers are the same as the Express routes': the per-request start (security
 * headers, X-Request-Id, logger, access line, metrics) is the one createApp uses; the
 * query is parsed with node:querystring, which is Express's 'simple' query parser; the
 * token request, the audit line and errors come from the functions the routes use.
 * Only exact paths are taken: `/token/` or `/TOKEN`, which Express also routes, fall
 * through to it.
 */
export function tokenFastPath(log: Logger, deps: RouteDeps, opts: AppOptions = {}) {
  const begin = rawRequestStarter(log, opts);
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET') return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path === '/token') {
      const locals: Record<string, unknown> = { route: '/token' };
      begin(req, res, locals, path, (r) => void serveToken(r, res, locals, q < 0 ? '' : url.slice(q + 1), deps));
      return true;
    }
    if (path === '/healthz') {
      const locals: Record<string, unknown> = { route: '/healthz' };
      begin(req, res, locals, path, () => sendJson(res, 200, { status: 'ok' }));
      return true;
    }
    return false;
  };
}

async function serveToken(req: RawRequest, res: ServerResponse, locals: Record<string, unknown>, query: string, deps: RouteDeps): Promise<void> {
  try {
    const request = getTokenRequest(querystring.parse(query), header(req, 'authorization'), req.socket.remoteAddress ?? '', deps);
    const r = await deps.tokens.handle(request);
    for (const [k, v] of Object.entries(TOKEN_HEADERS)) res.setHeader(k, v);
    recordIssued(req.log, 'GET', '/token', locals.started as number, r, deps.metrics);
    locals.logged = true;
    sendJson(res, 200, tokenBody(r, false));
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const a = errorAnswer(err, req.log, deps.metrics);
    for (const [k, v] of Object.entries(a.headers)) res.setHeader(k, v);
    sendJson(res, a.status, a.body);
  }
}

/** A request header as Express's req.get gives it: a single string or undefined. */
function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
