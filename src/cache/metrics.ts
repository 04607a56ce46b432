import { Counter } from 'prom-client';
import { metricsRegistry } from '../metrics/server.js';

export type CacheResult = 'hit' | 'miss' | 'revalidated' | 'stale' | 'error';

export interface CacheMetrics {
  requests: Counter<'upstream' | 'kind' | 'result'>;
  upstreamRequests: Counter<'upstream' | 'kind'>;
  staleServed: Counter<'upstream'>;
}

let metrics: CacheMetrics | undefined;

/**
 * Pull-through cache figures per upstream. Created once per process (a metric name can
 * be registered only once) and served by the registry's /metrics when it is on.
 */
export function cacheMetrics(): CacheMetrics {
  metrics ??= {
    requests: new Counter({
      name: 'keyport_cache_requests_total',
      help: 'Manifest and blob reads in a cache namespace, by outcome: hit (served from the store), miss (fetched), revalidated (tag checked upstream, unchanged), stale (upstream unavailable, cached content served), error.',
      labelNames: ['upstream', 'kind', 'result'],
      registers: [metricsRegistry],
    }),
    upstreamRequests: new Counter({
      name: 'keyport_cache_upstream_requests_total',
      help: 'Manifest and blob requests the cache sent to an upstream (tag checks included).',
      labelNames: ['upstream', 'kind'],
      registers: [metricsRegistry],
    }),
    staleServed: new Counter({
      name: 'keyport_cache_stale_served_total',
      help: 'Cached tags served without the check their tagTtl asked for, because the upstream was unavailable, too slow or rate-limiting.',
      labelNames: ['upstream'],
      registers: [metricsRegistry],
    }),
  };
  return metrics;
}
