/**
 * The registry app in this process, on the memory driver, served on an ephemeral
 * loopback port over plain HTTP, as Docker Distribution's handler tests build theirs.
 * Tokens are minted with a key made for the run. For tests of the API's handling that
 * need no real process: no build, no certificates, no storage service, and the driver
 * at hand to look into. TLS, workers and the other drivers are the real-process tests'
 * job.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/log/logger.js';
import { registryApp } from '../../src/registry/app.js';
import { createStores } from '../../src/registry/store/stores.js';
import { TokenVerifier } from '../../src/registry/auth/token-verifier.js';
import type { RegistrySettings } from '../../src/registry/handlers/context.js';
import { MemoryDriver } from '../../src/storage/memory/driver.js';
import { createCertificate } from '../../src/tls/x509.js';
import { request, type RequestOptions, type Response } from './http.js';
import { TokenMinter } from './tokens.js';

export const REALM = 'https://auth.example.test/token';
export const SERVICE = 'keyport-registry';
export const ISSUER = 'keyport';

export interface InProcessRegistry {
  url: string;
  driver: MemoryDriver;
  minter: TokenMinter;
  /** A request to the registry; `token` goes in as a bearer token. */
  api(method: string, path: string, token?: string, opts?: Omit<RequestOptions, 'method'>): Promise<Response>;
  close(): Promise<void>;
}

/** A token-signing key and its self-signed certificate, as `keyport certs` makes them. */
function tokenMinter(): TokenMinter {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = createCertificate({ subjectCN: 'Keyport token signing', publicKey, selfSignKey: privateKey, days: 1, keyUsage: ['digitalSignature'] });
  // TokenMinter reads what the token server reads: the two files of a certificates directory.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyport-token-key-'));
  try {
    fs.writeFileSync(path.join(dir, 'token.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    fs.writeFileSync(path.join(dir, 'token.crt'), cert);
    return new TokenMinter(dir, ISSUER, SERVICE);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function startInProcessRegistry(settings: Partial<RegistrySettings> = {}): Promise<InProcessRegistry> {
  const minter = tokenMinter();
  const driver = new MemoryDriver();
  const app = registryApp({
    stores: createStores(driver),
    verifier: new TokenVerifier({ issuer: ISSUER, service: SERVICE, leewaySeconds: 60, trusted: [minter.cert] }),
    realm: REALM,
    service: SERVICE,
    settings: { deleteEnabled: true, maxManifestSize: 4 * 1024 * 1024, ...settings },
    log: createLogger(process.env.KEYPORT_TEST_LOG_LEVEL ?? 'silent'),
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    driver,
    minter,
    api: (method, p, token, opts = {}) =>
      request(`${url}${p}`, { ...opts, method, headers: { ...(opts.headers ?? {}), ...(token ? { authorization: `Bearer ${token}` } : {}) } }),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
