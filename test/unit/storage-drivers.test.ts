import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { settings } from '../../src/config/reference.js';
import { DRIVERS } from '../../src/storage/drivers.js';
import { tempDir } from '../helpers/keyport.js';

const noFiles = tempDir('storage-drivers');

test('each storage driver brings its settings: they are configuration keys, documented with their variable', () => {
  const documented = new Map(settings().map((s) => [s.key, s.env]));
  for (const f of DRIVERS) {
    for (const [key, spec] of Object.entries(f.settings)) {
      const full = f.section === undefined ? `storage.${key}` : `storage.${f.section}.${key}`;
      assert.equal(documented.get(full), (spec as { env: string }).env, `${f.name}: ${full}`);
    }
  }
  // Nothing under storage that no driver (or the health checker, or GC) declared.
  const known = new Set(DRIVERS.flatMap((f) => Object.keys(f.settings).map((k) => (f.section === undefined ? `storage.${k}` : `storage.${f.section}.${k}`))));
  const stray = [...documented.keys()].filter((k) => k.startsWith('storage.') && k !== 'storage.driver' && !k.startsWith('storage.health.') && !k.startsWith('storage.gc.') && !known.has(k));
  assert.deepEqual(stray, []);
});

test('storage.driver accepts exactly the listed drivers, and a driver is checked by its own rules', () => {
  for (const f of DRIVERS) {
    const load = () => loadConfig({ env: { KEYPORT_STORAGE_DRIVER: f.name }, configDir: noFiles });
    if (f.problems) assert.throws(load, (e: unknown) => e instanceof ConfigError && e.message.includes(`storage.${f.section}.`), f.name);
    else assert.equal(load().storage.driver, f.name);
  }
  assert.throws(() => loadConfig({ env: { KEYPORT_STORAGE_DRIVER: 'ftp' }, configDir: noFiles }), /KEYPORT_STORAGE_DRIVER/);
});
