import type { Readable } from 'node:stream';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  InvalidOffsetError,
  InvalidPathError,
  PathNotFoundError,
  StorageUnavailableError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
} from '../storage/driver.js';

/**
 * Storage latency and errors as Prometheus metrics. The driver is wrapped rather than
 * instrumented inside, so every driver reports the same series the same way.
 *
 * A missing path is an ordinary answer for a registry (HEAD of an unknown blob), so it
 * is its own outcome, not an error.
 */
type Outcome = 'ok' | 'not_found' | 'invalid' | 'unavailable' | 'error';

function outcomeOf(e: unknown): Outcome {
  if (e instanceof PathNotFoundError) return 'not_found';
  if (e instanceof InvalidPathError || e instanceof InvalidOffsetError) return 'invalid';
  if (e instanceof StorageUnavailableError) return 'unavailable';
  return 'error';
}

export interface StorageMetrics {
  wrap(driver: StorageDriver): StorageDriver;
}

export function storageMetrics(registry: Registry, healthy?: () => boolean): StorageMetrics {
  const seconds = new Histogram({
    name: 'keyport_storage_operation_seconds',
    help: 'Time the storage driver took per operation (for reader: until the stream was open).',
    labelNames: ['driver', 'operation', 'outcome'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'keyport_storage_errors_total',
    help: 'Storage operations that failed (not counting paths that do not exist).',
    labelNames: ['driver', 'operation', 'outcome'],
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'keyport_storage_bytes_written_total',
    help: 'Bytes written through storage writers.',
    labelNames: ['driver'],
    registers: [registry],
  });
  if (healthy) {
    new Gauge({
      name: 'keyport_storage_healthy',
      help: '1 while the storage health check passes, 0 after it failed its threshold.',
      registers: [registry],
      // Across workers: healthy only if every worker sees the store.
      aggregator: 'min',
      collect() {
        this.set(healthy() ? 1 : 0);
      },
    });
  }

  return {
    wrap(driver: StorageDriver): StorageDriver {
      const name = driver.name;
      const timed = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
        const end = seconds.startTimer({ driver: name, operation });
        try {
          const v = await run();
          end({ outcome: 'ok' });
          return v;
        } catch (e) {
          const outcome = outcomeOf(e);
          end({ outcome });
          if (outcome !== 'not_found') errors.inc({ driver: name, operation, outcome });
          throw e;
        }
      };
      const wrapWriter = (w: FileWriter): FileWriter => ({
        ...(w.abort ? { abort: () => timed('writer_abort', () => w.abort!()) } : {}),
        get size() {
          return w.size;
        },
        write: (chunk: Buffer) => {
          bytes.inc({ driver: name }, chunk.length);
          return w.write(chunk).catch((e: unknown) => {
            errors.inc({ driver: name, operation: 'write', outcome: outcomeOf(e) });
            throw e;
          });
        },
        close: () => timed('writer_close', () => w.close()),
        commit: () => timed('writer_commit', () => w.commit()),
        cancel: () => timed('writer_cancel', () => w.cancel()),
      });
      const wrapped: StorageDriver = {
        name,
        getContent: (p) => timed('get_content', () => driver.getContent(p)),
        putContent: (p, c, o) => timed('put_content', () => driver.putContent(p, c, o)),
        putExclusive: (p, c) => timed('put_exclusive', () => driver.putExclusive(p, c)),
        reader: (p, offset) =>
          timed('reader', () => driver.reader(p, offset)).then((r: Readable) => {
            r.once('error', (e) => errors.inc({ driver: name, operation: 'read', outcome: outcomeOf(e) }));
            return r;
          }),
        writer: (p, append) => timed('writer', () => driver.writer(p, append)).then(wrapWriter),
        stat: (p): Promise<FileInfo> => timed('stat', () => driver.stat(p)),
        list: (p) => timed('list', () => driver.list(p)),
        move: (s, d) => timed('move', () => driver.move(s, d)),
        delete: (p, o) => timed('delete', () => driver.delete(p, o)),
      };
      if (driver.pruneEmpty) wrapped.pruneEmpty = (p) => timed('prune_empty', () => driver.pruneEmpty!(p));
      if (driver.redirectURL) wrapped.redirectURL = (p, m) => timed('redirect_url', () => driver.redirectURL!(p, m));
      if (driver.healthCheck) wrapped.healthCheck = () => timed('health_check', () => driver.healthCheck!());
      if (driver.close) wrapped.close = () => driver.close!();
      return wrapped;
    },
  };
}
