/**
 * Worker channels in a real cluster (this process is the primary): a message reaches
 * every other worker and not its sender; deliver() resolves only once every other
 * worker has handled it, which is what lets the login throttle count a failure in every
 * worker before the refusal is answered; a worker that died is left out.
 */
import assert from 'node:assert/strict';
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { joinWorkerChannel, relayWorkerChannels } from '../../src/http/worker-channel.js';

interface Report {
  test: 'ready' | 'got' | 'delivered';
  body?: string;
}

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'channel-worker.ts');
const reports: Array<Report & { from: number }> = [];
const workers: Worker[] = [];

/** Resolves with the first report (already received or still to come) that matches. */
function reported(from: Worker, kind: Report['test'], body?: string): Promise<void> {
  const match = (r: Report & { from: number }) => r.from === from.id && r.test === kind && r.body === body;
  if (reports.some(match)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${from.id} never reported ${kind} ${body ?? ''}`)), 10_000);
    const on = (w: Worker, m: Report) => {
      if (!match({ ...m, from: w.id })) return;
      clearTimeout(timer);
      cluster.off('message', on);
      resolve();
    };
    cluster.on('message', on);
  });
}

const got = (body: string) => reports.filter((r) => r.test === 'got' && r.body === body).map((r) => r.from).sort();

before(async () => {
  cluster.setupPrimary({ exec: fixture, execArgv: ['--import', 'tsx'] });
  relayWorkerChannels();
  cluster.on('message', (w: Worker, m: Report) => {
    if (m && typeof m === 'object' && 'test' in m) reports.push({ ...m, from: w.id });
  });
  for (let i = 0; i < 3; i++) workers.push(cluster.fork());
  await Promise.all(workers.map((w) => reported(w, 'ready')));
});

after(() => {
  for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
});

test('worker channel: outside a worker there is no channel to join', () => {
  assert.equal(joinWorkerChannel('test', () => undefined), undefined);
});

test('worker channel: deliver() resolves once every other worker has handled the message', async () => {
  const [a, b, c] = workers as [Worker, Worker, Worker];
  a.send({ test: 'deliver', body: 'one' });
  await reported(a, 'delivered', 'one');
  // A worker's reports travel on the same ordered IPC channel as its acknowledgements,
  // so each "got" (the sender's own too, had it one) is in before the primary can tell
  // the sender that the delivery is done.
  assert.deepEqual(got('one'), [b.id, c.id].sort(), 'the others had it when deliver() resolved; the sender did not get its own');
});

test('worker channel: tell() reaches every other worker', async () => {
  const [a, b, c] = workers as [Worker, Worker, Worker];
  b.send({ test: 'tell', body: 'two' });
  await Promise.all([reported(a, 'got', 'two'), reported(c, 'got', 'two')]);
  assert.deepEqual(got('two'), [a.id, c.id].sort());
});

test('worker channel: a worker that died is left out', async () => {
  const [a, b, c] = workers as [Worker, Worker, Worker];
  const exited = new Promise((resolve) => c.once('exit', resolve));
  c.process.kill('SIGKILL');
  await exited;
  a.send({ test: 'deliver', body: 'three' });
  await reported(a, 'delivered', 'three');
  assert.deepEqual(got('three'), [b.id]);
});
