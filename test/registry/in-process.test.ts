/**
 * The registry API in this process (registryApp on the memory driver): the basics of
 * the push and pull workflows, the errors a client gets for what does not exist, and
 * the bearer challenge that sends a client to the token server. Fast and without any
 * service, next to the real-process suites that run the same API over HTTPS on real
 * storage.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Response } from '../helpers/http.js';
import { REALM, SERVICE, startInProcessRegistry, type InProcessRegistry } from '../helpers/in-process-registry.js';
import { sha256 } from '../helpers/registry.js';

let registry: InProcessRegistry;
let token: string;

before(async () => {
  registry = await startInProcessRegistry();
  token = await registry.minter.all('alice/app');
});
after(() => registry?.close());

const octets = (data: Buffer) => ({ 'content-type': 'application/octet-stream', 'content-length': data.length });

/** The single OCI error of a response, checked to be in the spec's format. */
function ociError(r: Response): { code: string; message: string } {
  assert.match(String(r.headers['content-type']), /^application\/json/, r.text);
  const body = r.json<{ errors: Array<{ code: string; message: string }> }>();
  assert.equal(body.errors.length, 1, r.text);
  assert.equal(typeof body.errors[0]!.message, 'string');
  return body.errors[0]!;
}

async function pushBlob(data: Buffer, repo = 'alice/app'): Promise<string> {
  const digest = sha256(data);
  const r = await registry.api('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, token, { body: data, headers: octets(data) });
  assert.equal(r.status, 201, r.text);
  return digest;
}

/** A one-layer image manifest over blobs that are pushed first. */
async function imageManifest(): Promise<Buffer> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = crypto.randomBytes(2048);
  return manifestOf(await pushBlob(config), config.length, await pushBlob(layer), layer.length);
}

function manifestOf(config: string, configSize: number, layer: string, layerSize: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configSize },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: layerSize }],
    }),
  );
}

const OCI_MANIFEST = { 'content-type': 'application/vnd.oci.image.manifest.v1+json' };

describe('in-process registry: authentication', () => {
  it('GET /v2/ without a token: 401 with a bearer challenge naming the realm and service', async () => {
    const r = await registry.api('GET', '/v2/');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], `Bearer realm="${REALM}",service="${SERVICE}"`);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(ociError(r).code, 'UNAUTHORIZED');
  });

  it('GET /v2/ with any valid token: 200', async () => {
    const r = await registry.api('GET', '/v2/', await registry.minter.mint([]));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  it('a repository request without a token: the challenge carries the scope it needs', async () => {
    const r = await registry.api('GET', '/v2/alice/app/tags/list');
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:alice/app:pull"`);
  });

  it('a token signed by another key: 401 invalid_token', async () => {
    const other = await startInProcessRegistry();
    try {
      const r = await registry.api('GET', '/v2/alice/app/tags/list', await other.minter.all('alice/app'));
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
      assert.equal(ociError(r).code, 'UNAUTHORIZED');
    } finally {
      await other.close();
    }
  });

  it('a pull-only token cannot push: 401 insufficient_scope, and nothing is stored', async () => {
    const pull = await registry.minter.mint([{ name: 'alice/app', actions: ['pull'] }]);
    const data = crypto.randomBytes(100);
    const r = await registry.api('POST', `/v2/alice/app/blobs/uploads/?digest=${sha256(data)}`, pull, { body: data, headers: octets(data) });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], `Bearer realm="${REALM}",service="${SERVICE}",scope="repository:alice/app:pull,push",error="insufficient_scope"`);
    assert.equal(ociError(r).code, 'DENIED');
    assert.equal((await registry.api('HEAD', `/v2/alice/app/blobs/${sha256(data)}`, token)).status, 404);
  });
});

describe('in-process registry: blobs', () => {
  it('monolithic upload: POST ?digest= stores the blob; GET returns it, HEAD describes it', async () => {
    const data = crypto.randomBytes(10_000);
    const digest = sha256(data);
    const r = await registry.api('POST', `/v2/alice/app/blobs/uploads/?digest=${digest}`, token, { body: data, headers: octets(data) });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.location, `/v2/alice/app/blobs/${digest}`);
    assert.equal(r.headers['docker-content-digest'], digest);
    const get = await registry.api('GET', `/v2/alice/app/blobs/${digest}`, token);
    assert.equal(get.status, 200);
    assert.deepEqual(get.body, data);
    const head = await registry.api('HEAD', `/v2/alice/app/blobs/${digest}`, token);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(data.length));
    assert.equal(head.headers['docker-content-digest'], digest);
    assert.equal(head.body.length, 0);
  });

  it('chunked upload: POST, PATCH chunks with Content-Range, status in between, PUT ?digest=', async () => {
    const data = crypto.randomBytes(30_000);
    const start = await registry.api('POST', '/v2/alice/app/blobs/uploads/', token);
    assert.equal(start.status, 202, start.text);
    assert.equal(start.headers.range, '0-0');
    let location = String(start.headers.location);
    for (const [from, to] of [[0, 10_000], [10_000, 30_000]] as const) {
      const chunk = data.subarray(from, to);
      const r = await registry.api('PATCH', location, token, { body: chunk, headers: { ...octets(chunk), 'content-range': `${from}-${to - 1}` } });
      assert.equal(r.status, 202, r.text);
      assert.equal(r.headers.range, `0-${to - 1}`);
      location = String(r.headers.location);
      const status = await registry.api('GET', location, token);
      assert.equal(status.status, 204);
      assert.equal(status.headers.range, `0-${to - 1}`);
    }
    const done = await registry.api('PUT', `${location}?digest=${sha256(data)}`, token);
    assert.equal(done.status, 201, done.text);
    assert.equal(done.headers['docker-content-digest'], sha256(data));
    assert.deepEqual((await registry.api('GET', `/v2/alice/app/blobs/${sha256(data)}`, token)).body, data);
  });

  it('a chunk out of order: 416 RANGE_INVALID, and the upload goes on from where it was', async () => {
    const data = crypto.randomBytes(200);
    const start = await registry.api('POST', '/v2/alice/app/blobs/uploads/', token);
    const location = String(start.headers.location);
    const skip = await registry.api('PATCH', location, token, { body: data.subarray(100), headers: { ...octets(data.subarray(100)), 'content-range': '100-199' } });
    assert.equal(skip.status, 416, skip.text);
    assert.equal(ociError(skip).code, 'RANGE_INVALID');
    const r = await registry.api('PUT', `${location}?digest=${sha256(data)}`, token, { body: data, headers: { ...octets(data), 'content-range': '0-199' } });
    assert.equal(r.status, 201, r.text);
  });

  it('bytes that do not match the digest: 400 DIGEST_INVALID, and no blob under either digest', async () => {
    const data = crypto.randomBytes(500);
    const claimed = sha256('something else');
    const r = await registry.api('POST', `/v2/alice/app/blobs/uploads/?digest=${claimed}`, token, { body: data, headers: octets(data) });
    assert.equal(r.status, 400);
    assert.equal(ociError(r).code, 'DIGEST_INVALID');
    for (const d of [claimed, sha256(data)]) assert.equal((await registry.api('HEAD', `/v2/alice/app/blobs/${d}`, token)).status, 404);
  });

  it('an unknown blob: 404 BLOB_UNKNOWN on GET, an empty 404 on HEAD', async () => {
    const missing = sha256(crypto.randomBytes(8));
    const get = await registry.api('GET', `/v2/alice/app/blobs/${missing}`, token);
    assert.equal(get.status, 404);
    assert.equal(ociError(get).code, 'BLOB_UNKNOWN');
    const head = await registry.api('HEAD', `/v2/alice/app/blobs/${missing}`, token);
    assert.equal(head.status, 404);
    assert.equal(head.body.length, 0);
  });

  it('an unknown upload: 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const r = await registry.api('GET', `/v2/alice/app/blobs/uploads/${crypto.randomUUID()}`, token);
    assert.equal(r.status, 404);
    assert.equal(ociError(r).code, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('in-process registry: manifests and tags', () => {
  it('PUT by tag, GET and HEAD by tag and by digest, tags list, DELETE by digest', async () => {
    const body = await imageManifest();
    const digest = sha256(body);
    const put = await registry.api('PUT', '/v2/alice/app/manifests/v1', token, { body, headers: OCI_MANIFEST });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.headers['docker-content-digest'], digest);
    assert.equal(put.headers.location, `/v2/alice/app/manifests/${digest}`);

    for (const ref of ['v1', digest]) {
      const get = await registry.api('GET', `/v2/alice/app/manifests/${ref}`, token, { headers: { accept: OCI_MANIFEST['content-type'] } });
      assert.equal(get.status, 200, get.text);
      assert.deepEqual(get.body, body, `the bytes pushed, by ${ref}`);
      assert.equal(get.headers['content-type'], OCI_MANIFEST['content-type']);
      assert.equal(get.headers['docker-content-digest'], digest);
      const head = await registry.api('HEAD', `/v2/alice/app/manifests/${ref}`, token, { headers: { accept: OCI_MANIFEST['content-type'] } });
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(body.length));
      assert.equal(head.headers['docker-content-digest'], digest);
      assert.equal(head.body.length, 0);
    }

    assert.equal((await registry.api('PUT', '/v2/alice/app/manifests/v2', token, { body, headers: OCI_MANIFEST })).status, 201);
    const tags = await registry.api('GET', '/v2/alice/app/tags/list', token);
    assert.equal(tags.status, 200);
    assert.deepEqual(tags.json(), { name: 'alice/app', tags: ['v1', 'v2'] });

    const del = await registry.api('DELETE', `/v2/alice/app/manifests/${digest}`, token);
    assert.equal(del.status, 202, del.text);
    for (const ref of ['v1', digest]) {
      const gone = await registry.api('GET', `/v2/alice/app/manifests/${ref}`, token);
      assert.equal(gone.status, 404, `deleted, by ${ref}`);
      assert.equal(ociError(gone).code, 'MANIFEST_UNKNOWN');
    }
    assert.deepEqual((await registry.api('GET', '/v2/alice/app/tags/list', token)).json(), { name: 'alice/app', tags: [] });
  });

  it('a manifest another instance deleted from the shared store is not served again from memory', async () => {
    const body = await imageManifest();
    const digest = sha256(body);
    assert.equal((await registry.api('PUT', '/v2/alice/app/manifests/shared', token, { body, headers: OCI_MANIFEST })).status, 201);
    assert.equal((await registry.api('GET', `/v2/alice/app/manifests/${digest}`, token)).status, 200);
    // What a DELETE on another registry over the same store leaves: no revision link.
    const hex = digest.slice('sha256:'.length);
    await registry.driver.delete(`/docker/registry/v2/repositories/alice/app/_manifests/revisions/sha256/${hex}`);
    for (const ref of ['shared', digest]) {
      const gone = await registry.api('GET', `/v2/alice/app/manifests/${ref}`, token);
      assert.equal(gone.status, 404, `deleted elsewhere, by ${ref}`);
      assert.equal(ociError(gone).code, 'MANIFEST_UNKNOWN');
    }
    // Pushed again, it is served again, byte for byte.
    assert.equal((await registry.api('PUT', '/v2/alice/app/manifests/shared', token, { body, headers: OCI_MANIFEST })).status, 201);
    assert.deepEqual((await registry.api('GET', '/v2/alice/app/manifests/shared', token)).body, body);
  });

  it('a manifest naming a blob that was never pushed: 400 MANIFEST_BLOB_UNKNOWN, nothing tagged', async () => {
    const config = await pushBlob(Buffer.from('{}'));
    const body = manifestOf(config, 2, sha256(crypto.randomBytes(8)), 100);
    const r = await registry.api('PUT', '/v2/alice/app/manifests/broken', token, { body, headers: OCI_MANIFEST });
    assert.equal(r.status, 400);
    assert.equal(ociError(r).code, 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await registry.api('GET', '/v2/alice/app/manifests/broken', token)).status, 404);
  });

  it('a body that is not a manifest: 400 MANIFEST_INVALID', async () => {
    const r = await registry.api('PUT', '/v2/alice/app/manifests/junk', token, { body: Buffer.from('not json'), headers: OCI_MANIFEST });
    assert.equal(r.status, 400);
    assert.equal(ociError(r).code, 'MANIFEST_INVALID');
  });

  it('an unknown manifest: 404 MANIFEST_UNKNOWN by tag and by digest, an empty 404 on HEAD', async () => {
    for (const ref of ['nosuchtag', sha256(crypto.randomBytes(8))]) {
      const r = await registry.api('GET', `/v2/alice/app/manifests/${ref}`, token);
      assert.equal(r.status, 404);
      assert.equal(ociError(r).code, 'MANIFEST_UNKNOWN');
    }
    const head = await registry.api('HEAD', '/v2/alice/app/manifests/nosuchtag', token);
    assert.equal(head.status, 404);
    assert.equal(head.body.length, 0);
  });

  it('the tags of a repository that does not exist: 404 NAME_UNKNOWN', async () => {
    const r = await registry.api('GET', '/v2/alice/nothing/tags/list', await registry.minter.all('alice/nothing'));
    assert.equal(r.status, 404);
    assert.equal(ociError(r).code, 'NAME_UNKNOWN');
  });
});
