import { LRUCache } from 'lru-cache';
import { joinWorkerChannel } from '../http/worker-channel.js';

/**
 * Counts failed logins per (user name, client address) in a sliding window. Once the
 * limit is reached further attempts are refused without asking Keystone, so guessing
 * from one place can never trip Keystone's own lockout and lock the real user out of
 * the whole cloud. Bounded: the least recently seen keys are forgotten first.
 */
export class LoginThrottle {
  private readonly failures: LRUCache<string, number[]>;
  private peers: ThrottlePeers | undefined;

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    maxKeys = 100_000,
  ) {
    this.failures = new LRUCache({ max: maxKeys, ttl: windowMs, ttlAutopurge: false });
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

  /** Seconds to wait before another attempt, or 0 when an attempt may go ahead. */
  retryAfter(user: string, address: string, now = Date.now()): number {
    const list = this.recent(this.key(user, address), now);
    if (list.length < this.maxFailures) return 0;
    const oldestRelevant = list[list.length - this.maxFailures]!;
    return Math.max(1, Math.ceil((oldestRelevant + this.windowMs - now) / 1000));
  }

  /** Counts a failure here and, before returning, in every peer. */
  async recordFailure(user: string, address: string, now = Date.now()): Promise<void> {
    this.apply({ kind: 'failure', user, address, at: now });
    await this.peers?.failure(user, address, now);
  }

  recordSuccess(user: string, address: string): void {
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
