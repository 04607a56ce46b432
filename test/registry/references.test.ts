/**
 * Malformed references on every method. A tag or digest that cannot exist names
 * nothing stored, so reads and deletes answer 404 with MANIFEST_UNKNOWN or BLOB_UNKNOWN,
 * as for any reference that is not there (the distribution-spec lists only 404 for
 * them, and its conformance suite asks for .INVALID_MANIFEST_NAME). Where the client
 * writes with one, the request itself is wrong and stays a 400: a PUT of a manifest to
 * an invalid tag or digest, an upload finished with a malformed digest, and the
 * referrers API, which the spec forbids from answering 404.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KeyportProcess } from '../helpers/keyport.js';
import { codes, RegistryClient, sha256, startRegistry } from '../helpers/registry.js';
import type { TokenMinter } from '../helpers/tokens.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let kp: KeyportProcess;
let minter: TokenMinter;
let client: RegistryClient;
let token: string;
let manifest: Buffer;

before(async () => {
  ({ kp, minter, client } = await startRegistry());
  token = await minter.all('alice/refs');
  manifest = (await client.pushImage('alice/refs', 'exists', token)).body;
});
after(async () => kp?.stop());

/** Malformed tags: [what, reference as it appears in the URL]. */
const BAD_TAGS: Array<[string, string]> = [
  ['the conformance suite\'s nonexistent name', '.INVALID_MANIFEST_NAME'],
  ['leading dot', '.hidden'],
  ['leading dash', '-v1'],
  ['leading dots', '..v1'],
  ['129 characters', 't'.repeat(129)],
  ['a space', 'v%201'],
  ['a NUL byte', 'v1%00'],
  ['a non-ASCII letter', 'v%C3%A91'],
];

/** Malformed or unsupported digests: [what, digest as it appears in the URL]. */
const BAD_DIGESTS: Array<[string, string]> = [
  ['not hex', 'sha256:totallywrong'],
  ['upper-case hex', `sha256:${'A'.repeat(64)}`],
  ['63 hex digits', `sha256:${'a'.repeat(63)}`],
  ['65 hex digits', `sha256:${'a'.repeat(65)}`],
  ['sha512 of sha256 length', `sha512:${'a'.repeat(64)}`],
  ['unsupported algorithm', 'md5:d41d8cd98f00b204e9800998ecf8427e'],
  ['no algorithm', `:${'a'.repeat(64)}`],
  ['no hex', 'sha256:'],
  ['percent-encoded colon, bad hex', 'sha256%3Axyz'],
];

describe('malformed manifest references', () => {
  for (const [what, ref] of [...BAD_TAGS, ...BAD_DIGESTS]) {
    it(`${what} (${ref.slice(0, 24)}): GET, HEAD and DELETE 404 MANIFEST_UNKNOWN; PUT 400`, async () => {
      const path = `/v2/alice/refs/manifests/${ref}`;
      const get = await client.api('GET', path, token);
      assert.equal(get.status, 404, `GET: ${get.text}`);
      assert.deepEqual(codes(get), ['MANIFEST_UNKNOWN']);
      assert.equal(get.headers['content-type'], 'application/json; charset=utf-8');

      const head = await client.api('HEAD', path, token);
      assert.equal(head.status, 404);
      assert.equal(head.body.length, 0, 'HEAD has no body');

      const del = await client.api('DELETE', path, token);
      assert.equal(del.status, 404, `DELETE: ${del.text}`);
      assert.deepEqual(codes(del), ['MANIFEST_UNKNOWN']);

      // Storing under it is the client's mistake, with a valid manifest as the body.
      const put = await client.api('PUT', path, token, { body: manifest, headers: { 'content-type': OCI_MANIFEST } });
      assert.equal(put.status, 400, `PUT: ${put.text}`);
      assert.deepEqual(codes(put), [decodeURIComponent(ref).includes(':') ? 'DIGEST_INVALID' : 'MANIFEST_INVALID']);
    });
  }

  it('the longest valid tag (128 characters) is stored and served; an unknown valid one is MANIFEST_UNKNOWN', async () => {
    const tag = `v${'1'.repeat(127)}`;
    const put = await client.api('PUT', `/v2/alice/refs/manifests/${tag}`, token, { body: manifest, headers: { 'content-type': OCI_MANIFEST } });
    assert.equal(put.status, 201, put.text);
    assert.equal((await client.api('GET', `/v2/alice/refs/manifests/${tag}`, token)).status, 200);
    const unknown = await client.api('GET', '/v2/alice/refs/manifests/never-pushed', token);
    assert.equal(unknown.status, 404);
    assert.deepEqual(codes(unknown), ['MANIFEST_UNKNOWN']);
  });

  it('a malformed reference in a repository that does not exist is the same 404', async () => {
    const t = await minter.all('alice/ghost');
    const r = await client.api('GET', '/v2/alice/ghost/manifests/.INVALID_MANIFEST_NAME', t);
    assert.equal(r.status, 404);
    assert.deepEqual(codes(r), ['MANIFEST_UNKNOWN']);
  });

  it('the 404 needs the same access as any read: no token is 401 with the challenge', async () => {
    const r = await client.api('GET', '/v2/alice/refs/manifests/.INVALID_MANIFEST_NAME', undefined);
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /scope="repository:alice\/refs:pull"/);
  });
});

describe('malformed blob digests', () => {
  for (const [what, digest] of [...BAD_DIGESTS, ['a tag, not a digest', 'latest'] as [string, string]]) {
    it(`${what} (${digest.slice(0, 24)}): GET, HEAD and DELETE 404 BLOB_UNKNOWN`, async () => {
      const path = `/v2/alice/refs/blobs/${digest}`;
      const get = await client.api('GET', path, token);
      assert.equal(get.status, 404, `GET: ${get.text}`);
      assert.deepEqual(codes(get), ['BLOB_UNKNOWN']);
      const head = await client.api('HEAD', path, token);
      assert.equal(head.status, 404);
      assert.equal(head.body.length, 0);
      const del = await client.api('DELETE', path, token);
      assert.equal(del.status, 404, `DELETE: ${del.text}`);
      assert.deepEqual(codes(del), ['BLOB_UNKNOWN']);
    });
  }
});

describe('malformed digests where the client writes or asks for a listing: 400 DIGEST_INVALID', () => {
  for (const [what, digest] of BAD_DIGESTS) {
    it(`${what} (${digest.slice(0, 24)}): upload finish and referrers`, async () => {
      const start = await client.api('POST', '/v2/alice/refs/blobs/uploads/', token);
      assert.equal(start.status, 202);
      const finish = await client.api('PUT', `${start.headers.location}?digest=${digest}`, token, {
        body: Buffer.from('data'),
        headers: { 'content-type': 'application/octet-stream' },
      });
      assert.equal(finish.status, 400, `upload PUT: ${finish.text}`);
      assert.deepEqual(codes(finish), ['DIGEST_INVALID']);

      const referrers = await client.api('GET', `/v2/alice/refs/referrers/${digest}`, token);
      assert.equal(referrers.status, 400, `referrers: ${referrers.text}`);
      assert.deepEqual(codes(referrers), ['DIGEST_INVALID']);
    });
  }

  it('a well-formed digest nothing has: referrers is an empty index, not a 404', async () => {
    const r = await client.api('GET', `/v2/alice/refs/referrers/${sha256('nothing')}`, token);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json().manifests, []);
  });
});
