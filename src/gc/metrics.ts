import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from '../metrics/server.js';
import type { GcReport } from './collector.js';

export interface GcMetrics {
  runs: Counter<'outcome'>;
  duration: Histogram;
  blobs: Counter;
  bytes: Counter;
  retention: Counter<'kind'>;
  lastSuccess: Gauge;
}

let metrics: GcMetrics | undefined;

/**
 * Figures of the scheduled GC runs of this process, served by the registry's /metrics.
 * Created once per process (a name registers once); with workers the primary sums
 * them, except the last success time, of which it takes the latest.
 */
export function gcMetrics(): GcMetrics {
  metrics ??= {
    runs: new Counter({
      name: 'keyport_gc_runs_total',
      help: 'Scheduled garbage collection runs, by outcome: ok, failed, or busy (another instance held the lease).',
      labelNames: ['outcome'],
      registers: [metricsRegistry],
    }),
    duration: new Histogram({
      name: 'keyport_gc_duration_seconds',
      help: 'Duration of garbage collection runs that completed.',
      buckets: [1, 5, 15, 60, 300, 900, 3600, 14400],
      registers: [metricsRegistry],
    }),
    blobs: new Counter({ name: 'keyport_gc_deleted_blobs_total', help: 'Blobs garbage collection deleted.', registers: [metricsRegistry] }),
    bytes: new Counter({ name: 'keyport_gc_deleted_bytes_total', help: 'Bytes of blobs garbage collection deleted.', registers: [metricsRegistry] }),
    retention: new Counter({
      name: 'keyport_gc_retention_deleted_total',
      help: 'Tags and untagged manifests retention rules removed, by kind: tag or manifest.',
      labelNames: ['kind'],
      registers: [metricsRegistry],
    }),
    lastSuccess: new Gauge({
      name: 'keyport_gc_last_success_timestamp_seconds',
      help: 'When the last garbage collection run of this registry completed (Unix time); 0: none yet.',
      aggregator: 'max',
      registers: [metricsRegistry],
    }),
  };
  return metrics;
}

export function recordRun(m: GcMetrics, report: GcReport): void {
  m.runs.inc({ outcome: 'ok' });
  m.duration.observe(report.duration_s);
  m.blobs.inc(report.deleted_blobs);
  m.bytes.inc(report.deleted_bytes);
  m.retention.inc({ kind: 'tag' }, report.retention_deleted_tags);
  m.retention.inc({ kind: 'manifest' }, report.retention_deleted_manifests);
  m.lastSuccess.set(Date.now() / 1000);
}
