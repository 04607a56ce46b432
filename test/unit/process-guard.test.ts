/**
 * The process guard in a real process: a forgotten rejected promise is logged with its
 * request id and the server keeps serving; an uncaught exception is logged with its
 * request id, the request in flight still gets its answer, and the process exits 70
 * for systemd (or the cluster primary) to restart it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { request } from '../helpers/http.js';

test('process guard: rejections are logged and survived; an uncaught exception drains, then exits 70', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/guarded-server.ts'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
      child.once('exit', () => reject(new Error(`fixture exited:\n${stderr}`)));
    });
    const url = (p: string) => `http://127.0.0.1:${port}${p}`;
    const lines = () => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

    const forgotten = await request(url('/forgotten'), { headers: { 'x-request-id': 'req-forgotten' } });
    assert.equal(forgotten.status, 200);
    await new Promise((r) => setTimeout(r, 200));
    const logged = lines().find((l) => l.msg?.includes('unhandled promise rejection'));
    assert.ok(logged, `the rejection is logged:\n${stderr}`);
    assert.equal(logged.reqId, 'req-forgotten', 'with the id of the request that started the work');
    assert.match(logged.err.message, /forgotten promise/);
    assert.equal((await request(url('/slow'))).status, 200, 'the server keeps serving after a rejection');

    const slow = request(url('/slow'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await request(url('/throw'), { headers: { 'x-request-id': 'req-throw' } })).status, 202);
    assert.equal((await slow).status, 200, 'the request in flight is answered before the process exits');
    assert.equal(await exited, 70, 'exit status 70 after an uncaught exception');
    const fatal = lines().find((l) => l.level === 'fatal');
    assert.ok(fatal, `the exception is logged as fatal:\n${stderr}`);
    assert.equal(fatal.reqId, 'req-throw');
    assert.match(fatal.err.message, /a callback threw/);
  } finally {
    child.kill('SIGKILL');
  }
});
