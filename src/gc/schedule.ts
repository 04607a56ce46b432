import type { Config } from '../config/load.js';
import { compileRetention } from '../config/retention.js';
import type { Logger } from '../log/logger.js';
import type { StorageDriver } from '../storage/driver.js';
import { LeaseHeldError } from './lease.js';
import type { GcMetrics } from './metrics.js';
import { runGc } from './run.js';

/**
 * Online GC inside the registry, every storage.gc.interval seconds. Every instance
 * (and every worker) schedules it; the lease makes one of them run it and the others
 * skip that turn. The first run waits a random part of the interval, so instances
 * started together do not all try at once.
 */
export function scheduleGc(driver: StorageDriver, config: Config, log: Logger, metrics?: GcMetrics): { stop(): void } {
  const gc = config.storage.gc;
  const intervalMs = gc.interval * 1000;
  const retention = compileRetention(gc.retention);
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const turn = async () => {
    try {
      const report = await runGc(
        driver,
        {
          dryRun: false,
          deleteUntagged: gc.deleteUntagged,
          graceSeconds: gc.grace,
          leaseTtlSeconds: gc.leaseTtl,
          claimWindowSeconds: gc.claimWindow,
          trigger: 'schedule',
          retention,
        },
        log,
      );
      if (metrics) (await import('./metrics.js')).recordRun(metrics, report);
    } catch (e) {
      if (e instanceof LeaseHeldError) {
        metrics?.runs.inc({ outcome: 'busy' });
        log.debug({ holder: e.holder.owner }, 'scheduled gc: another instance holds the lease');
      } else {
        metrics?.runs.inc({ outcome: 'failed' });
        log.warn({ err: (e as Error).message }, 'scheduled gc failed');
      }
    }
  };
  const next = (delay: number) => {
    if (stopped) return;
    timer = setTimeout(() => void turn().finally(() => next(intervalMs)), delay);
    timer.unref();
  };
  next(Math.floor(Math.random() * Math.min(intervalMs, 60_000)));
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
