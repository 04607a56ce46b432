import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { parseScopes, ScopeError, type ResourceScope } from '../oci/scope.js';
import { AuthenticationError, InvalidRequestError, RequestTooLargeError, ThrottledError, TokenError } from './errors.js';
import type { TokenIssuer } from './issuer.js';
import type { KeystoneClient } from './keystone.js';
import type { TokenMetrics } from './metrics.js';
import { parseBasicAuth } from './login-name.js';
import type { TokenRequest, TokenResponse, TokenService } from './token-service.js';
import type { Logger } from '../log/logger.js';

export interface RouteDeps {
  tokens: TokenService;
  issuer: TokenIssuer;
  keystone: KeystoneClient;
  realm: string;
  metrics: TokenMetrics;
}

/** The JSON error body of the token server: OAuth 2 fields plus Docker's errors array. */
export function errorBody(status: number, oauthCode: string, message: string, dockerCode = 'UNAUTHORIZED') {
  return { error: oauthCode, error_description: message, errors: [{ code: dockerCode, message, detail: null }], status };
}

function stringParam(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidRequestError(`parameter ${name} must be given once`);
  if (value.length > 1024) throw new InvalidRequestError(`parameter ${name} is too long`);
  return value;
}

function stringList(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.some((v) => typeof v !== 'string')) throw new InvalidRequestError(`parameter ${name} is malformed`);
  return list as string[];
}

function scopesOf(values: string[]): ResourceScope[] {
  try {
    return parseScopes(values);
  } catch (e) {
    if (e instanceof ScopeError) throw new InvalidRequestError(e.message, 'invalid_scope');
    throw e;
  }
}

/** The JSON answer carrying a token (with the granted scope for the OAuth POST form). */
export function tokenBody(r: TokenResponse, withScope: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {
    token: r.token,
    access_token: r.token,
    expires_in: r.expiresIn,
    issued_at: r.issuedAt.toISOString(),
  };
  if (withScope) {
    body.scope = r.access
      .filter((a) => a.actions.length > 0)
      .map((a) => `${a.type}${a.class ? `(${a.class})` : ''}:${a.name}:${a.actions.join(',')}`)
      .join(' ');
  }
  if (r.refreshToken) body.refresh_token = r.refreshToken;
  return body;
}

/** Headers of every token answer: tokens are never cached. */
export const TOKEN_HEADERS = { 'Cache-Control': 'no-store', Pragma: 'no-cache' } as const;

/**
 * Writes a token request's single log line: the audit record (who, from where,
 * requested and granted scopes) with the access-log fields, and counts the grant.
 * Called before the answer leaves, so the record exists whenever the client has the token.
 */
export function recordIssued(log: Logger, method: string, path: string, started: number, r: TokenResponse, metrics: TokenMetrics): void {
  log.info({ ...r.audit, method, path, status: 200, ms: Date.now() - started }, 'token issued');
  metrics.granted(String(r.audit.grant));
  if (r.refreshToken) metrics.refreshIssued();
}

/** Sends a token from an Express route. */
function send(req: Request, res: Response, r: TokenResponse, withScope: boolean, metrics: TokenMetrics): void {
  res.setHeaders(new Map(Object.entries(TOKEN_HEADERS)));
  recordIssued(req.log, req.method, req.path, res.locals.started as number, r, metrics);
  res.locals.logged = true;
  res.status(200).json(tokenBody(r, withScope));
}

/**
 * The token request of `GET /token` (Docker's form): parameters from the query,
 * credentials from Basic auth, or none for an anonymous pull.
 */
export function getTokenRequest(q: Record<string, unknown>, authorization: string | undefined, clientAddress: string, deps: Pick<RouteDeps, 'tokens' | 'realm'>): TokenRequest {
  const basic = parseBasicAuth(authorization);
  stringParam(q.account, 'account');
  // No credentials at all: Docker's anonymous request, answered when anonymous pulls are on.
  const anonymous = authorization === undefined && deps.tokens.anonymousEnabled;
  if (!basic && !anonymous) throw new AuthenticationError('authentication required: use your OpenStack user name and password', deps.realm);
  return {
    credentials: basic ? { kind: 'basic', basic } : { kind: 'anonymous' },
    service: stringParam(q.service, 'service'),
    scopes: scopesOf(stringList(q.scope, 'scope')),
    offline: stringParam(q.offline_token, 'offline_token') === 'true',
    clientId: stringParam(q.client_id, 'client_id'),
    clientAddress,
    grantType: basic ? 'basic' : 'anonymous',
  };
}

export function tokenRoutes(deps: RouteDeps): Router {
  const router = express.Router({ strict: false });
  const FORM_LIMIT = 64 * 1024;
  const form = express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 200 });

  router.get('/token', async (req: Request, res: Response) => {
    const r = await deps.tokens.handle(getTokenRequest(req.query as Record<string, unknown>, req.get('authorization'), req.socket.remoteAddress ?? '', deps));
    send(req, res, r, false, deps.metrics);
  });

  // Who am I, and where may I push? Basic credentials, or docker's stored refresh token
  // (identity token) as a Bearer token.
  router.get('/whoami', async (req: Request, res: Response) => {
    const authorization = req.get('authorization') ?? '';
    const basic = parseBasicAuth(authorization);
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    if (!basic && !bearer) throw new AuthenticationError('authentication required: use your OpenStack user name and password', deps.realm);
    const who = await deps.tokens.whoami(basic ? { kind: 'basic', basic } : { kind: 'refresh', refreshToken: bearer! }, req.socket.remoteAddress ?? '');
    res.setHeader('Cache-Control', 'no-store');
    res.json(who);
  });

  router.post('/token', (req: Request, _res: Response, next: NextFunction) => {
    if (!req.is('application/x-www-form-urlencoded')) {
      return next(new InvalidRequestError('the token endpoint takes application/x-www-form-urlencoded forms'));
    }
    // Refused on its announced length, at once: the body parser would read all of it
    // before answering. The unread rest is discarded after the answer (src/http/app.ts).
    if (Number(req.get('content-length')) > FORM_LIMIT) return next(new RequestTooLargeError());
    next();
  }, form, async (req: Request, res: Response) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const grant = stringParam(b.grant_type, 'grant_type');
    const common = {
      service: stringParam(b.service, 'service'),
      scopes: scopesOf(stringList(b.scope, 'scope')),
      clientId: stringParam(b.client_id, 'client_id'),
      clientAddress: req.socket.remoteAddress ?? '',
    };
    let r: TokenResponse;
    if (grant === 'password') {
      const username = stringParam(b.username, 'username');
      const password = typeof b.password === 'string' ? b.password : undefined;
      if (!username || !password) throw new InvalidRequestError('grant_type=password needs username and password');
      r = await deps.tokens.handle({
        ...common,
        credentials: { kind: 'basic', basic: { username, password } },
        offline: stringParam(b.access_type, 'access_type') === 'offline',
        grantType: 'password',
      });
    } else if (grant === 'refresh_token') {
      const refreshToken = typeof b.refresh_token === 'string' ? b.refresh_token : undefined;
      if (!refreshToken) throw new InvalidRequestError('grant_type=refresh_token needs refresh_token');
      r = await deps.tokens.handle({ ...common, credentials: { kind: 'refresh', refreshToken }, offline: false, grantType: 'refresh_token' });
    } else if (grant === undefined) {
      throw new InvalidRequestError('grant_type is required');
    } else {
      throw new InvalidRequestError(`unsupported grant_type ${JSON.stringify(grant)}`, 'unsupported_grant_type');
    }
    send(req, res, r, true, deps.metrics);
  });

  router.all('/token', (_req: Request, res: Response) => {
    res.setHeader('Allow', 'GET, POST');
    res.status(405).json(errorBody(405, 'invalid_request', 'method not allowed', 'UNSUPPORTED'));
  });

  router.get('/.well-known/jwks.json', async (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(await deps.issuer.jwks());
  });

  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req: Request, res: Response) => {
    try {
      await deps.keystone.ping();
      res.json({ status: 'ready', keystone: 'reachable' });
    } catch {
      res.status(503).json({ status: 'not ready', keystone: 'unreachable' });
    }
  });

  return router;
}

/** An error as the token server answers it. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: ReturnType<typeof errorBody>;
}

/**
 * The one place token-server errors become HTTP answers (and refusals are counted),
 * for the Express routes and the fast path (fast-path.ts) alike.
 */
export function errorAnswer(err: unknown, log: Logger, metrics: TokenMetrics): ErrorAnswer {
  if (err instanceof TokenError && err.status < 500) {
    metrics.denied(err.oauthCode);
    if (err instanceof ThrottledError) metrics.throttled();
  }
  if (err instanceof TokenError) {
    if (err.status >= 500) log.warn({ err: err.message }, 'token request failed');
    return { status: err.status, headers: err.headers, body: errorBody(err.status, err.oauthCode, err.message, err.dockerCode) };
  }
  const e = err as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.too.large') {
    return { status: 413, headers: {}, body: errorBody(413, 'invalid_request', 'request body too large', 'SIZE_INVALID') };
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    // body-parser and friends: malformed bodies, bad encodings, too many parameters.
    return { status: 400, headers: {}, body: errorBody(400, 'invalid_request', 'malformed request body', 'INVALID_REQUEST') };
  }
  log.error({ err }, 'unexpected error');
  return { status: 500, headers: {}, body: errorBody(500, 'server_error', 'internal error', 'UNKNOWN') };
}

export function errorHandler(metrics: TokenMetrics) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const a = errorAnswer(err, req.log, metrics);
    for (const [k, v] of Object.entries(a.headers)) res.setHeader(k, v);
    res.status(a.status).json(a.body);
  };
}

export function notFound(_req: Request, res: Response): void {
  res.status(404).json(errorBody(404, 'invalid_request', 'not found', 'NOT_FOUND'));
}
