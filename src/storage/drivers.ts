import type { SettingsOf } from '../config/fragment.js';
import type { Logger } from '../log/logger.js';
import type { StorageDriver } from './driver.js';
import type { DriverFactory } from './factory.js';
import { filesystemFactory } from './filesystem/factory.js';
import { memoryFactory } from './memory/factory.js';
import { s3Factory } from './s3/factory.js';
import { swiftFactory } from './swift/factory.js';

/**
 * Every storage driver Keyport has. The configuration schema takes the drivers' names
 * and settings from here, so adding a driver is writing its folder and one line below.
 */
export const DRIVERS = [filesystemFactory, memoryFactory, swiftFactory, s3Factory] as const;

type Factory = (typeof DRIVERS)[number];
export type DriverName = Factory['name'];
export const DRIVER_NAMES: DriverName[] = DRIVERS.map((f) => f.name);

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** Settings of drivers without a section, directly under storage (filesystem's root, fsync). */
type FlatSchema = UnionToIntersection<Extract<Factory, { section: undefined }>['settings']>;
/** One storage.<section> per driver that has one. */
type SectionSchema = { [F in Factory as F['section'] extends string ? F['section'] : never]: F['settings'] };

function flatSchema(): FlatSchema {
  return Object.assign({}, ...DRIVERS.filter((f) => f.section === undefined).map((f) => f.settings));
}

function sectionSchema(): SectionSchema {
  return Object.fromEntries(DRIVERS.flatMap((f) => (f.section === undefined ? [] : [[f.section, f.settings]]))) as SectionSchema;
}

/** The drivers' settings, for the storage part of the configuration schema. */
export const driverSettings = { flat: flatSchema(), sections: sectionSchema() };

/** The validated storage settings the drivers read (storage.driver and their keys). */
export type StorageSettings = { driver: DriverName } & SettingsOf<FlatSchema> & SettingsOf<SectionSchema>;

function factoryOf(name: string): DriverFactory {
  const f = DRIVERS.find((d) => d.name === name);
  if (!f) throw new Error(`storage driver ${name} is not available in this build`);
  return f as DriverFactory;
}

/** The part of the storage settings a driver owns, and nothing else. */
function ownSettings(f: DriverFactory, storage: StorageSettings): SettingsOf<typeof f.settings> {
  const all: Readonly<Record<string, unknown>> = storage;
  if (f.section !== undefined) return all[f.section] as SettingsOf<typeof f.settings>;
  return Object.fromEntries(Object.keys(f.settings).map((k) => [k, all[k]])) as SettingsOf<typeof f.settings>;
}

/** The selected driver's own cross-checks; an empty list when its settings are fine. */
export function storageProblems(storage: StorageSettings): string[] {
  const f = factoryOf(storage.driver);
  return f.problems?.(ownSettings(f, storage)) ?? [];
}

/** The storage driver the configuration names, given only its own settings. */
export async function createStorageDriver(storage: StorageSettings, log: Logger): Promise<StorageDriver> {
  const f = factoryOf(storage.driver);
  return f.create(ownSettings(f, storage), log);
}
