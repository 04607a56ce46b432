/**
 * Readiness for systemd's Type=notify: READY=1 reaches $NOTIFY_SOCKET only once the
 * server accepts connections, with node:cluster workers only once all of them listen.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { request } from '../helpers/http.js';
import { CLI, freePort, tempDir } from '../helpers/keyport.js';
import { NotifySocket } from '../helpers/notify-socket.js';

const cleanup: Array<() => void> = [];
after(() => cleanup.forEach((f) => f()));

async function startToken(port: number, workers: number) {
  const notify = await new NotifySocket().start();
  cleanup.push(() => notify.stop());
  const dir = tempDir('ready');
  let log = '';
  const child = spawn(process.execPath, [CLI, 'token'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NOTIFY_SOCKET: notify.path,
      KEYPORT_BIND: '127.0.0.1',
      KEYPORT_TOKEN_PORT: String(port),
      KEYPORT_TOKEN_WORKERS: String(workers),
      KEYPORT_CERTS_DIR: path.join(dir, 'certs'),
      // Not contacted at start-up.
      KEYPORT_KEYSTONE_URL: 'http://127.0.0.1:9/v3',
      KEYPORT_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  cleanup.push(() => child.kill('SIGKILL'));
  return { notify, child, log: () => log, ca: () => fs.readFileSync(path.join(dir, 'certs', 'ca.crt')) };
}

async function squat(port: number): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return server;
}

test('a single process that cannot listen exits without sending READY=1 (systemd restarts it)', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const squatter = await squat(port);
  const k = await startToken(port, 1);
  const code = await new Promise<number | null>((r) => k.child.once('exit', (c) => r(c)));
  squatter.close();
  assert.notEqual(code, 0);
  assert.equal(k.notify.messages.length, 0, `no notification from a server that never listened:\n${k.log()}`);
});

test('2 workers: no READY=1 while the port is taken; once it is free, READY=1 when both listen, and it answers at once', { timeout: 90_000 }, async () => {
  const port = await freePort();
  const squatter = await squat(port);
  const k = await startToken(port, 2);
  // Workers that cannot listen die and are forked again by the primary. Wait for that to
  // have happened (a loaded machine may take seconds to start a worker), then for a
  // while longer, and no READY=1 may have come.
  const deadline = Date.now() + 30_000;
  while (!/worker died/.test(k.log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.match(k.log(), /worker died/);
  assert.equal(await k.notify.ready(2000), undefined, `READY=1 although nothing listens:\n${k.log()}`);
  await new Promise<void>((r) => squatter.close(() => r()));
  const ready = await k.notify.ready(30_000);
  assert.ok(ready, `READY=1 after the port came free:\n${k.log()}`);
  assert.equal(ready.STATUS, 'token: 2 workers listening');
  const r = await request(`https://127.0.0.1:${port}/healthz`, { ca: k.ca(), agent: false, timeoutMs: 5000 });
  assert.ok(r.status < 500);
  assert.equal(k.notify.fields().filter((f) => f.READY === '1').length, 1, 'reported once');
  k.child.kill('SIGTERM');
});

test('one process: READY=1 comes after the port listens, with a status naming the server', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const k = await startToken(port, 1);
  const ready = await k.notify.ready(30_000);
  assert.ok(ready, k.log());
  assert.equal(ready.STATUS, 'token listening');
  const r = await request(`https://127.0.0.1:${port}/healthz`, { ca: k.ca(), agent: false, timeoutMs: 5000 });
  assert.ok(r.status < 500);
  k.child.kill('SIGTERM');
});
