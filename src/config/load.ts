import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConfig, schema, type ConfigShape } from './schema.js';
import { storageProblems } from '../storage/drivers.js';

export type Config = Readonly<ConfigShape> & {
  /** Derived: the realm the registry advertises. */
  readonly realm: string;
  /** Derived: host name used in URLs when publicHost is empty. */
  readonly advertisedHost: string;
};

/** Raised for any configuration problem; the message names the offending key or file. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Directory holding the shipped config/*.json files (next to package.json). */
export function shippedConfigDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/config/load.js and src/config/load.ts are both two levels below the package root.
  return path.resolve(here, '..', '..', 'config');
}

export interface LoadOptions {
  /** --config FILE; falls back to KEYPORT_CONFIG. */
  file?: string;
  /** Environment to read KEYPORT_* from (tests pass their own). */
  env?: NodeJS.ProcessEnv;
  /** Directory of shipped defaults; tests may point elsewhere. */
  configDir?: string;
}

/**
 * Sources, lowest to highest precedence: schema defaults, config/*.json in name order,
 * the --config file, KEYPORT_* environment variables. Validation is strict: an unknown
 * key or a bad value throws ConfigError naming it, so nothing starts half-configured.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const files: string[] = [];
  const dir = opts.configDir ?? shippedConfigDir();
  if (fs.existsSync(dir)) {
    for (const f of fs.readdirSync(dir).sort()) if (f.endsWith('.json')) files.push(path.join(dir, f));
  }
  const extra = opts.file ?? env.KEYPORT_CONFIG;
  if (extra) {
    if (!fs.existsSync(extra)) throw new ConfigError(`config file ${extra} does not exist`);
    files.push(extra);
  }
  let conf: ReturnType<typeof createConfig>;
  try {
    conf = createConfig(env);
    for (const f of files) {
      try {
        JSON.parse(fs.readFileSync(f, 'utf8'));
      } catch (e) {
        throw new ConfigError(`config file ${f} is not valid JSON: ${(e as Error).message}`);
      }
      conf.loadFile(f);
    }
    conf.validate({ allowed: 'strict' });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`invalid configuration: ${withEnvNames((e as Error).message)}`);
  }
  const shape = conf.getProperties();
  return finish(shape);
}

/** Adds the environment variable to each "key: problem" line convict reports. */
function withEnvNames(message: string): string {
  return message
    .split('\n')
    .map((line) => {
      const m = /^([a-zA-Z][\w.]*): (.*)$/.exec(line);
      if (!m) return line;
      const env = envNameOf(m[1]!);
      return env ? `${m[1]} (${env}): ${m[2]}` : line;
    })
    .join('\n');
}

function envNameOf(key: string): string | undefined {
  let node: unknown = schema;
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return (node as { env?: string } | undefined)?.env;
}

function finish(shape: ConfigShape): Config {
  const advertisedHost = shape.publicHost || (isWildcard(shape.bind) ? os.hostname() : shape.bind);
  const hostForUrl = advertisedHost.includes(':') ? `[${advertisedHost}]` : advertisedHost;
  const realm = shape.token.realm || `https://${hostForUrl}:${shape.token.port}/token`;
  if (shape.token.port === shape.registry.port) {
    throw new ConfigError('invalid configuration: token.port and registry.port must differ');
  }
  if (shape.keystone.serviceUser && !shape.keystone.servicePassword) {
    throw new ConfigError('invalid configuration: keystone.servicePassword must be set when keystone.serviceUser is');
  }
  const storage = storageProblems(shape.storage);
  if (storage.length) throw new ConfigError(`invalid configuration: ${storage.join('\n')}`);
  return deepFreeze({ ...shape, realm, advertisedHost }) as Config;
}

function isWildcard(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::' || addr === '';
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
