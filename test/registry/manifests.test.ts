/**
 * Manifests, tags, catalog and referrers: the OCI distribution-spec pull, push,
 * content discovery and content management workflows.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { KeyportProcess } from '../helpers/keyport.js';
import { codes, onDriver, RegistryClient, sha256, startRegistry } from '../helpers/registry.js';
import type { TokenMinter } from '../helpers/tokens.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

let kp: KeyportProcess;
let minter: TokenMinter;
let client: RegistryClient;
let token: string;

before(async () => {
  ({ kp, minter, client } = await startRegistry({ KEYPORT_MAX_MANIFEST_SIZE: String(64 * 1024) }));
  token = await minter.all('alice/app', 'alice/list', 'alice/art', 'alice/tags', 'alice/del', 'alice/neg', 'alice/sizes');
});
after(async () => kp?.stop());

function put(repo: string, ref: string, body: Buffer | object, contentType: string) {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  return client.api('PUT', `/v2/${repo}/manifests/${ref}`, token, { body: b, headers: { 'content-type': contentType } });
}

describe(onDriver('manifests: push and pull'), () => {
  it('PUT by tag answers 201 with Docker-Content-Digest; GET and HEAD by tag and digest return the same bytes', async () => {
    const img = await client.pushImage('alice/app', 'v1', token);
    assert.equal(img.digest, sha256(img.body));
    for (const ref of ['v1', img.digest]) {
      const get = await client.api('GET', `/v2/alice/app/manifests/${ref}`, token, { headers: { accept: OCI_MANIFEST } });
      assert.equal(get.status, 200);
      assert.deepEqual(get.body, img.body, 'byte for byte');
      assert.equal(get.headers['content-type'], OCI_MANIFEST);
      assert.equal(get.headers['docker-content-digest'], img.digest);
      const head = await client.api('HEAD', `/v2/alice/app/manifests/${ref}`, token);
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(img.body.length));
      assert.equal(head.headers['docker-content-digest'], img.digest);
    }
  });

  it('PUT by digest works, and a digest that does not match the body is DIGEST_INVALID', async () => {
    const img = await client.pushImage('alice/app', 'v2', token);
    const again = await put('alice/app', img.digest, img.body, OCI_MANIFEST);
    assert.equal(again.status, 201);
    const wrong = await put('alice/app', sha256('other'), img.body, OCI_MANIFEST);
    assert.equal(wrong.status, 400);
    assert.deepEqual(codes(wrong), ['DIGEST_INVALID']);
  });

  it('Docker schema 2 manifests and manifest lists', async () => {
    const amd = await client.pushImage('alice/list', 'amd64', token, { mediaType: DOCKER_MANIFEST });
    const arm = await client.pushImage('alice/list', 'arm64', token, { mediaType: DOCKER_MANIFEST });
    const list = {
      schemaVersion: 2,
      mediaType: DOCKER_LIST,
      manifests: [
        { mediaType: DOCKER_MANIFEST, digest: amd.digest, size: amd.body.length, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: DOCKER_MANIFEST, digest: arm.digest, size: arm.body.length, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    };
    const r = await put('alice/list', 'multi', list, DOCKER_LIST);
    assert.equal(r.status, 201, r.text);
    const get = await client.api('GET', '/v2/alice/list/manifests/multi', token, { headers: { accept: `${DOCKER_LIST}, ${DOCKER_MANIFEST}` } });
    assert.equal(get.headers['content-type'], DOCKER_LIST);
  });

  it('content negotiation: a client that does not accept a list gets the linux/amd64 image', async () => {
    const get = await client.api('GET', '/v2/alice/list/manifests/multi', token, { headers: { accept: DOCKER_MANIFEST } });
    assert.equal(get.status, 200);
    assert.equal(get.headers['content-type'], DOCKER_MANIFEST);
    const amd = await client.api('GET', '/v2/alice/list/manifests/amd64', token);
    assert.equal(get.headers['docker-content-digest'], amd.headers['docker-content-digest']);
  });

  it('an OCI index whose children are missing is MANIFEST_BLOB_UNKNOWN; with them it is stored', async () => {
    const img = await client.pushImage('alice/list', 'oci-child', token);
    const missing = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256('absent'), size: 10 }] };
    const bad = await put('alice/list', 'broken', missing, OCI_INDEX);
    assert.equal(bad.status, 400);
    assert.deepEqual(codes(bad), ['MANIFEST_BLOB_UNKNOWN']);
    const ok = await put('alice/list', 'oci', { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: img.digest, size: img.body.length }] }, OCI_INDEX);
    assert.equal(ok.status, 201);
  });

  it('a manifest referencing a blob the repository does not have is MANIFEST_BLOB_UNKNOWN', async () => {
    const layer = await client.pushBlob('alice/app', token, crypto.randomBytes(100));
    const config = await client.pushBlob('alice/app', token, Buffer.from('{}'));
    const m = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 100 },
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256('never pushed'), size: 12 },
      ],
    };
    const r = await put('alice/app', 'incomplete', m, OCI_MANIFEST);
    assert.equal(r.status, 400);
    assert.deepEqual(codes(r), ['MANIFEST_BLOB_UNKNOWN']);
    assert.equal(r.json().errors[0].detail.digest, sha256('never pushed'));
    // A blob in another repository does not count either.
    const other = await client.pushBlob('alice/art', token, Buffer.from('elsewhere'));
    const m2 = { ...m, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: other, size: 9 }] };
    assert.deepEqual(codes(await put('alice/app', 'elsewhere', m2, OCI_MANIFEST)), ['MANIFEST_BLOB_UNKNOWN']);
  });

  it('invalid manifests are MANIFEST_INVALID: bad JSON, schema 1, wrong schemaVersion, type mismatch, bad descriptors', async () => {
    const cases: Array<[string, Buffer | object, string]> = [
      ['not JSON', Buffer.from('{nope'), OCI_MANIFEST],
      ['schema 1', { schemaVersion: 1, name: 'alice/app', tag: 'x', fsLayers: [] }, 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
      ['schemaVersion 3', { schemaVersion: 3, mediaType: OCI_MANIFEST }, OCI_MANIFEST],
      ['mediaType differs from Content-Type', { schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [] }, DOCKER_MANIFEST],
      ['config without digest', { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', size: 1 }, layers: [] }, OCI_MANIFEST],
      ['negative size', { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: sha256('x'), size: -1 }, layers: [] }, OCI_MANIFEST],
      ['layers not a list', { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'x', digest: sha256('x'), size: 1 }, layers: {} }, OCI_MANIFEST],
      ['a JSON array', [1, 2, 3], OCI_MANIFEST],
      ['unknown media type', { schemaVersion: 2, mediaType: 'application/x-bogus' }, 'application/x-bogus'],
    ];
    for (const [what, body, ct] of cases) {
      const r = await put('alice/app', 'bad', body, ct);
      assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
      assert.deepEqual(codes(r), ['MANIFEST_INVALID'], what);
    }
  });

  it('manifests over the size limit are refused with 413 before being read whole', async () => {
    const big = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, annotations: { pad: 'x'.repeat(70 * 1024) } }));
    const r = await put('alice/app', 'huge', big, OCI_MANIFEST);
    assert.equal(r.status, 413);
    assert.deepEqual(codes(r), ['SIZE_INVALID']);
  });

  it('unknown manifests and garbage references are clear 4xx errors, never 500', async () => {
    const unknownTag = await client.api('GET', '/v2/alice/app/manifests/nope', token);
    assert.equal(unknownTag.status, 404);
    assert.deepEqual(codes(unknownTag), ['MANIFEST_UNKNOWN']);
    assert.deepEqual(codes(await client.api('GET', `/v2/alice/app/manifests/${sha256('nope')}`, token)), ['MANIFEST_UNKNOWN']);
    // Malformed tags and digests name nothing stored (references.test.ts has every method).
    assert.deepEqual(codes(await client.api('GET', '/v2/alice/app/manifests/sha256:totallywrong', token)), ['MANIFEST_UNKNOWN']);
    assert.deepEqual(codes(await client.api('GET', `/v2/alice/app/manifests/${'t'.repeat(200)}`, token)), ['MANIFEST_UNKNOWN']);
    const traversal = await client.api('GET', '/v2/alice/app/manifests/..', token);
    assert.ok(traversal.status >= 400 && traversal.status < 500);
    const badName = await client.api('GET', '/v2/Alice/App/tags/list', token);
    assert.equal(badName.status, 400);
    assert.deepEqual(codes(badName), ['NAME_INVALID']);
    const dots = await client.api('GET', '/v2/alice/../../etc/tags/list', token);
    assert.ok(dots.status === 400 || dots.status === 404, `${dots.status}`);
  });
});

describe(onDriver('manifests: descriptor sizes'), () => {
  const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
  const CONFIG = 'application/vnd.oci.image.config.v1+json';
  let layer: { digest: string; size: number };
  let layer2: { digest: string; size: number };
  let config: { digest: string; size: number };
  let child: { digest: string; size: number };
  let child2: { digest: string; size: number };

  before(async () => {
    const l = crypto.randomBytes(30);
    const l2 = crypto.randomBytes(500);
    const c = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    layer = { digest: await client.pushBlob('alice/sizes', token, l), size: l.length };
    layer2 = { digest: await client.pushBlob('alice/sizes', token, l2), size: l2.length };
    config = { digest: await client.pushBlob('alice/sizes', token, c), size: c.length };
    const a = await client.pushImage('alice/sizes', 'child-a', token);
    const b = await client.pushImage('alice/sizes', 'child-b', token);
    child = { digest: a.digest, size: a.body.length };
    child2 = { digest: b.digest, size: b.body.length };
  });

  type Desc = { mediaType: string; digest: string; size: number; urls?: string[] };
  const image = (cfg: number, sizes: number[]): { schemaVersion: number; mediaType: string; config: Desc; layers: Desc[] } => ({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: CONFIG, digest: config.digest, size: config.size + cfg },
    layers: [layer, layer2].map((l, i) => ({ mediaType: LAYER, digest: l.digest, size: l.size + sizes[i]! })),
  });
  const index = (sizes: number[]) => ({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [child, child2].map((m, i) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.size + sizes[i]!, platform: { os: 'linux', architecture: `arch${i}` } })),
  });

  // [what, manifest, the descriptor the error must name (null: accepted), the size it declared]
  const cases: Array<[string, () => object, string | null, () => number]> = [
    ['exact sizes', () => image(0, [0, 0]), null, () => 0],
    ['a layer declared far too large (30 bytes as 999999)', () => ({ ...image(0, [0, 0]), layers: [{ mediaType: LAYER, digest: layer.digest, size: 999999 }] }), 'layers[0]', () => 999999],
    ['a layer one byte too large', () => image(0, [1, 0]), 'layers[0]', () => layer.size + 1],
    ['a layer one byte too small', () => image(0, [-1, 0]), 'layers[0]', () => layer.size - 1],
    ['the second layer too small', () => image(0, [0, -200]), 'layers[1]', () => layer2.size - 200],
    ['a layer declared empty', () => image(0, [-30, 0]), 'layers[0]', () => 0],
    ['the config too large', () => image(7, [0, 0]), 'config', () => config.size + 7],
    ['the config too small', () => image(-1, [0, 0]), 'config', () => config.size - 1],
    ['an index with exact child sizes', () => index([0, 0]), null, () => 0],
    ['an index child too large', () => index([0, 1000]), 'manifests[1]', () => child2.size + 1000],
    ['an index child too small', () => index([-1, 0]), 'manifests[0]', () => child.size - 1],
    ['a Docker manifest list child too small', () => ({ ...index([-5, 0]), mediaType: DOCKER_LIST }), 'manifests[0]', () => child.size - 5],
  ];

  for (const [what, make, field, declared] of cases) {
    it(`${what}: ${field ? `400 MANIFEST_INVALID naming ${field}, nothing stored` : '201'}`, async () => {
      const body = Buffer.from(JSON.stringify(make()));
      const mediaType = (make() as { mediaType: string }).mediaType;
      const tag = `t-${crypto.randomBytes(4).toString('hex')}`;
      const r = await put('alice/sizes', tag, body, mediaType);
      if (!field) {
        assert.equal(r.status, 201, r.text);
        return;
      }
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(codes(r), ['MANIFEST_INVALID']);
      const e = r.json().errors[0];
      assert.match(e.message, new RegExp(`\\b${field.replace(/[[\]]/g, '\\$&')} declares size ${declared()}\\b`));
      const target = field === 'config' ? config : field.startsWith('layers') ? [layer, layer2][Number(field.slice(7, -1))]! : [child, child2][Number(field.slice(10, -1))]!;
      assert.deepEqual(e.detail, { descriptor: field, digest: target.digest, size: declared(), storedSize: target.size });
      assert.deepEqual(codes(await client.api('GET', `/v2/alice/sizes/manifests/${tag}`, token)), ['MANIFEST_UNKNOWN'], 'no tag');
      assert.deepEqual(codes(await client.api('GET', `/v2/alice/sizes/manifests/${sha256(body)}`, token)), ['MANIFEST_UNKNOWN'], 'no revision');
    });
  }

  it('a missing blob is MANIFEST_BLOB_UNKNOWN even when an earlier descriptor has a wrong size', async () => {
    const m = image(1, [0, 0]);
    m.layers.push({ mediaType: LAYER, digest: sha256('never pushed here'), size: 17 });
    const r = await put('alice/sizes', 'missing', m, OCI_MANIFEST);
    assert.equal(r.status, 400);
    assert.deepEqual(codes(r), ['MANIFEST_BLOB_UNKNOWN']);
    assert.equal(r.json().errors[0].detail.digest, sha256('never pushed here'));
  });

  it('the same blob listed twice is checked at each place it appears', async () => {
    const m = image(0, [0, 0]);
    m.layers.push({ mediaType: LAYER, digest: layer.digest, size: layer.size + 3 });
    const r = await put('alice/sizes', 'twice', m, OCI_MANIFEST);
    assert.equal(r.status, 400);
    assert.equal(r.json().errors[0].detail.descriptor, 'layers[2]');
  });

  it('a foreign layer with urls is not in the registry, so its size is not checked', async () => {
    const m = image(0, [0, 0]);
    m.layers.push({ mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: sha256('elsewhere'), size: 123456, urls: ['https://example.com/layer'] });
    const r = await put('alice/sizes', 'foreign', m, OCI_MANIFEST);
    assert.equal(r.status, 201, r.text);
  });

  it('a subject need not exist, so its size is not checked either', async () => {
    const m = { ...image(0, [0, 0]), subject: { mediaType: OCI_MANIFEST, digest: child.digest, size: child.size + 99 } };
    const r = await put('alice/sizes', 'with-subject', m, OCI_MANIFEST);
    assert.equal(r.status, 201, r.text);
  });
});

describe(onDriver('tags and catalog'), () => {
  it('tags are sorted and paginated with n, last and a Link header', async () => {
    for (const t of ['c', 'a', 'e', 'b', 'd']) await client.pushImage('alice/tags', t, token);
    const all = await client.api('GET', '/v2/alice/tags/tags/list', token);
    assert.deepEqual(all.json(), { name: 'alice/tags', tags: ['a', 'b', 'c', 'd', 'e'] });
    const p1 = await client.api('GET', '/v2/alice/tags/tags/list?n=2', token);
    assert.deepEqual(p1.json().tags, ['a', 'b']);
    assert.equal(p1.headers.link, '</v2/alice/tags/tags/list?n=2&last=b>; rel="next"');
    const p2 = await client.api('GET', '/v2/alice/tags/tags/list?n=2&last=b', token);
    assert.deepEqual(p2.json().tags, ['c', 'd']);
    const p3 = await client.api('GET', '/v2/alice/tags/tags/list?n=2&last=d', token);
    assert.deepEqual(p3.json().tags, ['e']);
    assert.equal(p3.headers.link, undefined);
    assert.deepEqual((await client.api('GET', '/v2/alice/tags/tags/list?n=0', token)).json().tags, []);
    assert.deepEqual(codes(await client.api('GET', '/v2/alice/tags/tags/list?n=-1', token)), ['PAGINATION_NUMBER_INVALID']);
  });

  it('tags of a repository that does not exist: NAME_UNKNOWN', async () => {
    const t = await minter.all('alice/ghost');
    const r = await client.api('GET', '/v2/alice/ghost/tags/list', t);
    assert.equal(r.status, 404);
    assert.deepEqual(codes(r), ['NAME_UNKNOWN']);
  });

  it('the catalog lists repositories, sorted and paginated, for registry:catalog:*', async () => {
    const cat = await minter.mint([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    const r = await client.api('GET', '/v2/_catalog', cat);
    assert.equal(r.status, 200);
    const repos = r.json().repositories as string[];
    for (const n of ['alice/app', 'alice/list', 'alice/tags']) assert.ok(repos.includes(n), n);
    assert.deepEqual(repos, [...repos].sort());
    const p1 = await client.api('GET', '/v2/_catalog?n=1', cat);
    assert.equal(p1.json().repositories.length, 1);
    assert.equal(p1.headers.link, `</v2/_catalog?n=1&last=${encodeURIComponent(repos[0]!)}>; rel="next"`);
    const p2 = await client.api('GET', `/v2/_catalog?n=1&last=${encodeURIComponent(repos[0]!)}`, cat);
    assert.deepEqual(p2.json().repositories, [repos[1]]);
  });
});

describe(onDriver('content management: deletes'), () => {
  it('DELETE by tag removes only the tag; by digest removes the manifest and its tags', async () => {
    const img = await client.pushImage('alice/del', 'one', token);
    await put('alice/del', 'two', img.body, OCI_MANIFEST);
    assert.equal((await client.api('DELETE', '/v2/alice/del/manifests/one', token)).status, 202);
    assert.equal((await client.api('GET', '/v2/alice/del/manifests/one', token)).status, 404);
    assert.equal((await client.api('GET', '/v2/alice/del/manifests/two', token)).status, 200, 'other tag kept');
    assert.equal((await client.api('DELETE', `/v2/alice/del/manifests/${img.digest}`, token)).status, 202);
    assert.deepEqual(codes(await client.api('GET', `/v2/alice/del/manifests/${img.digest}`, token)), ['MANIFEST_UNKNOWN']);
    assert.deepEqual(codes(await client.api('GET', '/v2/alice/del/manifests/two', token)), ['MANIFEST_UNKNOWN'], 'tags pointing at it are gone');
    assert.deepEqual(codes(await client.api('DELETE', `/v2/alice/del/manifests/${img.digest}`, token)), ['MANIFEST_UNKNOWN']);
  });

  it('deleting a manifest never removes blobs another manifest still uses', async () => {
    const shared = crypto.randomBytes(4096);
    const a = await client.pushImage('alice/del', 'a', token, { layer: shared });
    const b = await client.pushImage('alice/del', 'b', token, { layer: shared });
    assert.equal(a.layer, b.layer);
    assert.equal((await client.api('DELETE', `/v2/alice/del/manifests/${a.digest}`, token)).status, 202);
    const layer = await client.api('GET', `/v2/alice/del/blobs/${b.layer}`, token);
    assert.equal(layer.status, 200);
    assert.deepEqual(layer.body, shared);
    assert.equal((await client.api('GET', '/v2/alice/del/manifests/b', token)).status, 200);
  });
});

describe(onDriver('referrers API (OCI 1.1)'), () => {
  it('artifacts with a subject answer OCI-Subject and are listed, filterable by artifactType', async () => {
    const img = await client.pushImage('alice/art', 'v1', token);
    const empty = await client.pushBlob('alice/art', token, Buffer.from('{}'));
    const sig = await client.pushBlob('alice/art', token, Buffer.from('signature bytes'));
    const artifact = (type: string, note: string) => ({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: type,
      config: { mediaType: EMPTY_CONFIG, digest: empty, size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: sig, size: 15 }],
      subject: { mediaType: OCI_MANIFEST, digest: img.digest, size: img.body.length },
      annotations: { note },
    });
    const s1 = await put('alice/art', sha256(JSON.stringify(artifact('application/vnd.example.sig', 'one'))), artifact('application/vnd.example.sig', 'one'), OCI_MANIFEST);
    assert.equal(s1.status, 201, s1.text);
    assert.equal(s1.headers['oci-subject'], img.digest);
    const s2 = await put('alice/art', sha256(JSON.stringify(artifact('application/vnd.example.sbom', 'two'))), artifact('application/vnd.example.sbom', 'two'), OCI_MANIFEST);
    assert.equal(s2.status, 201);

    const all = await client.api('GET', `/v2/alice/art/referrers/${img.digest}`, token);
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-type'], OCI_INDEX);
    const index = all.json();
    assert.equal(index.schemaVersion, 2);
    assert.equal(index.mediaType, OCI_INDEX);
    assert.equal(index.manifests.length, 2);
    for (const d of index.manifests) {
      assert.equal(d.mediaType, OCI_MANIFEST);
      assert.match(d.digest, /^sha256:/);
      assert.ok(d.size > 0);
      assert.ok(d.annotations.note);
    }
    const sbom = await client.api('GET', `/v2/alice/art/referrers/${img.digest}?artifactType=${encodeURIComponent('application/vnd.example.sbom')}`, token);
    assert.equal(sbom.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(sbom.json().manifests.map((m: { artifactType: string }) => m.artifactType), ['application/vnd.example.sbom']);

    // The subject need not exist; an unknown one has no referrers but is not an error.
    const none = await client.api('GET', `/v2/alice/art/referrers/${sha256('no such subject')}`, token);
    assert.equal(none.status, 200);
    assert.deepEqual(none.json().manifests, []);
    assert.deepEqual(codes(await client.api('GET', '/v2/alice/art/referrers/sha256:bad', token)), ['DIGEST_INVALID']);

    // Deleting a referrer removes it from the list.
    assert.equal((await client.api('DELETE', `/v2/alice/art/manifests/${s2.headers['docker-content-digest']}`, token)).status, 202);
    assert.equal((await client.api('GET', `/v2/alice/art/referrers/${img.digest}`, token)).json().manifests.length, 1);
  });

  it('an image manifest with a subject reports its config media type as artifactType', async () => {
    const base = await client.pushImage('alice/art', 'base', token);
    const derived = await client.pushImage('alice/art', 'derived', token, { extra: { subject: { mediaType: OCI_MANIFEST, digest: base.digest, size: base.body.length } } });
    const list = (await client.api('GET', `/v2/alice/art/referrers/${base.digest}`, token)).json().manifests;
    assert.deepEqual(list.map((m: { digest: string; artifactType: string }) => [m.digest, m.artifactType]), [[derived.digest, 'application/vnd.oci.image.config.v1+json']]);
  });
});

describe(onDriver('unknown endpoints and methods'), () => {
  it('404 and 405 in the OCI error format', async () => {
    const r = await client.api('GET', '/v2/alice/app/nothing/here', token);
    assert.equal(r.status, 404);
    assert.equal(codes(r).length, 1);
    const m = await client.api('PATCH', '/v2/alice/app/manifests/v1', token);
    assert.equal(m.status, 405);
    assert.deepEqual(codes(m), ['UNSUPPORTED']);
    const outside = await client.api('GET', '/etc/passwd', undefined);
    assert.equal(outside.status, 404);
  });
});
