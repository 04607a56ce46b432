import { Counter, Histogram, type Registry } from 'prom-client';
import type { TokenMetrics } from '../token/metrics.js';

const built = new WeakMap<Registry, TokenMetrics>();

/** The token server's figures as Prometheus metrics (names in the README); one set per registry. */
export function tokenMetrics(registry: Registry): TokenMetrics {
  let m = built.get(registry);
  if (!m) built.set(registry, (m = build(registry)));
  return m;
}

function build(registry: Registry): TokenMetrics {
  const grants = new Counter({
    name: 'keyport_token_grants_total',
    help: 'Access tokens issued, by grant (basic, password, refresh_token, anonymous).',
    labelNames: ['grant'],
    registers: [registry],
  });
  const refreshIssued = new Counter({
    name: 'keyport_token_refresh_tokens_issued_total',
    help: 'Refresh tokens (docker identity tokens) issued at login.',
    registers: [registry],
  });
  const denials = new Counter({
    name: 'keyport_token_denials_total',
    help: 'Token and whoami requests refused, by OAuth error code (invalid_client: wrong credentials; slow_down: throttled).',
    labelNames: ['reason'],
    registers: [registry],
  });
  const throttled = new Counter({
    name: 'keyport_login_throttled_total',
    help: 'Logins refused by the failed-login throttle without asking Keystone.',
    registers: [registry],
  });
  const cache = new Counter({
    name: 'keyport_login_cache_total',
    help: 'Logins answered from the login cache (hit) or sent to Keystone (miss).',
    labelNames: ['result'],
    registers: [registry],
  });
  const keystoneSeconds = new Histogram({
    name: 'keyport_keystone_request_seconds',
    help: 'Keystone calls by operation and HTTP status (error: no answer).',
    labelNames: ['operation', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const keystoneErrors = new Counter({
    name: 'keyport_keystone_errors_total',
    help: 'Keystone calls that failed: timeout, network, or an HTTP 5xx answer (server_error).',
    labelNames: ['operation', 'reason'],
    registers: [registry],
  });
  for (const result of ['hit', 'miss']) cache.inc({ result }, 0);
  throttled.inc(0);
  return {
    granted: (grant) => grants.inc({ grant }),
    refreshIssued: () => refreshIssued.inc(),
    denied: (reason) => denials.inc({ reason }),
    throttled: () => throttled.inc(),
    loginCache: (hit) => cache.inc({ result: hit ? 'hit' : 'miss' }),
    keystone: (operation, seconds, outcome) => {
      keystoneSeconds.observe({ operation, status: 'status' in outcome ? String(outcome.status) : 'error' }, seconds);
      if ('error' in outcome) keystoneErrors.inc({ operation, reason: outcome.error });
      else if (outcome.status >= 500) keystoneErrors.inc({ operation, reason: 'server_error' });
    },
  };
}
