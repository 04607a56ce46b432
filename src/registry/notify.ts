import type { Request } from 'express';
import type { EventAction, EventTarget, RequestRecord } from '../events/types.js';
import type { Context } from './handlers/context.js';

/** Distribution reports blobs with this media type; the manifest that names them has the real one. */
export const BLOB_MEDIA_TYPE = 'application/octet-stream';

function requestRecord(req: Request): RequestRecord {
  const socket = req.socket;
  const addr = socket?.remoteAddress ? `${socket.remoteAddress.includes(':') ? `[${socket.remoteAddress}]` : socket.remoteAddress}:${socket.remotePort}` : '';
  return { id: req.id, addr, host: req.get('host') ?? '', method: req.method, useragent: req.get('user-agent') ?? '' };
}

/**
 * Reports what a handler just did to the configured event endpoints (nothing to do,
 * and nothing built, when there are none). `kind` names the URL of the content.
 */
export function notify(ctx: Context, req: Request, action: EventAction, kind: 'manifests' | 'blobs', target: Omit<EventTarget, 'url' | 'length'>): void {
  if (!ctx.events.enabled) return;
  const host = req.get('host');
  const ref = target.digest ?? target.tag;
  const url = host && ref ? `https://${host}/v2/${target.repository}/${kind}/${ref}` : undefined;
  ctx.events.emit({
    action,
    target: { ...target, ...(url ? { url } : {}) },
    request: requestRecord(req),
    actor: { name: ctx.token.subject, ...(ctx.token.userId ? { id: ctx.token.userId } : {}) },
  });
}
