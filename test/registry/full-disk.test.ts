/**
 * A full disk under the filesystem driver: the store on a 64 MiB tmpfs. A push that
 * does not fit gets 507 with an OCI error and releases its bytes at once; the process
 * stays up; /healthz says the store is full while it is; once there is room again,
 * pushes work without a restart; a chunked upload keeps exactly what was
 * acknowledged; no blob with wrong content is ever served.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { streamBody, type StreamedResponse } from '../helpers/http.js';
import { KeyportProcess, tempDir } from '../helpers/keyport.js';
import { RegistryClient, sha256 } from '../helpers/registry.js';
import { servicesFile } from '../helpers/services.js';
import { TokenMinter } from '../helpers/tokens.js';

const MiB = 1024 * 1024;
const octets = { 'content-type': 'application/octet-stream' };

let mnt = '';
let mounted = false;
let unavailable: string | undefined;
let kp: KeyportProcess;
let client: RegistryClient;
let token: string;
let pid: number | undefined;

before(async () => {
  const dir = tempDir('full-disk');
  mnt = path.join(dir, 'store');
  fs.mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    const why = `cannot mount a tmpfs (needs root): ${(e as Error).message.split('\n')[0]}`;
    if (servicesFile().ci || process.env.CI) throw new Error(`${why} (CI is set, so this is a failure)`);
    unavailable = why;
    return;
  }
  kp = await new KeyportProcess({
    command: 'registry',
    dir,
    env: { KEYPORT_STORAGE_DRIVER: 'filesystem', KEYPORT_STORAGE_ROOT: mnt, KEYPORT_STORAGE_HEALTH_INTERVAL: '1' },
  }).start();
  pid = kp.pid;
  client = new RegistryClient(kp);
  token = await new TokenMinter(kp.certsDir).all('alice/full');
});

after(async () => {
  await kp?.stop();
  if (mounted) execFileSync('umount', ['-l', mnt]);
});

const run = (title: string, fn: () => Promise<void>) =>
  it(title, async (t: TestContext) => {
    if (unavailable) return t.skip(unavailable);
    await fn();
  });

function usedBytes(): number {
  const st = fs.statfsSync(mnt);
  return (st.blocks - st.bfree) * st.bsize;
}

function freeBytes(): number {
  const st = fs.statfsSync(mnt);
  return st.bavail * st.bsize;
}

/** Waits until `cond` holds, up to `ms`; returns whether it did. */
async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A body of `mib` MiB whose pieces are numbered, and its digest. */
function numbered(mib: number, seed = crypto.randomBytes(8).toString('hex')) {
  const base = crypto.createHash('sha256').update(seed).digest();
  const piece = (i: number) => {
    const b = Buffer.alloc(MiB, base);
    b.writeUInt32BE(i, 0);
    return b;
  };
  const hash = crypto.createHash('sha256');
  for (let i = 0; i < mib; i++) hash.update(piece(i));
  return { piece, total: mib * MiB, digest: `sha256:${hash.digest('hex')}` };
}

/** Fills the tmpfs until `leave` bytes are free; returns a function removing the filler. */
function fill(leave: number): () => void {
  const file = path.join(mnt, `filler-${crypto.randomBytes(4).toString('hex')}`);
  const fd = fs.openSync(file, 'w');
  const zeros = Buffer.alloc(MiB);
  try {
    for (;;) {
      const room = freeBytes() - leave;
      if (room <= 0) break;
      fs.writeSync(fd, zeros, 0, Math.min(MiB, room));
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  return () => fs.rmSync(file, { force: true });
}

function assertStoreFull(r: StreamedResponse | { status: number; text: string }, what: string) {
  assert.equal(r.status, 507, `${what}: ${r.status} ${r.text}`);
  const body = JSON.parse(r.text);
  assert.equal(body.errors[0].code, 'UNAVAILABLE', what);
  assert.match(body.errors[0].message, /storage is full/, what);
  assert.deepEqual(body.errors[0].detail, { storage: 'full' }, what);
}

async function assertServing(what: string) {
  assert.equal(kp.pid, pid, `${what}: same process`);
  assert.doesNotThrow(() => process.kill(pid!, 0), `${what}: the registry process is alive`);
  const r = await client.api('GET', '/v2/', token, { agent: false });
  assert.equal(r.status, 200, `${what}: the registry answers`);
}

function uploadSessions(): string[] {
  const dir = path.join(mnt, 'docker/registry/v2/repositories/alice/full/_uploads');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** Every blob in the store has the content its digest names. */
function assertBlobsIntact() {
  const root = path.join(mnt, 'docker/registry/v2/blobs/sha256');
  if (!fs.existsSync(root)) return;
  for (const prefix of fs.readdirSync(root)) {
    for (const hex of fs.readdirSync(path.join(root, prefix))) {
      const data = path.join(root, prefix, hex, 'data');
      if (!fs.existsSync(data)) continue;
      assert.equal(sha256(fs.readFileSync(data)), `sha256:${hex}`, `blob ${hex} has the content its digest names`);
    }
  }
}

async function pushAndPull(size: number, what: string): Promise<string> {
  const data = crypto.randomBytes(size);
  const digest = await client.pushBlob('alice/full', token, data);
  const got = await client.api('GET', `/v2/alice/full/blobs/${digest}`, token);
  assert.equal(got.status, 200, what);
  assert.equal(sha256(got.body), digest, `${what}: the pulled blob has the pushed bytes`);
  return digest;
}

describe('the filesystem store runs out of space', () => {
  run('a push larger than the free space gets 507, releases its bytes at once, and the next push works', async () => {
    const before = usedBytes();
    const big = numbered(100);
    const r = await streamBody(`${kp.registryUrl}/v2/alice/full/blobs/uploads/?digest=${big.digest}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...octets },
      ca: kp.ca,
      total: big.total,
      piece: big.piece,
    });
    assertStoreFull(r, '100 MiB monolithic push onto 64 MiB');
    assert.ok(r.sentAtAnswer < big.total, `answered while the body was still arriving (${r.sentAtAnswer} of ${big.total} bytes sent)`);
    await assertServing('after the refused push');
    assert.ok(usedBytes() < before + MiB, `the refused push's bytes are released: ${usedBytes()} bytes used, ${before} before`);
    assert.deepEqual(uploadSessions(), [], 'no upload session left behind');
    assert.equal((await client.api('HEAD', `/v2/alice/full/blobs/${big.digest}`, token)).status, 404, 'the refused blob is not there');
    await pushAndPull(10 * MiB, 'a 10 MiB push after the refused one');
    assertBlobsIntact();
  });

  run('while the store is full /healthz says so and pushes get 507; pulls still work; with room again pushes work without a restart', async () => {
    const kept = await pushAndPull(256 * 1024, 'a blob pushed before the disk fills');
    const release = fill(0);
    try {
      assert.ok(
        await until(async () => (await client.api('GET', '/healthz', undefined)).json().storage?.writable === 'full'),
        'the health check notices the full store',
      );
      const health = await client.api('GET', '/healthz', undefined);
      assert.equal(health.status, 200, 'a full store still serves pulls: not unhealthy');
      const h = health.json();
      assert.equal(h.status, 'degraded');
      assert.match(h.storage.reason, /full/);
      assert.ok(h.storage.freeBytes < MiB, `freeBytes ${h.storage.freeBytes}`);

      const data = crypto.randomBytes(2 * MiB);
      const refused = await client.api('POST', `/v2/alice/full/blobs/uploads/?digest=${sha256(data)}`, token, { body: data, headers: { ...octets, 'content-length': data.length } });
      assertStoreFull(refused, 'a push onto a full store');
      const start = await client.api('POST', '/v2/alice/full/blobs/uploads/', token);
      assertStoreFull(start, 'starting an upload on a full store');
      const pulled = await client.api('GET', `/v2/alice/full/blobs/${kept}`, token);
      assert.equal(pulled.status, 200, 'pulls work while the store is full');
      assert.equal(sha256(pulled.body), kept);
      assert.ok(
        await until(async () => !!(await client.api('GET', '/healthz', undefined)).json().storage?.lastWriteError),
        '/healthz reports the refused write',
      );
      assert.match((await client.api('GET', '/healthz', undefined)).json().storage.lastWriteError.message, /full/);
    } finally {
      release();
    }
    assert.ok(
      await until(async () => (await client.api('GET', '/healthz', undefined)).json().status === 'ok'),
      '/healthz is ok again once space is freed',
    );
    await pushAndPull(5 * MiB, 'a push once space is freed');
    await assertServing('after the store was full');
    assertBlobsIntact();
  });

  run('a chunked upload that meets a full store keeps what was acknowledged, and the same chunk is retried once there is room', async () => {
    const blob = numbered(16);
    const first = Buffer.concat(Array.from({ length: 8 }, (_, i) => blob.piece(i)));
    const second = Buffer.concat(Array.from({ length: 8 }, (_, i) => blob.piece(8 + i)));
    let loc = String((await client.api('POST', '/v2/alice/full/blobs/uploads/', token)).headers.location);
    const ok = await client.api('PATCH', loc, token, { body: first, headers: { ...octets, 'content-range': `0-${first.length - 1}` } });
    assert.equal(ok.status, 202, ok.text);
    assert.equal(ok.headers.range, `0-${first.length - 1}`);
    loc = String(ok.headers.location);

    const release = fill(2 * MiB);
    let refused;
    try {
      refused = await client.api('PATCH', loc, token, { body: second, headers: { ...octets, 'content-range': `${first.length}-${blob.total - 1}` } });
      assertStoreFull(refused, 'a chunk that does not fit');
      const status = await client.api('GET', loc, token);
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, `0-${first.length - 1}`, 'the upload reports only the acknowledged bytes');
      const id = String(status.headers['docker-upload-uuid']);
      const data = path.join(mnt, 'docker/registry/v2/repositories/alice/full/_uploads', id, 'data');
      assert.equal(fs.statSync(data).size, first.length, 'and holds only those');
    } finally {
      release();
    }
    const retry = await client.api('PATCH', loc, token, { body: second, headers: { ...octets, 'content-range': `${first.length}-${blob.total - 1}` } });
    assert.equal(retry.status, 202, `the same chunk with the same Content-Range is taken once there is room: ${retry.text}`);
    assert.equal(retry.headers.range, `0-${blob.total - 1}`);
    const done = await client.api('PUT', `${String(retry.headers.location)}?digest=${blob.digest}`, token);
    assert.equal(done.status, 201, done.text);
    const got = await client.api('GET', `/v2/alice/full/blobs/${blob.digest}`, token);
    assert.equal(sha256(got.body), blob.digest);
    assertBlobsIntact();
  });

  run('a client killed in the middle of a 100 MiB monolithic push leaves nothing behind', async () => {
    const before = usedBytes();
    const big = numbered(100);
    const cut = await streamBody(`${kp.registryUrl}/v2/alice/full/blobs/uploads/?digest=${big.digest}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...octets },
      ca: kp.ca,
      total: big.total,
      piece: big.piece,
      abortAfter: 30 * MiB,
    });
    assert.equal(cut.error, 'aborted by the client');
    assert.ok(await until(() => usedBytes() < before + MiB), `the cut upload's bytes are released: ${usedBytes()} used, ${before} before`);
    assert.ok(await until(() => uploadSessions().length === 0), 'its session is gone');

    // The same with POST then a PUT carrying the whole blob.
    const loc = String((await client.api('POST', '/v2/alice/full/blobs/uploads/', token)).headers.location);
    await streamBody(`${kp.registryUrl}${loc}?digest=${big.digest}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, ...octets },
      ca: kp.ca,
      total: big.total,
      piece: big.piece,
      abortAfter: 20 * MiB,
    });
    assert.ok(await until(() => usedBytes() < before + MiB), 'the cut PUT releases its bytes');
    assert.ok(
      await until(async () => (await client.api('GET', loc, token)).status === 404),
      'a PUT that was the whole upload removes its session when cut',
    );
    await assertServing('after the killed clients');
    await pushAndPull(MiB, 'a push after the killed clients');
    assert.equal((await client.api('HEAD', `/v2/alice/full/blobs/${big.digest}`, token)).status, 404, 'nothing of the cut blob is served');
  });

  run('a chunk cut mid-way is dropped: the upload holds and reports what was acknowledged', async () => {
    const blob = numbered(24);
    const first = Buffer.concat(Array.from({ length: 4 }, (_, i) => blob.piece(i)));
    const start = await client.api('POST', '/v2/alice/full/blobs/uploads/', token);
    const ok = await client.api('PATCH', String(start.headers.location), token, { body: first, headers: { ...octets, 'content-range': `0-${first.length - 1}` } });
    assert.equal(ok.status, 202);
    const loc = String(ok.headers.location);
    const used = usedBytes();
    await streamBody(`${kp.registryUrl}${loc}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, ...octets, 'content-range': `${first.length}-${blob.total - 1}` },
      ca: kp.ca,
      total: blob.total - first.length,
      piece: (i) => blob.piece(4 + i),
      abortAfter: 12 * MiB,
    });
    assert.ok(
      await until(async () => (await client.api('GET', loc, token)).headers.range === `0-${first.length - 1}`),
      'the upload reports only the acknowledged chunk',
    );
    assert.ok(await until(() => usedBytes() < used + MiB), `the cut chunk's bytes are released (${usedBytes()} used, ${used} before it)`);
    await client.api('DELETE', loc, token);
  });
});
