/**
 * Registry benchmark: Keyport and Docker Distribution 2.8 (Debian's docker-registry)
 * side by side on this machine, both with filesystem storage, TLS and token auth
 * (Distribution trusts Keyport's token certificate, so one minted token serves both).
 *
 *   npm run bench:registry
 * Env: BENCH_MIB (default 256), BENCH_RUNS (default 3, median reported),
 *      BENCH_SECONDS (wrk duration, default 10), BENCH_DIR (default /tmp/keyport-bench).
 *
 * Then the pushes and pulls again with both on OpenStack Swift (Keyport's swift driver,
 * Distribution's swift driver, 20 MiB segments on both), against a single-node Swift the
 * script runs itself with scripts/swift.sh (state in BENCH_DIR/swift-registry, stopped at
 * the end). Its ports differ from the test suite's, so a test run can go on meanwhile.
 * Env: BENCH_SWIFT=0 skips this part; BENCH_SWIFT_PORT (proxy, default 28080),
 *      BENCH_SWIFT_SERVER_PORT (object server; container and account take the next two,
 *      default 26200), BENCH_SWIFT_MEMCACHE_PORT (default 21311).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

const benchDir = process.env.BENCH_DIR ?? '/tmp/keyport-bench';
process.env.KEYPORT_TEST_DIR = benchDir;
const MIB = Number(process.env.BENCH_MIB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CHUNK = 16 * 1024 * 1024;

const { KeyportProcess } = await import('../test/helpers/keyport.js');
const { DistributionProcess, trustingKeyport } = await import('../test/helpers/distribution.js');
const { TokenMinter } = await import('../test/helpers/tokens.js');
const { wrk, abHead, requireTool, table, memoryMiB, fmt } = await import('./lib.js');

requireTool('wrk', 'wrk');
requireTool('ab', 'apache2-utils');
requireTool('curl', 'curl');
if (!DistributionProcess.available()) throw new Error('docker-registry is not installed (scripts/deps.sh)');
fs.mkdirSync(benchDir, { recursive: true });

// The blob: random bytes in a file, so neither side can compress or dedupe.
const blobFile = path.join(benchDir, `blob-${MIB}.bin`);
if (!fs.existsSync(blobFile) || fs.statSync(blobFile).size !== MIB * 1024 * 1024) {
  const fd = fs.openSync(blobFile, 'w');
  for (let i = 0; i < MIB; i++) fs.writeSync(fd, crypto.randomBytes(1024 * 1024));
  fs.closeSync(fd);
}
const hash = crypto.createHash('sha256');
for await (const c of fs.createReadStream(blobFile)) hash.update(c as Buffer);
const digest = `sha256:${hash.digest('hex')}`;
const size = fs.statSync(blobFile).size;

const keyport = await new KeyportProcess({ command: 'registry', env: { KEYPORT_LOG_LEVEL: 'info' } }).start();
const ca = keyport.ca;
const minter = new TokenMinter(keyport.certsDir);
const dist = await new DistributionProcess(trustingKeyport(keyport.certsDir, keyport.tokenUrl, 'keyport-registry')).start();
const distPid = dist.pid!;

interface Target {
  name: string;
  url: string;
  pid: number;
}
const targets: Target[] = [
  { name: 'Keyport', url: keyport.registryUrl, pid: keyport.pid! },
  { name: 'Distribution 2.8', url: dist.url, pid: distPid },
];

const agent = new https.Agent({ keepAlive: true, ca, maxSockets: 16 });

function call(method: string, url: string, token: string, body?: { file: string; start?: number; end?: number } | Buffer, headers: Record<string, string | number> = {}): Promise<{ status: number; headers: Record<string, unknown>; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, agent, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!body) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else fs.createReadStream(body.file, { start: body.start, end: body.end, highWaterMark: 1024 * 1024 }).pipe(req);
  });
}

/**
 * Transfers run through curl, a C client, so that the client's own CPU cost stays small
 * and equal for both servers on this 2-core machine. Returns curl's time in ms.
 */
function curl(method: string, url: string, token: string, opts: { upload?: string; headers?: Record<string, string | number> } = {}): { status: number; ms: number; location: string; bytes: number } {
  const args = ['-s', '-S', '--cacert', path.join(keyport.certsDir, 'ca.crt'), '-X', method, '-H', `Authorization: Bearer ${token}`, '-o', '/dev/null', '-D', '-',
    '-w', '\n%{http_code} %{time_total} %{size_download}'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.upload) args.push('-T', opts.upload);
  args.push(url);
  const r = spawnSync('curl', args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`curl ${method} ${url}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const [code, secs, bytes] = lines[lines.length - 1]!.split(' ');
  const location = /^location:\s*(\S+)/im.exec(r.stdout)?.[1] ?? '';
  return { status: Number(code), ms: Number(secs) * 1000, location, bytes: Number(bytes) };
}

// 16 MiB pieces of the blob as files, for curl's PATCH uploads.
const parts: string[] = [];
for (let off = 0, i = 0; off < size; off += CHUNK, i++) {
  const p = path.join(benchDir, `part-${MIB}-${i}.bin`);
  const len = Math.min(CHUNK, size - off);
  if (!fs.existsSync(p) || fs.statSync(p).size !== len) {
    const fd = fs.openSync(blobFile, 'r');
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, off);
    fs.closeSync(fd);
    fs.writeFileSync(p, buf);
  }
  parts.push(p);
}

function pushMonolithic(t: Target, repo: string, token: string): number {
  const start = curl('POST', `${t.url}/v2/${repo}/blobs/uploads/`, token, { headers: { 'Content-Length': 0 } });
  if (start.status !== 202) throw new Error(`${t.name} POST ${start.status}`);
  const loc = new URL(start.location, t.url);
  loc.searchParams.set('digest', digest);
  const put = curl('PUT', loc.toString(), token, { upload: blobFile, headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`${t.name} PUT ${put.status}`);
  return start.ms + put.ms;
}

function pushChunked(t: Target, repo: string, token: string): number {
  const start = curl('POST', `${t.url}/v2/${repo}/blobs/uploads/`, token, { headers: { 'Content-Length': 0 } });
  let ms = start.ms;
  let loc = new URL(start.location, t.url);
  let off = 0;
  for (const part of parts) {
    const len = fs.statSync(part).size;
    const r = curl('PATCH', loc.toString(), token, { upload: part, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + len - 1}` } });
    if (r.status !== 202) throw new Error(`${t.name} PATCH ${r.status}`);
    ms += r.ms;
    off += len;
    loc = new URL(r.location, t.url);
  }
  loc.searchParams.set('digest', digest);
  const put = curl('PUT', loc.toString(), token, { headers: { 'Content-Length': 0 } });
  if (put.status !== 201) throw new Error(`${t.name} PUT ${put.status}`);
  return ms + put.ms;
}

function pull(t: Target, repo: string, token: string): number {
  const r = curl('GET', `${t.url}/v2/${repo}/blobs/${digest}`, token);
  if (r.status !== 200 || r.bytes !== size) throw new Error(`${t.name} GET ${r.status} ${r.bytes}`);
  return r.ms;
}

/** The digest of a blob as pulled (a check, not timed). */
function pullDigest(t: Target, repo: string, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${t.url}/v2/${repo}/blobs/${digest}`, { ca, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`${t.name} GET ${res.statusCode}`));
      const h = crypto.createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c));
      res.on('end', () => resolve(`sha256:${h.digest('hex')}`));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (ms: number) => size / 1e6 / (ms / 1000);

interface Transfers {
  /** Medians in MB/s. */
  mono: number;
  chunked: number;
  pull: number;
  /** The repository the last chunked push went to (the blob is still there). */
  repo: string;
}

let run = 0;
/**
 * BENCH_RUNS rounds of monolithic push, chunked push and pull against every target, the
 * targets' order alternating from round to round so that neither side always goes first
 * (after the other's writeback, or on a cooler machine). A fresh repository each time,
 * and a target's `clear` forgets every stored blob before each push, so nothing is
 * deduplicated. Medians per target, by name.
 */
async function transfers(sides: Array<{ t: Target; clear: () => void | Promise<void> }>, label: string): Promise<Record<string, Transfers>> {
  const samples = sides.map(() => ({ mono: [] as number[], chunked: [] as number[], pulls: [] as number[], repo: '' }));
  for (let i = 0; i < RUNS; i++) {
    const order = [...sides.keys()];
    if (i % 2) order.reverse();
    for (const k of order) {
      const { t, clear } = sides[k]!;
      const m = samples[k]!;
      const repoA = `bench/mono${run}`;
      const repoB = `bench/chunk${run}`;
      run++;
      const token = await minter.all(repoA, repoB);
      await clear();
      m.mono.push(pushMonolithic(t, repoA, token));
      await clear();
      m.chunked.push(pushChunked(t, repoB, token));
      m.pulls.push(pull(t, repoB, token));
      m.repo = repoB;
      // Progress, and the spread behind the medians (stderr: the tables stay on stdout).
      console.error(`${label} ${t.name}, run ${i + 1}/${RUNS}: push ${fmt(mbps(m.mono[i]!))}, chunked push ${fmt(mbps(m.chunked[i]!))}, pull ${fmt(mbps(m.pulls[i]!))} MB/s`);
    }
  }
  const out: Record<string, Transfers> = {};
  sides.forEach(({ t }, k) => {
    const m = samples[k]!;
    out[t.name] = { mono: mbps(median(m.mono)), chunked: mbps(median(m.chunked)), pull: mbps(median(m.pulls)), repo: m.repo };
  });
  return out;
}

const results: Record<string, Record<string, number>> = {};
const fsTransfers = await transfers(
  targets.map((t) => {
    const dataDir = t.name === 'Keyport' ? path.join(keyport.dir, 'data') : path.join(dist.dir, 'data');
    return { t, clear: () => fs.rmSync(path.join(dataDir, 'docker/registry/v2/blobs'), { recursive: true, force: true }) };
  }),
  'filesystem',
);
for (const t of targets) {
  const { mono, chunked, pull: pulled } = fsTransfers[t.name]!;
  const r: Record<string, number> = { mono, chunked, pull: pulled };

  // A small image to HEAD and GET.
  const repo = 'bench/small';
  const token = await minter.all(repo);
  const layer = crypto.randomBytes(4096);
  const layerDigest = `sha256:${crypto.createHash('sha256').update(layer).digest('hex')}`;
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const configDigest = `sha256:${crypto.createHash('sha256').update(config).digest('hex')}`;
  for (const [d, b] of [[layerDigest, layer], [configDigest, config]] as const) {
    const s = await call('POST', `${t.url}/v2/${repo}/blobs/uploads/`, token, undefined, { 'content-length': 0 });
    const loc = new URL(String(s.headers.location), t.url);
    loc.searchParams.set('digest', d);
    await call('PUT', loc.toString(), token, b, { 'content-type': 'application/octet-stream', 'content-length': b.length });
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layerDigest, size: layer.length }],
  }));
  const mp = await call('PUT', `${t.url}/v2/${repo}/manifests/latest`, token, manifest, { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' });
  if (mp.status !== 201) throw new Error(`${t.name} manifest PUT ${mp.status}`);
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/vnd.docker.distribution.manifest.v2+json' };
  const head = abHead(`${t.url}/v2/${repo}/blobs/${layerDigest}`, { connections: 8, seconds: SECONDS, headers });
  const get = wrk(`${t.url}/v2/${repo}/manifests/latest`, { connections: 8, seconds: SECONDS, headers });
  r.head = head.rps;
  r.headErrors = head.errors;
  r.get = get.rps;
  r.getErrors = get.errors;
  r.peak = memoryMiB(t.pid).peak;
  results[t.name] = r;
}

await dist.stop();
await keyport.stop();
agent.destroy();

const k = results.Keyport!;
const d = results['Distribution 2.8']!;
const rows: Array<[string, string, number, number]> = [
  [`push ${MIB} MiB, monolithic (POST + PUT)`, 'MB/s', k.mono!, d.mono!],
  [`push ${MIB} MiB, 16 MiB PATCH chunks`, 'MB/s', k.chunked!, d.chunked!],
  [`pull ${MIB} MiB`, 'MB/s', k.pull!, d.pull!],
  ['HEAD blob, 8 keep-alive clients', 'req/s', k.head!, d.head!],
  ['GET manifest, 8 keep-alive clients', 'req/s', k.get!, d.get!],
  ['peak RSS (lower is better)', 'MiB', k.peak!, d.peak!],
];
console.log(`\nRegistry: Keyport vs Docker Distribution 2.8 on this machine, median of ${RUNS} runs, ${new Date().toISOString()}`);
console.log('Both: filesystem storage, TLS, token auth. Keyport fsyncs what it stores; Distribution does not.\n');
console.log(
  table(
    ['case', 'unit', 'Keyport', 'Distribution', 'Keyport / Distribution'],
    rows.map(([c, u, a, b]) => [c, u, a, b, u === 'MiB' ? `${fmt(a / b)} (Keyport uses more)` : fmt(a / b)]),
  ),
);
if (k.headErrors || k.getErrors || d.headErrors || d.getErrors) console.log(`\nnon-2xx/socket errors: Keyport ${k.headErrors}/${k.getErrors}, Distribution ${d.headErrors}/${d.getErrors}`);

// Swift: the same transfers with both registries on one real single-node Swift, which this
// script starts on ports of its own (the test suite's Swift uses 18080, 16200-16202, 11311).
if (process.env.BENCH_SWIFT !== '0') {
  const { SwiftNode, distributionSwiftStorage } = await import('./swift.js');
  // Distribution's default segment size; Keyport's is the same, set explicitly on both.
  const SEGMENT = 20 * 1024 * 1024;
  const swift = SwiftNode.onBenchPorts(path.join(benchDir, 'swift-registry'));
  const suffix = crypto.randomBytes(4).toString('hex');
  const containers = { Keyport: `keyport-bench-${suffix}`, 'Distribution 2.8': `distribution-bench-${suffix}` };
  let kSwift: InstanceType<typeof KeyportProcess> | undefined;
  let dSwift: InstanceType<typeof DistributionProcess> | undefined;
  // Swift's servers run detached: an interrupted run must still stop them.
  const interrupted = (sig: NodeJS.Signals) => {
    for (const pid of [kSwift?.pid, dSwift?.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    swift.down();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const swiftResults: Record<string, Record<string, number>> = {};
  const started = Date.now();
  try {
    swift.up();
    // What an interrupted run left behind.
    for (const c of await swift.containers()) if (/^(keyport|distribution)-bench-/.test(c)) await swift.clear(c, { container: true });
    kSwift = new KeyportProcess({
      command: 'registry',
      env: {
        KEYPORT_LOG_LEVEL: 'info',
        // The filesystem Keyport's certificates: same CA for curl, same token key for the minter.
        KEYPORT_CERTS_DIR: keyport.certsDir,
        KEYPORT_STORAGE_DRIVER: 'swift',
        KEYPORT_SWIFT_AUTH_URL: swift.authUrl,
        KEYPORT_SWIFT_USERNAME: swift.user,
        KEYPORT_SWIFT_PASSWORD: swift.key,
        KEYPORT_SWIFT_CONTAINER: containers.Keyport,
        KEYPORT_SWIFT_CHUNK_SIZE: String(SEGMENT),
      },
    });
    await kSwift.start();
    dSwift = new DistributionProcess({
      ...trustingKeyport(keyport.certsDir, keyport.tokenUrl, 'keyport-registry'),
      storage: distributionSwiftStorage({
        authUrl: swift.authUrl,
        username: swift.user,
        password: swift.key,
        container: containers['Distribution 2.8'],
        chunkSize: SEGMENT,
      }),
    });
    await dSwift.start();
    const swiftTargets: Target[] = [
      { name: 'Keyport', url: kSwift.registryUrl, pid: kSwift.pid! },
      { name: 'Distribution 2.8', url: dSwift.url, pid: dSwift.pid! },
    ];
    // Both drivers keep a driver path P as the object files/P.
    const hex = digest.slice('sha256:'.length);
    const dataObject = `files/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
    // One untimed push first: Keyport logs in to Swift on its first request (Distribution
    // at start), and the fresh Swift warms up.
    for (const t of swiftTargets) pushMonolithic(t, 'bench/warmup', await minter.all('bench/warmup'));
    const swiftTransfers = await transfers(
      swiftTargets.map((t) => ({ t, clear: () => swift.clear(containers[t.name as keyof typeof containers]) })),
      'swift',
    );
    for (const t of swiftTargets) {
      const container = containers[t.name as keyof typeof containers];
      const x = swiftTransfers[t.name]!;
      // The blob really is in Swift, whole, and reads back with its digest.
      const stored = await swift.size(container, dataObject);
      if (stored !== size) throw new Error(`${t.name}: Swift holds ${container}/${dataObject} with ${stored} bytes, expected ${size}`);
      const back = await pullDigest(t, x.repo, await minter.all(x.repo));
      if (back !== digest) throw new Error(`${t.name}: pulled ${back}, expected ${digest}`);
      swiftResults[t.name] = { mono: x.mono, chunked: x.chunked, pull: x.pull, peak: memoryMiB(t.pid).peak };
    }
  } finally {
    await kSwift?.stop();
    await dSwift?.stop();
    for (const c of Object.values(containers)) await swift.clear(c, { container: true }).catch(() => undefined);
    swift.down();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
  const ks = swiftResults.Keyport!;
  const ds = swiftResults['Distribution 2.8']!;
  const swiftRows: Array<[string, string, number, number]> = [
    [`swift push ${MIB} MiB, monolithic (POST + PUT)`, 'MB/s', ks.mono!, ds.mono!],
    [`swift push ${MIB} MiB, 16 MiB PATCH chunks`, 'MB/s', ks.chunked!, ds.chunked!],
    [`swift pull ${MIB} MiB`, 'MB/s', ks.pull!, ds.pull!],
    ['peak RSS (lower is better)', 'MiB', ks.peak!, ds.peak!],
  ];
  console.log(`\nRegistry on Swift: Keyport vs Docker Distribution 2.8, median of ${RUNS} runs, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`Both: one single-node Swift on this machine (tempauth, v1 auth), ${SEGMENT / 1024 / 1024} MiB segments (Keyport: static large objects, Distribution: dynamic),`);
  console.log('TLS, token auth, pulls proxied by the registry (Distribution\'s redirect to a TempURL disabled).\n');
  console.log(
    table(
      ['case', 'unit', 'Keyport', 'Distribution', 'Keyport / Distribution'],
      swiftRows.map(([c, u, a, b]) => [c, u, a, b, u === 'MiB' ? `${fmt(a / b)} (Keyport uses ${a > b ? 'more' : 'less'})` : fmt(a / b)]),
    ),
  );
  // The pulled blob is the chunked push's: Distribution writes a segment per PATCH (16 MiB < SEGMENT).
  if (parts.length > 10) {
    console.log(
      `\nDistribution keeps blobs as dynamic large objects (the pulled one: ${parts.length} segments, one per PATCH), and Swift's dlo\n` +
        'middleware by default (rate_limit_after_segment = 10, rate_limit_segments_per_sec = 1) serves one segment a second\n' +
        "after the tenth. Keyport's static large objects are only limited for segments under 1 MiB (slo rate_limit_under_size).",
    );
  }
}
