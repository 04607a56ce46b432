/** Shared pieces of the benchmarks: wrk runs, process memory, tables. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

export interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  requests: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60000;
}

/**
 * Runs wrk (keep-alive, one thread per 8 connections, at most 2) and parses its
 * summary. `script` is a Lua file for methods, headers and bodies.
 */
export function wrk(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string>; script?: string }): WrkResult {
  const threads = Math.max(1, Math.min(2, Math.ceil(opts.connections / 8)));
  const args = ['-t', String(threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--latency', '--timeout', '10s'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.script) args.push('-s', opts.script);
  args.push(url);
  const r = spawnSync('wrk', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr || r.stdout}`);
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '';
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50ms: toMs(p50), p99ms: toMs(p99), errors, requests };
}

export function requireTool(name: string, pkg: string): void {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
  } catch {
    throw new Error(`${name} is not installed (apt-get install ${pkg}, or scripts/deps.sh)`);
  }
}

/** Resident set size of a process in MiB (VmRSS), and the peak (VmHWM). */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: Array<string | number>) => '| ' + r.map((c, i) => String(c).padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(cells[0]!), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/**
 * ApacheBench for HEAD requests (wrk cannot parse bodiless HEAD answers that carry a
 * Content-Length). Keep-alive, `connections` concurrent clients, for `seconds`.
 */
export function abHead(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string> }): WrkResult {
  const args = ['-k', '-i', '-q', '-c', String(opts.connections), '-t', String(opts.seconds), '-n', '10000000', '-s', '10'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const r = spawnSync('ab', args, { encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`ab failed: ${r.stderr || r.stdout}`);
  const out = r.stdout;
  const rps = Number(/Requests per second:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = Number(/\s50%\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const p99 = Number(/\s99%\s+(\d+)/.exec(out)?.[1] ?? NaN);
  const failed = Number(/Failed requests:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/Complete requests:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50ms: p50, p99ms: p99, errors: failed + non2xx, requests };
}
