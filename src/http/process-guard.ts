import type { Logger } from '../log/logger.js';
import { currentRequestId } from './app.js';

/** Exit status after an uncaught exception (EX_SOFTWARE): systemd's Restart=on-failure restarts. */
export const EXIT_UNCAUGHT = 70;

export interface GuardOptions {
  /** Stops accepting work and lets requests in flight finish; called once, on an uncaught exception. */
  drain: () => Promise<void>;
  /** Longest wait for drain() before exiting anyway. */
  graceMs?: number;
}

/**
 * The last line of defence against errors that escape every handler. Request handlers,
 * the error handlers and the listeners of src/http/app.ts are written so that nothing
 * reaches this; it logs what does, with the request id when the error came out of a
 * request's work.
 *
 * - An unhandled promise rejection is logged and the process keeps serving. The failed
 *   operation had already finished failing (no code was cut off half-way), whoever
 *   awaits the promise later still gets the error, and everything the process writes
 *   to storage is atomic: no state is left half-changed.
 * - An uncaught exception is logged, then the process stops accepting connections, lets
 *   requests in flight finish (up to graceMs) and exits with EXIT_UNCAUGHT, so systemd
 *   (or the cluster primary, for a worker) starts a fresh one. It does not keep
 *   serving: a callback was cut off in the middle, and the promise it would have
 *   settled may never settle. A per-upload lock would then hang every later request on
 *   that upload, a file handle would stay open; nothing tells which in-memory state is
 *   now wrong, and a new process has none of it. Data is safe across the restart:
 *   writes are atomic and uploads resume from what the store holds.
 */
export function guardProcess(log: Logger, opts: GuardOptions): void {
  let exiting = false;
  process.on('unhandledRejection', (reason: unknown) => {
    log.error({ err: reason, reqId: currentRequestId() }, 'unhandled promise rejection; still serving');
  });
  process.on('uncaughtException', (err: Error, origin: string) => {
    if (exiting) {
      // A second failure while draining: stop now.
      log.fatal({ err, reqId: currentRequestId(), origin }, 'uncaught exception while stopping; exiting at once');
      process.exit(EXIT_UNCAUGHT);
    }
    exiting = true;
    log.fatal({ err, reqId: currentRequestId(), origin }, 'uncaught exception; finishing requests in flight, then exiting to be restarted');
    // Not unref'd: it is what ends the process if draining leaves nothing else running.
    setTimeout(() => process.exit(EXIT_UNCAUGHT), opts.graceMs ?? 10_000);
    opts.drain().then(
      () => process.exit(EXIT_UNCAUGHT),
      () => process.exit(EXIT_UNCAUGHT),
    );
  });
}
