import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PathNotFoundError, StorageUnavailableError } from '../../src/storage/driver.js';
import { SwiftDriver, type SwiftDriverOptions } from '../../src/storage/swift/driver.js';
import { request, silentServer } from '../helpers/http.js';
import { freePort, tempDir } from '../helpers/keyport.js';
import { KeystoneAdmin, makeUser } from '../helpers/keystone-admin.js';
import { keystone, swift } from '../helpers/services.js';
import { appendThenDie, extraProxy, forgetTempauthToken, quietLog, rawList, sha256Of, swiftOptions, tempauthLogin } from '../helpers/swift.js';
import { driverConformance } from './driver-suite.js';
import { startFaultySwift } from '../fixtures/faulty-swift.js';

const MiB = 1024 * 1024;

function drivers() {
  const open: SwiftDriver[] = [];
  return {
    make(opts: SwiftDriverOptions): SwiftDriver {
      const d = new SwiftDriver(opts, quietLog);
      open.push(d);
      return d;
    },
    async closeAll() {
      await Promise.all(open.map((d) => d.close()));
    },
  };
}

async function readAll(d: SwiftDriver, p: string, offset = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await d.reader(p, offset)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

// Small segments and a low manifest limit: the conformance suite's streams then cross
// many segment boundaries and nested manifests.
driverConformance('swift (v1 auth, 5 MiB segments, nested manifests)', async (t) => {
  const sw = swift(t);
  if (!sw) return undefined;
  const opts = swiftOptions(sw, { chunkSize: 5 * MiB, maxManifestSegments: 4, rootDirectory: 'conformance/root' });
  const all = drivers();
  return {
    driver: all.make(opts),
    second: async () => all.make(opts),
    cleanup: () => all.closeAll(),
  };
});

describe('swift driver', () => {
  const all = drivers();
  after(() => all.closeAll());

  it('creates its container, and keeps objects under the root directory', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const opts = swiftOptions(sw, { rootDirectory: '/registry/one/' });
    const d = all.make(opts);
    await d.putContent('/docker/x', Buffer.from('1'));
    const names = (await rawList(sw, opts.container)).map((e) => e.name);
    assert.deepEqual(names, ['registry/one/files/docker/x']);
    await d.healthCheck();
  });

  it('Swift v1 auth and Keystone v3 auth (project by name or id) reach the same kind of store', async (t) => {
    const sw = swift(t);
    const ks = keystone(t);
    if (!sw || !ks) return;
    assert.ok(sw.keystone, 'swift runs with keystoneauth');
    const v1 = all.make(swiftOptions(sw));
    await v1.putContent('/v1/obj', Buffer.from('via tempauth'));
    assert.match((await v1.client.auth.session()).storageUrl, /\/v1\/AUTH_test$/);

    const byName = all.make(
      swiftOptions(sw, { authUrl: ks.url, username: 'keyport', password: ks.servicePassword, tenant: 'service', domain: 'Default' }),
    );
    assert.equal(byName.client.auth.version, 3);
    await byName.putContent('/v3/obj', Buffer.from('via keystone'));
    const serviceId = ks.fixtures.projects.service!;
    assert.equal((await byName.client.auth.session()).storageUrl, `${sw.url}/v1/${sw.keystone.prefix}${serviceId}`);

    const byId = all.make(
      swiftOptions(sw, {
        authUrl: ks.url.replace(/\/v3$/, ''),
        authVersion: 3,
        username: 'keyport',
        password: ks.servicePassword,
        tenantId: serviceId,
        domainId: 'default',
        container: byName.client.container,
        region: 'RegionOne',
        endpointType: 'internal',
      }),
    );
    assert.equal((await byId.getContent('/v3/obj')).toString(), 'via keystone');
  });

  it('Keystone v2.0 auth (old clouds) reads the token and the object-store endpoint', async (t) => {
    const sw = swift(t);
    const ks = keystone(t);
    if (!sw || !ks) return;
    // Keystone dropped v2.0 long ago, so a small front answers in the v2.0 format with a
    // real token and catalog that it gets from Keystone v3 for the same credentials.
    const seen: unknown[] = [];
    const front = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', async () => {
        const auth = JSON.parse(body).auth;
        seen.push({ url: req.url, auth: { ...auth, passwordCredentials: { username: auth.passwordCredentials.username } } });
        const r = await request(`${ks.url}/auth/tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            auth: {
              identity: { methods: ['password'], password: { user: { name: auth.passwordCredentials.username, domain: { id: 'default' }, password: auth.passwordCredentials.password } } },
              scope: { project: { name: auth.tenantName, domain: { id: 'default' } } },
            },
          }),
        });
        if (r.status !== 201) {
          res.writeHead(401).end();
          return;
        }
        const tok = r.json().token;
        const endpoints = tok.catalog.find((c: { type: string }) => c.type === 'object-store').endpoints;
        const url = (i: string) => endpoints.find((e: { interface: string }) => e.interface === i).url;
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            access: {
              token: { id: r.headers['x-subject-token'], expires: tok.expires_at },
              serviceCatalog: [
                { type: 'identity', endpoints: [{ region: 'RegionOne', publicURL: ks.url }] },
                { type: 'object-store', endpoints: [{ region: 'RegionOne', publicURL: url('public'), internalURL: url('internal'), adminURL: url('admin') }] },
              ],
            },
          }),
        );
      });
    });
    await new Promise<void>((res) => front.listen(0, '127.0.0.1', res));
    t.after(() => front.close());
    const port = (front.address() as net.AddressInfo).port;
    const d = all.make(swiftOptions(sw, { authUrl: `http://127.0.0.1:${port}/v2.0`, username: 'keyport', password: ks.servicePassword, tenant: 'service', region: 'RegionOne' }));
    assert.equal(d.client.auth.version, 2);
    await d.putContent('/v2/obj', Buffer.from('via v2'));
    assert.equal((await d.getContent('/v2/obj')).toString(), 'via v2');
    assert.equal((await d.client.auth.session()).storageUrl, `${sw.url}/v1/KEY_${ks.fixtures.projects.service}`);
    assert.deepEqual(seen[0], { url: '/v2.0/tokens', auth: { passwordCredentials: { username: 'keyport' }, tenantName: 'service' } });
  });

  it('Keystone v3 application credentials work', async (t) => {
    const sw = swift(t);
    const ks = keystone(t);
    if (!sw || !ks) return;
    const admin = new KeystoneAdmin(ks);
    const sfx = KeystoneAdmin.suffix();
    const project = `swift-appcred-${sfx}`;
    const projectId = await admin.createProject(project);
    const user = await makeUser(admin, `swift-appcred-${sfx}`, { ignoreLockout: true });
    await admin.grant(projectId, user.id, 'member');
    const secret = crypto.randomBytes(12).toString('hex');
    const credId = await admin.createAppCredential(user.name, user.password, user.id, project, `registry-${sfx}`, secret);

    const byId = all.make(swiftOptions(sw, { authUrl: ks.url, username: '', password: '', applicationCredentialId: credId, applicationCredentialSecret: secret }));
    await byId.putContent('/app/cred', Buffer.from('stored with an application credential'));
    assert.match((await byId.client.auth.session()).storageUrl, new RegExp(`/v1/KEY_${projectId}$`));

    const byName = all.make(
      swiftOptions(sw, {
        authUrl: ks.url,
        username: user.name,
        password: '',
        domainId: 'default',
        applicationCredentialName: `registry-${sfx}`,
        applicationCredentialSecret: secret,
        container: byId.client.container,
      }),
    );
    assert.equal((await byName.getContent('/app/cred')).toString(), 'stored with an application credential');
  });

  it('wrong credentials fail fast with StorageUnavailableError and never show the password', async (t) => {
    const sw = swift(t);
    const ks = keystone(t);
    if (!sw || !ks) return;
    for (const opts of [
      swiftOptions(sw, { password: 'not-the-key-123' }),
      swiftOptions(sw, { authUrl: ks.url, username: 'keyport', password: 'not-the-key-123', tenant: 'service' }),
    ]) {
      const d = all.make(opts);
      const err = await d.getContent('/x').then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e as Error,
      );
      assert.ok(err instanceof StorageUnavailableError, String(err));
      assert.match(err.message, /rejected the credentials/);
      assert.doesNotMatch(err.message, /not-the-key-123/);
    }
  });

  it('a tempauth token that expired is renewed without failing the request, even mid-upload', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const d = all.make(swiftOptions(sw));
    await d.putContent('/renew/a', Buffer.from('before'));
    const first = (await d.client.auth.session()).token;
    const w = await d.writer('/renew/upload', false);
    await w.write(crypto.randomBytes(MiB + 10));
    await forgetTempauthToken(sw, first);
    // Swift now answers 401 to the old token; the driver logs in again and repeats.
    assert.equal((await d.getContent('/renew/a')).toString(), 'before');
    const second = (await d.client.auth.session()).token;
    assert.notEqual(second, first);
    await w.write(crypto.randomBytes(MiB));
    await forgetTempauthToken(sw, second);
    await w.commit();
    assert.equal((await d.stat('/renew/upload')).size, 2 * MiB + 10);
  });

  it('a Keystone token revoked behind the driver\'s back is replaced transparently', async (t) => {
    const sw = swift(t);
    const ks = keystone(t);
    if (!sw || !ks || !sw.keystone) return;
    const d = all.make(swiftOptions(sw, { authUrl: ks.url, username: 'keyport', password: ks.servicePassword, tenant: 'service' }));
    await d.putContent('/revoke/a', Buffer.from('kept'));
    const old = (await d.client.auth.session()).token;
    const admin = new KeystoneAdmin(ks);
    await admin.login();
    const adminToken = (admin as unknown as { token: string }).token;
    const r = await request(`${ks.url}/auth/tokens`, { method: 'DELETE', headers: { 'X-Auth-Token': adminToken, 'X-Subject-Token': old } });
    assert.equal(r.status, 204);
    // Swift's authtoken keeps a validated token this long before asking Keystone again.
    const wait = (sw.keystone.tokenCacheTime + 1) * 1000;
    await new Promise((res) => setTimeout(res, wait));
    assert.equal((await d.getContent('/revoke/a')).toString(), 'kept');
    assert.notEqual((await d.client.auth.session()).token, old);
  });

  it('a blob larger than the segment size is a static large object and round-trips with the right digest', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const opts = swiftOptions(sw, { chunkSize: MiB, rootDirectory: 'big' });
    const d = all.make(opts);
    const data = crypto.randomBytes(5 * MiB + 12345);
    await d.putContent('/uploads/u1/startedat', Buffer.from(new Date().toISOString()));
    const w = await d.writer('/uploads/u1/data', false);
    // Odd-sized writes, so segment boundaries fall inside writes.
    for (let off = 0; off < data.length; off += 300_001) await w.write(data.subarray(off, off + 300_001));
    await w.commit();
    await d.move('/uploads/u1/data', '/blobs/sha256/ab/data');
    // The registry deletes the upload directory after moving the blob out of it.
    await d.delete('/uploads/u1');
    const digest = crypto.createHash('sha256').update(data).digest('hex');
    assert.equal(await sha256Of(await d.reader('/blobs/sha256/ab/data')), digest);
    for (const off of [MiB - 1, MiB, 3 * MiB + 7, data.length - 1]) {
      assert.deepEqual(await readAll(d, '/blobs/sha256/ab/data', off), data.subarray(off), `offset ${off}`);
    }
    const { token, storageUrl } = await tempauthLogin(sw);
    const head = await request(`${storageUrl}/${opts.container}/big/files/blobs/sha256/ab/data`, { method: 'HEAD', headers: { 'X-Auth-Token': token } });
    assert.equal(head.headers['x-static-large-object'], 'True');
    const segments = (await rawList(sw, opts.container, 'big/segments/')).map((e) => e.bytes);
    assert.deepEqual(segments, [MiB, MiB, MiB, MiB, MiB, 12345]);
    await d.delete('/blobs');
    assert.deepEqual(await rawList(sw, opts.container), [], 'deleting the blob removed its segments');
  });

  it('memory stays flat while a large object streams in and out', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const d = all.make(swiftOptions(sw, { chunkSize: 8 * MiB }));
    const total = 96 * MiB;
    const chunk = crypto.randomBytes(MiB);
    global.gc?.();
    const base = process.memoryUsage();
    let peak = 0;
    const sample = () => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers - base.arrayBuffers + (m.heapUsed - base.heapUsed));
    };
    const w = await d.writer('/flat/data', false);
    for (let i = 0; i < total / MiB; i++) {
      await w.write(chunk);
      sample();
    }
    await w.commit();
    let n = 0;
    for await (const c of await d.reader('/flat/data')) {
      n += (c as Buffer).length;
      if (n % (8 * MiB) < (c as Buffer).length) sample();
    }
    assert.equal(n, total);
    // Two 8 MiB segments in flight plus slack; the object is 96 MiB.
    assert.ok(peak < 48 * MiB, `memory grew by ${(peak / MiB).toFixed(1)} MiB`);
  });

  it('redirect mode hands out TempURLs that serve the right bytes without a token', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const key = crypto.randomBytes(16).toString('hex');
    const base = { tempUrlKey: key, redirect: true, redirectExpiry: 60, chunkSize: MiB };
    for (const opts of [
      swiftOptions(sw, { ...base, tempUrlContainerKey: true, tempUrlDigest: 'sha256' as const }),
      swiftOptions(sw, { ...base, tempUrlContainerKey: true, tempUrlDigest: 'sha512' as const }),
    ]) {
      const d = all.make(opts);
      const data = crypto.randomBytes(2 * MiB + 5);
      const w = await d.writer('/blobs/x/data', false);
      await w.write(data);
      await w.commit();
      const url = await d.redirectURL('/blobs/x/data', 'GET');
      assert.ok(url, 'a TempURL');
      assert.doesNotMatch(url, new RegExp(key), 'the key itself never leaves');
      const got = await request(url);
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(data));
      const head = await request((await d.redirectURL('/blobs/x/data', 'HEAD'))!, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(Number(head.headers['content-length']), data.length);
      const forged = url.replace(/temp_url_expires=\d+/, `temp_url_expires=${Math.floor(Date.now() / 1000) + 100_000}`);
      assert.equal((await request(forged)).status, 401, 'a changed expiry breaks the signature');
    }
    const plain = all.make(swiftOptions(sw));
    await plain.putContent('/x', Buffer.from('1'));
    assert.equal(await plain.redirectURL('/x', 'GET'), undefined, 'no redirects unless configured');
  });

  it('Swift going away gives StorageUnavailableError quickly; nothing stored is lost and work resumes', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const port = await freePort();
    extraProxy(sw, 'up', port);
    t.after(() => extraProxy(sw, 'down', port));
    const opts = swiftOptions(sw, { authUrl: `http://127.0.0.1:${port}/auth/v1.0`, timeout: 3000, chunkSize: MiB });
    const d = all.make(opts);
    await d.putContent('/keep/a', Buffer.from('precious'));
    const data = crypto.randomBytes(3 * MiB);
    const w = await d.writer('/keep/upload', false);
    await w.write(data.subarray(0, 2 * MiB));
    await w.close();

    extraProxy(sw, 'down', port);
    for (const op of [() => d.getContent('/keep/a'), () => d.healthCheck(), () => d.stat('/keep'), () => d.writer('/keep/upload', true)]) {
      const t0 = Date.now();
      await assert.rejects(op(), StorageUnavailableError);
      assert.ok(Date.now() - t0 < 4000, `failed within the timeout (${Date.now() - t0} ms)`);
    }

    extraProxy(sw, 'up', port);
    await d.healthCheck();
    assert.equal((await d.getContent('/keep/a')).toString(), 'precious');
    const w2 = await d.writer('/keep/upload', true);
    assert.equal(w2.size, 2 * MiB, 'the upload resumes where it was closed');
    await w2.write(data.subarray(2 * MiB));
    await w2.commit();
    assert.ok((await readAll(d, '/keep/upload')).equals(data));
  });

  it('an answer that is not HTTP, or a response cut mid-body, is StorageUnavailableError (503), never another error', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const stub = await startFaultySwift();
    t.after(() => stub.close());
    const d = all.make(swiftOptions(sw, { authUrl: stub.authUrl, container: 'c', timeout: 3000 }));
    await d.putContent('/faults/kept', Buffer.from('kept'));
    for (const name of ['garbage', 'cut']) {
      await assert.rejects(d.getContent(`/faults/${name}`), StorageUnavailableError, `GET ${name}`);
      // (A HEAD's answer is complete with its headers, so a cut body is no fault for it.)
      if (name === 'garbage') await assert.rejects(d.stat(`/faults/${name}`), StorageUnavailableError, `HEAD ${name}`);
      await assert.rejects(d.putContent(`/faults/${name}`, Buffer.from('x')), StorageUnavailableError, `PUT ${name}`);
      await assert.rejects(
        (async () => {
          for await (const _ of await d.reader(`/faults/${name}`)) void _;
        })(),
        (e: Error) => e instanceof StorageUnavailableError || /aborted|premature|ECONNRESET/i.test(e.message),
        `streamed GET ${name}`,
      );
      // The fault was one exchange's: the next request is served.
      assert.equal((await d.getContent('/faults/kept')).toString(), 'kept');
    }
  });

  it('a HEAD refused with an expired token (Swift answers it with a stray chunk) logs in again and is answered', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const d = all.make(swiftOptions(sw));
    await d.putContent('/head401/a', Buffer.from('abc'));
    for (let i = 0; i < 3; i++) {
      // A token Swift does not know, as after an expiry: the HEAD gets 401 with
      // "Transfer-Encoding: chunked" and a terminating chunk that a HEAD answer must not have.
      const session = await d.client.auth.session();
      session.token = `AUTH_tk${crypto.randomBytes(16).toString('hex')}`;
      assert.equal((await d.stat('/head401/a')).size, 3);
      await assert.rejects(d.stat('/head401/missing'), PathNotFoundError);
    }
  });

  it('a 401 sent before the body was read does not poison the connection for the next request', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const stub = await startFaultySwift();
    t.after(() => stub.close());
    const d = all.make(swiftOptions(sw, { authUrl: stub.authUrl, container: 'c', timeout: 3000 }));
    await d.putContent('/early/first', Buffer.from('first'));
    // The first token is refused before its body is read, and junk follows on that socket;
    // the driver logs in again, and neither the retry nor later requests read the junk.
    await d.putContent('/early/early-401', crypto.randomBytes(4096));
    for (let i = 0; i < 5; i++) assert.equal((await d.getContent('/early/first')).toString(), 'first');
    assert.equal((await d.stat('/early/early-401')).size, 4096);
    assert.ok(stub.seen.some((l) => l.startsWith('PUT ') && l.includes('early-401') && l.endsWith('tok2')), stub.seen.join('\n'));
  });

  it('a Swift that accepts connections but never answers times out instead of hanging', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const port = await silentServer(t);
    const d = all.make(swiftOptions(sw, { authUrl: `http://127.0.0.1:${port}/auth/v1.0`, timeout: 1500 }));
    const t0 = Date.now();
    await assert.rejects(d.healthCheck(), StorageUnavailableError);
    assert.ok(Date.now() - t0 < 3000);
  });

  it('an upload killed with SIGKILL on one instance is finished by another; its stray segments are removed', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const opts = swiftOptions(sw, { chunkSize: MiB, rootDirectory: 'killed' });
    const a = all.make(opts);
    const data = crypto.randomBytes(6 * MiB + 99);
    const file = path.join(tempDir('swift-kill'), 'data');
    fs.writeFileSync(file, data);
    const p = '/uploads/k/data';
    const w = await a.writer(p, false);
    await w.write(data.subarray(0, 2.5 * MiB));
    await w.close();

    // Another process appends, uploads segments and dies before closing its writer.
    const out = await appendThenDie('swift', opts, p, file, 2.5 * MiB, 5 * MiB);
    assert.match(out, /opened 2621440/);
    const segs = await rawList(sw, opts.container, 'killed/segments/');
    assert.ok(segs.length > 3, 'the killed writer had uploaded segments');

    const b = all.make(opts);
    const w2 = await b.writer(p, true);
    assert.equal(w2.size, 2.5 * MiB, 'progress comes from the store: what was closed');
    await w2.write(data.subarray(2.5 * MiB));
    await w2.commit();
    assert.equal(await sha256Of(await a.reader(p)), crypto.createHash('sha256').update(data).digest('hex'));
    const after = await rawList(sw, opts.container, 'killed/segments/');
    assert.equal(after.reduce((n, e) => n + e.bytes, 0), data.length, 'only the referenced segments remain');
  });

  it('moving onto an existing large object releases the replaced segments', async (t) => {
    const sw = swift(t);
    if (!sw) return;
    const opts = swiftOptions(sw, { chunkSize: MiB, rootDirectory: 'replace' });
    const d = all.make(opts);
    for (const name of ['one', 'two']) {
      const w = await d.writer(`/up/${name}`, false);
      await w.write(crypto.randomBytes(2 * MiB + 1));
      await w.commit();
      await d.move(`/up/${name}`, '/blob');
    }
    const segs = await rawList(sw, opts.container, 'replace/segments/');
    assert.equal(segs.length, 3, 'only the segments of the surviving object');
    await assert.rejects(d.stat('/up'), PathNotFoundError);
  });
});
