import { Counter, Histogram, type Registry } from 'prom-client';
import type { RequestRecord } from '../http/app.js';

/**
 * HTTP request metrics of one server (label `server`: registry or token): durations
 * by route pattern, method and status, and body bytes in and out. Built once per
 * Prometheus registry, since `keyport start` runs both servers in one process.
 */
const built = new WeakMap<Registry, { seconds: Histogram<string>; bytesIn: Counter<string>; bytesOut: Counter<string> }>();

function metricsOf(registry: Registry) {
  let m = built.get(registry);
  if (!m) {
    m = {
      seconds: new Histogram({
        name: 'keyport_http_request_duration_seconds',
        help: 'HTTP requests by server, route pattern, method and status (aborted: the client left before the answer), with their durations.',
        labelNames: ['server', 'route', 'method', 'status'],
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
        registers: [registry],
      }),
      bytesIn: new Counter({
        name: 'keyport_http_request_bytes_total',
        help: 'Request body bytes received, by server, route pattern and method.',
        labelNames: ['server', 'route', 'method'],
        registers: [registry],
      }),
      bytesOut: new Counter({
        name: 'keyport_http_response_bytes_total',
        help: 'Response body bytes sent, by server, route pattern and method.',
        labelNames: ['server', 'route', 'method'],
        registers: [registry],
      }),
    };
    built.set(registry, m);
  }
  return m;
}

export function httpMetrics(registry: Registry, server: 'registry' | 'token'): (r: RequestRecord) => void {
  const m = metricsOf(registry);
  return (r) => {
    const labels = { server, route: r.route, method: r.method };
    m.seconds.observe({ ...labels, status: String(r.status) }, r.seconds);
    if (r.bytesIn > 0) m.bytesIn.inc(labels, r.bytesIn);
    if (r.bytesOut > 0) m.bytesOut.inc(labels, r.bytesOut);
  };
}
