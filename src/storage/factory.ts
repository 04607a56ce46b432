import type { SchemaFragment, SettingsOf } from '../config/fragment.js';
import type { Logger } from '../log/logger.js';
import type { StorageDriver } from './driver.js';

/**
 * A storage driver as the rest of Keyport sees it before one is running: its name, the
 * settings it reads (a convict fragment the configuration schema and the README's
 * table are built from), the rules between them that per-key formats cannot express,
 * and how to make one. Like Docker Distribution's storage driver factories, a driver is
 * added by writing one of these and listing it in drivers.ts; like Verdaccio's plugins,
 * it sees only its own section of the configuration.
 */
export interface DriverFactory<Name extends string = string, Section extends string | undefined = string | undefined, S extends SchemaFragment = SchemaFragment> {
  /** The value of storage.driver that selects it. */
  readonly name: Name;
  /**
   * Where its settings sit: storage.<section>; undefined puts them directly under
   * storage (the filesystem driver's root and fsync, which predate sections).
   */
  readonly section: Section;
  readonly settings: S;
  /**
   * Problems with the settings as a whole, each naming its key (and variable). Only the
   * selected driver is checked, so the sections of the others may stay empty.
   */
  problems?(settings: SettingsOf<S>): string[];
  /** A driver from validated settings. Cloud drivers load their clients here, on demand. */
  create(settings: SettingsOf<S>, log: Logger): Promise<StorageDriver>;
}

/** Declares a factory, keeping its name, section and settings as literal types. */
export function defineDriver<const Name extends string, const Section extends string | undefined, const S extends SchemaFragment>(
  factory: DriverFactory<Name, Section, S>,
): DriverFactory<Name, Section, S> {
  return factory;
}
