import fs from 'node:fs';
import type { TestContext } from 'node:test';

export interface ServiceInfo {
  available: boolean;
  reason?: string;
  [k: string]: unknown;
}

export interface ServicesFile {
  workDir: string;
  ci: boolean;
  services: Record<string, ServiceInfo>;
}

export interface KeystoneService extends ServiceInfo {
  url: string;
  /** The same Keystone over HTTPS, with the CA that signed its certificate. */
  httpsUrl: string;
  httpsCa: string;
  adminPassword: string;
  servicePassword: string;
  lockoutAttempts: number;
  dir: string;
  fixtures: {
    url: string;
    projects: Record<string, string>;
    roles: Record<string, string>;
    users: Record<string, string>;
    /** EC2 (S3) credential of 'keyport' on project 'service'; present when the catalog has Swift. */
    ec2?: { user: string; project: string; access: string; secret: string } | null;
  };
}

let cached: ServicesFile | undefined;

export function servicesFile(): ServicesFile {
  if (cached) return cached;
  const file = process.env.KEYPORT_TEST_SERVICES;
  cached = file && fs.existsSync(file)
    ? (JSON.parse(fs.readFileSync(file, 'utf8')) as ServicesFile)
    : { workDir: process.env.KEYPORT_TEST_DIR ?? '/tmp/keyport-test', ci: !!process.env.CI, services: {} };
  return cached;
}

export function workDir(): string {
  return servicesFile().workDir;
}

/**
 * The named service, or undefined after marking the test skipped. Under CI a missing
 * service is a failure, never a skip: integration tests must run there.
 */
export function requireService<T extends ServiceInfo>(t: TestContext, name: string): T | undefined {
  const f = servicesFile();
  const s = f.services[name];
  if (s?.available) return s as T;
  const why = s ? `${name} unavailable: ${s.reason}` : `${name} was not started (run the suite with npm test)`;
  if (f.ci || process.env.CI) throw new Error(`${why} (CI is set, so this is a failure)`);
  t.skip(why);
  return undefined;
}

export function keystone(t: TestContext): KeystoneService | undefined {
  return requireService<KeystoneService>(t, 'keystone');
}

export interface DockerdService extends ServiceInfo {
  socket: string;
  dir: string;
}

export function dockerd(t: TestContext): DockerdService | undefined {
  return requireService<DockerdService>(t, 'dockerd');
}

/** Token-server settings for the test Keystone, with Keyport's service account. */
export function keystoneEnv(ks: KeystoneService, serviceAccount = true): Record<string, string> {
  const env: Record<string, string> = { KEYPORT_KEYSTONE_URL: ks.url };
  if (serviceAccount) {
    env.KEYPORT_KEYSTONE_SERVICE_USER = 'keyport';
    env.KEYPORT_KEYSTONE_SERVICE_PASSWORD = ks.servicePassword;
    env.KEYPORT_KEYSTONE_SERVICE_PROJECT = 'service';
  }
  return env;
}

export interface SwiftService extends ServiceInfo {
  /** Proxy base URL, e.g. http://127.0.0.1:18080. */
  url: string;
  /** Swift v1 (tempauth) auth URL. */
  authV1: string;
  tempauth: { user: string; key: string; account: string };
  /** Keystone wiring (keystoneauth, s3token), or null when Swift runs with tempauth only. */
  keystone: { url: string; prefix: string; tokenCacheTime: number } | null;
  memcachePort: number;
  /** Environment of scripts/swift.sh for this Swift (extra proxies for outage tests). */
  env: Record<string, string>;
}

export function swift(t: TestContext): SwiftService | undefined {
  return requireService<SwiftService>(t, 'swift');
}
