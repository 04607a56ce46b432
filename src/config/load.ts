import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { fromDistribution, isDistributionConfig } from './distribution.js';
import { ConfigError } from './errors.js';
import { settings } from './reference.js';
import { createConfig, type ConfigShape } from './schema.js';
import { storageProblems } from '../storage/drivers.js';

export type Config = Readonly<ConfigShape> & {
  /** Derived: the realm the registry advertises. */
  readonly realm: string;
  /** Derived: host name used in URLs when publicHost is empty. */
  readonly advertisedHost: string;
};

export { ConfigError } from './errors.js';

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
 * the --config file (JSON or YAML; a Docker Distribution config.yml is translated, see
 * distribution.ts), KEYPORT_* environment variables. Validation is strict: an unknown
 * key, an unknown KEYPORT_* variable or a bad value throws ConfigError naming it (and
 * the variable, and what is expected), so nothing starts half-configured.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  return loadConfigWithWarnings(opts).config;
}

/** loadConfig, and the warnings to log once a logger exists (Distribution keys ignored as harmless). */
export function loadConfigWithWarnings(opts: LoadOptions = {}): { config: Config; warnings: string[] } {
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
  const unknown = unknownVariables(env);
  if (unknown.length) throw new ConfigError(`invalid configuration: ${unknown.join('\n')}`);
  const warnings: string[] = [];
  // Settings a Distribution config.yml gave, with the key and file they came from.
  const origins = new Map<string, string>();
  let conf: ReturnType<typeof createConfig>;
  try {
    conf = createConfig(env);
    for (const f of files) {
      let doc = readConfigFile(f);
      if (isDistributionConfig(doc)) {
        const translated = fromDistribution(doc as Record<string, unknown>, f);
        warnings.push(...translated.warnings);
        for (const [key, from] of Object.entries(translated.origins)) origins.set(key, `${from} in ${f}`);
        doc = translated.settings;
      }
      conf.load(doc as object);
    }
    conf.validate({ allowed: 'strict' });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`invalid configuration: ${explain((e as Error).message, env, origins)}`);
  }
  const shape = conf.getProperties() as ConfigShape;
  return { config: finish(shape), warnings };
}

/** A config file's content: JSON for .json, YAML otherwise (YAML also reads JSON). */
function readConfigFile(f: string): unknown {
  const text = fs.readFileSync(f, 'utf8');
  let doc: unknown;
  if (f.endsWith('.json')) {
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`config file ${f} is not valid JSON: ${(e as Error).message}`);
    }
  } else {
    try {
      doc = YAML.parse(text);
    } catch (e) {
      throw new ConfigError(`config file ${f} is not valid YAML: ${(e as Error).message}`);
    }
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${f} must hold a mapping of settings, not ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  return doc;
}

/**
 * Makes convict's "key: problem" lines say which variable set the key and to what (a
 * secret's value is never shown), or which Distribution key gave it, and suggests the
 * closest key for an undeclared one.
 */
function explain(message: string, env: NodeJS.ProcessEnv, origins: ReadonlyMap<string, string>): string {
  return message
    .split('\n')
    .map((line) => {
      const undeclared = /^configuration param '([^']+)' not declared in the schema$/.exec(line);
      if (undeclared) {
        const near = closest(undeclared[1]!, settings().map((s) => s.key));
        return `${undeclared[1]}: not a Keyport setting${near ? ` (did you mean ${near}?)` : ''}`;
      }
      const m = /^([a-zA-Z][\w.]*): (.*?)(?:: value was (.*))?$/.exec(line);
      if (!m) return line;
      const setting = settings().find((s) => s.key === m[1]);
      if (!setting) return line;
      const fromEnv = env[setting.env] !== undefined;
      const shown = setting.sensitive ? '(hidden)' : fromEnv ? env[setting.env] : undefined;
      const origin = !fromEnv ? origins.get(m[1]!) : undefined;
      const where = fromEnv ? `${setting.env}=${shown}` : origin ? `${setting.env}; ${origin}` : setting.env;
      // Some formats name the value themselves ("must be true or false, got ..."); say it once.
      const got = !fromEnv && m[3] !== undefined && !setting.sensitive && !/, got /.test(m[2]!) ? `, got ${m[3]}` : '';
      return `${m[1]} (${where}): ${m[2]}${got}`;
    })
    .join('\n');
}

/**
 * KEYPORT_* variables nobody reads: a misspelt one would otherwise be silently ignored.
 * Known are the schema's, and those Keyport reads outside it.
 */
const OTHER_VARIABLES = [
  'KEYPORT_CONFIG',
  // keyport copy / whoami credentials, and what copy --check gives its command.
  'KEYPORT_USERNAME',
  'KEYPORT_PASSWORD',
  'KEYPORT_SOURCE',
  'KEYPORT_DEST',
  'KEYPORT_DIGEST',
  // scripts/quickstart.sh, and the test harness (KEYPORT_TEST_* below).
  'KEYPORT_QUICKSTART_DIR',
  'KEYPORT_OCI_CONFORMANCE',
];
const OTHER_PREFIXES = ['KEYPORT_TEST_'];

function unknownVariables(env: NodeJS.ProcessEnv): string[] {
  const known = new Set([...settings().map((s) => s.env), ...OTHER_VARIABLES]);
  return Object.keys(env)
    .filter((k) => k.startsWith('KEYPORT_') && !known.has(k) && !OTHER_PREFIXES.some((p) => k.startsWith(p)))
    .sort()
    .map((k) => {
      const near = closest(k, [...known]);
      return `${k}: no such setting${near ? ` (did you mean ${near}?)` : ''}; \`keyport env\` lists every variable`;
    });
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a typo. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

function finish(shape: ConfigShape): Config {
  const advertisedHost = shape.publicHost || (isWildcard(shape.bind) ? os.hostname() : shape.bind);
  const hostForUrl = advertisedHost.includes(':') ? `[${advertisedHost}]` : advertisedHost;
  const realm = shape.token.realm || `https://${hostForUrl}:${shape.token.port}/token`;
  if (shape.token.port === shape.registry.port) {
    throw new ConfigError('invalid configuration: token.port (KEYPORT_TOKEN_PORT) and registry.port (KEYPORT_REGISTRY_PORT) must differ');
  }
  if (shape.keystone.serviceUser && !shape.keystone.servicePassword) {
    throw new ConfigError('invalid configuration: keystone.servicePassword (KEYPORT_KEYSTONE_SERVICE_PASSWORD) must be set when keystone.serviceUser (KEYPORT_KEYSTONE_SERVICE_USER) is');
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
