import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { Logger } from '../log/logger.js';
import { relayWorkerChannels } from './worker-channel.js';

/**
 * Several worker processes sharing one listening port (node:cluster), so a server uses
 * every core. The primary only supervises (restarting workers that die) and relays the
 * little state workers must share (worker-channel.ts).
 */

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
  const restarts: number[] = [];
  relayWorkerChannels();

  const fork = () => {
    const w = cluster.fork();
    // A message to a worker that is just dying fails asynchronously as an 'error' event;
    // unheard, it would kill the primary and with it every worker.
    w.on('error', (e: Error) => log.warn({ worker: w.process.pid, err: e.message }, `${name}: message to a worker failed`));
  };

  cluster.on('exit', (worker, code, signal) => {
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
