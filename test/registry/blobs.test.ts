/**
 * Blobs and uploads, following the OCI distribution-spec push and pull workflows:
 * monolithic and chunked uploads, upload status and cancel, cross-repository mounts,
 * ranged reads, deletes, digest checks.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { KeyportProcess } from '../helpers/keyport.js';
import { codes, onDriver, RegistryClient, sha256, startRegistry } from '../helpers/registry.js';
import type { TokenMinter } from '../helpers/tokens.js';

let kp: KeyportProcess;
let minter: TokenMinter;
let client: RegistryClient;
let token: string;

before(async () => {
  ({ kp, minter, client } = await startRegistry());
  token = await minter.all('alice/app', 'alice/other', 'alice/third', 'alice/big');
});
after(async () => kp?.stop());

const octets = { 'content-type': 'application/octet-stream' };

async function startUpload(repo = 'alice/app'): Promise<string> {
  const r = await client.api('POST', `/v2/${repo}/blobs/uploads/`, token);
  assert.equal(r.status, 202, r.text);
  assert.ok(r.headers['docker-upload-uuid']);
  assert.equal(r.headers.range, '0-0');
  return String(r.headers.location);
}

describe(onDriver('push: uploads'), () => {
  it('monolithic POST ?digest= stores the blob and answers 201 with Location and Docker-Content-Digest', async () => {
    const data = crypto.randomBytes(10_000);
    const digest = sha256(data);
    const r = await client.api('POST', `/v2/alice/app/blobs/uploads/?digest=${digest}`, token, { body: data, headers: { ...octets, 'content-length': data.length } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.location, `/v2/alice/app/blobs/${digest}`);
    assert.equal(r.headers['docker-content-digest'], digest);
    const get = await client.api('GET', `/v2/alice/app/blobs/${digest}`, token);
    assert.equal(get.status, 200);
    assert.deepEqual(get.body, data);
  });

  it('POST then PUT ?digest= with the whole body', async () => {
    const data = crypto.randomBytes(5000);
    const loc = await startUpload();
    const r = await client.api('PUT', `${loc}?digest=${sha256(data)}`, token, { body: data, headers: { ...octets, 'content-length': data.length } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers['docker-content-digest'], sha256(data));
  });

  it('chunked PATCH with Content-Range, GET status in between, then PUT without a body', async () => {
    const data = crypto.randomBytes(300_000);
    const parts = [data.subarray(0, 100_000), data.subarray(100_000, 250_000), data.subarray(250_000)];
    let loc = await startUpload();
    let offset = 0;
    for (const part of parts) {
      const r = await client.api('PATCH', loc, token, {
        body: part,
        headers: { ...octets, 'content-length': part.length, 'content-range': `${offset}-${offset + part.length - 1}` },
      });
      assert.equal(r.status, 202, r.text);
      offset += part.length;
      assert.equal(r.headers.range, `0-${offset - 1}`);
      loc = String(r.headers.location);
      const status = await client.api('GET', loc, token);
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, `0-${offset - 1}`);
      assert.equal(status.headers.location, loc);
    }
    const done = await client.api('PUT', `${loc}?digest=${sha256(data)}`, token, { headers: { 'content-length': 0 } });
    assert.equal(done.status, 201, done.text);
    assert.deepEqual((await client.api('GET', `/v2/alice/app/blobs/${sha256(data)}`, token)).body, data);
  });

  it("docker-style PATCH without Content-Range appends; the last chunk may come with the PUT", async () => {
    const data = crypto.randomBytes(70_000);
    let loc = await startUpload();
    const r = await client.api('PATCH', loc, token, { body: data.subarray(0, 60_000), headers: octets });
    assert.equal(r.status, 202);
    loc = String(r.headers.location);
    const done = await client.api('PUT', `${loc}?digest=${sha256(data)}`, token, { body: data.subarray(60_000), headers: { ...octets, 'content-length': 10_000 } });
    assert.equal(done.status, 201, done.text);
  });

  it('an out-of-order chunk gets 416 and the upload stays usable', async () => {
    const data = crypto.randomBytes(2000);
    const loc = await startUpload();
    await client.api('PATCH', loc, token, { body: data.subarray(0, 1000), headers: { ...octets, 'content-range': '0-999' } });
    const skip = await client.api('PATCH', loc, token, { body: data.subarray(1000), headers: { ...octets, 'content-range': '1500-2499' } });
    assert.equal(skip.status, 416);
    assert.equal(skip.headers.range, '0-999');
    assert.deepEqual(codes(skip), ['RANGE_INVALID']);
    const again = await client.api('PATCH', loc, token, { body: data.subarray(0, 500), headers: { ...octets, 'content-range': '0-499' } });
    assert.equal(again.status, 416, 'a chunk that rewinds is also out of order');
    const ok = await client.api('PATCH', loc, token, { body: data.subarray(1000), headers: { ...octets, 'content-range': '1000-1999' } });
    assert.equal(ok.status, 202);
    assert.equal((await client.api('PUT', `${loc}?digest=${sha256(data)}`, token)).status, 201);
  });

  it('Content-Range and Content-Length that disagree, or a malformed range, are 400 errors', async () => {
    const loc = await startUpload();
    const r = await client.api('PATCH', loc, token, { body: Buffer.alloc(10), headers: { ...octets, 'content-range': '0-99' } });
    assert.equal(r.status, 400);
    assert.deepEqual(codes(r), ['SIZE_INVALID']);
    const bad = await client.api('PATCH', loc, token, { body: Buffer.alloc(10), headers: { ...octets, 'content-range': 'banana' } });
    assert.equal(bad.status, 400);
    assert.deepEqual(codes(bad), ['BLOB_UPLOAD_INVALID']);
  });

  it('DELETE cancels an upload; afterwards it is unknown', async () => {
    const loc = await startUpload();
    await client.api('PATCH', loc, token, { body: Buffer.from('abc'), headers: octets });
    assert.equal((await client.api('DELETE', loc, token)).status, 204);
    const st = await client.api('GET', loc, token);
    assert.equal(st.status, 404);
    assert.deepEqual(codes(st), ['BLOB_UPLOAD_UNKNOWN']);
    assert.deepEqual(codes(await client.api('PATCH', loc, token, { body: Buffer.from('x'), headers: octets })), ['BLOB_UPLOAD_UNKNOWN']);
    assert.deepEqual(codes(await client.api('GET', '/v2/alice/app/blobs/uploads/not-a-uuid', token)), ['BLOB_UPLOAD_UNKNOWN']);
    assert.deepEqual(codes(await client.api('GET', `/v2/alice/app/blobs/uploads/${crypto.randomUUID()}`, token)), ['BLOB_UPLOAD_UNKNOWN']);
  });

  it('a blob whose bytes do not match its digest is refused and not stored', async () => {
    const data = crypto.randomBytes(4096);
    const claimed = sha256(Buffer.from('something else'));
    const r = await client.api('POST', `/v2/alice/app/blobs/uploads/?digest=${claimed}`, token, { body: data, headers: octets });
    assert.equal(r.status, 400);
    assert.deepEqual(codes(r), ['DIGEST_INVALID']);
    assert.equal((await client.api('HEAD', `/v2/alice/app/blobs/${claimed}`, token)).status, 404);
    assert.equal((await client.api('HEAD', `/v2/alice/app/blobs/${sha256(data)}`, token)).status, 404, 'not stored under its real digest either');
    const loc = await startUpload();
    await client.api('PATCH', loc, token, { body: data, headers: octets });
    const put = await client.api('PUT', `${loc}?digest=${claimed}`, token);
    assert.deepEqual(codes(put), ['DIGEST_INVALID']);
    assert.equal((await client.api('GET', loc, token)).status, 404, 'the failed upload is gone');
  });

  it('malformed and unsupported digests are DIGEST_INVALID, never a 500', async () => {
    for (const d of ['sha256:xyz', 'md5:d41d8cd98f00b204e9800998ecf8427e', 'sha256:' + 'A'.repeat(64), 'nodigest', '']) {
      const r = await client.api('POST', `/v2/alice/app/blobs/uploads/?digest=${encodeURIComponent(d)}`, token, { body: Buffer.from('x'), headers: octets });
      assert.equal(r.status, 400, d);
      assert.deepEqual(codes(r), ['DIGEST_INVALID'], d);
    }
    const loc = await startUpload();
    assert.deepEqual(codes(await client.api('PUT', loc, token)), ['DIGEST_INVALID'], 'PUT without digest');
  });

  it('sha512 digests work for blobs', async () => {
    const data = crypto.randomBytes(3000);
    const d = 'sha512:' + crypto.createHash('sha512').update(data).digest('hex');
    const r = await client.api('POST', `/v2/alice/app/blobs/uploads/?digest=${d}`, token, { body: data, headers: octets });
    assert.equal(r.status, 201, r.text);
    const get = await client.api('GET', `/v2/alice/app/blobs/${d}`, token);
    assert.deepEqual(get.body, data);
    assert.equal(get.headers['docker-content-digest'], d);
  });

  it('an empty blob can be pushed and pulled', async () => {
    const empty = Buffer.alloc(0);
    const r = await client.api('POST', `/v2/alice/app/blobs/uploads/?digest=${sha256(empty)}`, token, { body: empty, headers: { ...octets, 'content-length': 0 } });
    assert.equal(r.status, 201, r.text);
    const get = await client.api('GET', `/v2/alice/app/blobs/${sha256(empty)}`, token);
    assert.equal(get.status, 200);
    assert.equal(get.body.length, 0);
  });
});

describe(onDriver('cross-repository mount'), () => {
  it('mounts when the caller may pull the source; otherwise starts a normal upload', async () => {
    const digest = await client.pushBlob('alice/app', token, crypto.randomBytes(2048));
    const ok = await client.api('POST', `/v2/alice/other/blobs/uploads/?mount=${digest}&from=alice/app`, token);
    assert.equal(ok.status, 201);
    assert.equal(ok.headers.location, `/v2/alice/other/blobs/${digest}`);
    assert.equal(ok.headers['docker-content-digest'], digest);
    assert.equal((await client.api('HEAD', `/v2/alice/other/blobs/${digest}`, token)).status, 200);

    const noPull = await minter.mint([{ name: 'alice/third', actions: ['pull', 'push'] }]);
    const fallback = await client.api('POST', `/v2/alice/third/blobs/uploads/?mount=${digest}&from=alice/app`, noPull);
    assert.equal(fallback.status, 202, 'no pull on the source: a normal upload instead');
    assert.equal((await client.api('HEAD', `/v2/alice/third/blobs/${digest}`, noPull)).status, 404, 'nothing was linked');
    const missing = await client.api('POST', `/v2/alice/other/blobs/uploads/?mount=${sha256('nope')}&from=alice/app`, token);
    assert.equal(missing.status, 202, 'unknown blob: a normal upload');
    for (const q of [`mount=sha256:xyz&from=alice/app`, `mount=${digest}&from=Not/Valid`, `mount=${digest}`]) {
      const r = await client.api('POST', `/v2/alice/third/blobs/uploads/?${q}`, token);
      assert.equal(r.status, 202, `${q}: an invalid digest or source falls back to a normal upload (${r.text})`);
      assert.match(String(r.headers.location), /^\/v2\/alice\/third\/blobs\/uploads\//);
    }
  });
});

describe(onDriver('pull: blobs'), () => {
  it('HEAD gives size and digest; GET streams the bytes; Range gives 206', async () => {
    const data = crypto.randomBytes(100_000);
    const digest = await client.pushBlob('alice/app', token, data);
    const head = await client.api('HEAD', `/v2/alice/app/blobs/${digest}`, token);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(data.length));
    assert.equal(head.headers['docker-content-digest'], digest);
    assert.equal(head.body.length, 0);
    const part = await client.api('GET', `/v2/alice/app/blobs/${digest}`, token, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1000-1999/${data.length}`);
    assert.deepEqual(part.body, data.subarray(1000, 2000));
    const tail = await client.api('GET', `/v2/alice/app/blobs/${digest}`, token, { headers: { range: 'bytes=99000-' } });
    assert.deepEqual(tail.body, data.subarray(99000));
    const suffix = await client.api('GET', `/v2/alice/app/blobs/${digest}`, token, { headers: { range: 'bytes=-10' } });
    assert.deepEqual(suffix.body, data.subarray(data.length - 10));
    const beyond = await client.api('GET', `/v2/alice/app/blobs/${digest}`, token, { headers: { range: `bytes=${data.length}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${data.length}`);
  });

  it('a blob is visible only in repositories that hold it', async () => {
    const digest = await client.pushBlob('alice/app', token, crypto.randomBytes(100));
    const r = await client.api('GET', `/v2/alice/big/blobs/${digest}`, token);
    assert.equal(r.status, 404);
    assert.deepEqual(codes(r), ['BLOB_UNKNOWN']);
  });

  it('DELETE removes the blob from the repository (202); twice is BLOB_UNKNOWN', async () => {
    const digest = await client.pushBlob('alice/app', token, crypto.randomBytes(100));
    await client.api('POST', `/v2/alice/other/blobs/uploads/?mount=${digest}&from=alice/app`, token);
    assert.equal((await client.api('DELETE', `/v2/alice/app/blobs/${digest}`, token)).status, 202);
    assert.equal((await client.api('HEAD', `/v2/alice/app/blobs/${digest}`, token)).status, 404);
    assert.deepEqual(codes(await client.api('DELETE', `/v2/alice/app/blobs/${digest}`, token)), ['BLOB_UNKNOWN']);
    assert.equal((await client.api('HEAD', `/v2/alice/other/blobs/${digest}`, token)).status, 200, 'another repository still has it');
  });

  it('garbage in blob paths is a 4xx JSON error, never a 500', async () => {
    for (const p of ['/v2/alice/app/blobs/sha256:totallywrong', '/v2/alice/app/blobs/..%2F..%2Fetc%2Fpasswd', '/v2/alice/app/blobs/sha256:' + 'f'.repeat(64)]) {
      const r = await client.api('GET', p, token);
      assert.ok(r.status >= 400 && r.status < 500, `${p}: ${r.status}`);
      assert.ok(codes(r).length === 1 && !codes(r)[0]!.startsWith('(not JSON'), `${p}: ${r.text}`);
    }
  });
});

describe(onDriver('deletes can be switched off'), () => {
  it('KEYPORT_DELETE_ENABLED=false: DELETE is 405 UNSUPPORTED', async () => {
    const { kp: ro, minter: m, client: c } = await startRegistry({ KEYPORT_DELETE_ENABLED: 'false' });
    try {
      const t = await m.all('alice/app');
      const digest = await c.pushBlob('alice/app', t, Buffer.from('keep me'));
      const r = await c.api('DELETE', `/v2/alice/app/blobs/${digest}`, t);
      assert.equal(r.status, 405);
      assert.deepEqual(codes(r), ['UNSUPPORTED']);
      assert.equal((await c.api('HEAD', `/v2/alice/app/blobs/${digest}`, t)).status, 200);
    } finally {
      await ro.stop();
    }
  });
});
