import { test } from 'node:test';
import { servicesFile, type SwiftService } from '../helpers/services.js';
import { swiftRegistryEnv } from '../helpers/swift.js';
import { gcSuite } from './gc-suite.js';

const sw = servicesFile().services.swift as SwiftService | undefined;
if (sw?.available) {
  gcSuite('online GC on the Swift driver', async () => swiftRegistryEnv(sw, sw.authV1, { KEYPORT_SWIFT_ROOT_DIRECTORY: 'registry' }), {
    claimWindowS: 24,
    leaseTtlS: 15,
  });
} else if (servicesFile().ci || process.env.CI) {
  test('online GC on the Swift driver', () => {
    throw new Error(`swift unavailable: ${sw?.reason ?? 'not started'} (CI is set, so this is a failure)`);
  });
} else {
  test('online GC on the Swift driver', { skip: `swift unavailable: ${sw?.reason ?? 'not started'}` }, () => {});
}
