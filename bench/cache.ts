/**
 * Pull-through cache benchmark: a 256 MiB layer pulled from Docker Distribution 2.8
 * (Debian's docker-registry, TLS, filesystem storage) directly, through Keyport on a
 * miss (Keyport streams it from the upstream to the client while storing it), and
 * through Keyport once cached, all in the same run on the same machine. curl is the
 * client, so the client's own CPU cost stays small and equal.
 *
 *   npm run bench:cache
 * Env: BENCH_MIB (default 256), BENCH_RUNS (default 3, median reported),
 *      BENCH_DIR (default /tmp/keyport-bench).
 *
 * Goals: first pull at most 1.2 times the direct pull's time, cached pull no slower
 * than the direct one.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const benchDir = process.env.BENCH_DIR ?? '/tmp/keyport-bench';
process.env.KEYPORT_TEST_DIR = benchDir;
const MIB = Number(process.env.BENCH_MIB ?? 256);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const { KeyportProcess, tempDir } = await import('../test/helpers/keyport.js');
const { DistributionProcess, anonymousTls } = await import('../test/helpers/distribution.js');
const { TokenMinter } = await import('../test/helpers/tokens.js');
const { ensureCertificates } = await import('../src/tls/certificates.js');
const { requireTool, table, fmt } = await import('./lib.js');

requireTool('curl', 'curl');
if (!DistributionProcess.available()) throw new Error('docker-registry is not installed (scripts/deps.sh)');
fs.mkdirSync(benchDir, { recursive: true });

// The layer: random bytes in a file, so nothing can compress or dedupe it.
const blobFile = path.join(benchDir, `blob-${MIB}.bin`);
if (!fs.existsSync(blobFile) || fs.statSync(blobFile).size !== MIB * 1024 * 1024) {
  const fd = fs.openSync(blobFile, 'w');
  for (let i = 0; i < MIB; i++) fs.writeSync(fd, crypto.randomBytes(1024 * 1024));
  fs.closeSync(fd);
}
const hash = crypto.createHash('sha256');
for await (const c of fs.createReadStream(blobFile)) hash.update(c as Buffer);
const layer = `sha256:${hash.digest('hex')}`;
const size = fs.statSync(blobFile).size;

const upstreamCerts = tempDir('upstream-certs');
ensureCertificates({ certsDir: upstreamCerts, names: [], tokenKeyType: 'ec' });
const upstreamCa = path.join(upstreamCerts, 'ca.crt');
const dist = await new DistributionProcess(anonymousTls(upstreamCerts)).start();

/** One curl request; returns its status, time in ms and bytes downloaded. */
function curl(method: string, url: string, ca: string, opts: { token?: string; upload?: string; headers?: Record<string, string | number> } = {}): { status: number; ms: number; location: string; bytes: number } {
  const args = ['-s', '-S', '--cacert', ca, '-X', method, '-o', '/dev/null', '-D', '-', '-w', '\n%{http_code} %{time_total} %{size_download}'];
  if (opts.token) args.push('-H', `Authorization: Bearer ${opts.token}`);
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

function pushBlob(file: string, digest: string): void {
  const start = curl('POST', `${dist.url}/v2/library/big/blobs/uploads/`, upstreamCa, { headers: { 'Content-Length': 0 } });
  if (start.status !== 202) throw new Error(`upstream POST ${start.status}`);
  const loc = new URL(start.location, dist.url);
  loc.searchParams.set('digest', digest);
  const put = curl('PUT', loc.toString(), upstreamCa, { upload: file, headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`upstream PUT ${put.status}`);
}

// The image on the upstream: the layer, a config and a manifest naming both.
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer] } }));
const configFile = path.join(benchDir, 'cache-config.json');
fs.writeFileSync(configFile, config);
const configDigest = `sha256:${crypto.createHash('sha256').update(config).digest('hex')}`;
pushBlob(blobFile, layer);
pushBlob(configFile, configDigest);
const manifest = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size }],
});
const manifestFile = path.join(benchDir, 'cache-manifest.json');
fs.writeFileSync(manifestFile, manifest);
const put = curl('PUT', `${dist.url}/v2/library/big/manifests/1`, upstreamCa, { upload: manifestFile, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
if (put.status !== 201) throw new Error(`upstream manifest PUT ${put.status}`);

const keyport = await new KeyportProcess({
  command: 'registry',
  env: { KEYPORT_LOG_LEVEL: 'info', KEYPORT_UPSTREAMS: JSON.stringify([{ namespace: 'hub', url: dist.url, caFile: upstreamCa }]) },
}).start();
const keyportCa = path.join(keyport.certsDir, 'ca.crt');
const token = await new TokenMinter(keyport.certsDir).mint([{ name: 'hub/library/big', actions: ['pull'] }]);
const manifestAccept = { Accept: 'application/vnd.oci.image.manifest.v1+json' };

function pull(base: string, repo: string, ca: string): number {
  const m = curl('GET', `${base}/v2/${repo}/manifests/1`, ca, { token, headers: manifestAccept });
  if (m.status !== 200) throw new Error(`manifest ${base}: ${m.status}`);
  const b = curl('GET', `${base}/v2/${repo}/blobs/${layer}`, ca, { token });
  if (b.status !== 200 || b.bytes !== size) throw new Error(`blob ${base}: ${b.status}, ${b.bytes} bytes`);
  return m.ms + b.ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const direct: number[] = [];
const first: number[] = [];
const cached: number[] = [];
try {
  for (let run = 0; run < RUNS; run++) {
    direct.push(pull(dist.url, 'library/big', upstreamCa));
    // A true miss each run: Keyport's store starts empty (the cache keeps nothing in memory that serves bytes).
    fs.rmSync(path.join(keyport.dir, 'data'), { recursive: true, force: true });
    first.push(pull(keyport.registryUrl, 'hub/library/big', keyportCa));
    cached.push(pull(keyport.registryUrl, 'hub/library/big', keyportCa));
  }
} finally {
  await keyport.stop();
  await dist.stop();
}

const mbps = (ms: number) => size / 1e6 / (ms / 1000);
const d = median(direct);
const rows: Array<Array<string | number>> = [
  ['direct from the upstream', d, mbps(d), '1.00', ''],
  ['through Keyport, first pull (miss)', median(first), mbps(median(first)), fmt(median(first) / d), median(first) <= 1.2 * d ? 'met (≤ 1.2)' : 'missed (≤ 1.2)'],
  ['through Keyport, cached', median(cached), mbps(median(cached)), fmt(median(cached) / d), median(cached) <= d ? 'met (≤ 1.0)' : 'missed (≤ 1.0)'],
];
console.log(`\nPull of a ${MIB} MiB layer (manifest + blob), median of ${RUNS} runs:\n`);
console.log(table(['case', 'ms', 'MB/s', 'time / direct', 'goal'], rows));
