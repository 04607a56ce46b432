import { defineDriver } from '../factory.js';
import { FilesystemDriver } from './driver.js';
import { filesystemSettings } from './settings.js';

export const filesystemFactory = defineDriver({
  name: 'filesystem',
  section: undefined,
  settings: filesystemSettings,
  async create(settings) {
    return new FilesystemDriver({ root: settings.root, fsync: settings.fsync });
  },
});
