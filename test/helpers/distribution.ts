import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { request } from './http.js';
import { freePort, tempDir } from './keyport.js';

export interface DistributionOptions {
  /** Keyport's token endpoint, e.g. https://127.0.0.1:9002/token; absent: no auth (anonymous pulls and pushes). */
  realm?: string;
  service?: string;
  issuer?: string;
  /** PEM bundle of token certificates Distribution trusts (Keyport's token.crt). */
  rootCertBundle?: string;
  /** TLS certificate and key for Distribution's own HTTPS. */
  tlsCert: string;
  tlsKey: string;
  /** CA that signed tlsCert, for the readiness probe. */
  tlsCa: string;
  /** The storage section's driver lines (indented under `storage:`); default filesystem. */
  storage?: string;
}

/** Distribution settings that trust a Keyport process's token server and reuse its TLS files. */
export function trustingKeyport(certsDir: string, tokenUrl: string, service: string, issuer = 'keyport'): DistributionOptions {
  return {
    realm: `${tokenUrl}/token`,
    service,
    issuer,
    rootCertBundle: path.join(certsDir, 'token.crt'),
    tlsCert: path.join(certsDir, 'server.crt'),
    tlsKey: path.join(certsDir, 'server.key'),
    tlsCa: path.join(certsDir, 'ca.crt'),
  };
}

/** Distribution without auth (an open upstream registry), serving HTTPS with the given certificates. */
export function anonymousTls(certsDir: string): DistributionOptions {
  return { tlsCert: path.join(certsDir, 'server.crt'), tlsKey: path.join(certsDir, 'server.key'), tlsCa: path.join(certsDir, 'ca.crt') };
}

/**
 * Docker Distribution 2.8 (Debian's docker-registry) configured for token auth against
 * Keyport's token server: the peer Keyport's tokens must work with.
 */
export class DistributionProcess {
  port = 0;
  private child: ChildProcess | undefined;

  get pid(): number | undefined {
    return this.child?.pid;
  }
  readonly dir = tempDir('distribution');

  constructor(private readonly opts: DistributionOptions) {}

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  static available(): boolean {
    return fs.existsSync('/usr/bin/docker-registry');
  }

  async start(): Promise<this> {
    this.port = await freePort();
    const config = `version: 0.1
log:
  level: info
  formatter: json
storage:
${this.opts.storage ?? `  filesystem:\n    rootdirectory: ${path.join(this.dir, 'data')}`}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${this.port}
  secret: ${Math.random().toString(36).slice(2)}
  tls:
    certificate: ${this.opts.tlsCert}
    key: ${this.opts.tlsKey}
${this.opts.realm ? `auth:
  token:
    realm: ${this.opts.realm}
    service: ${this.opts.service}
    issuer: ${this.opts.issuer}
    rootcertbundle: ${this.opts.rootCertBundle}
` : ''}health:
  storagedriver:
    enabled: false
`;
    const file = path.join(this.dir, 'config.yml');
    fs.writeFileSync(file, config);
    const log = fs.openSync(path.join(this.dir, 'registry.log'), 'a');
    this.child = spawn('/usr/bin/docker-registry', ['serve', file], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const ca = fs.readFileSync(this.opts.tlsCa);
    // Cloud drivers log in and create their container before the listener opens.
    const deadline = Date.now() + 60_000;
    let lastError = '';
    for (;;) {
      try {
        const r = await request(`${this.url}/v2/`, { ca, agent: false, timeoutMs: 2000 });
        if (r.status === (this.opts.realm ? 401 : 200)) return this;
        lastError = `HTTP ${r.status}`;
      } catch (e) {
        lastError = (e as Error).message;
      }
      if (this.child.exitCode !== null || Date.now() > deadline) {
        await this.stop();
        throw new Error(`docker-registry did not start (${lastError}):\n${this.logText().slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  logText(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'registry.log'), 'utf8');
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await gone;
  }
}
