import type { Request } from 'express';
import type { Context } from './handlers/context.js';

/**
 * The registry's audit trail: one line per push, tag move and delete, naming who
 * (user and Keystone user id, from the token), from where, and exactly what (the
 * repository, the tag and the digest), so "who pushed this digest?" is one grep.
 * Written before the answer is sent, so a client that saw success always has its line.
 */
export type AuditEvent = 'push' | 'tag_move' | 'delete';

const MESSAGES: Record<AuditEvent, string> = {
  push: 'manifest pushed',
  tag_move: 'tag moved',
  delete: 'deleted',
};

export interface AuditTarget {
  repository: string;
  tag?: string;
  digest?: string;
  /** A tag move: the digest the tag pointed at before. */
  previous?: string;
  /** A delete: what was deleted (manifest, tag or blob) and the tags it removed. */
  kind?: 'manifest' | 'tag' | 'blob';
  tags?: string[];
}

export function audit(ctx: Context, req: Request, event: AuditEvent, target: AuditTarget): void {
  ctx.log.info(
    {
      audit: true,
      event,
      user: ctx.token.subject,
      userId: ctx.token.userId,
      client: req.socket?.remoteAddress ?? '',
      ...target,
    },
    MESSAGES[event],
  );
}
