/**
 * The registry's access log and audit trail: every request line names the user, what
 * they did to which repository and digest, the bytes and the status; every push, tag
 * move and delete has one audit line with the user, their id and address.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { startRegistry } from '../helpers/registry.js';

describe('registry access log', () => {
  it('request lines carry user, action, repository, digest, bytes, status and duration; pushes, tag moves and deletes are audited', async (t) => {
    const { kp, minter, client } = await startRegistry({ KEYPORT_STORAGE_DRIVER: 'filesystem', KEYPORT_DELETE_ENABLED: 'true' });
    t.after(() => kp.stop());
    const repo = 'alice/logged';
    const token = await minter.mint([{ name: repo, actions: ['pull', 'push', 'delete'] }], { subject: 'alice', claims: { uid: 'u-1234' } });
    const layer = crypto.randomBytes(3000);
    const first = await client.pushImage(repo, 'v1', token, { layer });

    // A request's line is written as its answer finishes, which the client may see first.
    const upload = await kp.waitForLog((l) => l.msg === 'request' && l.method === 'POST' && l.digest === first.layer);
    assert.ok(upload, 'the blob upload names its digest');
    assert.equal(upload.level, 'info', 'levels are words');
    assert.equal(upload.user, 'alice');
    assert.equal(upload.action, 'push');
    assert.equal(upload.repository, repo);
    assert.equal(upload.status, 201);
    assert.equal(upload.bytesIn, layer.length, 'the bytes received');
    assert.equal(typeof upload.ms, 'number');
    const put = await kp.waitForLog((l) => l.msg === 'request' && l.method === 'PUT' && l.path === `/v2/${repo}/manifests/v1`);
    assert.equal(put.tag, 'v1');
    assert.equal(put.digest, first.digest, 'a push by tag names the digest it stored');

    const pulled = await client.api('GET', `/v2/${repo}/blobs/${first.layer}`, token);
    assert.equal(pulled.status, 200);
    const get = await kp.waitForLog((l) => l.msg === 'request' && l.method === 'GET' && l.digest === first.layer);
    assert.equal(get.action, 'pull');
    assert.equal(get.bytesOut, layer.length, 'the bytes sent');
    const byTag = await client.api('GET', `/v2/${repo}/manifests/v1`, token, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(byTag.status, 200);
    const manifestGet = await kp.waitForLog((l) => l.msg === 'request' && l.method === 'GET' && l.tag === 'v1');
    assert.equal(manifestGet.digest, first.digest, 'a pull by tag names the digest it served');

    const refused = await client.api('GET', `/v2/${repo}/tags/list`, await minter.mint([{ name: 'bob/other', actions: ['pull'] }], { subject: 'bob' }));
    assert.equal(refused.status, 401);
    const denied = await kp.waitForLog((l) => l.msg === 'request' && l.status === 401 && l.repository === repo);
    assert.equal(denied.action, 'pull', 'a refused request still says what it tried');

    const pushed = kp.logLines().filter((l) => l.audit === true && l.event === 'push');
    assert.equal(pushed.length, 1, 'one audit line per push');
    assert.deepEqual(
      { user: pushed[0].user, userId: pushed[0].userId, client: pushed[0].client, repository: pushed[0].repository, tag: pushed[0].tag, digest: pushed[0].digest },
      { user: 'alice', userId: 'u-1234', client: '127.0.0.1', repository: repo, tag: 'v1', digest: first.digest },
    );

    const second = await client.pushImage(repo, 'v1', token);
    const moved = await kp.waitForLog((l) => l.audit === true && l.event === 'tag_move');
    assert.ok(moved, 'moving a tag is audited');
    assert.equal(moved.digest, second.digest);
    assert.equal(moved.previous, first.digest, 'with the digest the tag pointed at before');

    assert.equal((await client.api('DELETE', `/v2/${repo}/manifests/${first.digest}`, token)).status, 202);
    const deleted = await kp.waitForLog((l) => l.audit === true && l.event === 'delete' && l.kind === 'manifest');
    assert.equal(deleted.digest, first.digest);
    assert.equal(deleted.userId, 'u-1234');
    assert.equal((await client.api('DELETE', `/v2/${repo}/manifests/v1`, token)).status, 202);
    const untagged = await kp.waitForLog((l) => l.audit === true && l.event === 'delete' && l.kind === 'tag');
    assert.equal(untagged.tag, 'v1');
    assert.equal(untagged.digest, second.digest, 'deleting a tag names the manifest it pointed at');
    assert.equal((await client.api('DELETE', `/v2/${repo}/blobs/${first.layer}`, token)).status, 202);
    assert.ok(await kp.waitForLog((l) => l.audit === true && l.event === 'delete' && l.kind === 'blob' && l.digest === first.layer));
    for (const l of kp.logLines()) assert.ok(!JSON.stringify(l).includes(token), 'tokens are never logged');
  });

  it('log.format text writes one readable line per entry', async (t) => {
    const { kp, minter, client } = await startRegistry({ KEYPORT_STORAGE_DRIVER: 'filesystem', KEYPORT_LOG_FORMAT: 'text' });
    t.after(() => kp.stop());
    const token = await minter.mint([{ name: 'alice/text', actions: ['pull', 'push'] }], { subject: 'alice' });
    const { digest } = await client.pushImage('alice/text', 'v1', token);
    const deadline = Date.now() + 3000;
    let line: string | undefined;
    while (!line && Date.now() < deadline) {
      line = kp.logText().split('\n').find((l) => l.includes('manifest pushed'));
      if (!line) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(line, kp.logTail());
    assert.match(line, /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  registry: manifest pushed .*user=alice .*repository=alice\/text tag=v1 digest=sha256:[0-9a-f]{64}/);
    assert.ok(line.includes(digest));
    assert.equal(kp.logText().split('\n').filter((l) => l.startsWith('{')).length, 0, 'no JSON lines');
  });
});
