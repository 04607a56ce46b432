import type { EventAction } from '../config/notifications.js';

export type { EventAction };

/**
 * Registry events in Docker Distribution's notification format, so receivers written
 * for Distribution (Harbor-style webhooks, Pulp, scanners) read them unchanged.
 */
export const ENVELOPE_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/** What the event is about. `length` repeats `size`, as Distribution keeps both. */
export interface EventTarget {
  repository: string;
  mediaType?: string;
  digest?: string;
  size?: number;
  length?: number;
  tag?: string;
  url?: string;
  /** The repository a blob was mounted from. */
  fromRepository?: string;
  /** Where cached content was fetched from (cache fetch events). */
  upstream?: string;
}

/** The HTTP request that caused the event. */
export interface RequestRecord {
  id: string;
  addr: string;
  host: string;
  method: string;
  useragent: string;
}

/** Who caused it: the Keystone user of the token (`sub`), and the user id when the token carries one. */
export interface ActorRecord {
  name?: string;
  id?: string;
}

/** Which registry process generated it. */
export interface SourceRecord {
  addr: string;
  instanceID: string;
}

export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: EventAction;
  target: EventTarget;
  request?: RequestRecord;
  actor: ActorRecord;
  source: SourceRecord;
}

export interface Envelope {
  events: RegistryEvent[];
}

/** What a caller hands to `emit`; id, time and source are filled in. */
export interface EventInput {
  action: EventAction;
  target: EventTarget;
  request?: RequestRecord;
  actor?: ActorRecord;
}

/**
 * Where registry code reports events. `emit` never blocks, never throws and never
 * waits for a receiver: the event is queued per endpoint and delivered in the
 * background. `enabled` is false when no endpoint is configured, so callers can skip
 * building events nobody receives.
 */
export interface EventSink {
  readonly enabled: boolean;
  emit(event: EventInput): void;
}

export const noEvents: EventSink = { enabled: false, emit() {} };
