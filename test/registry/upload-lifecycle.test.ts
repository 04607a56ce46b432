/**
 * The upload lifecycle as the storage driver sees it: every PATCH closes its writer,
 * the finishing PUT commits one, and a cancelled upload (DELETE, a wrong digest)
 * cancels one, so a driver never has to guess when an upload is final (an object store
 * cannot serve one that is not) or abandoned (its parts or segments would stay). On the
 * in-process registry, with the memory driver's writers observed as the stores use them.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { PathNotFoundError, type FileWriter } from '../../src/storage/driver.js';
import { startInProcessRegistry, type InProcessRegistry } from '../helpers/in-process-registry.js';
import { sha256 } from '../helpers/registry.js';

let registry: InProcessRegistry;
let token: string;
/** What the stores did with the writers they opened, in order: "close <path>", ... */
let ends: string[] = [];

before(async () => {
  registry = await startInProcessRegistry();
  token = await registry.minter.all('alice/app');
  const driver = registry.driver;
  const open = driver.writer.bind(driver);
  driver.writer = async (path: string, append: boolean): Promise<FileWriter> => {
    const w = await open(path, append);
    const seen = (what: string, fn: () => Promise<void>) => async () => {
      ends.push(`${what} ${path}`);
      await fn();
    };
    return {
      get size() {
        return w.size;
      },
      write: (chunk) => w.write(chunk),
      close: seen('close', () => w.close()),
      commit: seen('commit', () => w.commit()),
      cancel: seen('cancel', () => w.cancel()),
      ...(w.abort ? { abort: seen('abort', () => w.abort!()) } : {}),
    };
  };
});
after(() => registry?.close());
beforeEach(() => {
  ends = [];
});

const octets = (data: Buffer) => ({ 'content-type': 'application/octet-stream', 'content-length': data.length });

/** Nothing of an upload session is left in the store. */
async function assertGone(id: string): Promise<void> {
  await assert.rejects(registry.driver.stat(`/docker/registry/v2/repositories/alice/app/_uploads/${id}`), PathNotFoundError);
}

async function startUpload(): Promise<{ location: string; id: string }> {
  const r = await registry.api('POST', '/v2/alice/app/blobs/uploads/', token);
  assert.equal(r.status, 202, r.text);
  return { location: String(r.headers.location), id: String(r.headers['docker-upload-uuid']) };
}

async function patch(location: string, chunk: Buffer): Promise<string> {
  const r = await registry.api('PATCH', location, token, { body: chunk, headers: octets(chunk) });
  assert.equal(r.status, 202, r.text);
  return String(r.headers.location);
}

describe('upload lifecycle: what the driver is told', () => {
  it('chunks close their writers; the finishing PUT commits the upload, then the blob is served', async () => {
    const data = crypto.randomBytes(50_000);
    const { location, id } = await startUpload();
    let at = await patch(location, data.subarray(0, 20_000));
    at = await patch(at, data.subarray(20_000, 40_000));
    const r = await registry.api('PUT', `${at}?digest=${sha256(data)}`, token, { body: data.subarray(40_000), headers: octets(data.subarray(40_000)) });
    assert.equal(r.status, 201, r.text);
    const upload = `/docker/registry/v2/repositories/alice/app/_uploads/${id}/data`;
    assert.deepEqual(ends, [`close ${upload}`, `close ${upload}`, `commit ${upload}`]);
    const get = await registry.api('GET', `/v2/alice/app/blobs/${sha256(data)}`, token);
    assert.deepEqual(get.body, data);
    await assertGone(id);
  });

  it('a monolithic POST ?digest= commits its one writer', async () => {
    const data = crypto.randomBytes(5_000);
    const r = await registry.api('POST', `/v2/alice/app/blobs/uploads/?digest=${sha256(data)}`, token, { body: data, headers: octets(data) });
    assert.equal(r.status, 201, r.text);
    assert.equal(ends.length, 1);
    assert.match(ends[0]!, /^commit \/docker\/registry\/v2\/repositories\/alice\/app\/_uploads\/[0-9a-f-]+\/data$/);
  });

  it('DELETE cancels the upload in the driver and drops the session', async () => {
    const { location, id } = await startUpload();
    await patch(location, crypto.randomBytes(10_000));
    ends = [];
    const r = await registry.api('DELETE', location, token);
    assert.equal(r.status, 204, r.text);
    assert.deepEqual(ends, [`cancel /docker/registry/v2/repositories/alice/app/_uploads/${id}/data`]);
    await assertGone(id);
    const status = await registry.api('GET', location, token);
    assert.equal(status.status, 404);
    assert.equal(status.json<{ errors: Array<{ code: string }> }>().errors[0]!.code, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('a wrong digest cancels the upload instead of committing it; nothing is stored', async () => {
    const data = crypto.randomBytes(10_000);
    const wrong = sha256(Buffer.from('something else'));
    const { location, id } = await startUpload();
    const at = await patch(location, data);
    ends = [];
    const r = await registry.api('PUT', `${at}?digest=${wrong}`, token);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json<{ errors: Array<{ code: string }> }>().errors[0]!.code, 'DIGEST_INVALID');
    assert.deepEqual(ends, [`cancel /docker/registry/v2/repositories/alice/app/_uploads/${id}/data`]);
    await assertGone(id);
    assert.equal((await registry.api('HEAD', `/v2/alice/app/blobs/${wrong}`, token)).status, 404);
  });
});
