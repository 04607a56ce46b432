/**
 * Garbage-collection benchmark: Keyport's online `keyport gc` and Docker Distribution
 * 2.8's offline `registry garbage-collect` (Debian's docker-registry), each on its own
 * identical copy of one store, in the same run; then a client pushing and pulling
 * through a Keyport registry on a third copy, without GC and while `keyport gc` runs.
 *
 *   npm run bench:gc
 * Env: BENCH_IMAGES (default 1000; 10 per repository, 10 blobs of their own each, 3 of
 *      20 shared base layers), BENCH_CLIENTS (pushers and as many pullers, default 1),
 *      BENCH_SECONDS (client run without GC, default: as long as Keyport's GC took),
 *      BENCH_DIR (default /tmp/keyport-bench).
 *
 * Both collectors run with --delete-untagged. 30 % of the images are garbage (untagged
 * or deleted); every file is a day old, so Keyport's grace period protects nothing. The
 * blobs left behind must be the same on both copies, and exactly the tagged images'
 * blobs: the script fails otherwise.
 *
 * Goals: Keyport's GC not slower than Distribution's; the client keeps at least 80 % of
 * its push and pull rates while Keyport collects.
 */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

const benchDir = process.env.BENCH_DIR ?? '/tmp/keyport-bench';
process.env.KEYPORT_TEST_DIR = benchDir;
const IMAGES = Number(process.env.BENCH_IMAGES ?? 1000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1);

const { KeyportProcess, CLI } = await import('../test/helpers/keyport.js');
const { DistributionProcess } = await import('../test/helpers/distribution.js');
const { TokenMinter } = await import('../test/helpers/tokens.js');
const { request } = await import('../test/helpers/http.js');
const { buildStore, storedBlobs } = await import('./gc-store.js');
const { table, fmt } = await import('./lib.js');

if (!DistributionProcess.available()) throw new Error('docker-registry is not installed (scripts/deps.sh)');
const work = path.join(benchDir, 'gc');
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });

// The template store, then one copy per collector and one for the client run.
const template = path.join(work, 'template');
let t = Date.now();
const built = buildStore(
  template,
  { images: IMAGES, perRepository: 10, ownLayers: 8, baseLayers: 20, basesPerImage: 3, untagged: 0.2, deleted: 0.1 },
  new Date(Date.now() - 24 * 3600_000),
);
console.error(`store: ${IMAGES} images in ${built.repositories} repositories, ${built.blobs.size} blobs, ${built.files} files, written in ${fmt((Date.now() - t) / 1000)} s`);
const copies = { keyport: path.join(work, 'keyport'), distribution: path.join(work, 'distribution'), online: path.join(work, 'online') };
for (const dir of Object.values(copies)) {
  const r = spawnSync('cp', ['-a', template, dir]);
  if (r.status !== 0) throw new Error(`cp -a: ${r.stderr}`);
}
// Neither collector should pay for the copies' writeback.
spawnSync('sync');

/** Wall-clock seconds of a command run to completion; its output kept in `log`. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: string): number {
  const out = fs.openSync(log, 'w');
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, stdio: ['ignore', out, out] });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  fs.closeSync(out);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${fs.readFileSync(log, 'utf8').slice(-3000)}`);
  return s;
}

// Distribution: offline, as its documentation asks (no registry serving the store).
const distConfig = path.join(work, 'distribution.yml');
fs.writeFileSync(distConfig, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${copies.distribution}\n  delete:\n    enabled: true\n`);
const distSeconds = timed('/usr/bin/docker-registry', ['garbage-collect', '--delete-untagged', distConfig], { PATH: process.env.PATH }, path.join(work, 'distribution-gc.log'));

// Keyport: the command an operator runs, on the same store shape.
const certsDir = path.join(work, 'certs');
const gcEnv = (root: string): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: work, KEYPORT_STORAGE_ROOT: root, KEYPORT_CERTS_DIR: certsDir });
const kLog = path.join(work, 'keyport-gc.log');
// The certificates are made by the registry on its first start; gc needs none, but shares the settings.
fs.mkdirSync(path.join(work, 'registry'));
const keyport = new KeyportProcess({ command: 'registry', dir: path.join(work, 'registry'), env: { KEYPORT_LOG_LEVEL: 'warn', KEYPORT_CERTS_DIR: certsDir, KEYPORT_STORAGE_ROOT: copies.online } });
await keyport.start();
const keyportSeconds = timed(process.execPath, [CLI, 'gc', '--delete-untagged', '--json'], gcEnv(copies.keyport), kLog);
const kReport = JSON.parse(fs.readFileSync(kLog, 'utf8').trim().split('\n').pop()!) as { deleted_blobs: number; duration_s: number };

// Both must have left exactly the tagged images' blobs.
const left = { keyport: storedBlobs(copies.keyport), distribution: storedBlobs(copies.distribution) };
const diff = (a: Set<string>, b: Set<string>) => [...a].filter((d) => !b.has(d));
for (const [name, set] of Object.entries(left)) {
  const lost = diff(built.live, set);
  const extra = diff(set, built.live);
  if (lost.length || extra.length) throw new Error(`${name} left ${set.size} blobs, expected ${built.live.size}: lost ${lost.length} live (${lost.slice(0, 3).join(', ')}), kept ${extra.length} garbage (${extra.slice(0, 3).join(', ')})`);
}
const deleted = built.blobs.size - built.live.size;
console.error(`Distribution ${fmt(distSeconds)} s, Keyport ${fmt(keyportSeconds)} s; both deleted the same ${deleted} blobs and kept the same ${built.live.size}`);

// The client: pushers push small new images, pullers pull tagged ones (manifest, config, a layer).
const agent = new https.Agent({ keepAlive: true, ca: keyport.ca });
const minter = new TokenMinter(keyport.certsDir);
const pushRepo = 'bench/pushed';
const pullable = built.tagged.filter((_, i) => i % Math.max(1, Math.floor(built.tagged.length / 20)) === 0).slice(0, 20);
const token = await minter.mint([{ name: pushRepo, actions: ['pull', 'push'] }, ...[...new Set(pullable.map((p) => p.repository))].map((name) => ({ name, actions: ['pull'] }))]);
const auth = { authorization: `Bearer ${token}` };
const url = (p: string) => `${keyport.registryUrl}${p}`;
const pushed: Array<{ tag: string; blobs: string[] }> = [];
let pushCount = 0;

async function pushBlob(data: Buffer): Promise<string> {
  const d = `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
  const s = await request(url(`/v2/${pushRepo}/blobs/uploads/`), { method: 'POST', agent, headers: { ...auth, 'content-length': 0 } });
  if (s.status !== 202) throw new Error(`upload start ${s.status}: ${s.text}`);
  const loc = new URL(String(s.headers.location), keyport.registryUrl);
  loc.searchParams.set('digest', d);
  const p = await request(loc.toString(), { method: 'PUT', agent, body: data, headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': data.length } });
  if (p.status !== 201) throw new Error(`blob PUT ${p.status}: ${p.text}`);
  return d;
}

async function pushImage(): Promise<void> {
  const tag = `t${pushCount++}`;
  const layer = crypto.randomBytes(4096);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  for (let attempt = 1; ; attempt++) {
    const [cd, ld] = [await pushBlob(config), await pushBlob(layer)];
    const body = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: ld, size: layer.length }],
    }));
    const r = await request(url(`/v2/${pushRepo}/manifests/${tag}`), { method: 'PUT', agent, body, headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    if (r.status === 201) {
      pushed.push({ tag, blobs: [cd, ld, `sha256:${crypto.createHash('sha256').update(body).digest('hex')}`] });
      return;
    }
    // What a GC may answer a push (the client uploads again); anything else is a failure.
    if (attempt >= 3 || !/MANIFEST_BLOB_UNKNOWN/.test(r.text)) throw new Error(`manifest PUT ${r.status}: ${r.text}`);
  }
}

let pullIndex = 0;
async function pullImage(): Promise<void> {
  const img = pullable[pullIndex++ % pullable.length]!;
  const m = await request(url(`/v2/${img.repository}/manifests/${img.tag}`), { agent, headers: { ...auth, accept: img.mediaType } });
  if (m.status !== 200) throw new Error(`manifest GET ${img.repository}:${img.tag} ${m.status}: ${m.text}`);
  for (const d of [img.blobs[0]!, img.blobs[img.blobs.length - 1]!]) {
    const b = await request(url(`/v2/${img.repository}/blobs/${d}`), { agent, headers: auth });
    if (b.status !== 200) throw new Error(`blob GET ${d} ${b.status}`);
  }
}

/** Pushers and pullers in closed loops until `done` settles; images per second of each. */
async function client(done: Promise<unknown>): Promise<{ push: number; pull: number; seconds: number }> {
  let stop = false;
  void done.finally(() => (stop = true));
  let pushes = 0;
  let pulls = 0;
  const start = Date.now();
  const loop = async (op: () => Promise<void>, count: () => void) => {
    while (!stop) {
      await op();
      count();
    }
  };
  await Promise.all([
    ...Array.from({ length: CLIENTS }, () => loop(pushImage, () => pushes++)),
    ...Array.from({ length: CLIENTS }, () => loop(pullImage, () => pulls++)),
  ]);
  const seconds = (Date.now() - start) / 1000;
  return { push: pushes / seconds, pull: pulls / seconds, seconds };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let baseline: Awaited<ReturnType<typeof client>>;
let during: Awaited<ReturnType<typeof client>>;
let onlineSeconds = 0;
try {
  // Warm-up (connections, token verification), then the rate without GC, for as long as the GC takes.
  await client(sleep(1000));
  baseline = await client(sleep(Number(process.env.BENCH_SECONDS ?? Math.max(5, keyportSeconds)) * 1000));
  const onlineLog = path.join(work, 'keyport-gc-online.log');
  const out = fs.openSync(onlineLog, 'w');
  const start = Date.now();
  const gc = spawn(process.execPath, [CLI, 'gc', '--delete-untagged', '--json'], { env: gcEnv(copies.online), stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const exited = new Promise<number | null>((resolve) => gc.once('exit', (code) => resolve(code)));
  during = await client(exited);
  onlineSeconds = (Date.now() - start) / 1000;
  if ((await exited) !== 0) throw new Error(`keyport gc while serving failed:\n${fs.readFileSync(onlineLog, 'utf8').slice(-3000)}`);

  // Every image the client pushed, before or during the GC, is whole; the store's own garbage is gone.
  for (const p of pushed) {
    const m = await request(url(`/v2/${pushRepo}/manifests/${p.tag}`), { agent, headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    if (m.status !== 200) throw new Error(`${pushRepo}:${p.tag} lost its manifest after GC (${m.status})`);
    for (const d of p.blobs.slice(0, 2)) {
      const b = await request(url(`/v2/${pushRepo}/blobs/${d}`), { agent, headers: auth });
      if (b.status !== 200) throw new Error(`${pushRepo}:${p.tag} lost ${d} after GC (${b.status})`);
    }
  }
  const clientBlobs = new Set(pushed.flatMap((p) => p.blobs));
  const online = [...storedBlobs(copies.online)].filter((d) => !clientBlobs.has(d));
  if (online.length !== built.live.size || online.some((d) => !built.live.has(d))) throw new Error(`GC while serving left ${online.length} of the store's blobs, expected exactly the ${built.live.size} live ones`);
} finally {
  await keyport.stop();
  agent.destroy();
}

const ratio = keyportSeconds / distSeconds;
console.log(`\nGC of ${IMAGES} images (${built.blobs.size} blobs, ${built.repositories} repositories, 20 shared base layers), filesystem, ${new Date().toISOString()}`);
console.log(`Both with --delete-untagged on identical copies; both deleted the same ${deleted} blobs and kept the same ${built.live.size}.\n`);
console.log(
  table(
    ['case', 'seconds', 'Keyport / Distribution', 'goal'],
    [
      ['Distribution 2.8 registry garbage-collect (offline)', distSeconds, '1.00', ''],
      [`keyport gc (online; its own report: ${kReport.duration_s} s)`, keyportSeconds, fmt(ratio), ratio <= 1 ? 'met (≤ 1.0)' : 'missed (≤ 1.0)'],
      ['keyport gc while a Keyport registry serves the client', onlineSeconds, fmt(onlineSeconds / distSeconds), ''],
    ],
  ),
);
console.log(`\nClient through the Keyport registry on the same store (${CLIENTS} pusher${CLIENTS > 1 ? 's' : ''} of new 2-blob images, ${CLIENTS} puller${CLIENTS > 1 ? 's' : ''} of manifest, config and a layer):\n`);
console.log(
  table(
    ['case', 'pushes/s', 'pulls/s'],
    [
      [`without GC (${fmt(baseline.seconds)} s)`, baseline.push, baseline.pull],
      [`during keyport gc (${fmt(during.seconds)} s)`, during.push, during.pull],
      ['during / without (goal ≥ 0.80)', fmt(during.push / baseline.push), fmt(during.pull / baseline.pull)],
    ],
  ),
);

// Swift: the same comparison on a smaller store, with both registries' swift drivers on one
// single-node Swift this script runs itself (scripts/swift.sh, ports of its own). Swift sets
// an object's time at upload, so Keyport runs with --grace 0 here. No client run on Swift.
if (process.env.BENCH_SWIFT !== '0') {
  const SWIFT_IMAGES = Number(process.env.BENCH_SWIFT_IMAGES ?? 100);
  const { SwiftNode, distributionSwiftStorage } = await import('./swift.js');
  const { limited } = await import('../src/gc/protocol.js');
  const swift = SwiftNode.onBenchPorts(path.join(benchDir, 'swift-gc'));
  const suffix = crypto.randomBytes(4).toString('hex');
  const containers = { keyport: `keyport-gc-${suffix}`, distribution: `distribution-gc-${suffix}` };
  const interrupted = (sig: NodeJS.Signals) => {
    swift.down();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const swiftTemplate = path.join(work, 'swift-template');
  const small = buildStore(
    swiftTemplate,
    { images: SWIFT_IMAGES, perRepository: 10, ownLayers: 8, baseLayers: 20, basesPerImage: 3, untagged: 0.2, deleted: 0.1 },
    new Date(Date.now() - 24 * 3600_000),
  );
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) e.isDirectory() ? walk(path.join(dir, e.name)) : files.push(path.join(dir, e.name));
  };
  walk(swiftTemplate);
  /** Swift's listing, again once when the proxy closed an idle keep-alive connection under it. */
  const listing = async (container: string) => {
    // The upload's keep-alive connections sat idle through both GC runs: start afresh.
    http.globalAgent.destroy();
    for (let attempt = 1; ; attempt++) {
      try {
        return await swift.list(container);
      } catch (e) {
        if (attempt >= 3 || !['EPIPE', 'ECONNRESET'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      }
    }
  };
  /** Blob digests in a container, from Swift's own listing. */
  const swiftBlobs = async (container: string) =>
    new Set(
      (await listing(container))
        .map((o) => /^files\/docker\/registry\/v2\/blobs\/sha256\/[0-9a-f]{2}\/([0-9a-f]{64})\/data$/.exec(o.name)?.[1])
        .filter((h): h is string => !!h)
        .map((h) => `sha256:${h}`),
    );
  let dSwift = 0;
  let kSwift = 0;
  try {
    swift.up();
    for (const c of await swift.containers()) if (/^(keyport|distribution)-gc-/.test(c)) await swift.clear(c, { container: true });
    t = Date.now();
    for (const c of Object.values(containers)) {
      await swift.createContainer(c);
      // Both drivers keep a driver path P as the object files/P.
      await limited(files, 8, (f) => swift.put(c, `files/${path.relative(swiftTemplate, f)}`, fs.readFileSync(f)));
    }
    console.error(`swift store: ${SWIFT_IMAGES} images, ${small.blobs.size} blobs, ${files.length} objects per container, uploaded in ${fmt((Date.now() - t) / 1000)} s`);
    const distSwiftConfig = path.join(work, 'distribution-swift.yml');
    fs.writeFileSync(
      distSwiftConfig,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n${distributionSwiftStorage({ authUrl: swift.authUrl, username: swift.user, password: swift.key, container: containers.distribution, chunkSize: 20 * 1024 * 1024 })}\n  delete:\n    enabled: true\n`,
    );
    dSwift = timed('/usr/bin/docker-registry', ['garbage-collect', '--delete-untagged', distSwiftConfig], { PATH: process.env.PATH }, path.join(work, 'distribution-gc-swift.log'));
    kSwift = timed(
      process.execPath,
      [CLI, 'gc', '--delete-untagged', '--grace', '0', '--json'],
      {
        ...gcEnv(path.join(work, 'unused')),
        KEYPORT_STORAGE_DRIVER: 'swift',
        KEYPORT_SWIFT_AUTH_URL: swift.authUrl,
        KEYPORT_SWIFT_USERNAME: swift.user,
        KEYPORT_SWIFT_PASSWORD: swift.key,
        KEYPORT_SWIFT_CONTAINER: containers.keyport,
      },
      path.join(work, 'keyport-gc-swift.log'),
    );
    for (const [name, c] of Object.entries(containers)) {
      const set = await swiftBlobs(c);
      const lost = diff(small.live, set);
      const extra = diff(set, small.live);
      if (lost.length || extra.length) throw new Error(`${name} on Swift left ${set.size} blobs, expected ${small.live.size}: lost ${lost.length} live, kept ${extra.length} garbage`);
    }
  } finally {
    http.globalAgent.destroy();
    for (const c of Object.values(containers)) await swift.clear(c, { container: true }).catch(() => undefined);
    swift.down();
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
  const r = kSwift / dSwift;
  console.log(`\nGC of ${SWIFT_IMAGES} images (${small.blobs.size} blobs) on Swift (single node on this machine, tempauth); both deleted the same ${small.blobs.size - small.live.size} blobs:\n`);
  console.log(
    table(
      ['case', 'seconds', 'Keyport / Distribution', 'goal'],
      [
        ['Distribution 2.8 registry garbage-collect (offline)', dSwift, '1.00', ''],
        ['keyport gc --grace 0 (online)', kSwift, fmt(r), r <= 1 ? 'met (≤ 1.0)' : 'missed (≤ 1.0)'],
      ],
    ),
  );
}
