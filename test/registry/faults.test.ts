/**
 * Crashes, races and large blobs: a killed registry never serves a partial blob and
 * lets uploads resume; concurrent pushes of one blob both succeed and store it once;
 * memory stays flat however large the blob. Requests that once crashed the process,
 * early answers while a client still sends a large body and clients that hang up
 * mid-body are answered (or dropped) while the process keeps serving.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { streamBody } from '../helpers/http.js';
import type { KeyportProcess } from '../helpers/keyport.js';
import { codes, onDriver, RegistryClient, sha256, startRegistry, storageEnv } from '../helpers/registry.js';
import type { TokenMinter } from '../helpers/tokens.js';

let kp: KeyportProcess;
let minter: TokenMinter;
let client: RegistryClient;
let token: string;
const onDisk = !storageEnv().KEYPORT_STORAGE_DRIVER || storageEnv().KEYPORT_STORAGE_DRIVER === 'filesystem';

before(async () => {
  ({ kp, minter, client } = await startRegistry());
  token = await minter.all('alice/crash', 'alice/race', 'alice/big', 'alice/early');
});
after(async () => kp?.stop());

const octets = { 'content-type': 'application/octet-stream' };

/** Sends `first` then stalls; resolves once the registry has had time to store it. */
function stalledPatch(url: string, first: Buffer, total: number): { sent: Promise<void>; req: ReturnType<typeof https.request> } {
  const u = new URL(url);
  const req = https.request(u, {
    method: 'PATCH',
    ca: kp.ca,
    headers: { authorization: `Bearer ${token}`, ...octets, 'content-length': total },
  });
  req.on('error', () => {});
  req.write(first);
  return { sent: new Promise((r) => setTimeout(r, 700)), req };
}

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe(onDriver('the registry is killed during a chunked upload'), () => {
  it('no partial blob is served, and the upload resumes from what was stored after a restart', async () => {
    const data = crypto.randomBytes(3 * 1024 * 1024);
    const digest = sha256(data);
    const start = await client.api('POST', '/v2/alice/crash/blobs/uploads/', token);
    let loc = String(start.headers.location);
    const first = await client.api('PATCH', loc, token, { body: data.subarray(0, 1024 * 1024), headers: { ...octets, 'content-range': `0-${1024 * 1024 - 1}` } });
    assert.equal(first.status, 202);
    loc = String(first.headers.location);

    // Second chunk: half of it arrives, then the process is killed.
    const { sent, req } = stalledPatch(`${kp.registryUrl}${loc}`, data.subarray(1024 * 1024, 1536 * 1024), 1024 * 1024);
    await sent;
    await kp.stop('SIGKILL');
    req.destroy();
    await kp.start();

    assert.equal((await client.api('HEAD', `/v2/alice/crash/blobs/${digest}`, token)).status, 404, 'nothing half-uploaded is served');
    const status = await client.api('GET', loc, token);
    assert.equal(status.status, 204, 'the session survived the crash');
    const stored = Number(String(status.headers.range).split('-')[1]) + 1;
    assert.ok(stored >= 1024 * 1024 && stored <= 1536 * 1024, `stored ${stored} bytes`);
    const rest = data.subarray(stored);
    const resumed = await client.api('PATCH', loc, token, { body: rest, headers: { ...octets, 'content-range': `${stored}-${data.length - 1}` } });
    assert.equal(resumed.status, 202, resumed.text);
    const done = await client.api('PUT', `${loc}?digest=${digest}`, token);
    assert.equal(done.status, 201, done.text);
    const got = await client.api('GET', `/v2/alice/crash/blobs/${digest}`, token);
    assert.equal(sha256(got.body), digest, 'the finished blob has the right bytes');
  });

  it('a monolithic upload cut by a crash leaves no blob behind', async () => {
    const data = crypto.randomBytes(2 * 1024 * 1024);
    const digest = sha256(data);
    const u = new URL(`${kp.registryUrl}/v2/alice/crash/blobs/uploads/?digest=${digest}`);
    const req = https.request(u, { method: 'POST', ca: kp.ca, headers: { authorization: `Bearer ${token}`, ...octets, 'content-length': data.length } });
    req.on('error', () => {});
    req.write(data.subarray(0, 1024 * 1024));
    await new Promise((r) => setTimeout(r, 500));
    await kp.stop('SIGKILL');
    req.destroy();
    await kp.start();
    const head = await client.api('HEAD', `/v2/alice/crash/blobs/${digest}`, token);
    assert.equal(head.status, 404);
    if (onDisk) {
      const blobs = walk(path.join(kp.dir, 'data', 'docker/registry/v2/blobs'));
      assert.ok(!blobs.some((f) => f.includes(digest.slice(7))), 'no blob file for the cut upload');
    }
  });
});

describe(onDriver('concurrent pushes of the same blob'), () => {
  it('both succeed and the blob is stored once', async () => {
    const data = crypto.randomBytes(8 * 1024 * 1024);
    const digest = sha256(data);
    const push = () => client.api('POST', `/v2/alice/race/blobs/uploads/?digest=${digest}`, token, { body: data, headers: { ...octets, 'content-length': data.length } });
    const results = await Promise.all([push(), push(), push()]);
    assert.deepEqual(results.map((r) => r.status), [201, 201, 201], results.map((r) => r.text).join());
    const got = await client.api('GET', `/v2/alice/race/blobs/${digest}`, token);
    assert.equal(sha256(got.body), digest);
    if (onDisk) {
      const root = path.join(kp.dir, 'data', 'docker/registry/v2');
      const copies = walk(path.join(root, 'blobs')).filter((f) => f.includes(digest.slice(7)));
      assert.equal(copies.length, 1, 'one copy of the bytes');
      assert.deepEqual(walk(path.join(root, 'repositories/alice/race/_uploads')), [], 'no upload leftovers');
    }
  });

  it('two chunked uploads of one repository at once do not mix their bytes', async () => {
    const a = crypto.randomBytes(512 * 1024);
    const b = crypto.randomBytes(512 * 1024);
    const chunked = async (data: Buffer) => {
      let loc = String((await client.api('POST', '/v2/alice/race/blobs/uploads/', token)).headers.location);
      for (let off = 0; off < data.length; off += 64 * 1024) {
        const part = data.subarray(off, off + 64 * 1024);
        const r = await client.api('PATCH', loc, token, { body: part, headers: { ...octets, 'content-range': `${off}-${off + part.length - 1}` } });
        assert.equal(r.status, 202);
        loc = String(r.headers.location);
      }
      return client.api('PUT', `${loc}?digest=${sha256(data)}`, token);
    };
    const [ra, rb] = await Promise.all([chunked(a), chunked(b)]);
    assert.equal(ra.status, 201);
    assert.equal(rb.status, 201);
  });
});

function rssPeakMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
}

describe(onDriver('large blobs stream'), () => {
  it('a 1 GiB blob goes in and out with the right digest while the registry stays under 250 MiB', async () => {
    const chunk = crypto.randomBytes(1024 * 1024);
    const total = 1024;
    const hash = crypto.createHash('sha256');
    for (let i = 0; i < total; i++) {
      chunk.writeUInt32BE(i, 0);
      hash.update(chunk);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    function* gen() {
      for (let i = 0; i < total; i++) {
        chunk.writeUInt32BE(i, 0);
        yield Buffer.from(chunk);
      }
    }
    const up = await client.api('POST', `/v2/alice/big/blobs/uploads/?digest=${digest}`, token, {
      body: Readable.from(gen()),
      headers: { ...octets, 'content-length': total * chunk.length },
      timeoutMs: 300_000,
    });
    assert.equal(up.status, 201, up.text);
    const down = crypto.createHash('sha256');
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      https
        .get(`${kp.registryUrl}/v2/alice/big/blobs/${digest}`, { ca: kp.ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            down.update(c);
          });
          res.on('end', resolve);
          res.on('error', reject);
        })
        .on('error', reject);
    });
    assert.equal(bytes, total * chunk.length);
    assert.equal(`sha256:${down.digest('hex')}`, digest);
    const peak = rssPeakMiB(kp.pid!);
    assert.ok(peak < 250, `peak RSS ${peak.toFixed(0)} MiB`);
    assert.deepEqual(codes(await client.api('GET', `/v2/alice/big/blobs/${sha256('x')}`, token)), ['BLOB_UNKNOWN']);
  });
});

/** The process that started is still the one answering. */
async function assertStillServing(pid: number | undefined, what: string) {
  assert.equal(kp.pid, pid, `${what}: same process`);
  assert.doesNotThrow(() => process.kill(pid!, 0), `${what}: the registry process is alive`);
  const r = await client.api('GET', '/v2/', token, { agent: false });
  assert.equal(r.status, 200, `${what}: the registry answers`);
  const data = crypto.randomBytes(4096);
  const digest = await client.pushBlob('alice/early', token, data);
  assert.deepEqual((await client.api('GET', `/v2/alice/early/blobs/${digest}`, token)).body, data, `${what}: pushes and pulls work`);
}

/** Sends a body with Transfer-Encoding: chunked, so no Content-Length bounds it. */
function chunkedRequest(url: string, method: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(url), { method, ca: kp.ca, headers: { authorization: `Bearer ${token}`, ...headers }, agent: false });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.write(body);
    req.end();
  });
}

describe(onDriver('requests that used to crash the registry'), () => {
  it('a chunked PATCH longer than its Content-Range gets 400 SIZE_INVALID, and the process keeps serving', async () => {
    // The store stopped reading mid-body; the body stream was destroyed with its socket
    // and the access log then read req.socket.remoteAddress of null: uncaught TypeError.
    const pid = kp.pid;
    const loc = String((await client.api('POST', '/v2/alice/early/blobs/uploads/', token)).headers.location);
    const r = await chunkedRequest(`${kp.registryUrl}${loc}`, 'PATCH', { ...octets, 'content-range': '0-9' }, crypto.randomBytes(100));
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(JSON.parse(r.text).errors.map((e: { code: string }) => e.code), ['SIZE_INVALID']);
    await new Promise((res) => setTimeout(res, 300));
    await assertStillServing(pid, 'after the over-long chunk');
    const status = await client.api('GET', loc, token);
    assert.equal(status.headers.range, '0-0', 'none of the refused chunk was kept');
  });

  it('a chunked manifest PUT over the size limit gets 413, and the process keeps serving', async () => {
    const pid = kp.pid;
    const r = await chunkedRequest(`${kp.registryUrl}/v2/alice/early/manifests/big`, 'PUT', { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, Buffer.alloc(5 * 1024 * 1024, 0x20));
    assert.equal(r.status, 413, r.text);
    assert.deepEqual(JSON.parse(r.text).errors.map((e: { code: string }) => e.code), ['SIZE_INVALID']);
    await assertStillServing(pid, 'after the oversized manifest');
  });
});

describe(onDriver('early answers while a client still sends 100 MiB'), () => {
  const total = 100 * 1024 * 1024;
  const zero = `sha256:${'0'.repeat(64)}`;
  const cases: Array<[string, string, string, Record<string, string>, string, number]> = [
    ['an unknown upload id', 'PATCH', '/v2/alice/early/blobs/uploads/00000000-0000-4000-8000-000000000000', {}, 'BLOB_UPLOAD_UNKNOWN', 404],
    ['a malformed digest', 'POST', '/v2/alice/early/blobs/uploads/?digest=sha256:zz', {}, 'DIGEST_INVALID', 400],
    ['no token', 'POST', `/v2/alice/early/blobs/uploads/?digest=${zero}`, { authorization: '' }, 'UNAUTHORIZED', 401],
    ['a bad token', 'POST', `/v2/alice/early/blobs/uploads/?digest=${zero}`, { authorization: 'Bearer abc.def.ghi' }, 'UNAUTHORIZED', 401],
  ];
  for (const [what, method, path, headers, code, status] of cases) {
    it(`${what}: the JSON error arrives, the body is drained, and the registry keeps serving`, async () => {
      const pid = kp.pid;
      const h: Record<string, string> = { authorization: `Bearer ${token}`, ...octets, ...headers };
      if (!h.authorization) delete h.authorization;
      const r = await streamBody(`${kp.registryUrl}${path}`, { method, headers: h, ca: kp.ca, total });
      assert.equal(r.error, undefined, `the client could send its whole body: ${r.error}`);
      assert.equal(r.status, status, r.text);
      assert.deepEqual(JSON.parse(r.text).errors.map((e: { code: string }) => e.code), [code]);
      await assertStillServing(pid, `after ${what}`);
    });
  }

  it('a monolithic push whose digest does not match gets DIGEST_INVALID and leaves no blob', async () => {
    const pid = kp.pid;
    const r = await streamBody(`${kp.registryUrl}/v2/alice/early/blobs/uploads/?digest=${zero}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...octets },
      ca: kp.ca,
      total: 8 * 1024 * 1024,
    });
    assert.equal(r.status, 400, r.text);
    assert.deepEqual(JSON.parse(r.text).errors.map((e: { code: string }) => e.code), ['DIGEST_INVALID']);
    assert.equal((await client.api('HEAD', `/v2/alice/early/blobs/${zero}`, token)).status, 404);
    await assertStillServing(pid, 'after the wrong digest');
  });
});

describe(onDriver('clients that hang up mid-body'), () => {
  it('a chunk cut mid-way is dropped: GET reports the acknowledged bytes and the retry with the same Content-Range completes the blob', async () => {
    const pid = kp.pid;
    const data = crypto.randomBytes(12 * 1024 * 1024);
    const digest = sha256(data);
    const first = data.subarray(0, 4 * 1024 * 1024);
    const start = await client.api('POST', '/v2/alice/early/blobs/uploads/', token);
    const ok = await client.api('PATCH', String(start.headers.location), token, { body: first, headers: { ...octets, 'content-range': `0-${first.length - 1}` } });
    assert.equal(ok.status, 202, ok.text);
    const loc = String(ok.headers.location);
    const rest = data.subarray(first.length);
    const cut = await streamBody(`${kp.registryUrl}${loc}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, ...octets, 'content-range': `${first.length}-${data.length - 1}` },
      ca: kp.ca,
      total: rest.length,
      piece: (i) => rest.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024),
      abortAfter: 5 * 1024 * 1024,
    });
    assert.equal(cut.error, 'aborted by the client');
    let range: unknown;
    for (let i = 0; i < 50; i++) {
      range = (await client.api('GET', loc, token)).headers.range;
      if (range === `0-${first.length - 1}`) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(range, `0-${first.length - 1}`, 'only the acknowledged chunk counts');
    const retry = await client.api('PATCH', loc, token, { body: rest, headers: { ...octets, 'content-range': `${first.length}-${data.length - 1}` } });
    assert.equal(retry.status, 202, retry.text);
    const done = await client.api('PUT', `${String(retry.headers.location)}?digest=${digest}`, token);
    assert.equal(done.status, 201, done.text);
    assert.equal(sha256((await client.api('GET', `/v2/alice/early/blobs/${digest}`, token)).body), digest);
    await assertStillServing(pid, 'after the cut chunk');
  });

  it('a monolithic push cut mid-way leaves no session and no blob', async () => {
    const pid = kp.pid;
    const uploads = path.join(kp.dir, 'data', 'docker/registry/v2/repositories/alice/early/_uploads');
    const sessions = () => (fs.existsSync(uploads) ? fs.readdirSync(uploads).sort() : []);
    const earlier = sessions();
    const data = crypto.randomBytes(16 * 1024 * 1024);
    const digest = sha256(data);
    const cut = await streamBody(`${kp.registryUrl}/v2/alice/early/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...octets },
      ca: kp.ca,
      total: data.length,
      piece: (i) => data.subarray(i * 1024 * 1024, (i + 1) * 1024 * 1024),
      abortAfter: 6 * 1024 * 1024,
    });
    assert.equal(cut.error, 'aborted by the client');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await client.api('HEAD', `/v2/alice/early/blobs/${digest}`, token)).status, 404);
    if (onDisk) {
      let left: string[] = [];
      for (let i = 0; i < 50; i++) {
        left = sessions();
        if (left.length === earlier.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(left, earlier, 'the cut upload removed its session');
    }
    await assertStillServing(pid, 'after the cut push');
  });
});
