import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { NotificationEndpoint } from '../config/notifications.js';
import type { Logger } from '../log/logger.js';
import type { EventMetrics } from './metrics.js';
import { ENVELOPE_MEDIA_TYPE, type RegistryEvent } from './types.js';

/** Most events sent in one envelope (a backlog after an outage goes out in such batches). */
const MAX_BATCH = 100;

/** The URL without credentials or query, fit for a log line. */
function safeUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/**
 * The queue and sender of one endpoint.
 *
 * The queue is bounded: `waiting` plus `inFlight` never hold more than queueSize
 * events. An event that arrives when they are full pushes out the oldest waiting one
 * (a receiver that comes back learns the latest state first), or, when every held
 * event is in flight, is itself dropped; either way the drop is counted. Nothing on
 * the request path waits: `enqueue` is an array push and starts the sender when it is
 * idle.
 *
 * One envelope is in flight at a time, so events leave in the order they came. A
 * failed envelope goes back to the front of the queue and is retried: at once for the
 * first `threshold` failures in a row, then after `backoff` ms, doubling per further
 * failure up to `maxBackoff`; a success resets the count.
 */
export class EndpointQueue {
  private waiting: RegistryEvent[] = [];
  private inFlight: RegistryEvent[] = [];
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private closed = false;
  private readonly url: URL;
  private readonly agent: http.Agent;

  constructor(
    readonly settings: NotificationEndpoint,
    private readonly metrics: EventMetrics,
    private readonly log: Logger,
  ) {
    this.url = new URL(settings.url);
    let ca: Buffer | undefined;
    try {
      ca = settings.caFile ? fs.readFileSync(settings.caFile) : undefined;
    } catch (e) {
      throw new Error(`event endpoint ${settings.name}: cannot read caFile ${settings.caFile}: ${(e as Error).message}`);
    }
    this.agent = this.url.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 1, ...(ca ? { ca } : {}) }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  get name(): string {
    return this.settings.name;
  }

  get pending(): number {
    return this.waiting.length + this.inFlight.length;
  }

  enqueue(event: RegistryEvent): void {
    if (this.closed) return;
    if (this.pending >= this.settings.queueSize) {
      this.metrics.dropped.inc({ endpoint: this.name });
      if (this.waiting.length === 0) return;
      this.waiting.shift();
    }
    this.waiting.push(event);
    this.metrics.pending.set({ endpoint: this.name }, this.pending);
    if (!this.sending && !this.timer) void this.drain();
  }

  private async drain(): Promise<void> {
    this.sending = true;
    try {
      while (!this.closed && this.waiting.length > 0) {
        this.inFlight = this.waiting.splice(0, MAX_BATCH);
        const problem = await this.post(this.inFlight);
        if (problem === undefined) {
          this.metrics.sent.inc({ endpoint: this.name }, this.inFlight.length);
          if (this.failures > 0) this.log.info({ endpoint: this.name, failures: this.failures }, 'event endpoint answers again');
          this.failures = 0;
          this.inFlight = [];
          this.metrics.pending.set({ endpoint: this.name }, this.pending);
          continue;
        }
        this.failures++;
        this.metrics.failures.inc({ endpoint: this.name });
        this.waiting = this.inFlight.concat(this.waiting);
        this.inFlight = [];
        if (this.failures > this.settings.threshold) {
          const wait = Math.min(this.settings.maxBackoff, this.settings.backoff * 2 ** (this.failures - this.settings.threshold - 1));
          if (this.failures === this.settings.threshold + 1 || wait === this.settings.maxBackoff) {
            this.log.warn({ endpoint: this.name, url: safeUrl(this.url), err: problem, pending: this.pending, retryInMs: wait }, 'event endpoint failing; backing off');
          }
          this.timer = setTimeout(() => {
            this.timer = undefined;
            void this.drain();
          }, wait);
          this.timer.unref();
          return;
        }
      }
    } finally {
      this.sending = false;
    }
  }

  /** Sends one envelope; undefined when delivered (any answer below 400), else why not. */
  private post(events: RegistryEvent[]): Promise<string | undefined> {
    const body = Buffer.from(JSON.stringify({ events }));
    const mod = this.url.protocol === 'https:' ? https : http;
    return new Promise((resolve) => {
      let settled = false;
      const done = (problem: string | undefined) => {
        if (!settled) {
          settled = true;
          resolve(problem);
        }
      };
      const req = mod.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { ...this.settings.headers, 'content-type': ENVELOPE_MEDIA_TYPE, 'content-length': body.length },
          timeout: this.settings.timeout,
        },
        (res) => {
          res.resume();
          res.once('end', () => done((res.statusCode ?? 0) < 400 ? undefined : `HTTP ${res.statusCode}`));
          res.once('error', (e) => done(e.message));
        },
      );
      // The whole exchange is bounded, not only the socket's idle time.
      const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${this.settings.timeout} ms`)), this.settings.timeout);
      req.once('close', () => clearTimeout(deadline));
      req.once('timeout', () => req.destroy(new Error(`no answer within ${this.settings.timeout} ms`)));
      req.once('error', (e) => done(e.message));
      req.end(body);
    });
  }

  /** Stops sending; what is still queued is lost (the queue lives in memory, as Distribution's does). */
  close(): number {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.agent.destroy();
    return this.pending;
  }
}
