import type { SchemaFragment } from '../../config/fragment.js';

/**
 * The filesystem driver's settings. They sit directly under storage (storage.root,
 * storage.fsync) rather than in a section of their own: they were there before the
 * cloud drivers came, and existing configurations name them so.
 */
export const filesystemSettings = {
  root: {
    doc: 'Root directory of the filesystem driver.',
    format: String,
    default: './data',
    env: 'KEYPORT_STORAGE_ROOT',
  },
  fsync: {
    doc: 'fsync files and directories before a write is acknowledged (filesystem driver).',
    format: 'flag',
    default: true,
    env: 'KEYPORT_STORAGE_FSYNC',
  },
} as const satisfies SchemaFragment;
