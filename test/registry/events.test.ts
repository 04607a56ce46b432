/**
 * Registry events against a real registry process: small HTTP receivers in the test
 * record the envelopes; a receiver that hangs or is not there yet stands for the
 * faults (a pipeline down for maintenance), since the registry must neither wait for
 * it nor lose what happened meanwhile.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort, type KeyportProcess } from '../helpers/keyport.js';
import { scrapeMetrics, startRegistry, type RegistryClient } from '../helpers/registry.js';
import type { TokenMinter } from '../helpers/tokens.js';

interface Received {
  contentType: string;
  authorization: string | undefined;
  events: any[];
}

/** An HTTP receiver that records every envelope it is sent and answers 200. */
class Receiver {
  readonly envelopes: Received[] = [];
  private server: http.Server | undefined;
  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  events(): any[] {
    return this.envelopes.flatMap((e) => e.events);
  }

  start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.envelopes.push({
          contentType: String(req.headers['content-type']),
          authorization: req.headers.authorization,
          events: JSON.parse(Buffer.concat(chunks).toString('utf8')).events,
        });
        res.end();
      });
    });
    return new Promise((resolve) => this.server!.listen(this.port, '127.0.0.1', () => resolve(this)));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  /** Waits until `pred` holds for the events received so far. */
  async waitFor(pred: (events: any[]) => boolean, ms = 10_000): Promise<any[]> {
    const deadline = Date.now() + ms;
    while (!pred(this.events())) {
      if (Date.now() > deadline) throw new Error(`events not received in time; got ${JSON.stringify(this.events().map((e) => [e.action, e.target.repository, e.target.tag]))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.events();
  }
}

let kp: KeyportProcess;
let minter: TokenMinter;
let client: RegistryClient;
let metricsPort: number;
let all: Receiver; // pushes and deletes
let pulls: Receiver; // opted in to pulls
let later: Receiver; // not listening until a test starts it
let full: Receiver; // not listening, with a queue of 2
let hanging: net.Server; // accepts connections and never answers
const held: net.Socket[] = [];

before(async () => {
  all = await new Receiver(await freePort()).start();
  pulls = await new Receiver(await freePort()).start();
  later = new Receiver(await freePort());
  full = new Receiver(await freePort());
  hanging = net.createServer((s) => held.push(s.on('error', () => {})));
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
  const hangingUrl = `http://127.0.0.1:${(hanging.address() as net.AddressInfo).port}/events`;
  metricsPort = await freePort();
  const endpoints = [
    { name: 'all', url: all.url, headers: { Authorization: 'Bearer receiver-secret' } },
    { name: 'pulls', url: pulls.url, includePulls: true, ignoredMediaTypes: ['application/octet-stream'] },
    { name: 'hanging', url: hangingUrl, timeout: 30_000 },
    { name: 'later', url: later.url, threshold: 1, backoff: 100, maxBackoff: 300 },
    { name: 'full', url: full.url, queueSize: 2, threshold: 1, backoff: 100, maxBackoff: 300, ignoredActions: ['mount'] },
  ];
  ({ kp, minter, client } = await startRegistry({
    KEYPORT_NOTIFICATION_ENDPOINTS: JSON.stringify(endpoints),
    KEYPORT_REGISTRY_METRICS_PORT: String(metricsPort),
  }));
});

after(async () => {
  await kp?.stop();
  for (const r of [all, pulls, later, full]) await r?.stop();
  for (const s of held) s.destroy();
  hanging?.close();
});

describe('registry events', () => {
  it('a push, a pull and a delete reach the endpoints in Distribution\'s envelope, pulls only where opted in', async () => {
    const repo = 'alice/events';
    const token = await minter.mint([{ name: repo, actions: ['pull', 'push', 'delete'] }], { subject: 'alice', claims: { uid: 'c0ffee0123456789' } });
    const image = await client.pushImage(repo, 'v1', token);
    let events = await all.waitFor((es) => es.some((e) => e.action === 'push' && e.target.repository === repo));
    const push = events.find((e) => e.action === 'push' && e.target.repository === repo);
    assert.deepEqual(
      { ...push.target },
      {
        repository: repo,
        tag: 'v1',
        digest: image.digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: image.body.length,
        length: image.body.length,
        url: `https://127.0.0.1:${kp.registryPort}/v2/${repo}/manifests/${image.digest}`,
      },
    );
    assert.deepEqual(push.actor, { name: 'alice', id: 'c0ffee0123456789' }, 'the Keystone user name and id of the token');
    assert.equal(push.request.method, 'PUT');
    assert.equal(push.request.host, `127.0.0.1:${kp.registryPort}`);
    assert.match(push.request.addr, /^127\.0\.0\.1:\d+$/);
    assert.match(push.id, /^[0-9a-f-]{36}$/);
    assert.ok(Date.parse(push.timestamp) > Date.now() - 60_000);
    assert.match(push.source.instanceID, /^[0-9a-f-]{36}$/);
    assert.equal(all.envelopes[0]!.contentType, 'application/vnd.docker.distribution.events.v1+json');
    assert.equal(all.envelopes[0]!.authorization, 'Bearer receiver-secret', 'configured headers are sent');

    const got = await client.api('GET', `/v2/${repo}/manifests/v1`, token, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(got.status, 200);
    assert.equal((await client.api('GET', `/v2/${repo}/blobs/${image.layer}`, token)).status, 200);
    events = await pulls.waitFor((es) => es.some((e) => e.action === 'pull'));
    const pull = events.find((e) => e.action === 'pull');
    assert.equal(pull.target.digest, image.digest);
    assert.equal(pull.target.tag, 'v1');
    assert.equal(pull.request.id, got.headers['x-request-id'], 'the request id is the one the client saw');
    assert.equal(pull.request.method, 'GET');

    const refused = await client.api('PUT', `/v2/${repo}/manifests/bad`, token, { body: 'not a manifest', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(refused.status, 400);
    const del = await client.api('DELETE', `/v2/${repo}/manifests/${image.digest}`, token);
    assert.equal(del.status, 202);
    events = await all.waitFor((es) => es.some((e) => e.action === 'delete'));
    assert.deepEqual(events.find((e) => e.action === 'delete').target, {
      repository: repo,
      digest: image.digest,
      url: `https://127.0.0.1:${kp.registryPort}/v2/${repo}/manifests/${image.digest}`,
    });
    await pulls.waitFor((es) => es.some((e) => e.action === 'delete'));
    assert.ok(!all.events().some((e) => e.target.tag === 'bad'), 'a refused push is no event (events go out in order, so it would be here by now)');
    assert.ok(!all.events().some((e) => e.action === 'pull'), 'no pulls for an endpoint that did not opt in');
    assert.ok(!pulls.events().some((e) => e.target.mediaType === 'application/octet-stream'), 'ignored media types (blob pulls) are left out');
  });

  it('a mount is reported with the repository it came from', async () => {
    const token = await minter.mint([
      { name: 'alice/events-src', actions: ['pull', 'push'] },
      { name: 'alice/events-dst', actions: ['pull', 'push'] },
    ]);
    const image = await client.pushImage('alice/events-src', 'v1', token);
    const r = await client.api('POST', `/v2/alice/events-dst/blobs/uploads/?mount=${image.layer}&from=alice/events-src`, token);
    assert.equal(r.status, 201);
    const events = await all.waitFor((es) => es.some((e) => e.action === 'mount'));
    const mount = events.find((e) => e.action === 'mount');
    assert.equal(mount.target.repository, 'alice/events-dst');
    assert.equal(mount.target.fromRepository, 'alice/events-src');
    assert.equal(mount.target.digest, image.layer);
  });

  it('a receiver that hangs or is down does not hold pushes up; its events arrive when it is back', async () => {
    const repo = 'alice/outage';
    const token = await minter.all(repo);
    // The hanging endpoint would hold each request for 30 s if anything waited for it.
    const started = Date.now();
    for (let i = 1; i <= 4; i++) await client.pushImage(repo, `v${i}`, token);
    assert.ok(Date.now() - started < 15_000, 'pushes did not wait for the hanging receiver');

    await new Promise((r) => setTimeout(r, 300)); // a few failed deliveries while it is down
    await later.start();
    const events = await later.waitFor((es) => es.filter((e) => e.target.repository === repo && e.action === 'push').length === 4);
    assert.deepEqual(
      events.filter((e) => e.target.repository === repo && e.action === 'push').map((e) => e.target.tag),
      ['v1', 'v2', 'v3', 'v4'],
      'in the order they happened',
    );
    const warned = await kp.waitForLog((l) => l.msg === 'event endpoint failing; backing off' && l.endpoint === 'later');
    assert.ok(warned, 'the outage is logged');
    assert.ok(!kp.logText().includes('receiver-secret'), 'endpoint headers are never logged');
  });

  it('an endpoint down for long keeps its newest events within its queue and counts the dropped ones', async () => {
    const repo = 'alice/dropped';
    const token = await minter.all(repo);
    const m0 = await scrapeMetrics(`https://127.0.0.1:${metricsPort}/metrics`, kp.ca);
    const before = m0.value('keyport_events_dropped_total', { endpoint: 'full' });
    for (let i = 1; i <= 5; i++) await client.pushImage(repo, `v${i}`, token);
    const m = await scrapeMetrics(`https://127.0.0.1:${metricsPort}/metrics`, kp.ca);
    // Every push above is an event for 'full'; at most two fit its queue.
    assert.ok(m.value('keyport_events_dropped_total', { endpoint: 'full' }) - before >= 3);
    assert.ok(m.value('keyport_events_delivery_failures_total', { endpoint: 'full' }) >= 1);
    assert.ok(m.value('keyport_events_pending', { endpoint: 'full' }) <= 2);
    await full.start();
    const events = await full.waitFor((es) => es.some((e) => e.target.repository === repo && e.target.tag === 'v5'));
    assert.ok(events.length <= 2, `at most the queue size arrives: ${events.length}`);
    const after = await scrapeMetrics(`https://127.0.0.1:${metricsPort}/metrics`, kp.ca);
    assert.ok(after.value('keyport_events_sent_total', { endpoint: 'full' }) >= 1);
  });
});
