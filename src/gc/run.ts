import type { RetentionRule } from '../config/retention.js';
import type { Logger } from '../log/logger.js';
import type { StorageDriver } from '../storage/driver.js';
import { Collector, type GcReport } from './collector.js';
import { Lease } from './lease.js';

export interface GcRunOptions {
  dryRun: boolean;
  deleteUntagged: boolean;
  graceSeconds: number;
  leaseTtlSeconds: number;
  claimWindowSeconds: number;
  /** Who runs it, in the lease record and the audit line ('cli', 'schedule'). */
  trigger: string;
  /** storage.gc.retention, compiled; empty or absent: none. */
  retention?: readonly RetentionRule[];
  onProgress?: (phase: string, done: number, total: number) => void;
}

/**
 * One GC run under the lease: takes it (LeaseHeldError when another instance holds
 * it), collects, releases it, and writes the audit line. A dry run takes the lease
 * too, so what it reports is not raced by a real run's deletions.
 */
export async function runGc(driver: StorageDriver, opts: GcRunOptions, log: Logger): Promise<GcReport> {
  const lease = await Lease.acquire(driver, { ttlMs: opts.leaseTtlSeconds * 1000, owner: `${opts.trigger}-${process.pid}-${Date.now().toString(36)}` });
  try {
    const report = await new Collector(driver, {
      dryRun: opts.dryRun,
      deleteUntagged: opts.deleteUntagged,
      graceMs: opts.graceSeconds * 1000,
      claimWindowMs: opts.claimWindowSeconds * 1000,
      lease,
      onProgress: opts.onProgress,
      retention: opts.retention,
      // One audit line per removal, so what a rule took can be traced to the rule.
      onRetention: (d) =>
        log.info(
          { audit: true, event: 'gc-retention', trigger: opts.trigger, dry_run: opts.dryRun, repository: d.repository, ...(d.tag !== undefined ? { tag: d.tag } : {}), digest: d.digest, rule: d.rule },
          opts.dryRun ? 'retention would remove' : d.tag !== undefined ? 'retention removed a tag' : 'retention removed an untagged manifest',
        ),
    }).run();
    log.info(
      {
        audit: true,
        event: 'gc',
        trigger: opts.trigger,
        dry_run: report.dry_run,
        delete_untagged: opts.deleteUntagged,
        grace_s: opts.graceSeconds,
        marked_blobs: report.marked_blobs,
        deleted_blobs: report.deleted_blobs,
        deleted_bytes: report.deleted_bytes,
        deleted_manifests: report.deleted_manifests,
        deleted_links: report.deleted_links,
        deleted_repositories: report.deleted_repositories,
        kept_in_use: report.kept_in_use,
        retention_deleted_tags: report.retention_deleted_tags,
        retention_deleted_manifests: report.retention_deleted_manifests,
        duration_s: report.duration_s,
      },
      report.dry_run ? 'garbage collection dry run' : 'garbage collection finished',
    );
    return report;
  } catch (e) {
    log.error({ audit: true, event: 'gc', trigger: opts.trigger, err: e }, 'garbage collection failed');
    throw e;
  } finally {
    await lease.release().catch(() => undefined);
  }
}
