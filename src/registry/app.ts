import type { Express, NextFunction, Request, Response } from 'express';
import { createApp } from '../http/app.js';
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
import { matchRoute, type Route } from './routes.js';
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

function required(route: Route, actions: string[] | null): RequiredAccess | undefined {
  if (actions === null) return undefined;
  if (route.kind === 'catalog') return { type: 'registry', name: 'catalog', actions: ['*'] };
  return { type: 'repository', name: (route as { name: string }).name, actions };
}

/** The Docker Registry v2 / OCI distribution API over the stores. */
export function registryApp(deps: RegistryDeps): Express {
  const { stores, verifier, realm, service, settings, log } = deps;
  const app = createApp(log);

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
    const op = OPERATIONS[route.kind][req.method];
    if (!op) {
      res.setHeader('Allow', Object.keys(OPERATIONS[route.kind]).join(', '));
      throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed here`, undefined, 405);
    }
    deps.cache?.refuseWrite(route, req.method);
    const need = required(route, op.actions);
    const token = await authenticate(req, need);
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

