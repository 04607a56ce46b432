import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SwiftSettings } from '../../src/storage/swift/settings.js';
import { createLogger } from '../../src/log/logger.js';
import type { SwiftDriverOptions } from '../../src/storage/swift/driver.js';
import { request } from './http.js';
import type { SwiftService } from './services.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const quietLog = createLogger(process.env.KEYPORT_TEST_LOG_LEVEL ?? 'silent');

/** Driver options for the test Swift with tempauth (v1 auth); `over` changes anything. */
export function swiftOptions(sw: SwiftService, over: Partial<SwiftDriverOptions> = {}): SwiftDriverOptions {
  const base: SwiftSettings = {
    authUrl: sw.authV1,
    authVersion: 0,
    username: sw.tempauth.user,
    password: sw.tempauth.key,
    applicationCredentialId: '',
    applicationCredentialName: '',
    applicationCredentialSecret: '',
    tenant: '',
    tenantId: '',
    domain: '',
    domainId: '',
    tenantDomain: '',
    tenantDomainId: '',
    region: '',
    endpointType: 'public',
    storageUrl: '',
    container: `keyport-test-${crypto.randomBytes(4).toString('hex')}`,
    rootDirectory: '',
    chunkSize: 1024 * 1024,
    insecureSkipVerify: false,
    caFile: '',
    timeout: 10_000,
    tempUrlKey: '',
    tempUrlContainerKey: false,
    tempUrlMethods: ['GET', 'HEAD'],
    tempUrlDigest: 'sha256',
    redirect: false,
    redirectExpiry: 1200,
  };
  return { ...base, ...over };
}

/** A tempauth token and account URL, for looking at the store behind the driver's back. */
export async function tempauthLogin(sw: SwiftService): Promise<{ token: string; storageUrl: string }> {
  const r = await request(sw.authV1, { headers: { 'X-Auth-User': sw.tempauth.user, 'X-Auth-Key': sw.tempauth.key } });
  if (r.status !== 200) throw new Error(`tempauth login: ${r.status}`);
  return { token: String(r.headers['x-auth-token']), storageUrl: String(r.headers['x-storage-url']) };
}

/** Every object name in a container (raw listing, no driver involved). */
export async function rawList(sw: SwiftService, container: string, prefix = ''): Promise<Array<{ name: string; bytes: number; content_type: string }>> {
  const { token, storageUrl } = await tempauthLogin(sw);
  const r = await request(`${storageUrl}/${container}?format=json&prefix=${encodeURIComponent(prefix)}`, { headers: { 'X-Auth-Token': token } });
  if (r.status === 204 || r.status === 404) return [];
  return r.json();
}

/** Forgets a tempauth token in memcache, as if it had expired: Swift answers 401 to it from then on. */
export async function forgetTempauthToken(sw: SwiftService, token: string): Promise<void> {
  // tempauth keeps "<reseller>/token/<token>"; Swift's memcache client stores md5(key).
  const key = crypto.createHash('md5').update(`AUTH_/token/${token}`).digest('hex');
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect(sw.memcachePort, '127.0.0.1', () => s.write(`delete ${key}\r\n`));
    s.once('data', (d) => {
      resolve(d.toString().trim());
      s.end();
    });
    s.once('error', reject);
  });
  if (reply !== 'DELETED') throw new Error(`memcache delete of the token answered ${reply}`);
}

/** Starts (or stops) one more Swift proxy on `port` over the test store. */
export function extraProxy(sw: SwiftService, action: 'up' | 'down', port: number): void {
  const r = spawnSync(path.join(root, 'scripts', 'swift.sh'), [`proxy-${action}`, String(port)], {
    env: { ...process.env, ...sw.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`swift.sh proxy-${action} ${port} failed: ${r.stdout}${r.stderr}`);
}

export async function sha256Of(s: AsyncIterable<unknown>): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

/**
 * Runs test/fixtures/append-writer.ts: another process appends bytes [from, to) of
 * `file` to `p` and is killed with SIGKILL before it closes its writer. Returns its output.
 */
export async function appendThenDie(kind: 'swift' | 's3', opts: unknown, p: string, file: string, from: number, to: number): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/append-writer.ts', kind, JSON.stringify(opts), p, file, String(from), String(to)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('waiting')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`writer process exited early (${code}): ${out}`)));
  });
  const exited = new Promise((res) => child.once('exit', res));
  child.kill('SIGKILL');
  await exited;
  return out;
}

/** Registry settings for the test Swift: a fresh container, and 1 MiB segments so multi-MiB blobs are static large objects; `extra` adds or overrides. */
export function swiftRegistryEnv(sw: SwiftService, authUrl: string = sw.authV1, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KEYPORT_STORAGE_DRIVER: 'swift',
    KEYPORT_SWIFT_AUTH_URL: authUrl,
    KEYPORT_SWIFT_USERNAME: sw.tempauth.user,
    KEYPORT_SWIFT_PASSWORD: sw.tempauth.key,
    KEYPORT_SWIFT_CONTAINER: `registry-${crypto.randomBytes(4).toString('hex')}`,
    KEYPORT_SWIFT_CHUNK_SIZE: String(1024 * 1024),
    ...extra,
  };
}
