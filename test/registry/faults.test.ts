/**
 * Crashes, races and large blobs: a killed registry never serves a partial blob and
 * lets uploads resume; concurrent pushes of one blob both succeed and store it once;
 * memory stays flat however large the blob.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
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
  token = await minter.all('alice/crash', 'alice/race', 'alice/big');
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
