import { StorageError } from '../driver.js';
import { defineDriver } from '../factory.js';
import { prefixProblem } from '../prefix.js';
import { s3Settings } from './settings.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const s3Factory = defineDriver({
  name: 's3',
  section: 's3',
  settings: s3Settings,
  problems(s) {
    const out: string[] = [];
    if (!s.bucket) out.push('storage.s3.bucket (KEYPORT_S3_BUCKET): must be set for the s3 driver');
    if (!!s.accessKey !== !!s.secretKey) out.push('storage.s3.accessKey and storage.s3.secretKey: set both or neither');
    if (s.chunkSize < 5 * MiB || s.chunkSize > 5 * GiB) out.push('storage.s3.chunkSize (KEYPORT_S3_CHUNK_SIZE): must be between 5 MiB and 5 GiB');
    const r = prefixProblem('storage.s3.rootDirectory (KEYPORT_S3_ROOT_DIRECTORY)', s.rootDirectory);
    if (r) out.push(r);
    return out;
  },
  async create(settings, log) {
    if (!settings.bucket) throw new StorageError('storage.s3.bucket is not set');
    // Loaded on demand: the AWS SDK is large, and only an S3 registry needs it.
    const { S3Driver } = await import('./driver.js');
    return new S3Driver({ ...settings }, log.child({ storage: 's3' }));
  },
});
