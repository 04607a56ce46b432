import cluster from 'node:cluster';
import type https from 'node:https';
import express from 'express';
import { AggregatorRegistry, collectDefaultMetrics, register, type Registry } from 'prom-client';
import { listenHttps } from '../http/server.js';
import type { Logger } from '../log/logger.js';
import type { ServerTls } from '../tls/certificates.js';

/**
 * A server's Prometheus endpoint (GET /metrics), on its own port like Docker
 * Distribution's debug server, so it can be bound to a management network and kept
 * away from the public API. Served by the primary when the server runs workers: it
 * asks every worker for its figures and adds them up (prom-client's cluster support).
 */

/** The registry every metric of this process registers in (workers report it to the primary). */
export const metricsRegistry: Registry = register;

let started = false;
/**
 * Starts collecting: process figures (CPU, memory, event-loop lag) next to Keyport's
 * own and, in a worker, answers the primary's requests for them (prom-client attaches
 * that responder when an AggregatorRegistry is constructed).
 */
export function startMetrics(): void {
  if (started) return;
  started = true;
  collectDefaultMetrics({ register: metricsRegistry });
  if (cluster.isWorker) new AggregatorRegistry();
}

export interface MetricsServerOptions {
  bind: string;
  port: number;
  tls: ServerTls;
  log: Logger;
  /** In a cluster primary: answer with the sum over the workers. */
  aggregateWorkers: boolean;
}

export async function serveMetrics(opts: MetricsServerOptions): Promise<https.Server> {
  const aggregate = opts.aggregateWorkers && cluster.isPrimary ? new AggregatorRegistry() : undefined;
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', async (_req, res) => {
    try {
      const body = aggregate ? await aggregate.clusterMetrics() : await metricsRegistry.metrics();
      res.set('Content-Type', metricsRegistry.contentType).send(body);
    } catch (e) {
      opts.log.warn({ err: (e as Error).message }, 'collecting metrics failed');
      res.status(503).json({ error: 'metrics_unavailable', error_description: (e as Error).message });
    }
  });
  app.use((_req, res) => {
    res.status(404).json({ error: 'not_found', error_description: 'only GET /metrics is served here' });
  });
  return listenHttps(app, {
    bind: opts.bind,
    port: opts.port,
    tls: opts.tls,
    log: opts.log,
    parserErrorBody: (_status, message) => ({ error: 'invalid_request', error_description: message }),
    requestTimeoutMs: 30_000,
  });
}

/** Starts the endpoint at `where` and logs it; `aggregateWorkers` in a cluster primary. */
export async function startMetricsServer(
  where: { bind: string; port: number },
  tls: ServerTls,
  log: Logger,
  aggregateWorkers: boolean,
): Promise<https.Server> {
  const server = await serveMetrics({ ...where, tls, log, aggregateWorkers });
  log.info(where, 'metrics listening');
  return server;
}
