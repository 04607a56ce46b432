import pino, { type Logger } from 'pino';
import { textDestination } from './text.js';

export type { Logger };

/**
 * Paths pino censors. Credentials could reach a log call as a top-level field, inside
 * headers or a parsed form, or inside an error from the HTTP client; those places are
 * listed explicitly. Wildcard paths are avoided on purpose: evaluating them on every
 * line costs more than the rest of a cached token request.
 */
const SECRET_FIELDS = ['password', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'authorization', 'servicePassword'];
const HEADER_FIELDS = ['authorization', 'cookie', '["x-auth-token"]', '["x-subject-token"]', '["x-auth-key"]', '["x-storage-token"]'];

function redactPaths(): string[] {
  const paths = [...SECRET_FIELDS];
  for (const h of HEADER_FIELDS) {
    const sep = h.startsWith('[') ? '' : '.';
    paths.push(`headers${sep}${h}`, `req.headers${sep}${h}`, `request.headers${sep}${h}`);
  }
  for (const f of SECRET_FIELDS) paths.push(`form.${f}`, `body.${f}`, `query.${f}`, `config.${f}`);
  paths.push('err.config', 'err.request', 'err.response');
  return paths;
}

export const REDACT_PATHS = redactPaths();

/** `json`: one JSON object per line (the default, for log collectors); `text`: one readable line per entry. */
export type LogFormat = 'json' | 'text';

export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: pino.stdSerializers.err },
      // "level":"info" rather than pino's numbers: what people grep for and collectors show.
      formatters: { level: (label) => ({ level: label }) },
    },
    format === 'text' ? textDestination(destination ?? pino.destination(1)) : destination,
  );
}
