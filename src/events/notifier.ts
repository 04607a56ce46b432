import crypto from 'node:crypto';
import { resolveEndpoint, type NotificationEndpointInput } from '../config/notifications.js';
import type { Logger } from '../log/logger.js';
import { EndpointQueue } from './endpoint.js';
import { eventMetrics } from './metrics.js';
import type { EventInput, EventSink, RegistryEvent, SourceRecord } from './types.js';

/** Whether an endpoint wants an event: pulls only when it opted in, nothing it ignores. */
function wants(q: EndpointQueue, e: EventInput): boolean {
  const s = q.settings;
  if (e.action === 'pull' && !s.includePulls) return false;
  if (s.ignoredActions.includes(e.action)) return false;
  if (e.target.mediaType && s.ignoredMediaTypes.includes(e.target.mediaType)) return false;
  return true;
}

/**
 * Fans events out to the configured endpoints, each with its own bounded queue and
 * sender (see EndpointQueue). `emit` is what registry code (and the cache) calls.
 */
export class Notifier implements EventSink {
  private readonly queues: EndpointQueue[];

  constructor(
    endpoints: readonly NotificationEndpointInput[],
    private readonly source: SourceRecord,
    private readonly log: Logger,
  ) {
    const metrics = eventMetrics();
    this.queues = endpoints.map(resolveEndpoint).filter((e) => !e.disabled).map((e) => new EndpointQueue(e, metrics, log));
    for (const q of this.queues) log.info({ endpoint: q.name, includePulls: q.settings.includePulls, queueSize: q.settings.queueSize }, 'event endpoint configured');
  }

  get enabled(): boolean {
    return this.queues.length > 0;
  }

  emit(input: EventInput): void {
    if (this.queues.length === 0) return;
    try {
      const event: RegistryEvent = {
        id: crypto.randomUUID(),
        timestamp: new Date().toISOString(),
        action: input.action,
        target: input.target.size !== undefined ? { ...input.target, length: input.target.size } : input.target,
        ...(input.request ? { request: input.request } : {}),
        actor: input.actor ?? {},
        source: this.source,
      };
      for (const q of this.queues) if (wants(q, input)) q.enqueue(event);
    } catch (e) {
      // An event is never worth failing the request that caused it.
      this.log.error({ err: e }, 'event not queued');
    }
  }

  close(): void {
    for (const q of this.queues) {
      const lost = q.close();
      if (lost > 0) this.log.warn({ endpoint: q.name, lost }, 'undelivered events dropped at shutdown');
    }
  }
}
