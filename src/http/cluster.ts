import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { Logger } from '../log/logger.js';
import type { LoginThrottle, ThrottleEvent } from '../token/throttle.js';

/**
 * Several worker processes sharing one listening port (node:cluster), so a server uses
 * every core. The primary only supervises (restarting workers that die) and relays the
 * little state workers must share: failed-login counts, so the throttle holds whichever
 * worker a guess lands on.
 */

type Message =
  | ({ kp: 'throttle'; id: number } & ThrottleEvent)
  | ({ kp: 'throttle-relay'; rid: number } & ThrottleEvent)
  | { kp: 'throttle-ack'; rid: number }
  | { kp: 'throttle-done'; id: number };

/** Worker count for a setting where 0 means one per core (at most 8). */
export function resolveWorkers(setting: number): number {
  return setting > 0 ? setting : Math.min(8, os.availableParallelism());
}

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** A running primary: `done` settles once every worker has stopped; stop() starts that. */
export interface Primary {
  done: Promise<void>;
  stop(reason: string): Promise<void>;
}

/** Runs the supervising primary until SIGTERM/SIGINT (or stop()), then stops the workers. */
export function runPrimary(workers: number, name: string, log: Logger): Primary {
  let stopping = false;
  let nextRelay = 1;
  const pendingRelays = new Map<number, { waiting: Set<number>; origin: Worker; id: number; timer: NodeJS.Timeout }>();
  const restarts: number[] = [];

  const finishRelay = (rid: number) => {
    const r = pendingRelays.get(rid);
    if (!r) return;
    clearTimeout(r.timer);
    pendingRelays.delete(rid);
    if (r.origin.isConnected()) r.origin.send({ kp: 'throttle-done', id: r.id } satisfies Message);
  };

  const onMessage = (from: Worker, msg: Message) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.kp === 'throttle') {
      const { kp: _kp, id, ...event } = msg;
      const others = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w !== from && w.isConnected());
      const rid = nextRelay++;
      if (event.kind === 'failure') {
        const timer = setTimeout(() => finishRelay(rid), 1000);
        pendingRelays.set(rid, { waiting: new Set(others.map((w) => w.id)), origin: from, id, timer });
      }
      for (const w of others) w.send({ kp: 'throttle-relay', rid, ...event } satisfies Message);
      if (event.kind === 'failure' && others.length === 0) finishRelay(rid);
    } else if (msg.kp === 'throttle-ack') {
      const r = pendingRelays.get(msg.rid);
      if (!r) return;
      r.waiting.delete(from.id);
      if (r.waiting.size === 0) finishRelay(msg.rid);
    }
  };

  const fork = () => {
    const w = cluster.fork();
    w.on('message', (m: Message) => onMessage(w, m));
    // A message to a worker that is just dying fails asynchronously as an 'error' event;
    // unheard, it would kill the primary and with it every worker.
    w.on('error', (e: Error) => log.warn({ worker: w.process.pid, err: e.message }, `${name}: message to a worker failed`));
  };

  cluster.on('exit', (worker, code, signal) => {
    for (const [rid, r] of pendingRelays) {
      r.waiting.delete(worker.id);
      if (r.waiting.size === 0) finishRelay(rid);
    }
    if (stopping) return;
    log.error({ worker: worker.process.pid, code, signal }, `${name} worker died; starting another`);
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && now - restarts[0]! > 60_000) restarts.shift();
    // A worker that keeps dying at start-up would spin: back off.
    setTimeout(fork, restarts.length > 5 ? 5000 : 100);
  });

  for (let i = 0; i < workers; i++) fork();
  log.info({ workers }, `${name}: started workers`);

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const stop = (signal: string) => {
    if (stopping) return done;
    stopping = true;
    log.info({ signal }, `${name}: stopping workers`);
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    if (alive.length === 0) {
      resolveDone();
      return done;
    }
    let left = alive.length;
    for (const w of alive) {
      w.once('exit', () => {
        if (--left === 0) resolveDone();
      });
      w.process.kill('SIGTERM');
    }
    return done;
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  return { done, stop };
}

/** In a worker: shares this process's throttle with the other workers through the primary. */
export function connectThrottleToCluster(throttle: LoginThrottle): void {
  if (!cluster.isWorker || !process.send) return;
  // With a callback, a send that fails (the primary is gone or stopping) is reported
  // to it instead of as an 'error' event on process, which would be an uncaught
  // exception. The throttle then holds in this worker only, as it would alone.
  const send = (msg: Message) => {
    if (!process.connected) return;
    process.send!(msg, undefined, undefined, () => undefined);
  };
  let nextId = 1;
  const waiting = new Map<number, () => void>();
  process.on('message', (msg: Message) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.kp === 'throttle-relay') {
      const { kp: _kp, rid, ...event } = msg;
      throttle.apply(event);
      if (event.kind === 'failure') send({ kp: 'throttle-ack', rid } satisfies Message);
    } else if (msg.kp === 'throttle-done') {
      waiting.get(msg.id)?.();
      waiting.delete(msg.id);
    }
  });
  throttle.connect({
    failure: (user, address, at) =>
      new Promise<void>((resolve) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve();
        }, 2000);
        waiting.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
        send({ kp: 'throttle', id, kind: 'failure', user, address, at } satisfies Message);
      }),
    success: (user, address) => {
      send({ kp: 'throttle', id: 0, kind: 'success', user, address, at: Date.now() } satisfies Message);
    },
  });
}
