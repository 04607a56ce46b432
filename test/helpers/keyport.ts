import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from './http.js';
import { workDir } from './services.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(root, 'dist', 'cli.js');

/** Ports this process handed out: the kernel may offer a port again once it is closed. */
const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    // Two calls in a row (a token and a registry port) once got the same port.
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export function tempDir(name: string): string {
  const base = path.join(workDir(), 'tmp');
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `${name}-`));
}

export interface KeyportOptions {
  command?: 'start' | 'token' | 'registry';
  /** Directory for certs, data and logs; shared when restarting. */
  dir?: string;
  env?: Record<string, string>;
  tokenPort?: number;
  registryPort?: number;
}

/**
 * A real Keyport process (node dist/cli.js) on loopback. Ports, certs and storage
 * stay the same across restart() so clients and tokens keep working.
 */
export class KeyportProcess {
  readonly dir: string;
  readonly command: 'start' | 'token' | 'registry';
  tokenPort = 0;
  registryPort = 0;
  private child: ChildProcess | undefined;
  private logFile: string;
  readonly env: Record<string, string>;

  constructor(opts: KeyportOptions = {}) {
    this.command = opts.command ?? 'start';
    this.dir = opts.dir ?? tempDir('keyport');
    this.env = { ...(opts.env ?? {}) };
    this.tokenPort = opts.tokenPort ?? 0;
    this.registryPort = opts.registryPort ?? 0;
    this.logFile = path.join(this.dir, `keyport-${this.command}.log`);
  }

  get certsDir(): string {
    return this.env.KEYPORT_CERTS_DIR ?? path.join(this.dir, 'certs');
  }
  get ca(): Buffer {
    return fs.readFileSync(path.join(this.certsDir, 'ca.crt'));
  }
  get tokenUrl(): string {
    return `https://127.0.0.1:${this.tokenPort}`;
  }
  get registryUrl(): string {
    return `https://127.0.0.1:${this.registryPort}`;
  }
  get service(): string {
    return this.env.KEYPORT_SERVICE ?? 'keyport-registry';
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<this> {
    if (!this.tokenPort) this.tokenPort = await freePort();
    if (!this.registryPort) this.registryPort = await freePort();
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      KEYPORT_BIND: '127.0.0.1',
      KEYPORT_PUBLIC_HOST: '127.0.0.1',
      KEYPORT_TOKEN_PORT: String(this.tokenPort),
      KEYPORT_REGISTRY_PORT: String(this.registryPort),
      KEYPORT_CERTS_DIR: this.certsDir,
      KEYPORT_STORAGE_ROOT: path.join(this.dir, 'data'),
      KEYPORT_LOG_LEVEL: 'debug',
      // One process unless a test asks for workers, so log-based assertions see everything in order.
      KEYPORT_TOKEN_WORKERS: '1',
      ...this.env,
    };
    const out = fs.openSync(this.logFile, 'a');
    // In its own directory: a relative path in a setting never lands in the checkout.
    this.child = spawn(process.execPath, [CLI, this.command], { cwd: this.dir, env, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const child = this.child;
    let exited: string | undefined;
    child.once('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));
    const deadline = Date.now() + 30_000;
    const urls: string[] = [];
    if (this.command !== 'registry') urls.push(`${this.tokenUrl}/healthz`);
    if (this.command !== 'token') urls.push(`${this.registryUrl}/healthz`);
    for (const url of urls) {
      for (;;) {
        if (exited) throw new Error(`keyport ${this.command} ${exited}:\n${this.logTail()}`);
        try {
          const r = await request(url, { ca: this.ca, timeoutMs: 2000, agent: false });
          if (r.status < 500) break;
        } catch {
          /* not up yet */
        }
        if (Date.now() > deadline) throw new Error(`keyport ${this.command} did not become ready:\n${this.logTail()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return this;
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(t);
  }

  async restart(): Promise<this> {
    await this.stop();
    return this.start();
  }

  logTail(lines = 40): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Every JSON log line written so far. */
  logLines(): any[] {
    const text = fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
    return text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
  }

  /** The last log line matching `pred`, waiting up to `ms` for it to be written. */
  async waitForLog(pred: (l: any) => boolean, ms = 3000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.logLines().filter(pred).pop();
      if (hit || Date.now() > deadline) return hit;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  logText(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }
}
