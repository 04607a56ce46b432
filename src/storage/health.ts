import type { Logger } from '../log/logger.js';
import type { StorageDriver } from './driver.js';

export interface StorageHealthOptions {
  /** Seconds between checks. */
  interval: number;
  /** Failed checks in a row before the store counts as down. */
  threshold: number;
}

export interface StorageHealthStatus {
  status: 'ok' | 'unhealthy';
  storage: { driver: string; healthy: boolean; consecutiveFailures: number; lastCheck: string | null; lastError: string | null };
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
    return {
      status: healthy ? 'ok' : 'unhealthy',
      storage: {
        driver: this.driver.name,
        healthy,
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
      await Promise.race([attempt, timeout]);
      if (!this.healthy()) this.log.info({ driver: this.driver.name }, 'storage is reachable again');
      this.failures = 0;
      this.lastError = undefined;
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
