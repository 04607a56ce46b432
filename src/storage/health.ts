import type { Logger } from '../log/logger.js';
import type { StorageCondition, StorageDriver } from './driver.js';

export interface StorageHealthOptions {
  /** Seconds between checks. */
  interval: number;
  /** Failed checks in a row before the store counts as down. */
  threshold: number;
}

export interface StorageHealthStatus {
  /** 'degraded': the store answers and serves pulls, but refuses writes (full, read-only). */
  status: 'ok' | 'degraded' | 'unhealthy';
  storage: {
    driver: string;
    healthy: boolean;
    writable: StorageCondition['writable'];
    /** Why the status is not 'ok', in words; null when it is. */
    reason: string | null;
    freeBytes?: number;
    totalBytes?: number;
    lastWriteError?: { message: string; at: string };
    consecutiveFailures: number;
    lastCheck: string | null;
    lastError: string | null;
  };
}

/**
 * Checks the storage driver periodically, as Docker Distribution's
 * health.storagedriver does: after `threshold` failures in a row the store counts as
 * down (the registry then answers 503 at once instead of waiting on it), and the first
 * success brings it back. A check that outlasts the interval counts as a failure.
 */
export class StorageHealth {
  private failures = 0;
  private lastCheck: Date | undefined;
  private lastError: string | undefined;
  private condition: StorageCondition = { writable: 'ok' };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly driver: StorageDriver,
    private readonly opts: StorageHealthOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), this.opts.interval * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  healthy(): boolean {
    return this.failures < this.opts.threshold;
  }

  status(): StorageHealthStatus {
    const healthy = this.healthy();
    const c = this.condition;
    let reason: string | null = null;
    if (!healthy) reason = `the store is unreachable or failing: ${this.lastError ?? 'unknown error'}`;
    else if (c.writable === 'full') reason = `the store is full (${c.freeBytes ?? 0} bytes free): pushes fail until space is freed`;
    else if (c.writable === 'read-only') reason = 'the store is read-only: pushes and deletes fail until it is writable again';
    return {
      status: !healthy ? 'unhealthy' : c.writable !== 'ok' ? 'degraded' : 'ok',
      storage: {
        driver: this.driver.name,
        healthy,
        writable: c.writable,
        reason,
        ...(c.freeBytes !== undefined ? { freeBytes: c.freeBytes } : {}),
        ...(c.totalBytes !== undefined ? { totalBytes: c.totalBytes } : {}),
        ...(c.lastWriteError ? { lastWriteError: c.lastWriteError } : {}),
        consecutiveFailures: this.failures,
        lastCheck: this.lastCheck?.toISOString() ?? null,
        lastError: this.lastError ?? null,
      },
    };
  }

  /** Runs one check now (overlapping calls share it). */
  check(): Promise<void> {
    if (!this.running) {
      this.running = this.probe().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async probe(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.opts.interval} s`)), this.opts.interval * 1000);
    });
    const attempt = this.driver.healthCheck ? this.driver.healthCheck() : this.driver.stat('/').then(() => undefined);
    try {
      const found = await Promise.race([attempt, timeout]);
      if (!this.healthy()) this.log.info({ driver: this.driver.name }, 'storage is reachable again');
      this.failures = 0;
      this.lastError = undefined;
      const condition: StorageCondition = found ?? { writable: 'ok' };
      if (condition.writable !== this.condition.writable) {
        if (condition.writable === 'ok') this.log.info({ driver: this.driver.name }, 'storage takes writes again');
        else this.log.error({ driver: this.driver.name, writable: condition.writable, freeBytes: condition.freeBytes }, `storage is ${condition.writable}; pushes fail`);
      }
      this.condition = condition;
    } catch (e) {
      attempt.catch(() => undefined);
      this.failures++;
      this.lastError = (e as Error).message;
      if (this.failures === this.opts.threshold) {
        this.log.error({ driver: this.driver.name, failures: this.failures, err: this.lastError }, 'storage is unreachable; answering 503');
      }
    } finally {
      clearTimeout(timer);
      this.lastCheck = new Date();
    }
  }
}
