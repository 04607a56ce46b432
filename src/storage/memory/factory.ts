import { defineDriver } from '../factory.js';
import { MemoryDriver } from './driver.js';

export const memoryFactory = defineDriver({
  name: 'memory',
  section: undefined,
  settings: {},
  async create(_settings, log) {
    log.warn('memory storage driver: everything is lost when the process stops');
    return new MemoryDriver();
  },
});
