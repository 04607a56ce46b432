import convict from 'convict';
import { registerFormats } from './formats.js';
import { DRIVER_NAMES, driverSettings } from '../storage/drivers.js';
import type { SettingsOf } from './fragment.js';
import { notificationsSchema } from './notifications.js';
import { retentionSchema } from './retention.js';
import { upstreamsSchema } from './upstreams.js';

registerFormats();

/**
 * The one configuration schema for every Keyport process. Keys are grouped by the
 * component that reads them; every key has an environment variable so a systemd
 * EnvironmentFile can set anything.
 */
export const schema = {
  bind: {
    doc: 'Address the HTTPS servers listen on.',
    format: 'host-address',
    default: '0.0.0.0',
    env: 'KEYPORT_BIND',
  },
  publicHost: {
    doc: 'Host name clients use to reach Keyport; used for the default realm and added to the TLS certificate.',
    format: String,
    default: '',
    env: 'KEYPORT_PUBLIC_HOST',
  },
  log: {
    level: {
      doc: 'Log level.',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'KEYPORT_LOG_LEVEL',
    },
    format: {
      doc: 'Log format: json (one JSON object per line, levels as words) or text (one readable line per entry).',
      format: ['json', 'text'],
      default: 'json',
      env: 'KEYPORT_LOG_FORMAT',
    },
  },
  tls: {
    certsDir: {
      doc: 'Directory holding ca.crt/ca.key, server.crt/server.key and token.crt/token.key. Missing files are generated on start.',
      format: String,
      default: './certs',
      env: 'KEYPORT_CERTS_DIR',
    },
    names: {
      doc: 'Extra DNS names or IP addresses for the server certificate (comma separated).',
      format: 'string-list',
      default: [] as string[],
      env: 'KEYPORT_TLS_NAMES',
    },
    tokenKeyType: {
      doc: 'Key type of a generated token-signing key: ec (P-256, ES256) or rsa (3072 bits, RS256).',
      format: ['ec', 'rsa'],
      default: 'ec',
      env: 'KEYPORT_TOKEN_KEY_TYPE',
    },
  },
  token: {
    port: {
      doc: 'HTTPS port of the token server.',
      format: 'port',
      default: 9002,
      env: 'KEYPORT_TOKEN_PORT',
    },
    issuer: {
      doc: 'The iss claim of issued tokens; the registry accepts only this issuer.',
      format: 'non-empty-string',
      default: 'keyport',
      env: 'KEYPORT_ISSUER',
    },
    service: {
      doc: 'The service name (aud claim); clients send it as ?service=.',
      format: 'non-empty-string',
      default: 'keyport-registry',
      env: 'KEYPORT_SERVICE',
    },
    realm: {
      doc: 'Public URL of the token endpoint, sent to clients in the registry challenge. Empty: https://<publicHost or bind>:<token.port>/token.',
      format: 'optional-url',
      default: '',
      env: 'KEYPORT_REALM',
    },
    lifetime: {
      doc: 'Lifetime of access tokens in seconds.',
      format: 'positive-seconds',
      default: 300,
      env: 'KEYPORT_TOKEN_LIFETIME',
    },
    refreshLifetime: {
      doc: 'Lifetime of refresh tokens (docker identity tokens) in seconds; 0 turns them off, so clients store the password instead (podman and skopeo then share docker\'s login).',
      format: 'seconds',
      default: 7 * 24 * 3600,
      env: 'KEYPORT_REFRESH_LIFETIME',
    },
    workers: {
      doc: 'Worker processes of `keyport token` sharing its port; 0 means one per CPU core (at most 8).',
      format: 'nat',
      default: 0,
      env: 'KEYPORT_TOKEN_WORKERS',
    },
    maxScopes: {
      doc: 'Most scopes accepted in one token request.',
      format: 'positive-int',
      default: 32,
      env: 'KEYPORT_TOKEN_MAX_SCOPES',
    },
    metricsPort: {
      doc: 'HTTPS port of the token server\'s Prometheus endpoint (GET /metrics: requests, grants, denials, throttling, login cache, Keystone latency). 0: off.',
      format: 'port',
      default: 0,
      env: 'KEYPORT_TOKEN_METRICS_PORT',
    },
    metricsBind: {
      doc: 'Listen address of the token server\'s metrics endpoint; loopback by default, so it is not on the public network.',
      format: 'host-address',
      default: '127.0.0.1',
      env: 'KEYPORT_TOKEN_METRICS_BIND',
    },
  },
  keystone: {
    url: {
      doc: 'Keystone v3 endpoint, e.g. http://127.0.0.1:5000/v3.',
      format: 'url',
      default: 'http://127.0.0.1:5000/v3',
      env: 'KEYPORT_KEYSTONE_URL',
    },
    defaultDomain: {
      doc: 'Domain (by id) of users who log in with a plain user name.',
      format: 'non-empty-string',
      default: 'default',
      env: 'KEYPORT_KEYSTONE_DEFAULT_DOMAIN',
    },
    caFile: {
      doc: 'CA bundle (PEM) to verify Keystone\'s HTTPS certificate; empty uses the system store.',
      format: String,
      default: '',
      env: 'KEYPORT_KEYSTONE_CA_FILE',
    },
    insecure: {
      doc: 'Skip TLS verification of Keystone (testing only).',
      format: 'flag',
      default: false,
      env: 'KEYPORT_KEYSTONE_INSECURE',
    },
    timeout: {
      doc: 'Timeout of one Keystone request in milliseconds.',
      format: 'positive-milliseconds',
      default: 5000,
      env: 'KEYPORT_KEYSTONE_TIMEOUT',
    },
    serviceUser: {
      doc: 'Optional Keystone service account (user name) used to look up roles and re-check users on refresh.',
      format: String,
      default: '',
      env: 'KEYPORT_KEYSTONE_SERVICE_USER',
    },
    servicePassword: {
      doc: 'Password of the service account.',
      format: String,
      default: '',
      sensitive: true,
      env: 'KEYPORT_KEYSTONE_SERVICE_PASSWORD',
    },
    serviceUserDomain: {
      doc: 'Domain id of the service account.',
      format: String,
      default: 'default',
      env: 'KEYPORT_KEYSTONE_SERVICE_USER_DOMAIN',
    },
    serviceProject: {
      doc: 'Project the service account scopes its token to (it needs a role that may list role assignments, e.g. admin there).',
      format: String,
      default: 'admin',
      env: 'KEYPORT_KEYSTONE_SERVICE_PROJECT',
    },
    serviceProjectDomain: {
      doc: 'Domain id of the service project.',
      format: String,
      default: 'default',
      env: 'KEYPORT_KEYSTONE_SERVICE_PROJECT_DOMAIN',
    },
    cacheTtl: {
      doc: 'Seconds a successful login (and the roles read with it) is reused without asking Keystone again; 0 disables the cache.',
      format: 'seconds',
      default: 60,
      env: 'KEYPORT_LOGIN_CACHE_TTL',
    },
    cacheSize: {
      doc: 'Most cached logins kept (least recently used are dropped).',
      format: 'positive-int',
      default: 10000,
      env: 'KEYPORT_LOGIN_CACHE_SIZE',
    },
  },
  throttle: {
    maxFailures: {
      doc: 'Failed logins per (user name, client address) within the window before further attempts get 429. Keep it below Keystone\'s lockout_failure_attempts.',
      format: 'positive-int',
      default: 3,
      env: 'KEYPORT_THROTTLE_MAX_FAILURES',
    },
    window: {
      doc: 'Throttle window in seconds.',
      format: 'positive-seconds',
      default: 300,
      env: 'KEYPORT_THROTTLE_WINDOW',
    },
    memcached: {
      doc: 'memcached servers (host:port, comma separated) holding the failure counts, so several token-server hosts throttle together; empty counts on each host (its workers together).',
      format: 'host-port-list',
      default: [] as string[],
      env: 'KEYPORT_THROTTLE_MEMCACHED',
    },
  },
  policy: {
    adminRole: {
      doc: 'Keystone role that makes a user a registry administrator.',
      format: 'non-empty-string',
      default: 'admin',
      env: 'KEYPORT_ADMIN_ROLE',
    },
    adminProject: {
      doc: 'Project on which the admin role must be held.',
      format: 'non-empty-string',
      default: 'admin',
      env: 'KEYPORT_ADMIN_PROJECT',
    },
    projectNamespaces: {
      doc: 'Give each Keystone project a namespace <project>/ for its members.',
      format: 'flag',
      default: true,
      env: 'KEYPORT_PROJECT_NAMESPACES',
    },
    pushRoles: {
      doc: 'Project roles that may push and delete in a project namespace.',
      format: 'string-list',
      default: ['member', 'admin'] as string[],
      env: 'KEYPORT_PUSH_ROLES',
    },
    sharedNamespaces: {
      doc: 'Read-only namespaces every authenticated user may pull from; only admins push (comma separated).',
      format: 'string-list',
      default: ['public'] as string[],
      env: 'KEYPORT_SHARED_NAMESPACES',
    },
    pullOtherUsers: {
      doc: 'Let any authenticated user pull from other users\' personal namespaces.',
      format: 'flag',
      default: false,
      env: 'KEYPORT_PULL_OTHER_USERS',
    },
    anonymousNamespaces: {
      doc: 'Namespaces anyone may pull from without logging in (comma separated; off when empty). Pushes still need a login (admins), as in a shared namespace.',
      format: 'string-list',
      default: [] as string[],
      env: 'KEYPORT_ANONYMOUS_NAMESPACES',
    },
  },
  registry: {
    port: {
      doc: 'HTTPS port of the registry.',
      format: 'port',
      default: 9001,
      env: 'KEYPORT_REGISTRY_PORT',
    },
    trustedTokenCerts: {
      doc: 'PEM bundle of certificates whose keys may sign tokens (several for key rotation). Empty: <certsDir>/token.crt.',
      format: String,
      default: '',
      env: 'KEYPORT_TRUSTED_TOKEN_CERTS',
    },
    workers: {
      doc: 'Worker processes of `keyport registry` sharing its port; 0 means one per CPU core (at most 8).',
      format: 'nat',
      default: 1,
      env: 'KEYPORT_REGISTRY_WORKERS',
    },
    deleteEnabled: {
      doc: 'Allow DELETE of blobs and manifests.',
      format: 'flag',
      default: true,
      env: 'KEYPORT_DELETE_ENABLED',
    },
    maxManifestSize: {
      doc: 'Largest accepted manifest in bytes.',
      format: 'positive-int',
      default: 4 * 1024 * 1024,
      env: 'KEYPORT_MAX_MANIFEST_SIZE',
    },
    tokenLeeway: {
      doc: 'Clock skew tolerated when checking token exp/nbf, in seconds.',
      format: 'seconds',
      default: 60,
      env: 'KEYPORT_TOKEN_LEEWAY',
    },
    uploadTimeout: {
      doc: 'Seconds without data after which an upload request is aborted (the session stays and can be resumed).',
      format: 'positive-seconds',
      default: 300,
      env: 'KEYPORT_UPLOAD_TIMEOUT',
    },
    metricsPort: {
      doc: 'HTTPS port of the registry\'s Prometheus endpoint (GET /metrics: requests, storage latency and errors, process figures). 0: off.',
      format: 'port',
      default: 0,
      env: 'KEYPORT_REGISTRY_METRICS_PORT',
    },
    metricsBind: {
      doc: 'Listen address of the metrics endpoint; loopback by default, so it is not on the public network.',
      format: 'host-address',
      default: '127.0.0.1',
      env: 'KEYPORT_REGISTRY_METRICS_BIND',
    },
    uploadPurging: {
      enabled: {
        doc: 'Remove upload sessions abandoned for longer than uploadPurging.age (their partial data), as Distribution\'s storage.maintenance.uploadpurging does.',
        format: 'flag',
        default: true,
        env: 'KEYPORT_UPLOAD_PURGING',
      },
      age: {
        doc: 'Age after which an unfinished upload session is abandoned: a duration (168h) or seconds.',
        format: 'positive-seconds',
        default: 7 * 24 * 3600,
        env: 'KEYPORT_UPLOAD_PURGING_AGE',
      },
      interval: {
        doc: 'How often abandoned uploads are looked for: a duration (24h) or seconds.',
        format: 'positive-seconds',
        default: 24 * 3600,
        env: 'KEYPORT_UPLOAD_PURGING_INTERVAL',
      },
    },
  },
  storage: {
    driver: {
      doc: 'Storage driver.',
      format: DRIVER_NAMES,
      default: 'filesystem',
      env: 'KEYPORT_STORAGE_DRIVER',
    },
    // The drivers' own settings: filesystem's root and fsync here, then storage.<driver>.*
    ...driverSettings.flat,
    health: {
      enabled: {
        doc: 'Check the storage driver periodically; /healthz reports unhealthy and requests get 503 after `threshold` failures in a row.',
        format: 'flag',
        default: true,
        env: 'KEYPORT_STORAGE_HEALTH_ENABLED',
      },
      interval: {
        doc: 'Seconds between storage health checks.',
        format: 'positive-seconds',
        default: 10,
        env: 'KEYPORT_STORAGE_HEALTH_INTERVAL',
      },
      threshold: {
        doc: 'Failed storage health checks in a row before the registry reports itself unhealthy.',
        format: 'positive-int',
        default: 3,
        env: 'KEYPORT_STORAGE_HEALTH_THRESHOLD',
      },
    },
    gc: {
      interval: {
        doc: 'Seconds between scheduled online garbage collections inside the registry; 0: off (run `keyport gc` instead). Instances sharing a store take turns through a lease in the store.',
        format: 'seconds',
        default: 0,
        env: 'KEYPORT_STORAGE_GC_INTERVAL',
      },
      deleteUntagged: {
        doc: 'Scheduled GC also deletes manifests no tag reaches (images pushed by digest only, after the grace period), as `keyport gc --delete-untagged`.',
        format: 'flag',
        default: false,
        env: 'KEYPORT_STORAGE_GC_DELETE_UNTAGGED',
      },
      grace: {
        doc: 'Seconds a blob, link or manifest written before a GC starts stays safe from it, so pushes in progress keep their layers.',
        format: 'seconds',
        default: 3600,
        env: 'KEYPORT_STORAGE_GC_GRACE',
      },
      claimWindow: {
        doc: 'Seconds a manifest push\'s claim on the blobs it references keeps them from any GC, so a push racing a sweep keeps its blobs. Must be the same on every instance and well above the longest manifest PUT plus clock differences between hosts.',
        format: 'positive-seconds',
        default: 900,
        env: 'KEYPORT_STORAGE_GC_CLAIM_WINDOW',
      },
      leaseTtl: {
        doc: 'Seconds the GC lease lasts without a heartbeat: how long a killed GC blocks the next one.',
        format: 'positive-seconds',
        default: 60,
        env: 'KEYPORT_STORAGE_GC_LEASE_TTL',
      },
      retention: retentionSchema,
    },
    ...driverSettings.sections,
  },
  notifications: notificationsSchema,
  upstreams: upstreamsSchema,
} as const;

export function createConfig(env: NodeJS.ProcessEnv) {
  // args: [] so convict never parses the CLI's own argv as configuration.
  return convict<ConfigShape>(schema, { env, args: [] });
}

/** Plain object type of the validated configuration, as the schema declares it. */
export type ConfigShape = SettingsOf<typeof schema>;
