import type { Request, Response } from 'express';
import { catalogFilter } from '../auth/access.js';
import { errors } from '../errors.js';
import type { Route } from '../routes.js';
import { page } from '../store/catalog.js';
import { nextLink, pageSize, type Context } from './context.js';

/** GET /v2/: the caller holds a valid token, and this is a v2 registry. */
export async function base(_ctx: Context, _req: Request, res: Response): Promise<void> {
  res.status(200).json({});
}

export async function catalog(ctx: Context<Extract<Route, { kind: 'catalog' }>>, req: Request, res: Response): Promise<void> {
  const q = req.query as Record<string, unknown>;
  const n = pageSize(q.n, (v) => errors.paginationInvalid(v));
  const last = typeof q.last === 'string' ? q.last : undefined;
  const visible = catalogFilter(ctx.token.access);
  const all = await ctx.catalog.repositories();
  const p = page(visible ? all.filter(visible) : all, n, last);
  if (p.more && n !== undefined) res.setHeader('Link', nextLink('/v2/_catalog', n, p.items[p.items.length - 1]!));
  res.status(200).json({ repositories: p.items });
}
