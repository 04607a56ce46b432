import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import { parseDigest, type Digest } from '../../oci/reference.js';
import { errors } from '../errors.js';
import type { Route } from '../routes.js';
import { BLOB_MEDIA_TYPE, notify } from '../notify.js';
import type { Context } from './context.js';
import { audit } from '../audit.js';

type BlobRoute = Extract<Route, { kind: 'blob' }>;

/** Parses a single "bytes=a-b" range; undefined means serve everything. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // unsupported forms (several ranges): whole blob
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw errors.rangeInvalid('empty suffix range', size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) throw errors.rangeInvalid(`${header} of ${size} bytes`, size);
  return { start, end };
}

/** Passes on the first `n` bytes, then ends. */
function limit(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left <= 0) return cb();
      const part = chunk.length <= left ? chunk : chunk.subarray(0, left);
      left -= part.length;
      cb(null, part);
    },
  });
}

/** The digest of a blob route: a malformed one names no stored blob, so BLOB_UNKNOWN (404). */
function blobDigest(ctx: Context<BlobRoute>): Digest {
  const digest = parseDigest(ctx.route.digest);
  if (!digest) throw errors.blobUnknown(ctx.route.digest);
  return digest;
}

export async function getBlob(ctx: Context<BlobRoute>, req: Request, res: Response): Promise<void> {
  const digest = blobDigest(ctx);
  const size = await ctx.blobs.describe(ctx.route.name, digest);
  if (size === undefined) throw errors.blobUnknown(digest.value);
  res.setHeader('Docker-Content-Digest', digest.value);
  res.setHeader('ETag', `"${digest.value}"`);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'max-age=31536000');
  if (req.method === 'HEAD') {
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', size);
    res.status(200).end();
    return;
  }
  if (!/^bytes=[1-9]/.test(req.get('range') ?? '')) notify(ctx, req, 'pull', 'blobs', { repository: ctx.route.name, digest: digest.value, mediaType: BLOB_MEDIA_TYPE, size });
  const redirect = await ctx.blobs.redirectURL(digest, 'GET');
  if (redirect) {
    res.setHeader('Location', redirect);
    res.status(307).end();
    return;
  }
  const range = parseRange(req.get('range'), size);
  res.setHeader('Content-Type', 'application/octet-stream');
  if (range) {
    const length = range.end - range.start + 1;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
    res.setHeader('Content-Length', length);
    res.status(206);
    const body = await ctx.blobs.open(digest, range.start);
    await pipeline(body, limit(length), res);
    return;
  }
  res.setHeader('Content-Length', size);
  res.status(200);
  if (size === 0) {
    res.end();
    return;
  }
  await pipeline(await ctx.blobs.open(digest), res);
}

export async function deleteBlob(ctx: Context<BlobRoute>, req: Request, res: Response): Promise<void> {
  if (!ctx.settings.deleteEnabled) throw errors.unsupported('deletes are disabled on this registry');
  const digest = blobDigest(ctx);
  if (!(await ctx.blobs.unlink(ctx.route.name, digest))) throw errors.blobUnknown(digest.value);
  audit(ctx, req, 'delete', { repository: ctx.route.name, kind: 'blob', digest: digest.value });
  res.setHeader('Docker-Content-Digest', digest.value);
  res.setHeader('Content-Length', 0);
  res.status(202).end();
  notify(ctx, req, 'delete', 'blobs', { repository: ctx.route.name, digest: digest.value });
}
