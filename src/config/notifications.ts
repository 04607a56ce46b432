import { toUnit } from './duration.js';
import { addJsonListFormat } from './formats.js';

/**
 * The `notifications` section: HTTP endpoints that receive registry events, as Docker
 * Distribution's `notifications.endpoints` has them. A list of objects does not fit
 * one environment variable per key, so the whole list is one setting (JSON in
 * KEYPORT_NOTIFICATION_ENDPOINTS), checked entry by entry here.
 */

export const EVENT_ACTIONS = ['push', 'pull', 'delete', 'mount', 'fetch'] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

/** One endpoint as written in the configuration; absent fields take the defaults below. */
export interface NotificationEndpointInput {
  name: string;
  url: string;
  headers?: Record<string, string | string[]>;
  /** Milliseconds, or a duration such as 500ms or 2s (as Distribution writes them). */
  timeout?: number | string;
  threshold?: number;
  backoff?: number | string;
  maxBackoff?: number | string;
  queueSize?: number;
  includePulls?: boolean;
  ignoredActions?: EventAction[];
  ignoredMediaTypes?: string[];
  caFile?: string;
  disabled?: boolean;
}

/** An endpoint with every field filled in. */
export type NotificationEndpoint = Required<Omit<NotificationEndpointInput, 'headers' | 'timeout' | 'backoff' | 'maxBackoff'>> & {
  headers: Record<string, string>;
  timeout: number;
  backoff: number;
  maxBackoff: number;
};

export interface NotificationsConfig {
  endpoints: NotificationEndpointInput[];
}

export const ENDPOINT_DEFAULTS = {
  /** Milliseconds one delivery may take. */
  timeout: 5000,
  /** Failed deliveries in a row that are retried at once, before backing off. */
  threshold: 3,
  /** First back-off in milliseconds; it doubles per failure up to maxBackoff. */
  backoff: 1000,
  maxBackoff: 60_000,
  /** Events held for an endpoint that does not answer; beyond, the oldest are dropped. */
  queueSize: 10_000,
  includePulls: false,
  ignoredActions: [] as EventAction[],
  ignoredMediaTypes: [] as string[],
  caFile: '',
  disabled: false,
};

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HEADER_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const KEYS = new Set(['name', 'url', 'headers', ...Object.keys(ENDPOINT_DEFAULTS)]);

function positiveInt(v: unknown, where: string): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)) throw new Error(`${where} must be a positive integer, got ${JSON.stringify(v)}`);
}

function stringList(v: unknown, where: string): void {
  if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))) throw new Error(`${where} must be a list of strings`);
}

/** Throws an Error naming the entry and field of the first problem. */
export function checkEndpoints(value: unknown): void {
  if (typeof value === 'string') throw new Error('must be a JSON list of endpoints; the value is not valid JSON');
  if (!Array.isArray(value)) throw new Error('must be a list of endpoints ({"name", "url", ...})');
  const names = new Set<string>();
  value.forEach((raw, i) => {
    const where = `endpoint ${i}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where} must be an object`);
    const e = raw as Record<string, unknown>;
    const unknown = Object.keys(e).filter((k) => !KEYS.has(k));
    if (unknown.length) throw new Error(`${where}: unknown key ${unknown.join(', ')} (allowed: ${[...KEYS].join(', ')})`);
    if (typeof e.name !== 'string' || !NAME_RE.test(e.name)) throw new Error(`${where}: name must be 1-64 characters of A-Z a-z 0-9 . _ -`);
    if (names.has(e.name)) throw new Error(`${where}: the name ${e.name} is used twice`);
    names.add(e.name);
    let url: URL | undefined;
    try {
      url = typeof e.url === 'string' ? new URL(e.url) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new Error(`${where} (${e.name}): url must be an absolute http(s) URL`);
    if (e.headers !== undefined) {
      if (!e.headers || typeof e.headers !== 'object' || Array.isArray(e.headers)) throw new Error(`${where} (${e.name}): headers must be an object`);
      for (const [k, v] of Object.entries(e.headers)) {
        if (!HEADER_RE.test(k)) throw new Error(`${where} (${e.name}): ${JSON.stringify(k)} is not a header name`);
        const values = Array.isArray(v) ? v : [v];
        if (values.some((x) => typeof x !== 'string' || /[\r\n\0]/.test(x))) throw new Error(`${where} (${e.name}): header ${k} must be a string (or a list of strings) without line breaks`);
      }
    }
    for (const k of ['timeout', 'backoff', 'maxBackoff']) {
      const ms = toUnit(e[k], 'ms');
      if (ms !== undefined && (typeof ms !== 'number' || !Number.isInteger(ms) || ms <= 0)) {
        throw new Error(`${where} (${e.name}): ${k} must be a duration such as 500ms or 2s, or milliseconds above 0, got ${JSON.stringify(e[k])}`);
      }
    }
    for (const k of ['threshold', 'queueSize']) positiveInt(e[k], `${where} (${e.name}): ${k}`);
    for (const k of ['includePulls', 'disabled']) {
      if (e[k] !== undefined && typeof e[k] !== 'boolean') throw new Error(`${where} (${e.name}): ${k} must be true or false`);
    }
    stringList(e.ignoredActions, `${where} (${e.name}): ignoredActions`);
    const bad = ((e.ignoredActions as string[] | undefined) ?? []).filter((a) => !(EVENT_ACTIONS as readonly string[]).includes(a));
    if (bad.length) throw new Error(`${where} (${e.name}): ignoredActions: unknown ${bad.join(', ')} (actions: ${EVENT_ACTIONS.join(', ')})`);
    stringList(e.ignoredMediaTypes, `${where} (${e.name}): ignoredMediaTypes`);
    if (e.caFile !== undefined && typeof e.caFile !== 'string') throw new Error(`${where} (${e.name}): caFile must be a path`);
  });
}

/** Fills in the defaults; header lists become one comma-separated value, as HTTP combines them. */
export function resolveEndpoint(e: NotificationEndpointInput): NotificationEndpoint {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.headers ?? {})) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const ms = (v: number | string | undefined, fallback: number) => (v === undefined ? fallback : (toUnit(v, 'ms') as number));
  return {
    ...ENDPOINT_DEFAULTS,
    ...e,
    timeout: ms(e.timeout, ENDPOINT_DEFAULTS.timeout),
    backoff: ms(e.backoff, ENDPOINT_DEFAULTS.backoff),
    maxBackoff: ms(e.maxBackoff, ENDPOINT_DEFAULTS.maxBackoff),
    headers,
    ignoredActions: [...(e.ignoredActions ?? [])],
    ignoredMediaTypes: [...(e.ignoredMediaTypes ?? [])],
  };
}

addJsonListFormat('notification-endpoints', checkEndpoints);

/** The schema fragment; schema.ts places it under the top-level key `notifications`. */
export const notificationsSchema = {
  endpoints: {
    doc: 'Registry event receivers, like Docker Distribution\'s notifications.endpoints: a list of {name, url, headers, timeout, threshold, backoff, maxBackoff, queueSize, includePulls, ignoredActions, ignoredMediaTypes, caFile, disabled} (JSON in the variable); see "Registry events" in the README. Empty: no events.',
    format: 'notification-endpoints',
    default: [] as NotificationEndpointInput[],
    // Headers usually carry a receiver's credentials.
    sensitive: true,
    env: 'KEYPORT_NOTIFICATION_ENDPOINTS',
  },
};
