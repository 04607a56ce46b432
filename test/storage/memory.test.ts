import { MemoryDriver } from '../../src/storage/memory/driver.js';
import { driverConformance } from './driver-suite.js';

driverConformance('memory', async () => {
  const driver = new MemoryDriver();
  return { driver };
});
