/**
 * Registry benchmark: Keyport and Docker Distribution 2.8 (Debian's docker-registry)
 * side by side on this machine, both with filesystem storage, TLS and token auth
 * (Distribution trusts Keyport's token certificate, so one minted token serves both).
 *
 *   npm run bench:registry
 * Then the same transfers with both on one real Swift (BENCH_SWIFT=0 skips that).
 * Env: BENCH_MIB (default 256), BENCH_RUNS (default 3, median reported),
 *      BENCH_SECONDS (wrk duration, default 10), BENCH_DIR (default /tmp/keyport-bench).
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

interface Blob {
  file: string;
  digest: string;
  size: number;
  /** 16 MiB pieces of the blob as files, for curl's PATCH uploads. */
  parts: string[];
}

/** A blob of random bytes in a file (kept between runs), so no side can compress or dedupe. */
async function makeBlob(tag: string): Promise<Blob> {
  const file = path.join(benchDir, `blob-${tag}-${MIB}.bin`);
  if (!fs.existsSync(file) || fs.statSync(file).size !== MIB * 1024 * 1024) {
    const fd = fs.openSync(file, 'w');
    for (let i = 0; i < MIB; i++) fs.writeSync(fd, crypto.randomBytes(1024 * 1024));
    fs.closeSync(fd);
  }
  const hash = crypto.createHash('sha256');
  for await (const c of fs.createReadStream(file)) hash.update(c as Buffer);
  const size = fs.statSync(file).size;
  const parts: string[] = [];
  for (let off = 0, i = 0; off < size; off += CHUNK, i++) {
    const p = `${file}.part${i}`;
    const len = Math.min(CHUNK, size - off);
    if (!fs.existsSync(p) || fs.statSync(p).size !== len) {
      const fd = fs.openSync(file, 'r');
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, off);
      fs.closeSync(fd);
      fs.writeFileSync(p, buf);
    }
    parts.push(p);
  }
  return { file, digest: `sha256:${hash.digest('hex')}`, size, parts };
}
const blob = await makeBlob('fs');
const size = blob.size;

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

function pushMonolithic(t: Target, repo: string, token: string, b: Blob = blob): number {
  const start = curl('POST', `${t.url}/v2/${repo}/blobs/uploads/`, token, { headers: { 'Content-Length': 0 } });
  if (start.status !== 202) throw new Error(`${t.name} POST ${start.status}`);
  const loc = new URL(start.location, t.url);
  loc.searchParams.set('digest', b.digest);
  const put = curl('PUT', loc.toString(), token, { upload: b.file, headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`${t.name} PUT ${put.status}`);
  return start.ms + put.ms;
}

function pushChunked(t: Target, repo: string, token: string, b: Blob = blob): number {
  const start = curl('POST', `${t.url}/v2/${repo}/blobs/uploads/`, token, { headers: { 'Content-Length': 0 } });
  let ms = start.ms;
  let loc = new URL(start.location, t.url);
  let off = 0;
  for (const part of b.parts) {
    const len = fs.statSync(part).size;
    const r = curl('PATCH', loc.toString(), token, { upload: part, headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${off}-${off + len - 1}` } });
    if (r.status !== 202) throw new Error(`${t.name} PATCH ${r.status}`);
    ms += r.ms;
    off += len;
    loc = new URL(r.location, t.url);
  }
  loc.searchParams.set('digest', b.digest);
  const put = curl('PUT', loc.toString(), token, { headers: { 'Content-Length': 0 } });
  if (put.status !== 201) throw new Error(`${t.name} PUT ${put.status}`);
  return ms + put.ms;
}

function pull(t: Target, repo: string, token: string, b: Blob = blob): number {
  const r = curl('GET', `${t.url}/v2/${repo}/blobs/${b.digest}`, token);
  if (r.status !== 200 || r.bytes !== b.size) throw new Error(`${t.name} GET ${r.status} ${r.bytes}`);
  return r.ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mbps = (ms: number) => size / 1e6 / (ms / 1000);

const results: Record<string, Record<string, number>> = {};
let run = 0;
for (const t of targets) {
  const r: Record<string, number> = {};
  const mono: number[] = [];
  const chunked: number[] = [];
  const pulls: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // A fresh repository and no existing blob each time: nothing is deduplicated.
    const repoA = `bench/mono${run}`;
    const repoB = `bench/chunk${run}`;
    run++;
    const token = await minter.all(repoA, repoB);
    for (const dataDir of [path.join(keyport.dir, 'data'), path.join(dist.dir, 'data')]) {
      fs.rmSync(path.join(dataDir, 'docker/registry/v2/blobs'), { recursive: true, force: true });
    }
    mono.push(pushMonolithic(t, repoA, token));
    fs.rmSync(path.join(t.name === 'Keyport' ? path.join(keyport.dir, 'data') : path.join(dist.dir, 'data'), 'docker/registry/v2/blobs'), { recursive: true, force: true });
    chunked.push(pushChunked(t, repoB, token));
    pulls.push(pull(t, repoB, token));
  }
  r.mono = mbps(median(mono));
  r.chunked = mbps(median(chunked));
  r.pull = mbps(median(pulls));

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

// Swift: Keyport's swift driver against Distribution's, on one real single-node Swift
// (Debian's packages, tempauth / v1 auth), both with 20 MiB segments (Distribution's
// default chunksize). BENCH_SWIFT=0 skips this part.
if (process.env.BENCH_SWIFT !== '0') {
  const swiftEnv = {
    SW_DIR: path.join(benchDir, 'swift'),
    SW_PORT: process.env.BENCH_SWIFT_PORT ?? '28080',
    SW_OBJ_PORT: '26200',
    SW_CONT_PORT: '26201',
    SW_ACCT_PORT: '26202',
    SW_MEMCACHE_PORT: '21311',
    SW_KEYSTONE_URL: '',
  };
  const swiftSh = (cmd: string) => spawnSync(path.join(import.meta.dirname, '..', 'scripts', 'swift.sh'), [cmd], { env: { ...process.env, ...swiftEnv }, encoding: 'utf8' });
  const up = swiftSh('up');
  if (up.status !== 0) throw new Error(`scripts/swift.sh up failed:\n${up.stdout}${up.stderr}`);
  const authUrl = `http://127.0.0.1:${swiftEnv.SW_PORT}/auth/v1.0`;
  const segment = 20 * 1024 * 1024;
  const suffix = crypto.randomBytes(4).toString('hex');
  const swiftResults: Record<string, Record<string, number>> = {};
  try {
    const ksw = await new KeyportProcess({
      command: 'registry',
      env: {
        KEYPORT_LOG_LEVEL: 'info',
        KEYPORT_CERTS_DIR: keyport.certsDir,
        KEYPORT_STORAGE_DRIVER: 'swift',
        KEYPORT_SWIFT_AUTH_URL: authUrl,
        KEYPORT_SWIFT_USERNAME: 'test:tester',
        KEYPORT_SWIFT_PASSWORD: 'testing',
        KEYPORT_SWIFT_CONTAINER: `keyport-${suffix}`,
        KEYPORT_SWIFT_CHUNK_SIZE: String(segment),
      },
    }).start();
    const dsw = await new DistributionProcess({
      ...trustingKeyport(keyport.certsDir, keyport.tokenUrl, 'keyport-registry'),
      storage: [
        '  swift:',
        `    authurl: ${authUrl}`,
        '    authversion: 1',
        '    username: test:tester',
        '    password: testing',
        `    container: distribution-${suffix}`,
        `    chunksize: ${segment}`,
        // Both proxy the bytes (Distribution would otherwise redirect pulls to Swift).
        '  redirect:',
        '    disable: true',
      ].join('\n'),
    }).start();
    try {
      const swiftTargets: Target[] = [
        { name: 'Keyport', url: ksw.registryUrl, pid: ksw.pid! },
        { name: 'Distribution 2.8', url: dsw.url, pid: dsw.pid! },
      ];
      for (const t of swiftTargets) {
        const mono: number[] = [];
        const chunked: number[] = [];
        const pulls: number[] = [];
        for (let i = 0; i < RUNS; i++) {
          // Each side is in its own container, and each push gets a blob that side has
          // never seen: nothing is deduplicated.
          const a = await makeBlob(`swift${i}a`);
          const b = await makeBlob(`swift${i}b`);
          const repoA = `bench/swift-mono${i}`;
          const repoB = `bench/swift-chunk${i}`;
          const token = await minter.all(repoA, repoB);
          mono.push(pushMonolithic(t, repoA, token, a));
          chunked.push(pushChunked(t, repoB, token, b));
          pulls.push(pull(t, repoB, token, b));
        }
        swiftResults[t.name] = { mono: mbps(median(mono)), chunked: mbps(median(chunked)), pull: mbps(median(pulls)), peak: memoryMiB(t.pid).peak };
      }
    } finally {
      await dsw.stop();
      await ksw.stop();
    }
  } finally {
    swiftSh('down');
  }
  const ks = swiftResults.Keyport!;
  const ds = swiftResults['Distribution 2.8']!;
  const swiftRows: Array<[string, string, number, number]> = [
    [`Swift: push ${MIB} MiB, monolithic`, 'MB/s', ks.mono!, ds.mono!],
    [`Swift: push ${MIB} MiB, 16 MiB PATCH chunks`, 'MB/s', ks.chunked!, ds.chunked!],
    [`Swift: pull ${MIB} MiB`, 'MB/s', ks.pull!, ds.pull!],
    ['Swift: peak RSS (lower is better)', 'MiB', ks.peak!, ds.peak!],
  ];
  console.log(`\nOn one single-node Swift (v1 auth, ${segment / 1024 / 1024} MiB segments), median of ${RUNS} runs:\n`);
  console.log(
    table(
      ['case', 'unit', 'Keyport', 'Distribution', 'Keyport / Distribution'],
      swiftRows.map(([c, u, a, b]) => [c, u, a, b, u === 'MiB' ? `${fmt(a / b)} (Keyport uses more)` : fmt(a / b)]),
    ),
  );
}
