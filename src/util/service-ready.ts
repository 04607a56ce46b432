import { spawn } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log/logger.js';

/**
 * Start-up completion for systemd units with Type=notify: `systemctl start` returns, and
 * units ordered after Keyport start, only once the servers accept connections.
 *
 * The notification is a datagram on the AF_UNIX socket named by $NOTIFY_SOCKET. Node
 * cannot send one (node:dgram has no unix datagram sockets, and the npm packages that
 * can are native addons), so `systemd-notify --ready` sends it. systemd attributes a
 * message to a unit through the sender's cgroup, which it can only look up while the
 * sender lives; systemd-notify (systemd 246 and later, Debian 12 has 252) therefore waits
 * until the service manager has processed the message (a BARRIER=1 round trip) unless
 * --no-block is given. The sender is a child of the main process, so the unit needs
 * NotifyAccess=all.
 *
 * Without $NOTIFY_SOCKET (not under systemd, or another unit type) this does nothing.
 */
export function notifyReady(log: Logger, status: string): Promise<void> {
  if (!process.env.NOTIFY_SOCKET) return Promise.resolve();
  return new Promise((resolve) => {
    let stderr = '';
    const child = spawn('systemd-notify', ['--ready', `--status=${status}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // systemd then fails the start after TimeoutStartSec=: say why in the journal.
    child.once('error', (e) => {
      log.error({ err: e.message }, 'cannot run systemd-notify to report readiness');
      resolve();
    });
    child.once('exit', (code, signal) => {
      if (code === 0) log.info({ status }, 'reported readiness to systemd');
      else log.error({ code, signal, stderr: stderr.trim() }, 'systemd-notify failed to report readiness');
      resolve();
    });
  });
}

/**
 * In a node:cluster primary: resolves once `count` workers listen at the same time (a
 * worker that dies before its siblings are up no longer counts). Call it before the
 * workers are forked.
 */
export function workersListening(count: number): Promise<void> {
  return new Promise((resolve) => {
    const listening = new Set<number>();
    const onListening = (w: Worker) => {
      listening.add(w.id);
      if (listening.size < count) return;
      cluster.off('listening', onListening);
      cluster.off('exit', onExit);
      resolve();
    };
    const onExit = (w: Worker) => listening.delete(w.id);
    cluster.on('listening', onListening);
    cluster.on('exit', onExit);
  });
}
