import type { SchemaFragment, SettingsOf } from '../../config/fragment.js';

/** The s3 driver's settings, storage.s3.*. */
export const s3Settings = {
  bucket: {
    doc: 'S3 driver: bucket holding everything (it must exist).',
    format: String,
    default: '',
    env: 'KEYPORT_S3_BUCKET',
  },
  region: {
    doc: 'S3 driver: region; empty takes AWS_REGION, else us-east-1.',
    format: String,
    default: '',
    env: 'KEYPORT_S3_REGION',
  },
  endpoint: {
    doc: 'S3 driver: endpoint URL of an S3-compatible store (Swift s3api, Ceph RGW, MinIO); empty uses AWS.',
    format: 'optional-url',
    default: '',
    env: 'KEYPORT_S3_ENDPOINT',
  },
  forcePathStyle: {
    doc: 'S3 driver: path-style URLs (endpoint/bucket/key) instead of virtual-host style (bucket.endpoint/key).',
    format: 'flag',
    default: false,
    env: 'KEYPORT_S3_FORCE_PATH_STYLE',
  },
  accessKey: {
    doc: 'S3 driver: access key id; empty takes the standard AWS credential chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, profiles, instance roles).',
    format: String,
    default: '',
    env: 'KEYPORT_S3_ACCESS_KEY',
  },
  secretKey: {
    doc: 'S3 driver: secret access key.',
    format: String,
    default: '',
    sensitive: true,
    env: 'KEYPORT_S3_SECRET_KEY',
  },
  rootDirectory: {
    doc: 'S3 driver: key prefix inside the bucket.',
    format: String,
    default: '',
    env: 'KEYPORT_S3_ROOT_DIRECTORY',
  },
  chunkSize: {
    doc: 'S3 driver: multipart part size in bytes (5 MiB to 5 GiB).',
    format: 'positive-int',
    default: 10 * 1024 * 1024,
    env: 'KEYPORT_S3_CHUNK_SIZE',
  },
  insecureSkipVerify: {
    doc: 'S3 driver: skip TLS verification of the endpoint (testing only).',
    format: 'flag',
    default: false,
    env: 'KEYPORT_S3_INSECURE_SKIP_VERIFY',
  },
  caFile: {
    doc: 'S3 driver: CA bundle (PEM) to verify the endpoint; empty uses the system store.',
    format: String,
    default: '',
    env: 'KEYPORT_S3_CA_FILE',
  },
  timeout: {
    doc: 'S3 driver: milliseconds to wait for an answer before the store counts as unavailable.',
    format: 'positive-milliseconds',
    default: 30000,
    env: 'KEYPORT_S3_TIMEOUT',
  },
  redirect: {
    doc: 'S3 driver: answer blob downloads with a redirect to a presigned URL.',
    format: 'flag',
    default: false,
    env: 'KEYPORT_S3_REDIRECT',
  },
  redirectExpiry: {
    doc: 'S3 driver: seconds a presigned redirect URL stays valid.',
    format: 'positive-seconds',
    default: 1200,
    env: 'KEYPORT_S3_REDIRECT_EXPIRY',
  },
} as const satisfies SchemaFragment;

export type S3Settings = SettingsOf<typeof s3Settings>;
