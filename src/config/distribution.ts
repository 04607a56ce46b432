import { isIP } from 'node:net';
import path from 'node:path';
import { ConfigError } from './errors.js';

/**
 * A Docker Distribution `config.yml`, accepted as it is: each key Distribution
 * documents is mapped to Keyport's setting, ignored with a warning where ignoring it
 * changes nothing a user relies on, or refused. Every refused key is named in one
 * error, so an operator fixes them all in one go. The README's "Moving from Docker
 * Distribution" lists the same three groups.
 *
 * Values are passed on as Distribution wrote them: durations such as `10s` are read by
 * Keyport's duration settings (see duration.ts).
 */

/** Distribution's marker: every config.yml starts with `version: 0.1`. */
export function isDistributionConfig(doc: unknown): boolean {
  return !!doc && typeof doc === 'object' && !Array.isArray(doc) && 'version' in doc;
}

type Settings = Record<string, unknown>;

interface Translation {
  out: Settings;
  warnings: string[];
  errors: string[];
  /** Keyport key → the Distribution key it came from, so a bad value is reported under the name the file uses. */
  origins: Record<string, string>;
}

/** What becomes of one Distribution key (a leaf, or a whole subtree with `whole`). */
type Rule =
  | { set: string; map?: (v: unknown, t: Translation, key: string) => unknown }
  | { apply: (v: unknown, t: Translation, key: string) => void; whole?: boolean }
  | { warn: string; whole?: boolean }
  | { error: string; whole?: boolean };

function put(out: Settings, key: string, value: unknown): void {
  const parts = key.split('.');
  let o = out;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Settings;
  o[parts[parts.length - 1]!] = value;
}

const LEVELS: Record<string, string> = { panic: 'fatal', fatal: 'fatal', error: 'error', warn: 'warn', warning: 'warn', info: 'info', debug: 'debug', trace: 'trace' };

function level(v: unknown, t: Translation, key: string): unknown {
  const l = LEVELS[String(v).toLowerCase()];
  if (!l) t.errors.push(`${key}: ${JSON.stringify(v)} is not a log level (error, warn, info, debug)`);
  return l ?? 'info';
}

const not = (v: unknown) => !(v === true || v === 'true');

/** host:port → bind and registry.port; an empty host (":5000") keeps Keyport's bind. */
function addr(v: unknown, t: Translation, key: string): void {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/.exec(String(v));
  if (!m) {
    t.errors.push(`${key}: ${JSON.stringify(v)} is not host:port (a unix socket is not supported)`);
    return;
  }
  const host = m[1] ?? m[2] ?? '';
  if (host) put(t.out, 'bind', host === 'localhost' ? '127.0.0.1' : host);
  put(t.out, 'registry.port', Number(m[3]));
}

/** Keyport reads the server certificate and key as server.crt and server.key of tls.certsDir. */
function tlsFile(expected: string): (v: unknown, t: Translation, key: string) => void {
  return (v, t, key) => {
    const file = String(v);
    if (path.basename(file) !== expected) {
      t.errors.push(
        `${key}: Keyport reads its server ${expected === 'server.crt' ? 'certificate' : 'key'} as ${expected} in tls.certsDir (KEYPORT_CERTS_DIR); copy or link ${file} to ${path.join(path.dirname(file), expected)}`,
      );
      return;
    }
    const dir = path.dirname(file);
    const current = (t.out.tls as Settings | undefined)?.certsDir;
    if (current !== undefined && current !== dir) t.errors.push(`${key}: the certificate and the key must be in one directory (tls.certsDir)`);
    put(t.out, 'tls.certsDir', dir);
  };
}

function metricsAddr(v: unknown, t: Translation, key: string): void {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/.exec(String(v));
  if (!m) {
    t.errors.push(`${key}: ${JSON.stringify(v)} is not host:port`);
    return;
  }
  const host = m[1] ?? m[2] ?? '';
  put(t.out, 'registry.metricsBind', !host || host === 'localhost' ? '127.0.0.1' : host);
  put(t.out, 'registry.metricsPort', Number(m[3]));
}

/** Distribution's endpoint keys are lower case; Keyport's are camel case. */
function endpoints(v: unknown, t: Translation, key: string): void {
  if (!Array.isArray(v)) {
    t.errors.push(`${key}: must be a list of endpoints`);
    return;
  }
  const out = v.map((raw, i) => {
    const e: Settings = {};
    for (const [k, val] of Object.entries((raw ?? {}) as Settings)) {
      const where = `${key}[${i}].${k}`;
      switch (k.toLowerCase()) {
        case 'name':
        case 'url':
        case 'headers':
        case 'timeout':
        case 'threshold':
        case 'backoff':
        case 'disabled':
          e[k.toLowerCase()] = val;
          break;
        case 'ignoredmediatypes':
          e.ignoredMediaTypes = val;
          break;
        case 'ignore': {
          const ig = (val ?? {}) as Settings;
          if (ig.mediatypes !== undefined) e.ignoredMediaTypes = [...((e.ignoredMediaTypes as string[] | undefined) ?? []), ...(ig.mediatypes as string[])];
          if (ig.actions !== undefined) e.ignoredActions = ig.actions;
          break;
        }
        case 'queuepurgetimeout':
          t.warnings.push(`${where} is ignored: Keyport drops the oldest events beyond queueSize instead`);
          break;
        default:
          t.errors.push(`${where}: not supported by Keyport's notifications`);
      }
    }
    return e;
  });
  put(t.out, 'notifications.endpoints', out);
}

/**
 * Distribution's pull-through mode mirrors one registry at the root (`library/busybox`
 * fetched as it is) and makes the whole registry read-only. Keyport caches per
 * namespace, so every repository stays under the policy and pushes keep working
 * elsewhere: `proxy.remoteurl` becomes one `upstreams` entry under a namespace named
 * after the upstream, and a start-up warning says where its images now are.
 */
function proxy(v: unknown, t: Translation, key: string): void {
  const p = (v ?? {}) as Settings;
  for (const k of Object.keys(p)) {
    if (k === 'ttl') t.warnings.push(`${key}.ttl is ignored: cached content stays until GC removes it (a retention rule with notPulledFor expires what is not pulled)`);
    else if (!['remoteurl', 'username', 'password'].includes(k)) t.errors.push(`${key}.${k}: not supported by Keyport`);
  }
  const url = typeof p.remoteurl === 'string' ? p.remoteurl : '';
  let host = '';
  try {
    host = new URL(url).hostname;
  } catch {
    t.errors.push(`${key}.remoteurl: must be the upstream registry's URL (https://host[:port]), got ${JSON.stringify(p.remoteurl ?? null)}`);
    return;
  }
  // A name from the host (quay.io: quay), or "mirror" for an address or a host without one.
  const named = isIP(host.replace(/^\[|\]$/g, '')) ? undefined : host.split('.').find((l) => /^[a-z][a-z0-9]*$/.test(l) && l !== 'registry' && l !== 'localhost');
  const namespace = /(^|\.)docker\.io$/.test(host) ? 'dockerhub' : (named ?? 'mirror');
  const entry: Settings = { namespace, url };
  if (p.username !== undefined) entry.username = String(p.username);
  if (p.password !== undefined) entry.password = String(p.password);
  put(t.out, 'upstreams', [entry]);
  t.origins.upstreams = `${key}.remoteurl`;
  t.warnings.push(
    `${key}.remoteurl: ${url} is cached under the namespace ${namespace}: pull ${namespace}/<repository> where Distribution served <repository>; pushes into other namespaces keep working (see "Pull-through cache" in the README)`,
  );
}

const harmless = (why: string): Rule => ({ warn: why, whole: true });
const refused = (why: string): Rule => ({ error: why, whole: true });

const RULES: Record<string, Rule> = {
  version: { apply: (v, t, key) => void (String(v) !== '0.1' && t.errors.push(`${key}: only Distribution's version 0.1 is understood`)) },
  loglevel: { set: 'log.level', map: level },
  'log.level': { set: 'log.level', map: level },
  'log.formatter': {
    set: 'log.format',
    map: (v, t, key) => {
      if (v === 'text' || v === 'json') return v;
      t.warnings.push(`${key}: ${JSON.stringify(v)} is written as json`);
      return 'json';
    },
  },
  'log.fields': harmless('Keyport adds its own fields (component, pid, reqId) to every line'),
  'log.hooks': refused('log hooks (mail on error) are not supported; use the journal'),
  'log.accesslog.disabled': harmless('Keyport always writes its access log'),
  'log.reportcaller': harmless('Keyport does not log call sites'),

  'http.addr': { apply: addr },
  'http.net': { apply: (v, t, key) => void (v !== 'tcp' && t.errors.push(`${key}: only tcp is supported`)) },
  'http.host': {
    apply: (v, t, key) => {
      try {
        put(t.out, 'publicHost', new URL(String(v)).hostname.replace(/^\[|\]$/g, ''));
      } catch {
        t.errors.push(`${key}: ${JSON.stringify(v)} is not a URL`);
      }
    },
  },
  'http.prefix': refused('Keyport serves the API at /v2/ only'),
  'http.secret': harmless('Keyport signs no upload state with it'),
  'http.relativeurls': harmless('Keyport\'s Location headers are always relative'),
  'http.draintimeout': harmless('Keyport drains requests for up to 10 s on stop'),
  'http.headers': harmless('Keyport sends its own security headers (nosniff, HSTS, frame denial)'),
  'http.http2': harmless('Keyport speaks HTTP/1.1'),
  'http.h2c': harmless('Keyport speaks HTTP/1.1 over TLS'),
  'http.tls.certificate': { apply: tlsFile('server.crt') },
  'http.tls.key': { apply: tlsFile('server.key') },
  'http.tls.minimumtls': harmless('Keyport accepts TLS 1.2 and later'),
  'http.tls.cipher_suites': harmless('Keyport uses Node\'s default TLS 1.2+ cipher suites'),
  'http.tls.clientcas': refused('client certificate authentication is not supported; Keyport authenticates through Keystone tokens'),
  'http.tls.letsencrypt': refused('Let\'s Encrypt is not supported; give the certificate in tls.certsDir'),
  'http.debug.addr': { apply: metricsAddr },
  'http.debug.prometheus.enabled': { apply: () => undefined },
  'http.debug.prometheus.path': {
    apply: (v, t, key) => void (v !== '/metrics' && t.warnings.push(`${key}: Keyport serves metrics at /metrics, not ${String(v)}`)),
  },

  'auth.token.realm': { set: 'token.realm' },
  'auth.token.service': { set: 'token.service' },
  'auth.token.issuer': { set: 'token.issuer' },
  'auth.token.rootcertbundle': { set: 'registry.trustedTokenCerts' },
  'auth.token.autoredirect': harmless('the realm is given as it is'),
  'auth.token.jwks': refused('give the token certificates in rootcertbundle'),
  'auth.token.signingalgorithms': harmless('Keyport accepts ES256/384/512, RS256/384/512 and PS256/384/512'),
  'auth.htpasswd': refused('Keyport authenticates through its token server and Keystone; remove htpasswd'),
  'auth.silly': refused('Keyport authenticates through its token server and Keystone'),

  'health.storagedriver.enabled': { set: 'storage.health.enabled' },
  'health.storagedriver.interval': { set: 'storage.health.interval' },
  'health.storagedriver.threshold': { set: 'storage.health.threshold' },
  'health.file': refused('file health checks are not supported'),
  'health.http': refused('HTTP health checks are not supported'),
  'health.tcp': refused('TCP health checks are not supported'),

  'notifications.endpoints': { apply: endpoints, whole: true },
  'notifications.events.includereferences': harmless('events name the manifest; references are not listed'),

  'storage.filesystem.rootdirectory': { set: 'storage.root' },
  'storage.filesystem.maxthreads': harmless('Keyport bounds its own file operations'),
  'storage.inmemory': { apply: () => undefined, whole: true },
  'storage.delete.enabled': { set: 'registry.deleteEnabled' },
  'storage.redirect.disable': { apply: () => undefined },
  'storage.cache': harmless('Keyport keeps no blob descriptor cache; it reads the store'),
  'storage.tag.concurrencylimit': harmless('tags are looked up one at a time'),
  'storage.maintenance.uploadpurging.enabled': { set: 'registry.uploadPurging.enabled' },
  'storage.maintenance.uploadpurging.age': { set: 'registry.uploadPurging.age' },
  'storage.maintenance.uploadpurging.interval': { set: 'registry.uploadPurging.interval' },
  'storage.maintenance.uploadpurging.dryrun': {
    apply: (v, t, key) => void ((v === true || v === 'true') && t.errors.push(`${key}: a dry run is not supported; disable purging instead`)),
  },
  'storage.maintenance.readonly': refused('Keyport has no read-only mode; pushes would be accepted'),

  'storage.swift.authurl': { set: 'storage.swift.authUrl' },
  'storage.swift.authversion': { set: 'storage.swift.authVersion' },
  'storage.swift.username': { set: 'storage.swift.username' },
  'storage.swift.password': { set: 'storage.swift.password' },
  'storage.swift.applicationcredentialid': { set: 'storage.swift.applicationCredentialId' },
  'storage.swift.applicationcredentialname': { set: 'storage.swift.applicationCredentialName' },
  'storage.swift.applicationcredentialsecret': { set: 'storage.swift.applicationCredentialSecret' },
  'storage.swift.tenant': { set: 'storage.swift.tenant' },
  'storage.swift.tenantid': { set: 'storage.swift.tenantId' },
  'storage.swift.domain': { set: 'storage.swift.domain' },
  'storage.swift.domainid': { set: 'storage.swift.domainId' },
  'storage.swift.tenantdomain': { set: 'storage.swift.tenantDomain' },
  'storage.swift.tenantdomainid': { set: 'storage.swift.tenantDomainId' },
  'storage.swift.region': { set: 'storage.swift.region' },
  'storage.swift.endpointtype': { set: 'storage.swift.endpointType' },
  'storage.swift.container': { set: 'storage.swift.container' },
  'storage.swift.rootdirectory': { set: 'storage.swift.rootDirectory' },
  'storage.swift.prefix': { set: 'storage.swift.rootDirectory' },
  'storage.swift.chunksize': { set: 'storage.swift.chunkSize' },
  'storage.swift.insecureskipverify': { set: 'storage.swift.insecureSkipVerify' },
  'storage.swift.secretkey': { set: 'storage.swift.tempUrlKey' },
  'storage.swift.tempurlcontainerkey': { set: 'storage.swift.tempUrlContainerKey' },
  'storage.swift.tempurlmethods': { set: 'storage.swift.tempUrlMethods' },
  'storage.swift.trustid': refused('Keystone trusts are not supported; use an application credential'),
  'storage.swift.accesskey': refused('HP Cloud access keys are not supported'),

  'storage.s3.bucket': { set: 'storage.s3.bucket' },
  'storage.s3.region': { set: 'storage.s3.region' },
  'storage.s3.regionendpoint': { set: 'storage.s3.endpoint' },
  'storage.s3.forcepathstyle': { set: 'storage.s3.forcePathStyle' },
  'storage.s3.accesskey': { set: 'storage.s3.accessKey' },
  'storage.s3.secretkey': { set: 'storage.s3.secretKey' },
  'storage.s3.rootdirectory': { set: 'storage.s3.rootDirectory' },
  'storage.s3.chunksize': { set: 'storage.s3.chunkSize' },
  'storage.s3.skipverify': { set: 'storage.s3.insecureSkipVerify' },
  'storage.s3.secure': {
    apply: (v, t, key) => void (not(v) && t.errors.push(`${key}: plain HTTP to S3 is set through regionendpoint (http://...), not secure: false`)),
  },
  'storage.s3.v4auth': harmless('requests are always signed with Signature Version 4'),
  'storage.s3.encrypt': refused('server-side encryption settings are not supported; set the bucket\'s default encryption'),
  'storage.s3.keyid': refused('KMS keys are not supported; set the bucket\'s default encryption'),
  'storage.s3.storageclass': harmless('objects get the bucket\'s default storage class'),
  'storage.s3.objectacl': harmless('objects get the bucket\'s default ACL (private)'),
  'storage.s3.multipartcopychunksize': harmless('Keyport sizes its own copies'),
  'storage.s3.multipartcopymaxconcurrency': harmless('Keyport sizes its own copies'),
  'storage.s3.multipartcopythresholdsize': harmless('Keyport sizes its own copies'),
  'storage.s3.useragent': harmless('Keyport sends its own user agent'),
  'storage.s3.loglevel': harmless('S3 requests are not logged'),
  'storage.s3.usedualstack': refused('dual-stack endpoints are given as regionendpoint'),
  'storage.s3.accelerate': refused('transfer acceleration is not supported'),
  'storage.s3.sessiontoken': refused('give temporary credentials through AWS_SESSION_TOKEN'),

  middleware: refused('storage middleware (CloudFront, redirects) is not supported'),
  proxy: { apply: proxy, whole: true },
  redis: harmless('Keyport uses no Redis cache'),
  reporting: harmless('Bugsnag and New Relic reporting are not supported; use the metrics endpoint'),
  validation: harmless('Keyport checks every manifest\'s references and sizes'),
  compatibility: harmless('schema 1 manifests are refused'),
  catalog: harmless('the catalog page size is the client\'s n'),
};

const DRIVERS: Record<string, string | null> = { filesystem: 'filesystem', inmemory: 'memory', swift: 'swift', s3: 's3', azure: null, gcs: null, oss: null };

/** Translates a Distribution config; throws ConfigError naming every key Keyport refuses. */
export function fromDistribution(doc: Settings, file: string): { settings: Settings; warnings: string[]; origins: Record<string, string> } {
  const t: Translation = { out: {}, warnings: [], errors: [], origins: {} };
  const storage = (doc.storage ?? {}) as Settings;
  const drivers = Object.keys(storage).filter((k) => k in DRIVERS);
  if (drivers.length > 1) t.errors.push(`storage: one driver only, found ${drivers.join(', ')}`);
  for (const d of drivers) {
    if (DRIVERS[d]) put(t.out, 'storage.driver', DRIVERS[d]);
    else t.errors.push(`storage.${d}: the ${d} driver is not supported (filesystem, inmemory, swift and s3 are)`);
  }
  const redirect = (storage.redirect as Settings | undefined)?.disable;
  if (redirect !== undefined && (drivers[0] === 'swift' || drivers[0] === 's3')) put(t.out, `storage.${drivers[0]}.redirect`, not(redirect));
  if (!doc.auth) t.warnings.push('auth: none configured; Keyport always requires tokens from its token server (anonymous pulls: policy.anonymousNamespaces)');

  const walk = (node: unknown, key: string) => {
    const rule = RULES[key];
    const isMap = !!node && typeof node === 'object' && !Array.isArray(node);
    if (rule && (!isMap || ('whole' in rule && rule.whole) || 'set' in rule)) return handle(rule, node, key, t);
    if (isMap) {
      for (const [k, v] of Object.entries(node as Settings)) walk(v, key ? `${key}.${k}` : k);
      return;
    }
    if (rule) return handle(rule, node, key, t);
    t.errors.push(`${key}: not supported by Keyport`);
  };
  walk(doc, '');
  if (t.errors.length) {
    throw new ConfigError(
      `config file ${file} (a Docker Distribution configuration) has settings Keyport does not support:\n${t.errors.map((e) => `  - ${e}`).join('\n')}\nSee "Moving from Docker Distribution" in the README.`,
    );
  }
  return { settings: t.out, warnings: t.warnings.map((w) => `config file ${file}: ${w}`), origins: t.origins };
}

function handle(rule: Rule, value: unknown, key: string, t: Translation): void {
  if ('set' in rule) {
    put(t.out, rule.set, rule.map ? rule.map(value, t, key) : value);
    t.origins[rule.set] = key;
  } else if ('apply' in rule) {
    rule.apply(value, t, key);
    // A whole subtree copied under the same name (notifications.endpoints) is checked by Keyport's setting.
    if ('whole' in rule && rule.whole) t.origins[key] = key;
  }
  else if ('warn' in rule) t.warnings.push(`${key} is ignored: ${rule.warn}`);
  else t.errors.push(`${key}: ${rule.error}`);
}
