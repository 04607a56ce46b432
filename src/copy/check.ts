import { spawn } from 'node:child_process';
import { settings } from '../config/reference.js';

export interface CheckInput {
  command: string;
  /** host[:port]/repository@digest: exactly the content that would be copied. */
  source: string;
  digest: string;
  /** host[:port]/repository:tag on this Keyport. */
  dest: string;
}

export interface CheckResult {
  passed: boolean;
  exitCode: number | null;
  signal: string | null;
  /** The last part of what the command wrote (stdout and stderr), for the JSON result. */
  output: string;
}

const OUTPUT_TAIL = 64 * 1024;

/**
 * The environment of a check: the caller's, with the vetted image named in KEYPORT_*,
 * without the copy's password or any Keyport secret. A check is typically a scanner
 * the operator did not write; it gets no credential it was not given on purpose.
 */
export function checkEnvironment(input: CheckInput, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const secret = new Set(['KEYPORT_PASSWORD', ...settings().filter((s) => s.sensitive).map((s) => s.env)]);
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!secret.has(k)) out[k] = v;
  out.KEYPORT_SOURCE = input.source;
  out.KEYPORT_DIGEST = input.digest;
  out.KEYPORT_DEST = input.dest;
  return out;
}

/**
 * Runs `sh -c COMMAND`. Its output goes to `echo` as it comes (the user watches a long
 * scan) and its tail is kept for the result; it passes only with exit code 0.
 */
export function runCheck(input: CheckInput, echo: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): Promise<CheckResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', input.command], { env: checkEnvironment(input, env), stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (chunk: Buffer) => {
      echo.write(chunk);
      tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', (e) => reject(new Error(`cannot run the check: ${e.message}`)));
    child.once('close', (code, signal) => resolve({ passed: code === 0, exitCode: code, signal, output: tail }));
  });
}
