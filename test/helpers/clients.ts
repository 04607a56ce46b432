import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './keyport.js';

export interface RunResult {
  code: number;
  out: string;
}

/** Runs a client command; never throws on a non-zero exit (tests assert on it). */
export function run(cmd: string, args: string[], opts: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): RunResult {
  const r = spawnSync(cmd, args, {
    env: { ...process.env, ...(opts.env ?? {}) },
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 180_000,
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

export function must(r: RunResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.out}`);
  return r.out;
}

/** A directory in the layout containers/image expects for --cert-dir: ca.crt inside. */
export function certDir(ca: Buffer | string): string {
  const dir = tempDir('certdir');
  fs.writeFileSync(path.join(dir, 'ca.crt'), ca);
  return dir;
}

/** podman with private vfs storage, usable as root without systemd. */
export class Podman {
  readonly root = tempDir('podman');
  private base(): string[] {
    return [
      '--storage-driver', 'vfs',
      '--root', path.join(this.root, 'root'),
      '--runroot', path.join(this.root, 'run'),
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
    ];
  }
  get authFile(): string {
    return path.join(this.root, 'auth.json');
  }
  run(args: string[], input?: string): RunResult {
    return run('podman', [...this.base(), ...args], { input, env: { REGISTRY_AUTH_FILE: this.authFile } });
  }
}

/** The docker CLI talking to the private dockerd, with its own config directory. */
export class Docker {
  readonly config = tempDir('docker-cli');
  constructor(private readonly socket: string) {}
  run(args: string[], input?: string): RunResult {
    return run('docker', args, { input, env: { DOCKER_HOST: `unix://${this.socket}`, DOCKER_CONFIG: this.config } });
  }
  configJson(): any {
    const f = path.join(this.config, 'config.json');
    return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : {};
  }
}
