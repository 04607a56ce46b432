import { LRUCache } from 'lru-cache';
import { joinWorkerChannel } from '../http/worker-channel.js';
import type { SharedCount, SharedFailureCounter } from './shared-failures.js';

/**
 * Counts failed logins per (user name, client address) in a sliding window. Once the
 * limit is reached further attempts are refused without asking Keystone, so guessing
 * from one place can never trip Keystone's own lockout and lock the real user out of
 * the whole cloud. Bounded: the least recently seen keys are forgotten first.
 */
export class LoginThrottle {
  private readonly failures: LRUCache<string, number[]>;
  private peers: ThrottlePeers | undefined;
  private shared: SharedFailureCounter | undefined;
  /** The last count memcached reported per key, with when it was read. */
  private readonly sharedSeen: LRUCache<string, SharedCount & { at: number }>;

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    maxKeys = 100_000,
  ) {
    this.failures = new LRUCache({ max: maxKeys, ttl: windowMs, ttlAutopurge: false });
    this.sharedSeen = new LRUCache({ max: maxKeys, ttl: 2 * windowMs, ttlAutopurge: false });
  }

  /** Counts kept in memcached as well, shared by every token-server host (throttle.memcached). */
  shareThrough(counter: SharedFailureCounter): void {
    this.shared = counter;
  }

  /** Other processes sharing the count (token-server workers); see shareThrottleWithWorkers. */
  connect(peers: ThrottlePeers): void {
    this.peers = peers;
  }

  private key(user: string, address: string): string {
    return `${user.toLowerCase()}\0${address}`;
  }

  private recent(key: string, now: number): number[] {
    const list = this.failures.get(key);
    if (!list) return [];
    const kept = list.filter((t) => now - t < this.windowMs);
    if (kept.length !== list.length) {
      if (kept.length === 0) this.failures.delete(key);
      else this.failures.set(key, kept);
    }
    return kept;
  }

  /**
   * Seconds to wait before another attempt, or 0 when an attempt may go ahead: what
   * this host counted, or what memcached reported when it was last asked.
   */
  retryAfter(user: string, address: string, now = Date.now()): number {
    const key = this.key(user, address);
    const list = this.recent(key, now);
    let wait = 0;
    if (list.length >= this.maxFailures) {
      const oldestRelevant = list[list.length - this.maxFailures]!;
      wait = Math.max(1, Math.ceil((oldestRelevant + this.windowMs - now) / 1000));
    }
    const seen = this.sharedSeen.get(key);
    if (seen && seen.failures >= this.maxFailures) {
      wait = Math.max(wait, Math.ceil((seen.at + seen.clearsIn * 1000 - now) / 1000));
    }
    return wait;
  }

  /**
   * retryAfter with the count of every host, read from memcached: asked before each
   * attempt that goes to Keystone, so failures on other hosts hold here at once.
   * Without memcached (or while it is unreachable) the same as retryAfter.
   */
  async check(user: string, address: string, now = Date.now()): Promise<number> {
    if (this.shared) this.remember(user, address, await this.shared.read(user, address, this.maxFailures, now), now);
    return this.retryAfter(user, address, now);
  }

  /** Counts a failure here, in memcached, and, before returning, in every peer. */
  async recordFailure(user: string, address: string, now = Date.now()): Promise<void> {
    this.apply({ kind: 'failure', user, address, at: now });
    const [, count] = await Promise.all([this.peers?.failure(user, address, now), this.shared?.add(user, address, this.maxFailures, now)]);
    this.remember(user, address, count, now);
  }

  private remember(user: string, address: string, count: SharedCount | undefined, now: number): void {
    if (!count) return;
    const key = this.key(user, address);
    if (count.failures === 0) this.sharedSeen.delete(key);
    else this.sharedSeen.set(key, { ...count, at: now });
  }

  recordSuccess(user: string, address: string): void {
    const key = this.key(user, address);
    // A success only clears failures, so with none known here there is nothing to tell:
    // every failure is applied in every worker before its refusal is answered, so one
    // this worker has not seen yet is concurrent with this success and may be ordered
    // after it. This keeps the warm path (a cached login) free of IPC and memcached.
    if (!this.failures.has(key) && !this.sharedSeen.has(key)) return;
    // memcached is told only when a failure is known of (this host's, or one it read).
    if (this.shared) {
      this.sharedSeen.delete(key);
      void this.shared.clear(user, address);
    }
    this.apply({ kind: 'success', user, address, at: Date.now() });
    this.peers?.success(user, address);
  }

  /** Applies an event locally only (also what peers call with events from elsewhere). */
  apply(e: ThrottleEvent): void {
    const key = this.key(e.user, e.address);
    if (e.kind === 'success') {
      this.failures.delete(key);
      return;
    }
    const list = this.recent(key, e.at);
    list.push(e.at);
    list.sort((a, b) => a - b);
    this.failures.set(key, list.slice(-this.maxFailures));
  }
}

export interface ThrottleEvent {
  kind: 'failure' | 'success';
  user: string;
  address: string;
  at: number;
}

/** Propagation of throttle events to other processes. */
export interface ThrottlePeers {
  /** Resolves once every peer has counted the failure. */
  failure(user: string, address: string, at: number): Promise<void>;
  success(user: string, address: string): void;
}

/**
 * In a token-server worker: shares the count with the other workers, so the throttle
 * holds whichever worker a guess lands on. A failure is counted everywhere before the
 * refusal is answered (deliver), so a guesser cannot race the next guess to another
 * worker; a success only clears, and need not be waited for.
 */
export function shareThrottleWithWorkers(throttle: LoginThrottle): void {
  const channel = joinWorkerChannel<ThrottleEvent>('login-throttle', (event) => throttle.apply(event));
  if (!channel) return;
  throttle.connect({
    failure: (user, address, at) => channel.deliver({ kind: 'failure', user, address, at }),
    success: (user, address) => channel.tell({ kind: 'success', user, address, at: Date.now() }),
  });
}
