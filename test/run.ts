/**
 * Test entry point: starts the real services once (Keystone, and whatever later suites
 * register in SERVICES), runs every test file against them, then stops them.
 *
 *   node --import tsx test/run.ts [test files or directories...]
 *
 * Service details reach the test files through KEYPORT_TEST_SERVICES (a JSON file).
 * With CI set, a service that fails to start fails the run instead of letting the
 * tests that need it skip.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCertificates } from '../src/tls/certificates.js';
import type { ServiceInfo, ServicesFile } from './helpers/services.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workDir = process.env.KEYPORT_TEST_DIR ?? '/tmp/keyport-test';
const keep = process.env.KEYPORT_TEST_KEEP_SERVICES === '1';
const ci = !!process.env.CI;

interface ServiceDef {
  name: string;
  /** Starts the service; `started` holds the services started before it. */
  up: (started: Record<string, ServiceInfo>) => ServiceInfo;
  down: () => void;
}

function sh(script: string, args: string[], env: Record<string, string>): { ok: boolean; out: string } {
  const r = spawnSync(path.join(root, 'scripts', script), args, {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

const keystoneTls = path.join(workDir, 'keystone-tls');
const swiftEnv = {
  SW_DIR: path.join(workDir, 'swift'),
  SW_PORT: process.env.KEYPORT_TEST_SWIFT_PORT ?? '18080',
  SW_OBJ_PORT: process.env.KEYPORT_TEST_SWIFT_OBJECT_PORT ?? '16200',
  SW_CONT_PORT: process.env.KEYPORT_TEST_SWIFT_CONTAINER_PORT ?? '16201',
  SW_ACCT_PORT: process.env.KEYPORT_TEST_SWIFT_ACCOUNT_PORT ?? '16202',
  SW_MEMCACHE_PORT: process.env.KEYPORT_TEST_MEMCACHE_PORT ?? '11311',
  SW_KS_USER: 'swift',
  SW_KS_PASSWORD: 'swiftpass',
  SW_KS_PROJECT: 'service',
  SW_KS_PREFIX: 'KEY_',
  // Short, so a token revoked in Keystone stops working within seconds (token renewal tests).
  SW_KS_TOKEN_CACHE_TIME: '2',
  // Short-lived tokens, so the suites exercise re-login: a tempauth token expires during
  // every large upload, a Keystone token a few times per run.
  SW_TEMPAUTH_TOKEN_LIFE: '20',
};
const swiftUrl = `http://127.0.0.1:${swiftEnv.SW_PORT}`;

const keystoneEnv = {
  KS_DIR: path.join(workDir, 'keystone'),
  KS_PORT: process.env.KEYPORT_TEST_KEYSTONE_PORT ?? '15000',
  KS_SWIFT_URL: swiftUrl,
  KS_SWIFT_PASSWORD: swiftEnv.SW_KS_PASSWORD,
  KS_ADMIN_PASSWORD: 'adminpass',
  KS_SERVICE_PASSWORD: 'keyportpass',
  KS_LOCKOUT_ATTEMPTS: '5',
  KS_TOKEN_EXPIRATION: '120',
  KS_LOCKOUT_DURATION: '60',
  // The same Keystone also answers HTTPS, for the CA-bundle and TLS-verification tests.
  KS_HTTPS_PORT: process.env.KEYPORT_TEST_KEYSTONE_HTTPS_PORT ?? '15443',
  KS_TLS_CERT: path.join(keystoneTls, 'server.crt'),
  KS_TLS_KEY: path.join(keystoneTls, 'server.key'),
};

const SERVICES: ServiceDef[] = [
  {
    name: 'keystone',
    up() {
      ensureCertificates({ certsDir: keystoneTls, names: [], tokenKeyType: 'ec' });
      const r = sh('keystone.sh', ['up'], keystoneEnv);
      if (!r.ok) return { available: false, reason: `scripts/keystone.sh up failed:\n${r.out}` };
      const fixtures = JSON.parse(fs.readFileSync(path.join(keystoneEnv.KS_DIR, 'fixtures.json'), 'utf8'));
      return {
        available: true,
        url: fixtures.url,
        httpsUrl: `https://127.0.0.1:${keystoneEnv.KS_HTTPS_PORT}/v3`,
        httpsCa: path.join(keystoneTls, 'ca.crt'),
        adminPassword: keystoneEnv.KS_ADMIN_PASSWORD,
        servicePassword: keystoneEnv.KS_SERVICE_PASSWORD,
        lockoutAttempts: Number(keystoneEnv.KS_LOCKOUT_ATTEMPTS),
        dir: keystoneEnv.KS_DIR,
        fixtures,
      };
    },
    down() {
      sh('keystone.sh', ['down'], keystoneEnv);
    },
  },
  {
    name: 'swift',
    up(started) {
      // keystoneauth and s3token need Keystone; without it Swift still runs with tempauth.
      const ks = started.keystone?.available ? `http://127.0.0.1:${keystoneEnv.KS_PORT}` : '';
      const env = { ...swiftEnv, SW_KEYSTONE_URL: ks };
      const r = sh('swift.sh', ['up'], env);
      if (!r.ok) return { available: false, reason: `scripts/swift.sh up failed:\n${r.out}` };
      return {
        available: true,
        url: swiftUrl,
        authV1: `${swiftUrl}/auth/v1.0`,
        tempauth: { user: 'test:tester', key: 'testing', account: 'AUTH_test' },
        keystone: ks ? { url: `${ks}/v3`, prefix: swiftEnv.SW_KS_PREFIX, tokenCacheTime: Number(swiftEnv.SW_KS_TOKEN_CACHE_TIME) } : null,
        memcachePort: Number(swiftEnv.SW_MEMCACHE_PORT),
        env,
      };
    },
    down() {
      sh('swift.sh', ['down'], swiftEnv);
    },
  },
  {
    name: 'dockerd',
    up() {
      const dir = path.join(workDir, 'docker');
      const r = sh('dockerd.sh', ['up'], { DOCKERD_DIR: dir });
      if (!r.ok) return { available: false, reason: `scripts/dockerd.sh up failed:\n${r.out}` };
      return { available: true, socket: path.join(dir, 'docker.sock'), dir };
    },
    down() {
      sh('dockerd.sh', ['down'], { DOCKERD_DIR: path.join(workDir, 'docker') });
    },
  },
];

function findTests(args: string[]): string[] {
  const roots = args.length > 0 ? args : [path.join(root, 'test')];
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p).sort()) if (e !== 'helpers' && e !== 'fixtures') walk(path.join(p, e));
    } else if (p.endsWith('.test.ts')) out.push(p);
  };
  for (const r of roots) walk(path.resolve(r));
  return out;
}

/**
 * Builds dist/ when a source is newer (scripts/test.sh has built already): test files run
 * dist/cli.js in parallel, so it is built once here, before any of them starts, and never
 * while they run.
 */
function ensureBuilt(): boolean {
  const cli = path.join(root, 'dist', 'cli.js');
  const built = fs.existsSync(cli) ? fs.statSync(cli).mtimeMs : 0;
  const stale = (p: string): boolean => {
    const st = fs.statSync(p);
    return st.isDirectory() ? fs.readdirSync(p).some((e) => stale(path.join(p, e))) : st.mtimeMs > built;
  };
  if (!stale(path.join(root, 'src')) && !stale(path.join(root, 'tsconfig.json'))) return true;
  console.log('[test] dist/ is older than src/: building');
  return spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' }).status === 0;
}

/**
 * One run per work directory: a second run there would replace the services file and
 * stop the services the first run's test files are using, and its failures would look
 * like the product's. A lock file holds the owner's pid; a dead owner's lock is taken.
 */
function claimWorkDir(): boolean {
  const lock = path.join(workDir, 'run.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      process.on('exit', () => fs.rmSync(lock, { force: true }));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number(fs.readFileSync(lock, 'utf8'));
    let alive = false;
    try {
      process.kill(owner, 0);
      alive = owner > 0;
    } catch {
      alive = false;
    }
    if (alive) {
      console.error(`[test] another test run (pid ${owner}) is using ${workDir}; wait for it, or give this one its own KEYPORT_TEST_DIR (and ports)`);
      return false;
    }
    fs.rmSync(lock, { force: true });
  }
  console.error(`[test] could not take ${path.join(workDir, 'run.lock')}`);
  return false;
}

async function main(): Promise<number> {
  if (!ensureBuilt()) {
    console.error('[test] the build failed');
    return 1;
  }
  fs.mkdirSync(workDir, { recursive: true });
  if (!claimWorkDir()) return 1;
  const files = findTests(process.argv.slice(2));
  if (files.length === 0) {
    console.error('no test files found');
    return 1;
  }
  const wanted = new Set(
    (process.env.KEYPORT_TEST_SERVICES_WANTED ?? SERVICES.map((s) => s.name).join(',')).split(',').filter(Boolean),
  );
  const services: ServicesFile = { workDir, ci, services: {} };
  let failed = false;
  for (const s of SERVICES) {
    if (!wanted.has(s.name)) continue;
    const t0 = Date.now();
    process.stdout.write(`[test] starting ${s.name} ... `);
    const info = s.up(services.services);
    services.services[s.name] = info;
    console.log(info.available ? `ready in ${((Date.now() - t0) / 1000).toFixed(1)} s` : `UNAVAILABLE\n${info.reason}`);
    if (!info.available && ci) failed = true;
  }
  const servicesFile = path.join(workDir, 'services.json');
  fs.writeFileSync(servicesFile, JSON.stringify(services, null, 2));

  let code = 1;
  if (failed) {
    console.error('[test] a required service did not start and CI is set: failing the run');
  } else {
    const concurrency = process.env.KEYPORT_TEST_CONCURRENCY ?? '2';
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
      {
        cwd: root,
        stdio: 'inherit',
        env: { ...process.env, KEYPORT_TEST_SERVICES: servicesFile, NODE_NO_WARNINGS: '1' },
      },
    );
    code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  }
  if (!keep) for (const s of [...SERVICES].reverse()) if (services.services[s.name]?.available) s.down();
  return code;
}

main().then(
  (c) => process.exit(c),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
