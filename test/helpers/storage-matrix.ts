/**
 * Runs the registry's own test files on another storage driver. A wrapper test file calls
 * `registrySuiteOn(driver)`: it points KEYPORT_TEST_STORAGE_ENV at a fresh container or
 * bucket on the test Swift, then imports the suites, so the very same tests run against
 * the cloud store. Each test file is its own process, so the setting stays local.
 */
import crypto from 'node:crypto';
import { test } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { swiftRegistryEnv } from './swift.js';
import { servicesFile, type KeystoneService, type SwiftService } from './services.js';

export type MatrixDriver = 'swift' | 's3';

/** The registry suites that exercise storage (token checks do not touch it). */
const SUITES = ['../registry/blobs.test.js', '../registry/manifests.test.js', '../registry/faults.test.js'];

function unavailable(driver: MatrixDriver, why: string): void {
  const f = servicesFile();
  if (f.ci || process.env.CI) {
    test(`registry suite on ${driver}`, () => {
      throw new Error(`${why} (CI is set, so this is a failure)`);
    });
  } else {
    test(`registry suite on ${driver}`, { skip: why }, () => {});
  }
}

async function envFor(driver: MatrixDriver, sw: SwiftService, ks: KeystoneService | undefined): Promise<Record<string, string> | string> {
  const name = `suite-${driver}-${crypto.randomBytes(4).toString('hex')}`;
  if (driver === 'swift') return swiftRegistryEnv(sw, sw.authV1, { KEYPORT_SWIFT_CONTAINER: name, KEYPORT_SWIFT_ROOT_DIRECTORY: 'registry' });
  const ec2 = ks?.fixtures.ec2;
  if (!ec2 || !sw.keystone) return 'Swift runs without Keystone, so its S3 API has no EC2 credential';
  const s3 = new S3Client({
    endpoint: sw.url,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: ec2.access, secretAccessKey: ec2.secret },
  });
  await s3.send(new CreateBucketCommand({ Bucket: name }));
  s3.destroy();
  return {
    KEYPORT_STORAGE_DRIVER: 's3',
    KEYPORT_S3_BUCKET: name,
    KEYPORT_S3_ENDPOINT: sw.url,
    KEYPORT_S3_FORCE_PATH_STYLE: 'true',
    KEYPORT_S3_ACCESS_KEY: ec2.access,
    KEYPORT_S3_SECRET_KEY: ec2.secret,
    KEYPORT_S3_ROOT_DIRECTORY: 'registry',
    KEYPORT_S3_CHUNK_SIZE: String(5 * 1024 * 1024),
  };
}

export async function registrySuiteOn(driver: MatrixDriver): Promise<void> {
  const services = servicesFile().services;
  const sw = services.swift as SwiftService | undefined;
  if (!sw?.available) return unavailable(driver, `swift ${sw ? `unavailable: ${sw.reason}` : 'was not started (run the suite with npm test)'}`);
  const ks = services.keystone?.available ? (services.keystone as KeystoneService) : undefined;
  const env = await envFor(driver, sw, ks);
  if (typeof env === 'string') return unavailable(driver, env);
  process.env.KEYPORT_TEST_STORAGE_ENV = JSON.stringify(env);
  for (const suite of SUITES) await import(suite);
}
