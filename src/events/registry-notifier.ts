import crypto from 'node:crypto';
import os from 'node:os';
import type { Config } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { Notifier } from './notifier.js';

/**
 * The registry's notifier from configuration. The source record names this host and
 * port, and a random instance id per process, so a receiver can tell the instances
 * (and the workers) of a registry apart.
 */
export function createNotifier(config: Config, log: Logger): Notifier {
  const source = { addr: `${os.hostname()}:${config.registry.port}`, instanceID: crypto.randomUUID() };
  return new Notifier(config.notifications.endpoints, source, log.child({ component: 'events' }));
}
