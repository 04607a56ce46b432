import type { Request, Response } from 'express';
import { parseDigest } from '../../oci/reference.js';
import { errors } from '../errors.js';
import { accepts, isIndexMediaType, MediaTypes, type Descriptor } from '../manifest.js';
import type { Route } from '../routes.js';
import { page } from '../store/catalog.js';
import { parseReference, pushReference, type Reference, type StoredManifest } from '../store/manifests.js';
import { chunksOf } from '../../util/chunks.js';
import { notify } from '../notify.js';
import { audit } from '../audit.js';
import { accessFields } from '../../http/app.js';
import { nextLink, pageSize, type Context } from './context.js';

type ManifestRoute = Extract<Route, { kind: 'manifest' }>;
type TagsRoute = Extract<Route, { kind: 'tags' }>;
type ReferrersRoute = Extract<Route, { kind: 'referrers' }>;

async function readBody(req: Request, limit: number): Promise<Buffer> {
  const announced = req.get('content-length');
  if (announced && Number(announced) > limit) {
    req.resume();
    throw errors.tooLarge('manifest', limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of chunksOf(req)) {
    size += c.length;
    if (size > limit) {
      throw errors.tooLarge('manifest', limit);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/**
 * Content negotiation: a client that does not accept an index gets the linux/amd64
 * image of it when that one is acceptable (what old docker clients need); otherwise
 * the stored manifest is served as it is.
 */
async function negotiate(ctx: Context<ManifestRoute>, req: Request, m: StoredManifest): Promise<StoredManifest> {
  const accept = req.get('accept');
  if (accepts(accept, m.mediaType) || !isIndexMediaType(m.mediaType)) return m;
  const child = m.parsed.manifests.find(
    (e) => e.descriptor.platform?.os === 'linux' && e.descriptor.platform?.architecture === 'amd64' && accepts(accept, e.descriptor.mediaType),
  );
  if (!child) return m;
  try {
    return await ctx.manifests.get(ctx.route.name, { kind: 'digest', digest: child.digest });
  } catch {
    return m;
  }
}

/** The reference of a read or delete: a malformed one names nothing stored, so MANIFEST_UNKNOWN (404). */
function existingReference(ctx: Context<ManifestRoute>): Reference {
  const ref = parseReference(ctx.route.reference);
  if (!ref) throw errors.manifestUnknown(ctx.route.reference);
  return ref;
}

export async function getManifest(ctx: Context<ManifestRoute>, req: Request, res: Response): Promise<void> {
  const ref = existingReference(ctx);
  const m = await negotiate(ctx, req, await ctx.manifests.get(ctx.route.name, ref));
  accessFields(res).digest = m.digest.value;
  res.setHeader('Content-Type', m.mediaType);
  res.setHeader('Content-Length', m.body.length);
  res.setHeader('Docker-Content-Digest', m.digest.value);
  res.setHeader('ETag', `"${m.digest.value}"`);
  res.status(200);
  if (req.method === 'HEAD') res.end();
  else res.end(m.body);
  if (req.method === 'GET') notify(ctx, req, 'pull', 'manifests', { repository: ctx.route.name, digest: m.digest.value, mediaType: m.mediaType, size: m.body.length, ...(ref.kind === 'tag' ? { tag: ref.tag } : {}) });
}

export async function putManifest(ctx: Context<ManifestRoute>, req: Request, res: Response): Promise<void> {
  const ref = pushReference(ctx.route.reference);
  const body = await readBody(req, ctx.settings.maxManifestSize);
  const stored = await ctx.manifests.put(ctx.route.name, ref, body, req.get('content-type'));
  accessFields(res).digest = stored.digest.value;
  const tag = ref.kind === 'tag' ? { tag: ref.tag } : {};
  if (stored.replaced) audit(ctx, req, 'tag_move', { repository: ctx.route.name, ...tag, digest: stored.digest.value, previous: stored.replaced.value });
  else audit(ctx, req, 'push', { repository: ctx.route.name, ...tag, digest: stored.digest.value });
  res.setHeader('Location', `/v2/${ctx.route.name}/manifests/${stored.digest.value}`);
  res.setHeader('Docker-Content-Digest', stored.digest.value);
  if (stored.parsed.subject) res.setHeader('OCI-Subject', stored.parsed.subject.value);
  res.setHeader('Content-Length', 0);
  res.status(201).end();
  notify(ctx, req, 'push', 'manifests', { repository: ctx.route.name, digest: stored.digest.value, mediaType: stored.mediaType, size: body.length, ...(ref.kind === 'tag' ? { tag: ref.tag } : {}) });
}

export async function deleteManifest(ctx: Context<ManifestRoute>, req: Request, res: Response): Promise<void> {
  if (!ctx.settings.deleteEnabled) throw errors.unsupported('deletes are disabled on this registry');
  const ref = existingReference(ctx);
  const deleted = await ctx.manifests.delete(ctx.route.name, ref);
  accessFields(res).digest = deleted.digest.value;
  audit(ctx, req, 'delete', {
    repository: ctx.route.name,
    kind: ref.kind === 'tag' ? 'tag' : 'manifest',
    ...(ref.kind === 'tag' ? { tag: ref.tag } : {}),
    digest: deleted.digest.value,
    tags: deleted.tags,
  });
  res.setHeader('Content-Length', 0);
  res.status(202).end();
  notify(ctx, req, 'delete', 'manifests', { repository: ctx.route.name, ...(ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest.value }) });
}

export async function listTags(ctx: Context<TagsRoute>, req: Request, res: Response): Promise<void> {
  const q = req.query as Record<string, unknown>;
  const n = pageSize(q.n, (v) => errors.paginationInvalid(v));
  const last = typeof q.last === 'string' ? q.last : undefined;
  const all = await ctx.manifests.tags(ctx.route.name);
  const p = page(all, n, last);
  if (p.more && n !== undefined) res.setHeader('Link', nextLink(`/v2/${ctx.route.name}/tags/list`, n, p.items[p.items.length - 1]!));
  res.status(200).json({ name: ctx.route.name, tags: p.items });
}

export async function listReferrers(ctx: Context<ReferrersRoute>, req: Request, res: Response): Promise<void> {
  const subject = parseDigest(ctx.route.digest);
  if (!subject) throw errors.digestMalformed(ctx.route.digest);
  const q = req.query as Record<string, unknown>;
  const artifactType = typeof q.artifactType === 'string' && q.artifactType !== '' ? q.artifactType : undefined;
  const manifests: Descriptor[] = await ctx.manifests.referrers(ctx.route.name, subject, artifactType);
  if (artifactType) res.setHeader('OCI-Filters-Applied', 'artifactType');
  res.setHeader('Content-Type', MediaTypes.ociIndex);
  res.status(200).end(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
}
