import type { Config } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import type { StorageDriver } from './driver.js';
import { FilesystemDriver } from './filesystem/driver.js';
import { MemoryDriver } from './memory/driver.js';

/** The storage driver the configuration names. */
export async function createStorageDriver(config: Config, log: Logger): Promise<StorageDriver> {
  switch (config.storage.driver) {
    case 'filesystem':
      return new FilesystemDriver({ root: config.storage.root, fsync: config.storage.fsync });
    case 'memory':
      log.warn('memory storage driver: everything is lost when the process stops');
      return new MemoryDriver();
    case 'swift': {
      // Loaded on demand: a filesystem registry never pays for the cloud clients.
      const { createSwiftDriver } = await import('./swift/driver.js');
      return createSwiftDriver(config, log);
    }
    case 's3': {
      const { createS3Driver } = await import('./s3/driver.js');
      return createS3Driver(config, log);
    }
    default:
      throw new Error(`storage driver ${config.storage.driver} is not available in this build`);
  }
}
