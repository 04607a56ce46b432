/**
 * Durations in settings: Go's notation as Docker Distribution writes it (`500ms`,
 * `10s`, `5m`, `1h`, `1h30m`), or a bare number in the setting's documented unit, so
 * existing configurations keep their meaning.
 */
export type DurationUnit = 's' | 'ms';

const MS_PER: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;

/** Milliseconds of a Go-style duration string; undefined when it is not one. */
export function parseDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  let total = 0;
  PART.lastIndex = 0;
  let matched = 0;
  while (PART.lastIndex < s.length) {
    const at = PART.lastIndex;
    const m = PART.exec(s);
    if (!m || m.index !== at) return undefined;
    total += Number(m[1]) * MS_PER[m[2]!]!;
    matched++;
  }
  return matched > 0 ? total : undefined;
}

/**
 * A setting's value in its unit: a number as it is, a digit string as a number, a
 * duration string converted. Anything else is returned unchanged for the validator to
 * name; a duration that is not a whole number of the unit (`500ms` for seconds) too.
 */
export function toUnit(value: unknown, unit: DurationUnit): unknown {
  if (typeof value !== 'string') return value;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const ms = parseDurationMs(value);
  if (ms === undefined) return value;
  const n = unit === 'ms' ? ms : ms / 1000;
  return Number.isInteger(n) ? n : value;
}

export function describeDuration(unit: DurationUnit, min: 0 | 1): string {
  const name = unit === 'ms' ? 'milliseconds' : 'seconds';
  return `must be a duration such as ${unit === 'ms' ? '500ms, 10s' : '30s, 5m, 1h'} or a whole number of ${name}${min ? ' above 0' : ''}`;
}
