import { CreateBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { PathNotFoundError, StorageError, StorageUnavailableError } from '../../src/storage/driver.js';
import { S3Driver, type S3DriverOptions } from '../../src/storage/s3/driver.js';
import { request } from '../helpers/http.js';
import { freePort, tempDir } from '../helpers/keyport.js';
import { keystone, swift, type SwiftService } from '../helpers/services.js';
import { appendThenDie, extraProxy, quietLog, sha256Of } from '../helpers/swift.js';
import { driverConformance } from './driver-suite.js';

const MiB = 1024 * 1024;

interface S3Env {
  sw: SwiftService;
  access: string;
  secret: string;
}

/** Swift's S3 API with the EC2 credential the Keystone fixtures made; undefined after a skip. */
function s3Env(t: TestContext): S3Env | undefined {
  const sw = swift(t);
  const ks = keystone(t);
  if (!sw || !ks) return undefined;
  const ec2 = ks.fixtures.ec2;
  if (!sw.keystone || !ec2) throw new Error('swift runs without Keystone or the EC2 credential is missing');
  return { sw, access: ec2.access, secret: ec2.secret };
}

function options(env: S3Env, over: Partial<S3DriverOptions> = {}): S3DriverOptions {
  return {
    bucket: `keyport-s3-${crypto.randomBytes(4).toString('hex')}`,
    region: '',
    endpoint: env.sw.url,
    forcePathStyle: true,
    accessKey: env.access,
    secretKey: env.secret,
    rootDirectory: '',
    chunkSize: 5 * MiB,
    insecureSkipVerify: false,
    caFile: '',
    timeout: 10_000,
    redirect: false,
    redirectExpiry: 1200,
    ...over,
  };
}

function drivers() {
  const open: S3Driver[] = [];
  return {
    make(opts: S3DriverOptions): S3Driver {
      const d = new S3Driver(opts, quietLog);
      open.push(d);
      return d;
    },
    async closeAll() {
      await Promise.all(open.map((d) => d.close()));
    },
  };
}

/** A driver on a fresh bucket (the S3 driver expects its bucket to exist). */
async function withBucket(all: ReturnType<typeof drivers>, opts: S3DriverOptions): Promise<S3Driver> {
  const d = all.make(opts);
  await d.client.send(new CreateBucketCommand({ Bucket: opts.bucket }));
  return d;
}

driverConformance('s3 (Swift s3api, EC2 credentials, 5 MiB parts)', async (t) => {
  const env = s3Env(t);
  if (!env) return undefined;
  const all = drivers();
  const opts = options(env, { rootDirectory: 'conformance/root' });
  return {
    driver: await withBucket(all, opts),
    second: async () => all.make(opts),
    cleanup: () => all.closeAll(),
  };
});

describe('s3 driver', () => {
  const all = drivers();
  after(() => all.closeAll());

  it('a large blob is a multipart upload and round-trips with the right digest', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const opts = options(env, { rootDirectory: 'big' });
    const d = await withBucket(all, opts);
    const data = crypto.randomBytes(12 * MiB + 777);
    const w = await d.writer('/uploads/u/data', false);
    for (let off = 0; off < data.length; off += 1_000_003) await w.write(data.subarray(off, off + 1_000_003));
    await w.close();
    assert.equal((await d.stat('/uploads/u/data')).size, data.length, 'stat reports what close made durable');
    const w2 = await d.writer('/uploads/u/data', true);
    assert.equal(w2.size, data.length);
    await w2.commit();
    await d.move('/uploads/u/data', '/blobs/b/data');
    const head = await d.client.send(new HeadObjectCommand({ Bucket: opts.bucket, Key: 'big/blobs/b/data' }));
    assert.match(String(head.ETag), /-3"$/, 'three parts');
    assert.equal(await sha256Of(await d.reader('/blobs/b/data')), crypto.createHash('sha256').update(data).digest('hex'));
    const tail = Buffer.concat(await (await d.reader('/blobs/b/data', 5 * MiB - 3)).toArray());
    assert.ok(tail.equals(data.subarray(5 * MiB - 3)));
    assert.deepEqual(await d.list('/'), ['/blobs'], 'upload state never shows in listings');
  });

  it('an upload killed with SIGKILL on one instance is finished by another', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const opts = options(env);
    const a = await withBucket(all, opts);
    const data = crypto.randomBytes(17 * MiB + 5);
    const file = path.join(tempDir('s3-kill'), 'data');
    fs.writeFileSync(file, data);
    const p = '/uploads/k/data';
    const w = await a.writer(p, false);
    await w.write(data.subarray(0, 7 * MiB));
    await w.close(); // one 5 MiB part, 2 MiB kept as the upload's tail
    const out = await appendThenDie('s3', opts, p, file, 7 * MiB, 14 * MiB);
    assert.match(out, new RegExp(`opened ${7 * MiB}`));

    const b = all.make(opts);
    const w2 = await b.writer(p, true);
    assert.equal(w2.size, 7 * MiB, 'progress comes from the store: what was closed');
    await w2.write(data.subarray(7 * MiB));
    await w2.commit();
    assert.equal(await sha256Of(await a.reader(p)), crypto.createHash('sha256').update(data).digest('hex'));
    const open = await b.client.send(new ListMultipartUploadsCommand({ Bucket: opts.bucket }));
    assert.equal(open.Uploads?.length ?? 0, 0, 'no multipart upload left behind');
  });

  it('cancel and prefix deletes abort the multipart uploads they cover', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const opts = options(env);
    const d = await withBucket(all, opts);
    for (const p of ['/up/a/data', '/up/b/data']) {
      const w = await d.writer(p, false);
      await w.write(crypto.randomBytes(6 * MiB));
      await w.close();
    }
    const w = await d.writer('/up/a/data', true);
    await w.cancel();
    await assert.rejects(d.stat('/up/a/data'), PathNotFoundError);
    await d.delete('/up');
    await assert.rejects(d.stat('/up/b/data'), PathNotFoundError);
    const open = await d.client.send(new ListMultipartUploadsCommand({ Bucket: opts.bucket }));
    assert.equal(open.Uploads?.length ?? 0, 0);
  });

  it('objects above the copy threshold move with a multipart copy', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const opts = options(env, { multipartCopyThreshold: 6 * MiB, multipartCopyPartSize: 5 * MiB });
    const d = await withBucket(all, opts);
    const data = crypto.randomBytes(11 * MiB);
    await d.putContent('/src', data);
    await d.move('/src', '/dst');
    assert.ok((await d.getContent('/dst')).equals(data));
    await assert.rejects(d.stat('/src'), PathNotFoundError);
  });

  it('credentials come from the standard AWS environment variables when not configured', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const opts = options(env, { accessKey: '', secretKey: '' });
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = env.access;
    process.env.AWS_SECRET_ACCESS_KEY = env.secret;
    try {
      const d = await withBucket(all, opts);
      await d.putContent('/from/env', Buffer.from('ok'));
      assert.equal((await d.getContent('/from/env')).toString(), 'ok');
    } finally {
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });

  it('a wrong secret is refused with a clear error, and health reports it', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const good = await withBucket(all, options(env));
    const bad = all.make(options(env, { bucket: (good as unknown as { opts: S3DriverOptions }).opts.bucket, secretKey: 'wrong-secret-value' }));
    const err = await bad.putContent('/x', Buffer.from('1')).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e as Error,
    );
    assert.ok(err instanceof StorageError);
    assert.doesNotMatch(err.message, /wrong-secret-value/);
    await assert.rejects(bad.healthCheck(), StorageUnavailableError);
    await good.healthCheck();
  });

  it('presigned redirect URLs serve the right bytes to a plain HTTP client', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const d = await withBucket(all, options(env, { redirect: true, redirectExpiry: 60 }));
    const data = crypto.randomBytes(3 * MiB);
    await d.putContent('/blobs/x/data', data);
    const url = await d.redirectURL('/blobs/x/data', 'GET');
    assert.ok(url);
    assert.doesNotMatch(url, new RegExp(env.secret));
    const got = await request(url);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
    const head = await request((await d.redirectURL('/blobs/x/data', 'HEAD'))!, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal((await request(url.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=600'))).status, 403, 'tampering breaks the signature');
    const plain = all.make(options(env));
    assert.equal(await plain.redirectURL('/blobs/x/data', 'GET'), undefined);
  });

  it('Swift going away gives StorageUnavailableError quickly; nothing stored is lost and work resumes', async (t) => {
    const env = s3Env(t);
    if (!env) return;
    const port = await freePort();
    extraProxy(env.sw, 'up', port);
    t.after(() => extraProxy(env.sw, 'down', port));
    const d = await withBucket(all, options(env, { endpoint: `http://127.0.0.1:${port}`, timeout: 2000 }));
    await d.putContent('/keep/a', Buffer.from('precious'));
    extraProxy(env.sw, 'down', port);
    for (const op of [() => d.getContent('/keep/a'), () => d.healthCheck(), () => d.stat('/keep'), () => d.putContent('/keep/b', Buffer.from('x'))]) {
      const t0 = Date.now();
      await assert.rejects(op(), StorageUnavailableError);
      assert.ok(Date.now() - t0 < 5000, `failed quickly (${Date.now() - t0} ms)`);
    }
    extraProxy(env.sw, 'up', port);
    await d.healthCheck();
    assert.equal((await d.getContent('/keep/a')).toString(), 'precious');
  });
});
