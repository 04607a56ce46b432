import convict from 'convict';
import net from 'node:net';
import { describeDuration, toUnit, type DurationUnit } from './duration.js';

let registered = false;

/** Custom convict formats; convict 6 ships none for URLs or lists. */
export function registerFormats(): void {
  if (registered) return;
  registered = true;

  convict.addFormat({
    name: 'url',
    validate(value: unknown) {
      if (typeof value !== 'string') throw new Error('must be a URL string');
      let u: URL;
      try {
        u = new URL(value);
      } catch {
        throw new Error(`must be an absolute http(s) URL, got ${JSON.stringify(value)}`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('must use http or https');
    },
  });

  convict.addFormat({
    name: 'optional-url',
    validate(value: unknown) {
      if (value === '') return;
      if (typeof value !== 'string') throw new Error('must be a URL string');
      let u: URL;
      try {
        u = new URL(value);
      } catch {
        throw new Error(`must be an absolute https URL, got ${JSON.stringify(value)}`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('must use http or https');
    },
  });

  convict.addFormat({
    name: 'host-address',
    validate(value: unknown) {
      if (typeof value !== 'string' || value === '') throw new Error('must be an IP address or host name');
      if (net.isIP(value)) return;
      if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(value)) {
        throw new Error(`must be an IP address or host name, got ${JSON.stringify(value)}`);
      }
    },
  });

  convict.addFormat({
    name: 'non-empty-string',
    validate(value: unknown) {
      if (typeof value !== 'string' || value.trim() === '') throw new Error('must be a non-empty string');
    },
  });

  convict.addFormat({
    name: 'positive-int',
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw new Error('must be a whole number above 0');
    },
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
  });

  // Convict's own port and nat parse "abc" to NaN and "10s" to 10 with parseInt; these
  // take digits only and say what they expect.
  convict.addFormat({
    name: 'port',
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
        throw new Error('must be a TCP port number (0-65535)');
      }
    },
    coerce: digits,
  });

  convict.addFormat({
    name: 'nat',
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new Error('must be a whole number (0 or more)');
    },
    coerce: digits,
  });

  // Durations: seconds and milliseconds, allowing 0 or not.
  for (const [name, unit, min] of [
    ['seconds', 's', 0],
    ['positive-seconds', 's', 1],
    ['milliseconds', 'ms', 0],
    ['positive-milliseconds', 'ms', 1],
  ] as Array<[string, DurationUnit, 0 | 1]>) {
    convict.addFormat({
      name,
      validate(value: unknown) {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw new Error(describeDuration(unit, min));
      },
      coerce: (v: unknown) => toUnit(v, unit),
    });
  }

  convict.addFormat({
    name: 'flag',
    validate(value: unknown) {
      if (typeof value !== 'boolean') throw new Error(`must be true or false, got ${JSON.stringify(value)}`);
    },
    // Strict on purpose: convict's Boolean turns any string but "false" into true,
    // so a typo like KEYPORT_DELETE_ENABLED=no would silently enable deletes.
    coerce: (v: unknown) => {
      if (typeof v !== 'string') return v;
      const s = v.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off'].includes(s)) return false;
      return v;
    },
  });

  convict.addFormat({
    name: 'string-list',
    validate(value: unknown) {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
        throw new Error('must be a list of strings');
      }
    },
    coerce: commaList,
  });

  convict.addFormat({
    name: 'host-port-list',
    validate(value: unknown) {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Error('must be a list of host:port');
      for (const v of value as string[]) {
        const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
        if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`${JSON.stringify(v)} is not host:port`);
      }
    },
    coerce: commaList,
  });
}

function digits(v: unknown): unknown {
  return typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
}

/** A comma-separated environment value as a list (a list from a file stays as it is). */
function commaList(v: unknown): unknown {
  return typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
    : v;
}

/**
 * Registers a format for a list of objects that a variable holds as JSON (a list from a
 * file stays as it is); `validate` names the problem, including text that is not JSON.
 */
export function addJsonListFormat(name: string, validate: (v: unknown) => void): void {
  convict.addFormat({
    name,
    validate,
    coerce: (v: unknown) => {
      if (typeof v !== 'string') return v;
      try {
        return JSON.parse(v);
      } catch {
        return v; // validate names the problem
      }
    },
  });
}
