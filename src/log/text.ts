import type { DestinationStream } from 'pino';

/**
 * `log.format: text`: each JSON entry pino writes becomes one human-readable line,
 *
 *   2026-01-01T12:00:00.000Z INFO  registry: request method=GET path=/v2/ status=200 ms=1.2
 *
 * Formatting happens after pino has censored secrets (see logger.ts), so the text
 * carries exactly what the JSON would. Values with spaces, quotes or `=` are quoted as
 * JSON strings; objects are written as JSON, so an entry never spans lines.
 */
const HIDDEN = new Set(['time', 'level', 'msg', 'component', 'pid', 'hostname']);

export function formatTextLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`; // not pino's: pass it through untouched
  }
  const level = String(entry.level ?? '').toUpperCase().padEnd(5);
  const where = typeof entry.component === 'string' ? `${entry.component}: ` : '';
  let line = `${String(entry.time ?? '')} ${level} ${where}${String(entry.msg ?? '')}`;
  for (const [k, v] of Object.entries(entry)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    line += ` ${k}=${formatValue(v)}`;
  }
  return `${line}\n`;
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return v === '' || /[\s"=\\]/.test(v) ? JSON.stringify(v) : v;
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A pino destination writing text lines to `out`. */
export function textDestination(out: DestinationStream): DestinationStream {
  return { write: (line: string) => out.write(formatTextLine(line)) };
}
