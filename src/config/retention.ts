import { parseDurationMs } from './duration.js';
import { addJsonListFormat } from './formats.js';

/**
 * `storage.gc.retention`: rules GC applies before its mark, removing tags and untagged
 * manifest revisions by age or count; the blobs they used then go through the ordinary
 * mark and sweep. A list of objects, so the whole list is one setting (JSON in the
 * variable), checked rule by rule here. For each repository the first rule whose
 * `repositories` pattern matches applies; a repository no rule matches keeps
 * everything. Empty (the default): no retention.
 */
export interface RetentionRuleInput {
  /** Regular expression on the repository name, e.g. "^demo/". */
  repositories: string;
  /** Keep the N most recently written tags (by the time their current link was written). */
  keepLast?: number;
  /** Tags matching this regular expression are always kept. */
  keepTags?: string;
  /** Delete manifest revisions no tag points at, written longer ago than this. */
  untaggedOlderThan?: string;
  /** Delete tags last pulled (or, never pulled, written) longer ago than this. */
  notPulledFor?: string;
}

/** A rule ready to apply: patterns compiled, durations in milliseconds. */
export interface RetentionRule {
  index: number;
  repositories: RegExp;
  keepLast?: number;
  keepTags?: RegExp;
  untaggedOlderThanMs?: number;
  notPulledForMs?: number;
}

const KEYS = new Set(['repositories', 'keepLast', 'keepTags', 'untaggedOlderThan', 'notPulledFor']);

function regex(v: unknown, where: string): RegExp {
  if (typeof v !== 'string' || v === '') throw new Error(`${where} must be a regular expression such as "^demo/"`);
  try {
    return new RegExp(v);
  } catch (e) {
    throw new Error(`${where} is not a valid regular expression: ${(e as Error).message}`);
  }
}

function duration(v: unknown, where: string): number {
  const ms = typeof v === 'string' ? parseDurationMs(v) : undefined;
  if (ms === undefined || ms <= 0) throw new Error(`${where} must be a duration above 0 such as "30m", "72h" or "720h", got ${JSON.stringify(v)}`);
  return ms;
}

/** The rules, compiled; throws an Error naming the rule index and field of the first problem. */
export function compileRetention(value: unknown): RetentionRule[] {
  if (typeof value === 'string') throw new Error('must be a JSON list of retention rules; the value is not valid JSON');
  if (!Array.isArray(value)) throw new Error('must be a list of retention rules ({"repositories", "keepLast", ...})');
  return value.map((raw, index) => {
    const where = `retention rule ${index}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where} must be an object`);
    const r = raw as Record<string, unknown>;
    const unknown = Object.keys(r).filter((k) => !KEYS.has(k));
    if (unknown.length) throw new Error(`${where}: unknown key ${unknown.join(', ')} (allowed: ${[...KEYS].join(', ')})`);
    const rule: RetentionRule = { index, repositories: regex(r.repositories, `${where}: repositories`) };
    if (r.keepLast !== undefined) {
      if (typeof r.keepLast !== 'number' || !Number.isInteger(r.keepLast) || r.keepLast < 0) {
        throw new Error(`${where}: keepLast must be a whole number (0 or more), got ${JSON.stringify(r.keepLast)}`);
      }
      rule.keepLast = r.keepLast;
    }
    if (r.keepTags !== undefined) rule.keepTags = regex(r.keepTags, `${where}: keepTags`);
    if (r.untaggedOlderThan !== undefined) rule.untaggedOlderThanMs = duration(r.untaggedOlderThan, `${where}: untaggedOlderThan`);
    if (r.notPulledFor !== undefined) rule.notPulledForMs = duration(r.notPulledFor, `${where}: notPulledFor`);
    if (rule.keepLast === undefined && rule.untaggedOlderThanMs === undefined && rule.notPulledForMs === undefined) {
      throw new Error(`${where}: give at least one of keepLast, untaggedOlderThan, notPulledFor (keepTags alone removes nothing)`);
    }
    return rule;
  });
}

addJsonListFormat('retention-rules', (v) => void compileRetention(v));

/** The schema entry; schema.ts places it under `storage.gc.retention`. */
export const retentionSchema = {
  doc: 'Retention rules GC applies before its mark, a list of {repositories, keepLast, keepTags, untaggedOlderThan, notPulledFor} (JSON in the variable); the first rule whose repositories pattern matches a repository applies. See "Retention rules" in the README. Empty: none.',
  format: 'retention-rules',
  default: [] as RetentionRuleInput[],
  env: 'KEYPORT_STORAGE_GC_RETENTION',
};
