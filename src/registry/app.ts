import type { Express, NextFunction, Request, Response } from 'express';
import { accessFields, createApp, setRoutePattern, type AppOptions } from '../http/app.js';
import { noEvents, type EventSink } from '../events/types.js';
import type { Logger } from '../log/logger.js';
import type { PullThroughCache } from '../cache/pull-through.js';
import { bearerChallenge, grants, grantsCatalog, type RequiredAccess } from './auth/access.js';
import { InvalidTokenError, type TokenVerifier, type VerifiedToken } from './auth/token-verifier.js';
import { errors, RegistryError } from './errors.js';
import { base, catalog } from './handlers/base.js';
import { deleteBlob, getBlob } from './handlers/blobs.js';
import type { Context, Handler, RegistrySettings } from './handlers/context.js';
import { deleteManifest, getManifest, listReferrers, listTags, putManifest } from './handlers/manifests.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './handlers/uploads.js';
import { errorBody, registryErrorHandler } from './http-errors.js';
import { matchRoute, ROUTE_PATTERNS, type Route } from './routes.js';
import type { Stores } from './store/stores.js';

export interface RegistryDeps {
  /** The process's stores (see createStores); the API reaches storage only through them. */
  stores: Stores;
  verifier: TokenVerifier;
  realm: string;
  service: string;
  settings: RegistrySettings;
  log: Logger;
  /** Answers /healthz and, when unhealthy, makes API requests fail fast with 503. */
  health?: { healthy(): boolean; status(): unknown };
  /** Registry events (push, pull, delete) for the notification endpoints; none by default. */
  events?: EventSink;
  /** Request metrics (src/metrics/http.ts); none by default. */
  observe?: AppOptions['observe'];
  /** The pull-through cache for the namespaces mapped to upstream registries; none by default. */
  cache?: PullThroughCache;
}

type Operation = { handler: Handler<any>; actions: string[] | null };

// Access needed per method follows Docker Distribution: reads need pull, writes need
// pull and push, deletes need delete. null: any valid token (GET /v2/).
const PULL = ['pull'];
const PUSH = ['pull', 'push'];
const DELETE = ['delete'];

const OPERATIONS: Record<Route['kind'], Partial<Record<string, Operation>>> = {
  base: { GET: { handler: base, actions: null }, HEAD: { handler: base, actions: null } },
  catalog: { GET: { handler: catalog, actions: ['*'] } },
  tags: { GET: { handler: listTags, actions: PULL } },
  manifest: {
    GET: { handler: getManifest, actions: PULL },
    HEAD: { handler: getManifest, actions: PULL },
    PUT: { handler: putManifest, actions: PUSH },
    DELETE: { handler: deleteManifest, actions: DELETE },
  },
  uploads: { POST: { handler: startUpload, actions: PUSH } },
  upload: {
    GET: { handler: uploadStatus, actions: PULL },
    PATCH: { handler: patchUpload, actions: PUSH },
    PUT: { handler: finishUpload, actions: PUSH },
    DELETE: { handler: cancelUpload, actions: DELETE },
  },
  blob: {
    GET: { handler: getBlob, actions: PULL },
    HEAD: { handler: getBlob, actions: PULL },
    DELETE: { handler: deleteBlob, actions: DELETE },
  },
  referrers: { GET: { handler: listReferrers, actions: PULL } },
};

/** The access-log fields a request carries before its handler runs: what it does, and to what. */
function describe(route: Route, method: string, actions: string[] | null): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  if (route.kind === 'catalog') fields.action = 'catalog';
  else if (actions) fields.action = method === 'DELETE' ? 'delete' : actions.includes('push') ? 'push' : 'pull';
  if ('name' in route) fields.repository = route.name;
  if (route.kind === 'manifest') fields[route.reference.includes(':') ? 'digest' : 'tag'] = route.reference;
  if (route.kind === 'blob' || route.kind === 'referrers') fields.digest = route.digest;
  return fields;
}

function required(route: Route, actions: string[] | null): RequiredAccess | undefined {
  if (actions === null) return undefined;
  if (route.kind === 'catalog') return { type: 'registry', name: 'catalog', actions: ['*'] };
  return { type: 'repository', name: (route as { name: string }).name, actions };
}

/** The Docker Registry v2 / OCI distribution API over the stores. */
export function registryApp(deps: RegistryDeps): Express {
  const { stores, verifier, realm, service, settings, log } = deps;
  const app = createApp(log, deps.observe ? { observe: deps.observe } : {});

  app.get('/healthz', (_req: Request, res: Response) => {
    const healthy = deps.health ? deps.health.healthy() : true;
    res.status(healthy ? 200 : 503).json(deps.health ? deps.health.status() : { status: 'ok' });
  });

  const authenticate = async (req: Request, need: RequiredAccess | undefined): Promise<VerifiedToken> => {
    const header = req.get('authorization');
    const m = header ? /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header) : null;
    if (!m) {
      const e = new RegistryError('UNAUTHORIZED', 'authentication required', need ? [need] : undefined);
      e.headers['WWW-Authenticate'] = bearerChallenge(realm, service, need);
      throw e;
    }
    let token: VerifiedToken;
    try {
      token = await verifier.verify(m[1]!);
    } catch (err) {
      if (!(err instanceof InvalidTokenError)) throw err;
      req.log.info({ reason: err.message }, 'token refused');
      const e = new RegistryError('UNAUTHORIZED', 'invalid token', need ? [need] : undefined);
      e.headers['WWW-Authenticate'] = bearerChallenge(realm, service, need, 'invalid_token');
      throw e;
    }
    const granted = need?.type === 'registry' && need.name === 'catalog' ? grantsCatalog(token.access) : !need || grants(token.access, need);
    if (need && !granted) {
      const e = new RegistryError('DENIED', 'requested access to the resource is denied', [need], 401);
      e.headers['WWW-Authenticate'] = bearerChallenge(realm, service, need, 'insufficient_scope');
      throw e;
    }
    return token;
  };

  app.use(async (req: Request, res: Response, next: NextFunction) => {
    if (req.path !== '/v2' && !req.path.startsWith('/v2/')) return next();
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    const route = matchRoute(req.path);
    if (!route) throw new RegistryError('UNSUPPORTED', 'no such API endpoint', { path: req.path }, 404);
    setRoutePattern(res, ROUTE_PATTERNS[route.kind]);
    const op = OPERATIONS[route.kind][req.method];
    if (!op) {
      res.setHeader('Allow', Object.keys(OPERATIONS[route.kind]).join(', '));
      throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed here`, undefined, 405);
    }
    deps.cache?.refuseWrite(route, req.method);
    const need = required(route, op.actions);
    const fields: Record<string, unknown> = Object.assign(accessFields(res), { user: undefined }, describe(route, req.method, op.actions));
    const token = await authenticate(req, need);
    // The token's subject; empty for an anonymous pull.
    fields.user = token.subject;
    if (deps.health && !deps.health.healthy() && route.kind !== 'base') {
      const e = errors.unavailable('the storage backend is unhealthy; try again later');
      e.headers['Retry-After'] = '10';
      throw e;
    }
    const ctx: Context = { route, token, ...stores, settings, log: req.log, events: deps.events ?? noEvents };
    if (deps.cache?.enabled) await deps.cache.handle(ctx, req, res, op.handler);
    else await op.handler(ctx, req, res);
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json(errorBody('UNSUPPORTED', 'not found'));
  });
  app.use(registryErrorHandler);
  return app;
}

