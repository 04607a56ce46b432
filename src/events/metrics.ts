import { Counter, Gauge } from 'prom-client';
import { metricsRegistry } from '../metrics/server.js';

export interface EventMetrics {
  sent: Counter<'endpoint'>;
  dropped: Counter<'endpoint'>;
  failures: Counter<'endpoint'>;
  pending: Gauge<'endpoint'>;
}

let metrics: EventMetrics | undefined;

/**
 * Delivery figures per endpoint. Created once per process (a metric name can be
 * registered only once) and served by the registry's /metrics when it is on; with
 * workers, the primary sums them.
 */
export function eventMetrics(): EventMetrics {
  metrics ??= {
    sent: new Counter({ name: 'keyport_events_sent_total', help: 'Events delivered to a notification endpoint.', labelNames: ['endpoint'], registers: [metricsRegistry] }),
    dropped: new Counter({
      name: 'keyport_events_dropped_total',
      help: 'Events dropped because the endpoint\'s queue was full (the receiver was down or slow for too long).',
      labelNames: ['endpoint'],
      registers: [metricsRegistry],
    }),
    failures: new Counter({
      name: 'keyport_events_delivery_failures_total',
      help: 'Delivery attempts to a notification endpoint that failed (error, timeout or an answer of 400 or more); they are retried.',
      labelNames: ['endpoint'],
      registers: [metricsRegistry],
    }),
    pending: new Gauge({ name: 'keyport_events_pending', help: 'Events waiting for delivery to a notification endpoint.', labelNames: ['endpoint'], registers: [metricsRegistry] }),
  };
  return metrics;
}
