import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it, before, after, type TestContext } from 'node:test';
import {
  ConditionalWriteUnsupportedError,
  InvalidOffsetError,
  InvalidPathError,
  PathNotFoundError,
  type StorageDriver,
} from '../../src/storage/driver.js';

export interface DriverHarness {
  driver: StorageDriver;
  /** A second driver instance on the same store (another process or host in real life). */
  second?: () => Promise<StorageDriver>;
  cleanup?: () => Promise<void>;
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

/**
 * The behaviour every storage driver must share; run by each driver's test file.
 * `setup` returns a driver rooted in a fresh, empty namespace, or undefined when the
 * backing service is unavailable (the caller has already skipped or failed the test).
 */
export function driverConformance(
  name: string,
  setup: (t: TestContext) => Promise<DriverHarness | undefined>,
  opts: { largeMiB?: number } = {},
): void {
  describe(`storage driver conformance: ${name}`, () => {
    let h: DriverHarness | undefined;
    let d: StorageDriver;
    const base = `/conformance-${crypto.randomBytes(4).toString('hex')}`;

    before(async (t) => {
      h = await setup(t as unknown as TestContext);
      if (h) d = h.driver;
    });
    after(async () => {
      await h?.cleanup?.();
    });
    const run = (title: string, fn: () => Promise<void>) =>
      it(title, async (t) => {
        if (!h) return t.skip('driver unavailable');
        await fn();
      });

    run('stores and returns small objects, and overwrites them', async () => {
      await d.putContent(`${base}/a/b/c`, Buffer.from('hello'));
      assert.equal((await d.getContent(`${base}/a/b/c`)).toString(), 'hello');
      await d.putContent(`${base}/a/b/c`, Buffer.from('second'));
      assert.equal((await d.getContent(`${base}/a/b/c`)).toString(), 'second');
      await d.putContent(`${base}/empty`, Buffer.alloc(0));
      assert.equal((await d.getContent(`${base}/empty`)).length, 0);
    });

    run('a delete racing writes into the same directory fails neither: the write is ordered before or after it', async () => {
      // Local drivers race in microseconds, so many rounds are cheap; over HTTP each round
      // costs a dozen requests and a few rounds already interleave the calls.
      const rounds = d.name === 'filesystem' || d.name === 'memory' ? 25 : 3;
      for (let i = 0; i < rounds; i++) {
        const dir = `${base}/racing-delete/${i}`;
        await d.putContent(`${dir}/link`, Buffer.from('old'));
        const w = await d.writer(`${base}/racing-delete-up/${i}`, false);
        await w.write(Buffer.from('moved'));
        await w.commit();
        await Promise.all([
          d.delete(dir),
          d.putContent(`${dir}/link`, Buffer.from('new')),
          d.move(`${base}/racing-delete-up/${i}`, `${dir}/data`),
        ]);
        for (const [name, value] of [['link', 'new'], ['data', 'moved']] as const) {
          try {
            assert.equal((await d.getContent(`${dir}/${name}`)).toString(), value);
          } catch (e) {
            if (!(e instanceof PathNotFoundError)) throw e;
          }
        }
      }
    });

    run('putExclusive creates an object only when the path is free, and of racing creators exactly one wins', async () => {
      const p = `${base}/exclusive/lease`;
      let first: boolean;
      try {
        first = await d.putExclusive(p, Buffer.from('first'));
      } catch (e) {
        // An S3 API without conditional writes must say so, never fall back to a plain put.
        assert.ok(d.name === 's3' && e instanceof ConditionalWriteUnsupportedError, String(e));
        assert.match(e.message, /conditional writes/);
        await assert.rejects(d.getContent(p), PathNotFoundError, 'nothing was written');
        return;
      }
      assert.equal(first, true);
      assert.equal(await d.putExclusive(p, Buffer.from('second')), false);
      assert.equal((await d.getContent(p)).toString(), 'first', 'the loser leaves the object as it was');
      await d.delete(p);
      assert.equal(await d.putExclusive(p, Buffer.from('after delete')), true);
      assert.equal((await d.getContent(p)).toString(), 'after delete');
      // Racers on two driver instances (two hosts in real life) where the harness has one.
      const other = h?.second ? await h.second() : d;
      const race = `${base}/exclusive/race`;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? other : d).putExclusive(race, Buffer.from(`racer-${i}`))),
      );
      assert.equal(results.filter(Boolean).length, 1, `exactly one winner: ${JSON.stringify(results)}`);
      const winner = results.indexOf(true);
      assert.equal((await d.getContent(race)).toString(), `racer-${winner}`, 'the stored content is the winner\'s');
      await assert.rejects(d.putExclusive('/a/../b', Buffer.from('x')), InvalidPathError);
      if (other !== d) await other.close?.();
    });

    run('missing paths raise PathNotFoundError everywhere', async () => {
      const p = `${base}/missing/x`;
      await assert.rejects(d.getContent(p), PathNotFoundError);
      await assert.rejects(d.reader(p), PathNotFoundError);
      await assert.rejects(d.stat(p), PathNotFoundError);
      await assert.rejects(d.list(p), PathNotFoundError);
      await assert.rejects(d.move(p, `${base}/missing/y`), PathNotFoundError);
      await assert.rejects(d.delete(p), PathNotFoundError);
    });

    run('paths that could escape the root or are malformed are refused', async () => {
      for (const p of ['', 'relative', '/a/../b', '/a/./b', '/a//b', '/a/b/', '/../etc/passwd', '/a b', '/a\\b', '/ä', '/a\0b']) {
        await assert.rejects(d.putContent(p, Buffer.from('x')), InvalidPathError, JSON.stringify(p));
        await assert.rejects(d.getContent(p), InvalidPathError, JSON.stringify(p));
      }
    });

    run('reads at an offset; an offset past the end is an error', async () => {
      const p = `${base}/offset`;
      await d.putContent(p, Buffer.from('0123456789'));
      assert.equal((await readAll(await d.reader(p, 4))).toString(), '456789');
      assert.equal((await readAll(await d.reader(p, 10))).toString(), '');
      await assert.rejects(d.reader(p, 11), InvalidOffsetError);
    });

    run('stat reports size and directories', async () => {
      await d.putContent(`${base}/stat/dir/file`, Buffer.from('12345'));
      const f = await d.stat(`${base}/stat/dir/file`);
      assert.equal(f.size, 5);
      assert.equal(f.isDir, false);
      assert.ok(f.modTime instanceof Date && !Number.isNaN(f.modTime.getTime()));
      const dir = await d.stat(`${base}/stat/dir`);
      assert.equal(dir.isDir, true);
    });

    run('list returns direct children as full paths, sorted', async () => {
      await d.putContent(`${base}/list/b/x`, Buffer.from('1'));
      await d.putContent(`${base}/list/a`, Buffer.from('2'));
      await d.putContent(`${base}/list/c/d/e`, Buffer.from('3'));
      assert.deepEqual(await d.list(`${base}/list`), [`${base}/list/a`, `${base}/list/b`, `${base}/list/c`]);
    });

    run('move replaces the destination and removes the source', async () => {
      await d.putContent(`${base}/mv/src`, Buffer.from('new'));
      await d.putContent(`${base}/mv/dst`, Buffer.from('old'));
      await d.move(`${base}/mv/src`, `${base}/mv/dst`);
      assert.equal((await d.getContent(`${base}/mv/dst`)).toString(), 'new');
      await assert.rejects(d.getContent(`${base}/mv/src`), PathNotFoundError);
      await d.putContent(`${base}/mv/src2`, Buffer.from('deep'));
      await d.move(`${base}/mv/src2`, `${base}/mv/new/dir/dst`);
      assert.equal((await d.getContent(`${base}/mv/new/dir/dst`)).toString(), 'deep');
    });

    run('delete removes an object or a whole prefix', async () => {
      await d.putContent(`${base}/del/one`, Buffer.from('1'));
      await d.putContent(`${base}/del/sub/two`, Buffer.from('2'));
      await d.putContent(`${base}/delkeep`, Buffer.from('3'));
      await d.delete(`${base}/del/one`);
      await assert.rejects(d.getContent(`${base}/del/one`), PathNotFoundError);
      await d.delete(`${base}/del`);
      await assert.rejects(d.getContent(`${base}/del/sub/two`), PathNotFoundError);
      await assert.rejects(d.stat(`${base}/del`), PathNotFoundError);
      assert.equal((await d.getContent(`${base}/delkeep`)).toString(), '3', 'a sibling sharing the prefix string survives');
    });

    run('a writer streams, closes, and a later writer appends', async () => {
      const p = `${base}/w/data`;
      const w1 = await d.writer(p, false);
      await w1.write(Buffer.from('abc'));
      await w1.write(Buffer.from('def'));
      assert.equal(w1.size, 6);
      await w1.close();
      const w2 = await d.writer(p, true);
      assert.equal(w2.size, 6, 'append continues after the closed content');
      await w2.write(Buffer.from('ghi'));
      await w2.close();
      const other = h!.second ? await h!.second() : d;
      const w3 = await other.writer(p, true);
      assert.equal(w3.size, 9, 'another driver instance sees the same progress');
      await w3.write(Buffer.from('jk'));
      await w3.commit();
      assert.equal((await readAll(await d.reader(p))).toString(), 'abcdefghijk');
      assert.equal((await d.stat(p)).size, 11);
      assert.equal((await readAll(await d.reader(p, 5))).toString(), 'fghijk');
    });

    run('content a writer closed can be stat\'ed, and once a later writer commits it, read and moved', async () => {
      // The registry finishes an upload this way: PATCHes close, the final PUT commits and moves.
      const p = `${base}/closed/data`;
      const data = crypto.randomBytes(200_000);
      const w = await d.writer(p, false);
      await w.write(data);
      await w.close();
      assert.equal((await d.stat(p)).size, data.length);
      const other = h!.second ? await h!.second() : d;
      const last = await other.writer(p, true);
      assert.equal(last.size, data.length);
      await last.commit();
      assert.deepEqual(await readAll(await other.reader(p)), data);
      await other.move(p, `${base}/closed/final`);
      assert.deepEqual(await d.getContent(`${base}/closed/final`), data);
      await assert.rejects(d.stat(p), PathNotFoundError);
    });

    run('cancel discards what earlier writers closed, in any driver instance', async () => {
      // The registry drops an upload (DELETE, purge) this way: whatever the store holds
      // for it (parts, segments) goes, not only what a delete of the path would find.
      const p = `${base}/cancelled/data`;
      const w = await d.writer(p, false);
      await w.write(crypto.randomBytes(6 * 1024 * 1024 + 17));
      await w.close();
      const other = h!.second ? await h!.second() : d;
      const last = await other.writer(p, true);
      await last.cancel();
      await assert.rejects(d.stat(p), PathNotFoundError);
      await assert.rejects(d.reader(p), PathNotFoundError);
      const again = await d.writer(p, true);
      assert.equal(again.size, 0, 'a new writer starts from nothing');
      await again.cancel();
    });

    run('bytes of a writer that is aborted (or, on object stores, never closed) do not count', async () => {
      // The registry drops a chunk that failed half-way this way, so the upload keeps
      // exactly what was acknowledged.
      const p = `${base}/aborted/data`;
      const first = crypto.randomBytes(3 * 1024 * 1024);
      const w1 = await d.writer(p, false);
      await w1.write(first);
      await w1.close();
      const w2 = await d.writer(p, true);
      await w2.write(crypto.randomBytes(2 * 1024 * 1024 + 123));
      await w2.abort?.();
      assert.equal((await d.stat(p)).size, first.length, 'only what was closed counts');
      const w3 = await d.writer(p, true);
      assert.equal(w3.size, first.length, 'the next writer continues after the closed content');
      const tail = Buffer.from('tail');
      await w3.write(tail);
      await w3.commit();
      assert.deepEqual(await readAll(await d.reader(p)), Buffer.concat([first, tail]));
    });

    run('a writer without append starts over; cancel discards', async () => {
      const p = `${base}/w2/data`;
      const w1 = await d.writer(p, false);
      await w1.write(Buffer.from('old content'));
      await w1.commit();
      const w2 = await d.writer(p, false);
      assert.equal(w2.size, 0);
      await w2.write(Buffer.from('new'));
      await w2.commit();
      assert.equal((await d.getContent(p)).toString(), 'new');
      const w3 = await d.writer(`${base}/w2/cancelled`, false);
      await w3.write(Buffer.from('zzz'));
      await w3.cancel();
      await assert.rejects(d.getContent(`${base}/w2/cancelled`), PathNotFoundError);
    });

    run('moving a committed writer file keeps its content', async () => {
      const p = `${base}/w3/upload`;
      const w = await d.writer(p, false);
      const parts = [crypto.randomBytes(1000), crypto.randomBytes(70_000), crypto.randomBytes(3)];
      for (const part of parts) await w.write(part);
      await w.commit();
      await d.move(p, `${base}/w3/final`);
      assert.deepEqual(await d.getContent(`${base}/w3/final`), Buffer.concat(parts));
    });

    run('concurrent puts of one path leave one complete value', async () => {
      const p = `${base}/race`;
      const values = Array.from({ length: 8 }, (_, i) => Buffer.alloc(50_000, i));
      await Promise.all(values.map((v) => d.putContent(p, v)));
      const got = await d.getContent(p);
      assert.ok(values.some((v) => v.equals(got)), 'content is one of the written values, not a mix');
    });

    const mib = opts.largeMiB ?? 32;
    run(`streams a ${mib} MiB object in and out with the right digest`, async () => {
      const p = `${base}/large`;
      const w = await d.writer(p, false);
      const hin = crypto.createHash('sha256');
      const chunk = crypto.randomBytes(1024 * 1024);
      for (let i = 0; i < mib; i++) {
        chunk[0] = i;
        hin.update(chunk);
        await w.write(chunk);
      }
      await w.commit();
      assert.equal((await d.stat(p)).size, mib * 1024 * 1024);
      const hout = crypto.createHash('sha256');
      for await (const c of await d.reader(p)) hout.update(c as Buffer);
      assert.equal(hout.digest('hex'), hin.digest('hex'));
    });
  });
}
