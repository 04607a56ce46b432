import crypto from 'node:crypto';
import memjs from 'memjs';
import type { Logger } from '../log/logger.js';

/** Failed logins of one (user, address) as counted by every token-server host. */
export interface SharedCount {
  /** Failures in the current and the previous window. */
  failures: number;
  /** Seconds until that count can drop below the limit, were it reached. */
  clearsIn: number;
}

/**
 * Failed-login counts kept in memcached, so token-server hosts behind a load balancer
 * count together (memcached is what Keystone and Swift already use for shared state in
 * OpenStack). Counts live in fixed windows, one counter per (user, address, window),
 * created by an atomic increment with an expiry: the count of a key is the sum of the
 * current and the previous window, which is never less than what a sliding window of
 * the same length would hold, so the shared throttle is at least as strict as the local
 * one. A blocked user waits at most two windows.
 *
 * memcached is an aid, never a dependency: when it cannot be reached the throttle counts
 * locally (logged once) and tries memcached again after a pause, so an outage costs
 * neither logins nor latency.
 */
export class SharedFailureCounter {
  private readonly client: memjs.Client;
  private downUntil = 0;
  private down = false;

  constructor(
    servers: string[],
    private readonly windowMs: number,
    private readonly log: Logger,
    private readonly pauseMs = 10_000,
  ) {
    this.client = memjs.Client.create(servers.join(','), {
      timeout: 0.5,
      conntimeout: 0.5,
      retries: 0,
      keepAlive: true,
      // memjs logs every failed operation on the console otherwise.
      logger: { log: () => undefined },
    });
  }

  private keys(user: string, address: string, now: number): [current: string, previous: string] {
    const id = crypto.createHash('sha256').update(user.toLowerCase()).update('\0').update(address).digest('base64url');
    const w = Math.floor(now / this.windowMs);
    return [`keyport:login-failures:${id}:${w}`, `keyport:login-failures:${id}:${w - 1}`];
  }

  private windowEnd(now: number, ahead: number): number {
    return (Math.floor(now / this.windowMs) + 1 + ahead) * this.windowMs;
  }

  private shape(current: number, previous: number, limit: number, now: number): SharedCount {
    // The sum drops below the limit when the window ends (the previous one is forgotten),
    // or a window later if the current window alone reached it.
    const end = current >= limit ? this.windowEnd(now, 1) : this.windowEnd(now, 0);
    return { failures: current + previous, clearsIn: Math.max(1, Math.ceil((end - now) / 1000)) };
  }

  /** Counts one failure everywhere; undefined when memcached is unavailable. */
  async add(user: string, address: string, limit: number, now = Date.now()): Promise<SharedCount | undefined> {
    const [cur, prev] = this.keys(user, address, now);
    const expires = Math.ceil((2 * this.windowMs) / 1000) + 1;
    return this.guard(async () => {
      const r = await this.client.increment(cur, 1, { initial: 1, expires });
      const previous = await this.number(prev);
      return this.shape(r.value ?? 1, previous, limit, now);
    });
  }

  /** The count every host has seen; undefined when memcached is unavailable. */
  async read(user: string, address: string, limit: number, now = Date.now()): Promise<SharedCount | undefined> {
    const [cur, prev] = this.keys(user, address, now);
    return this.guard(async () => this.shape(await this.number(cur), await this.number(prev), limit, now));
  }

  /** Forgets the failures of (user, address) after a successful login. */
  async clear(user: string, address: string, now = Date.now()): Promise<void> {
    const [cur, prev] = this.keys(user, address, now);
    await this.guard(async () => {
      await Promise.all([this.client.delete(cur), this.client.delete(prev)]);
    });
  }

  close(): void {
    this.client.close();
  }

  private async number(key: string): Promise<number> {
    const r = await this.client.get(key);
    return r.value ? Number(r.value.toString('ascii')) || 0 : 0;
  }

  private async guard<T>(op: () => Promise<T>): Promise<T | undefined> {
    if (Date.now() < this.downUntil) return undefined;
    try {
      const v = await op();
      if (this.down) {
        this.down = false;
        this.log.info('memcached reachable again: failed logins are counted across token servers');
      }
      return v;
    } catch (e) {
      this.downUntil = Date.now() + this.pauseMs;
      if (!this.down) {
        this.down = true;
        this.log.warn({ err: (e as Error).message }, 'memcached unreachable: counting failed logins on this host only');
      }
      return undefined;
    }
  }
}
