import convict from 'convict';
import { registerFormats } from './formats.js';
import { notificationsSchema, type NotificationsConfig } from './notifications.js';
import { upstreamsSchema, type UpstreamInput } from './upstreams.js';

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
      default: [],
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
      default: ['member', 'admin'],
      env: 'KEYPORT_PUSH_ROLES',
    },
    sharedNamespaces: {
      doc: 'Read-only namespaces every authenticated user may pull from; only admins push (comma separated).',
      format: 'string-list',
      default: ['public'],
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
      default: [],
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
      format: ['filesystem', 'memory', 'swift', 's3'],
      default: 'filesystem',
      env: 'KEYPORT_STORAGE_DRIVER',
    },
    root: {
      doc: 'Root directory of the filesystem driver.',
      format: String,
      default: './data',
      env: 'KEYPORT_STORAGE_ROOT',
    },
    fsync: {
      doc: 'fsync files and directories before a write is acknowledged (filesystem driver).',
      format: 'flag',
      default: true,
      env: 'KEYPORT_STORAGE_FSYNC',
    },
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
    swift: {
      authUrl: {
        doc: 'Swift driver: authentication URL: Keystone (https://keystone:5000/v3 or .../v2.0) or Swift v1 auth (https://swift:8080/auth/v1.0).',
        format: 'optional-url',
        default: '',
        env: 'KEYPORT_SWIFT_AUTH_URL',
      },
      authVersion: {
        doc: 'Swift driver: auth protocol: 1 (X-Auth-User/X-Auth-Key), 2 (Keystone v2), 3 (Keystone v3); 0 guesses from authUrl (/v1.0: 1, /v2.0: 2, otherwise 3).',
        format: [0, 1, 2, 3],
        default: 0,
        env: 'KEYPORT_SWIFT_AUTH_VERSION',
      },
      username: {
        doc: 'Swift driver: user name (v1 auth: account:user).',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_USERNAME',
      },
      password: {
        doc: 'Swift driver: password (v1 auth: the key).',
        format: String,
        default: '',
        sensitive: true,
        env: 'KEYPORT_SWIFT_PASSWORD',
      },
      applicationCredentialId: {
        doc: 'Swift driver: Keystone v3 application credential id (used instead of username/password).',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_APPLICATION_CREDENTIAL_ID',
      },
      applicationCredentialName: {
        doc: 'Swift driver: application credential name, with username and domain, when the id is not known.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_APPLICATION_CREDENTIAL_NAME',
      },
      applicationCredentialSecret: {
        doc: 'Swift driver: application credential secret.',
        format: String,
        default: '',
        sensitive: true,
        env: 'KEYPORT_SWIFT_APPLICATION_CREDENTIAL_SECRET',
      },
      tenant: {
        doc: 'Swift driver: project (tenant) name.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_TENANT',
      },
      tenantId: {
        doc: 'Swift driver: project (tenant) id; wins over the name.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_TENANT_ID',
      },
      domain: {
        doc: 'Swift driver: domain name of the user (Keystone v3); also the project\'s unless tenantDomain is set.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_DOMAIN',
      },
      domainId: {
        doc: 'Swift driver: domain id of the user (Keystone v3); wins over the name. Both empty: "default".',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_DOMAIN_ID',
      },
      tenantDomain: {
        doc: 'Swift driver: domain name of the project, when it differs from the user\'s.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_TENANT_DOMAIN',
      },
      tenantDomainId: {
        doc: 'Swift driver: domain id of the project, when it differs from the user\'s.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_TENANT_DOMAIN_ID',
      },
      region: {
        doc: 'Swift driver: region of the object-store endpoint in the Keystone catalog; empty takes the first.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_REGION',
      },
      endpointType: {
        doc: 'Swift driver: catalog interface of the object-store endpoint.',
        format: ['public', 'internal', 'admin'],
        default: 'public',
        env: 'KEYPORT_SWIFT_ENDPOINT_TYPE',
      },
      storageUrl: {
        doc: 'Swift driver: object-store URL (https://swift:8080/v1/AUTH_x) to use instead of the one auth returns.',
        format: 'optional-url',
        default: '',
        env: 'KEYPORT_SWIFT_STORAGE_URL',
      },
      container: {
        doc: 'Swift driver: container holding everything; created when missing.',
        format: 'non-empty-string',
        default: 'keyport',
        env: 'KEYPORT_SWIFT_CONTAINER',
      },
      rootDirectory: {
        doc: 'Swift driver: object name prefix inside the container, so several registries can share one.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_ROOT_DIRECTORY',
      },
      chunkSize: {
        doc: 'Swift driver: segment size in bytes of large objects (1 MiB to 5 GiB); uploads stream one segment at a time.',
        format: 'positive-int',
        default: 20 * 1024 * 1024,
        env: 'KEYPORT_SWIFT_CHUNK_SIZE',
      },
      insecureSkipVerify: {
        doc: 'Swift driver: skip TLS verification of Keystone and Swift (testing only).',
        format: 'flag',
        default: false,
        env: 'KEYPORT_SWIFT_INSECURE_SKIP_VERIFY',
      },
      caFile: {
        doc: 'Swift driver: CA bundle (PEM) to verify Keystone and Swift; empty uses the system store.',
        format: String,
        default: '',
        env: 'KEYPORT_SWIFT_CA_FILE',
      },
      timeout: {
        doc: 'Swift driver: milliseconds to wait for an answer from Keystone or Swift before the store counts as unavailable.',
        format: 'positive-milliseconds',
        default: 30000,
        env: 'KEYPORT_SWIFT_TIMEOUT',
      },
      tempUrlKey: {
        doc: 'Swift driver: TempURL key; set on the account (or container) at start when it has none.',
        format: String,
        default: '',
        sensitive: true,
        env: 'KEYPORT_SWIFT_TEMPURL_KEY',
      },
      tempUrlContainerKey: {
        doc: 'Swift driver: keep the TempURL key on the container (X-Container-Meta-Temp-URL-Key) instead of the account.',
        format: 'flag',
        default: false,
        env: 'KEYPORT_SWIFT_TEMPURL_CONTAINER_KEY',
      },
      tempUrlMethods: {
        doc: 'Swift driver: methods TempURLs are made for.',
        format: 'string-list',
        default: ['GET', 'HEAD'],
        env: 'KEYPORT_SWIFT_TEMPURL_METHODS',
      },
      tempUrlDigest: {
        doc: 'Swift driver: TempURL signature digest (the cluster must allow it; see /info).',
        format: ['sha1', 'sha256', 'sha512'],
        default: 'sha256',
        env: 'KEYPORT_SWIFT_TEMPURL_DIGEST',
      },
      redirect: {
        doc: 'Swift driver: answer blob downloads with a redirect to a TempURL, so the bytes flow from Swift to the client (needs tempUrlKey).',
        format: 'flag',
        default: false,
        env: 'KEYPORT_SWIFT_REDIRECT',
      },
      redirectExpiry: {
        doc: 'Swift driver: seconds a redirect TempURL stays valid.',
        format: 'positive-seconds',
        default: 1200,
        env: 'KEYPORT_SWIFT_REDIRECT_EXPIRY',
      },
    },
    s3: {
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
    },
  },
  notifications: notificationsSchema,
  upstreams: upstreamsSchema,
} as const;

export function createConfig(env: NodeJS.ProcessEnv) {
  // args: [] so convict never parses the CLI's own argv as configuration.
  return convict(schema as unknown as convict.Schema<ConfigShape>, { env, args: [] });
}

/** Plain object type of the validated configuration. */
export interface ConfigShape {
  bind: string;
  publicHost: string;
  log: { level: string; format: 'json' | 'text' };
  tls: { certsDir: string; names: string[]; tokenKeyType: 'ec' | 'rsa' };
  token: {
    port: number;
    issuer: string;
    service: string;
    realm: string;
    lifetime: number;
    refreshLifetime: number;
    workers: number;
    maxScopes: number;
    metricsPort: number;
    metricsBind: string;
  };
  keystone: {
    url: string;
    defaultDomain: string;
    caFile: string;
    insecure: boolean;
    timeout: number;
    serviceUser: string;
    servicePassword: string;
    serviceUserDomain: string;
    serviceProject: string;
    serviceProjectDomain: string;
    cacheTtl: number;
    cacheSize: number;
  };
  throttle: { maxFailures: number; window: number; memcached: string[] };
  policy: {
    adminRole: string;
    adminProject: string;
    projectNamespaces: boolean;
    pushRoles: string[];
    sharedNamespaces: string[];
    pullOtherUsers: boolean;
    anonymousNamespaces: string[];
  };
  registry: {
    port: number;
    workers: number;
    trustedTokenCerts: string;
    deleteEnabled: boolean;
    maxManifestSize: number;
    tokenLeeway: number;
    uploadTimeout: number;
    metricsPort: number;
    metricsBind: string;
    uploadPurging: { enabled: boolean; age: number; interval: number };
  };
  storage: {
    driver: 'filesystem' | 'memory' | 'swift' | 's3';
    root: string;
    fsync: boolean;
    health: { enabled: boolean; interval: number; threshold: number };
    swift: SwiftConfig;
    s3: S3Config;
  };
  notifications: NotificationsConfig;
  upstreams: UpstreamInput[];
}

export interface SwiftConfig {
  authUrl: string;
  authVersion: 0 | 1 | 2 | 3;
  username: string;
  password: string;
  applicationCredentialId: string;
  applicationCredentialName: string;
  applicationCredentialSecret: string;
  tenant: string;
  tenantId: string;
  domain: string;
  domainId: string;
  tenantDomain: string;
  tenantDomainId: string;
  region: string;
  endpointType: 'public' | 'internal' | 'admin';
  storageUrl: string;
  container: string;
  rootDirectory: string;
  chunkSize: number;
  insecureSkipVerify: boolean;
  caFile: string;
  timeout: number;
  tempUrlKey: string;
  tempUrlContainerKey: boolean;
  tempUrlMethods: string[];
  tempUrlDigest: 'sha1' | 'sha256' | 'sha512';
  redirect: boolean;
  redirectExpiry: number;
}

export interface S3Config {
  bucket: string;
  region: string;
  endpoint: string;
  forcePathStyle: boolean;
  accessKey: string;
  secretKey: string;
  rootDirectory: string;
  chunkSize: number;
  insecureSkipVerify: boolean;
  caFile: string;
  timeout: number;
  redirect: boolean;
  redirectExpiry: number;
}
