/**
 * The Swift side of the registry benchmark: a private single-node Swift (scripts/swift.sh
 * on ports of its own, so a test run using the default test ports is not disturbed) and
 * Docker Distribution 2.8 configured with its `swift` storage driver.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from '../test/helpers/http.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface SwiftNodeOptions {
  dir: string;
  port: number;
  objectPort: number;
  containerPort: number;
  accountPort: number;
  memcachePort: number;
}

/** A single-node Swift run by scripts/swift.sh, with tempauth user test:tester / testing. */
export class SwiftNode {
  readonly user = 'test:tester';
  readonly key = 'testing';
  private auth: { token: string; storageUrl: string } | undefined;

  constructor(readonly opts: SwiftNodeOptions) {}

  /**
   * A node in `dir` on the benchmarks' own ports (BENCH_SWIFT_PORT, default 28080;
   * BENCH_SWIFT_SERVER_PORT for the object server, container and account on the next
   * two, default 26200; BENCH_SWIFT_MEMCACHE_PORT, default 21311), apart from the tests'.
   */
  static onBenchPorts(dir: string): SwiftNode {
    const serverPort = Number(process.env.BENCH_SWIFT_SERVER_PORT ?? 26200);
    return new SwiftNode({
      dir,
      port: Number(process.env.BENCH_SWIFT_PORT ?? 28080),
      objectPort: serverPort,
      containerPort: serverPort + 1,
      accountPort: serverPort + 2,
      memcachePort: Number(process.env.BENCH_SWIFT_MEMCACHE_PORT ?? 21311),
    });
  }

  /** swift.sh settings: every one given explicitly, so SW_* values meant for the tests never leak in. */
  get env(): Record<string, string> {
    return {
      SW_DIR: this.opts.dir,
      SW_HOST: '127.0.0.1',
      SW_PORT: String(this.opts.port),
      SW_OBJ_PORT: String(this.opts.objectPort),
      SW_CONT_PORT: String(this.opts.containerPort),
      SW_ACCT_PORT: String(this.opts.accountPort),
      SW_MEMCACHE_PORT: String(this.opts.memcachePort),
      SW_KEYSTONE_URL: '',
    };
  }

  /** v1 (tempauth) auth URL: both registries log in with X-Auth-User / X-Auth-Key here. */
  get authUrl(): string {
    return `http://127.0.0.1:${this.opts.port}/auth/v1.0`;
  }

  private script(cmd: 'up' | 'down'): { ok: boolean; output: string } {
    const r = spawnSync(path.join(root, 'scripts', 'swift.sh'), [cmd], {
      env: { ...process.env, ...this.env },
      encoding: 'utf8',
      timeout: 180_000,
    });
    return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
  }

  up(): this {
    const r = this.script('up');
    if (!r.ok) throw new Error(`scripts/swift.sh up failed:\n${r.output}`);
    return this;
  }

  /** Stops every Swift server and memcached; safe to call when nothing runs. */
  down(): void {
    const r = this.script('down');
    if (!r.ok) console.error(`scripts/swift.sh down failed:\n${r.output}`);
  }

  private async login(): Promise<{ token: string; storageUrl: string }> {
    if (!this.auth) {
      const r = await request(this.authUrl, { headers: { 'X-Auth-User': this.user, 'X-Auth-Key': this.key } });
      if (r.status !== 200) throw new Error(`tempauth login answered ${r.status}`);
      this.auth = { token: String(r.headers['x-auth-token']), storageUrl: String(r.headers['x-storage-url']) };
    }
    return this.auth;
  }

  private async call(method: string, container: string, object = '', query = ''): Promise<Awaited<ReturnType<typeof request>>> {
    const { token, storageUrl } = await this.login();
    const name = object ? `/${object.split('/').map(encodeURIComponent).join('/')}` : '';
    return request(`${storageUrl}/${encodeURIComponent(container)}${name}${query}`, { method, headers: { 'X-Auth-Token': token }, timeoutMs: 60_000 });
  }

  /** Names of the account's containers. */
  async containers(): Promise<string[]> {
    const { token, storageUrl } = await this.login();
    const r = await request(`${storageUrl}?format=json`, { headers: { 'X-Auth-Token': token } });
    if (r.status === 204) return [];
    if (r.status !== 200) throw new Error(`account listing answered ${r.status}`);
    return r.json<Array<{ name: string }>>().map((c) => c.name);
  }

  /** Every object in a container, straight from Swift (no registry involved). */
  async list(container: string): Promise<Array<{ name: string; bytes: number }>> {
    const all: Array<{ name: string; bytes: number }> = [];
    for (let marker = ''; ; ) {
      const r = await this.call('GET', container, '', `?format=json&limit=10000&marker=${encodeURIComponent(marker)}`);
      if (r.status === 404 || r.status === 204) return all;
      if (r.status !== 200) throw new Error(`listing ${container} answered ${r.status}`);
      const page = r.json<Array<{ name: string; bytes: number }>>();
      if (page.length === 0) return all;
      all.push(...page);
      marker = page[page.length - 1]!.name;
    }
  }

  /** Creates the container if it is missing. */
  async createContainer(container: string): Promise<void> {
    const r = await this.call('PUT', container);
    if (r.status !== 201 && r.status !== 202) throw new Error(`PUT ${container} answered ${r.status}`);
  }

  /** Stores one object as it is (no registry involved). */
  async put(container: string, object: string, body: Buffer): Promise<void> {
    const { token, storageUrl } = await this.login();
    const name = object.split('/').map(encodeURIComponent).join('/');
    const r = await request(`${storageUrl}/${encodeURIComponent(container)}/${name}`, { method: 'PUT', body, headers: { 'X-Auth-Token': token, 'Content-Length': body.length }, timeoutMs: 60_000 });
    if (r.status !== 201) throw new Error(`PUT ${container}/${object} answered ${r.status}`);
  }

  /** Size Swift reports for an object (a large object's manifest: the whole content), or undefined. */
  async size(container: string, object: string): Promise<number | undefined> {
    const r = await this.call('HEAD', container, object);
    return r.status === 200 ? Number(r.headers['content-length']) : undefined;
  }

  /**
   * Deletes every object of the container (manifests and segments alike: plain DELETEs,
   * so nothing is resolved through a manifest); with `container`, the container too.
   */
  async clear(container: string, opts: { container?: boolean } = {}): Promise<void> {
    const names = (await this.list(container)).map((o) => o.name);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++]!;
        const r = await this.call('DELETE', container, name);
        if (r.status !== 204 && r.status !== 404) throw new Error(`DELETE ${container}/${name} answered ${r.status}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    if (opts.container) {
      const r = await this.call('DELETE', container);
      if (r.status !== 204 && r.status !== 404) throw new Error(`DELETE ${container} answered ${r.status}`);
    }
  }
}

export interface SwiftStorage {
  authUrl: string;
  username: string;
  password: string;
  container: string;
  /** Segment size of large objects in bytes. */
  chunkSize: number;
}

/**
 * Distribution's storage lines for its swift driver (v1 auth). Pulls are proxied:
 * Distribution would otherwise answer blob GETs with a redirect to a Swift TempURL (it
 * installs a TempURL key when Swift's /info lists tempurl).
 */
export function distributionSwiftStorage(s: SwiftStorage): string {
  return [
    '  swift:',
    `    authurl: ${s.authUrl}`,
    '    authversion: 1',
    `    username: ${s.username}`,
    `    password: ${s.password}`,
    `    container: ${s.container}`,
    `    chunksize: ${s.chunkSize}`,
    '  redirect:',
    '    disable: true',
  ].join('\n');
}
