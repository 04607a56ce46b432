import type { Request, Response } from 'express';
import { isValidRepositoryName, parseDigest } from '../../oci/reference.js';
import { grants } from '../auth/access.js';
import { errors } from '../errors.js';
import type { Route } from '../routes.js';
import { isUploadId, type AppendOptions } from '../store/uploads.js';
import { BLOB_MEDIA_TYPE, notify } from '../notify.js';
import type { Context } from './context.js';
import { accessFields } from '../../http/app.js';

type UploadsRoute = Extract<Route, { kind: 'uploads' }>;
type UploadRoute = Extract<Route, { kind: 'upload' }>;

function location(name: string, id: string): string {
  return `/v2/${name}/blobs/uploads/${id}`;
}

/** Headers describing an upload in progress: where to continue and what arrived. */
function progress(res: Response, name: string, id: string, size: number): void {
  res.setHeader('Location', location(name, id));
  res.setHeader('Range', `0-${Math.max(0, size - 1)}`);
  res.setHeader('Docker-Upload-UUID', id);
  res.setHeader('Content-Length', 0);
}

function created(res: Response, name: string, digest: string): void {
  accessFields(res).digest = digest;
  res.setHeader('Location', `/v2/${name}/blobs/${digest}`);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Content-Length', 0);
  res.status(201).end();
}

function bodyLength(req: Request): number | undefined {
  const v = req.get('content-length');
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw errors.sizeInvalid('bad Content-Length');
  return Number(v);
}

function hasBody(req: Request): boolean {
  const n = bodyLength(req);
  return n !== undefined ? n > 0 : req.get('transfer-encoding') !== undefined;
}

/** Content-Range "start-end" (also "bytes start-end/*"), checked against Content-Length. */
function chunkRange(req: Request): AppendOptions {
  const opts: AppendOptions = {};
  const len = bodyLength(req);
  if (len !== undefined) opts.length = len;
  const header = req.get('content-range');
  if (header === undefined) return opts;
  const m = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw errors.uploadInvalid(`malformed Content-Range ${JSON.stringify(header)}`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw errors.uploadInvalid('Content-Range ends before it starts');
  if (len !== undefined && end - start + 1 !== len) throw errors.sizeInvalid('Content-Range and Content-Length disagree');
  opts.start = start;
  opts.length = end - start + 1;
  return opts;
}

/** POST /v2/<name>/blobs/uploads/: start an upload, upload in one go (?digest=) or mount (?mount=&from=). */
export async function startUpload(ctx: Context<UploadsRoute>, req: Request, res: Response): Promise<void> {
  const { name } = ctx.route;
  const q = req.query as Record<string, unknown>;
  if (typeof q.mount === 'string') {
    // Mount only what the caller could pull anyway; otherwise (and for an invalid digest
    // or repository, as the spec says) fall back to a normal upload.
    const digest = parseDigest(q.mount);
    const from = typeof q.from === 'string' ? q.from : undefined;
    if (digest && from && isValidRepositoryName(from) && grants(ctx.token.access, { type: 'repository', name: from, actions: ['pull'] })) {
      const size = await ctx.blobs.describe(from, digest);
      if (size !== undefined) {
        await ctx.blobs.link(name, digest);
        req.resume();
        accessFields(res).from = from;
        created(res, name, digest.value);
        return notify(ctx, req, 'mount', 'blobs', { repository: name, digest: digest.value, mediaType: BLOB_MEDIA_TYPE, size, fromRepository: from });
      }
    }
  }
  if (typeof q.digest === 'string') {
    const digest = parseDigest(q.digest);
    if (!digest) throw errors.digestMalformed(q.digest);
    const opts: AppendOptions = {};
    const len = bodyLength(req);
    if (len !== undefined) opts.length = len;
    const id = await ctx.uploads.start(name);
    await ctx.uploads.finish(name, id, digest, req, opts);
    return created(res, name, digest.value);
  }
  req.resume(); // a body without ?digest= has nowhere to go
  const id = await ctx.uploads.start(name);
  progress(res, name, id, 0);
  res.status(202).end();
}

function uploadId(ctx: Context<UploadRoute>): string {
  if (!isUploadId(ctx.route.id)) throw errors.uploadUnknown();
  return ctx.route.id;
}

/** GET on an upload: how much arrived. */
export async function uploadStatus(ctx: Context<UploadRoute>, _req: Request, res: Response): Promise<void> {
  const id = uploadId(ctx);
  const size = await ctx.uploads.size(ctx.route.name, id);
  progress(res, ctx.route.name, id, size);
  res.status(204).end();
}

/** PATCH: one chunk, in order. */
export async function patchUpload(ctx: Context<UploadRoute>, req: Request, res: Response): Promise<void> {
  const id = uploadId(ctx);
  const size = await ctx.uploads.append(ctx.route.name, id, req, chunkRange(req));
  progress(res, ctx.route.name, id, size);
  res.status(202).end();
}

/** PUT ?digest=: the optional last chunk, then the digest check. */
export async function finishUpload(ctx: Context<UploadRoute>, req: Request, res: Response): Promise<void> {
  const id = uploadId(ctx);
  const raw = (req.query as Record<string, unknown>).digest;
  if (typeof raw !== 'string') throw errors.digestMalformed(String(raw ?? ''));
  const digest = parseDigest(raw);
  if (!digest) throw errors.digestMalformed(raw);
  const withBody = hasBody(req);
  await ctx.uploads.finish(ctx.route.name, id, digest, withBody ? req : undefined, withBody ? chunkRange(req) : {});
  if (!withBody) req.resume();
  created(res, ctx.route.name, digest.value);
}

export async function cancelUpload(ctx: Context<UploadRoute>, _req: Request, res: Response): Promise<void> {
  const id = uploadId(ctx);
  await ctx.uploads.cancel(ctx.route.name, id);
  res.setHeader('Content-Length', 0);
  res.status(204).end();
}
