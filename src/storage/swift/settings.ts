import type { SchemaFragment, SettingsOf } from '../../config/fragment.js';

/**
 * The swift driver's settings, storage.swift.* (the keys, names and defaults of Docker
 * Distribution's swift driver where it has them).
 */
export const swiftSettings = {
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
    default: ['GET', 'HEAD'] as string[],
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
} as const satisfies SchemaFragment;

export type SwiftSettings = SettingsOf<typeof swiftSettings>;
