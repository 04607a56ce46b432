import { MemoryDriver } from '../../src/storage/memory.js';
import { driverConformance } from './driver-suite.js';

driverConformance('memory', async () => {
  const driver = new MemoryDriver();
  return { driver };
});
