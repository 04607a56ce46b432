import cluster, { type Worker } from 'node:cluster';

/**
 * Named channels on which the workers of one cluster (see cluster.ts) tell each other
 * of events, so state a server keeps in memory (a login throttle, say) holds whichever
 * worker a request lands on. Workers cannot reach each other directly: a message goes
 * to the primary, which hands it on to every other worker. The primary does the same
 * for every channel and never looks inside a message, so it loads none of the modules
 * that use one.
 *
 * A message is sent as JSON (node:cluster's serialization).
 */

/** One channel, as a worker that joined it sees it. */
export interface WorkerChannel<T> {
  /**
   * Hands `message` to every other worker; resolves once each has handled it, or after
   * a deadline (a worker that is busy or dying, a primary that is gone), so a caller
   * never waits long and never fails: at worst only this worker knows.
   */
  deliver(message: T): Promise<void>;
  /** Hands `message` to every other worker, without waiting for them. */
  tell(message: T): void;
}

/** How long the primary waits for the other workers to acknowledge a delivery. */
const PRIMARY_DEADLINE_MS = 1000;
/** How long a sender waits for the primary; longer than the primary's own deadline, so the primary's answer normally comes first. */
const SENDER_DEADLINE_MS = 2000;

/** Worker to primary: `id` 0 asks for no answer. */
type Send = { kp: 'channel'; channel: string; id: number; body: unknown };
/** Primary to worker: a message from another worker; `rid` is acknowledged when `ack`. */
type Relay = { kp: 'channel-relay'; channel: string; rid: number; ack: boolean; body: unknown };
type Ack = { kp: 'channel-ack'; rid: number };
/** Primary to the sender: every other worker has handled message `id` (or the deadline passed). */
type Done = { kp: 'channel-done'; id: number };
type ToPrimary = Send | Ack;
type ToWorker = Relay | Done;

const receivers = new Map<string, (message: unknown) => void>();
const waiting = new Map<number, () => void>();
let nextId = 1;
let listening = false;

/**
 * With a callback, a send that fails (the primary is gone or stopping) is reported to
 * it instead of as an 'error' event on process, which would be an uncaught exception.
 */
function sendToPrimary(msg: ToPrimary): void {
  if (!process.connected) return;
  process.send!(msg, undefined, undefined, () => undefined);
}

function onPrimaryMessage(msg: ToWorker): void {
  if (!msg || typeof msg !== 'object') return;
  if (msg.kp === 'channel-relay') {
    try {
      receivers.get(msg.channel)?.(msg.body);
    } finally {
      // Acknowledged even when no one here listens, so the sender need not wait out the deadline.
      if (msg.ack) sendToPrimary({ kp: 'channel-ack', rid: msg.rid });
    }
  } else if (msg.kp === 'channel-done') {
    waiting.get(msg.id)?.();
    waiting.delete(msg.id);
  }
}

/**
 * In a cluster worker: joins channel `name`; what other workers send on it is handed to
 * `receive`. Outside a cluster (a lone process, the primary) there is no one to tell:
 * undefined.
 */
export function joinWorkerChannel<T>(name: string, receive: (message: T) => void): WorkerChannel<T> | undefined {
  if (!cluster.isWorker || !process.send) return undefined;
  if (receivers.has(name)) throw new Error(`worker channel ${name} is joined already`);
  receivers.set(name, receive as (message: unknown) => void);
  if (!listening) {
    listening = true;
    process.on('message', onPrimaryMessage);
  }
  return {
    deliver: (body) =>
      new Promise<void>((resolve) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve();
        }, SENDER_DEADLINE_MS);
        waiting.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
        sendToPrimary({ kp: 'channel', channel: name, id, body });
      }),
    tell: (body) => sendToPrimary({ kp: 'channel', channel: name, id: 0, body }),
  };
}

/** In the primary: hands every channel message of a worker on to the other workers. */
export function relayWorkerChannels(): void {
  let nextRelay = 1;
  const pending = new Map<number, { waiting: Set<number>; origin: Worker; id: number; timer: NodeJS.Timeout }>();

  const finish = (rid: number) => {
    const r = pending.get(rid);
    if (!r) return;
    clearTimeout(r.timer);
    pending.delete(rid);
    if (r.origin.isConnected()) r.origin.send({ kp: 'channel-done', id: r.id } satisfies Done);
  };

  cluster.on('message', (from: Worker, msg: ToPrimary) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.kp === 'channel') {
      const others = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w !== from && w.isConnected());
      const rid = nextRelay++;
      const ack = msg.id !== 0;
      if (ack) {
        const timer = setTimeout(() => finish(rid), PRIMARY_DEADLINE_MS);
        pending.set(rid, { waiting: new Set(others.map((w) => w.id)), origin: from, id: msg.id, timer });
      }
      for (const w of others) w.send({ kp: 'channel-relay', channel: msg.channel, rid, ack, body: msg.body } satisfies Relay);
      if (ack && others.length === 0) finish(rid);
    } else if (msg.kp === 'channel-ack') {
      const r = pending.get(msg.rid);
      if (!r) return;
      r.waiting.delete(from.id);
      if (r.waiting.size === 0) finish(msg.rid);
    }
  });

  // A worker that died acknowledges nothing: no one waits for it.
  cluster.on('exit', (worker) => {
    for (const [rid, r] of pending) {
      r.waiting.delete(worker.id);
      if (r.waiting.size === 0) finish(rid);
    }
  });
}
