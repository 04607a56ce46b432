import fs from 'node:fs';
import path from 'node:path';
import type { Running } from '../http/running.js';
import type { Config } from '../config/load.js';
import { closeServer, listenHttps } from '../http/server.js';
import type { Logger } from '../log/logger.js';
import { isClusterWorker } from '../http/cluster.js';
import { createStorageDriver } from '../storage/drivers.js';
import { createNotifier } from '../events/registry-notifier.js';
import { PullThroughCache } from '../cache/pull-through.js';
import { StorageHealth } from '../storage/health.js';
import { loadServerTls, parseCertificateBundle } from '../tls/certificates.js';
import { TokenVerifier } from './auth/token-verifier.js';
import { registryApp, type RegistryDeps } from './app.js';
import { errorBody } from './http-errors.js';
import { createStores } from './store/stores.js';

/** Certificates whose keys may sign tokens: the configured bundle, else the local token.crt. */
function trustedTokenCertificates(config: Config) {
  const file = config.registry.trustedTokenCerts || path.join(config.tls.certsDir, 'token.crt');
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read trusted token certificates ${file}: ${(e as Error).message}`);
  }
  const certs = parseCertificateBundle(pem);
  if (certs.length === 0) throw new Error(`${file} holds no certificates`);
  return certs;
}

/** Wires the registry from configuration and starts it. */
export async function runRegistry(config: Config, rootLog: Logger): Promise<Running> {
  const log = rootLog.child({ component: 'registry' });
  const tls = loadServerTls(config.tls.certsDir);
  const trusted = trustedTokenCertificates(config);
  const verifier = new TokenVerifier({
    issuer: config.token.issuer,
    service: config.token.service,
    leewaySeconds: config.registry.tokenLeeway,
    trusted,
  });
  const metricsOn = config.registry.metricsPort > 0;
  let driver = await createStorageDriver(config.storage, log);
  let health: StorageHealth | undefined;
  let observe: RegistryDeps['observe'];
  if (metricsOn) {
    const { storageMetrics } = await import('../metrics/storage.js');
    const { httpMetrics } = await import('../metrics/http.js');
    const { metricsRegistry, startMetrics } = await import('../metrics/server.js');
    startMetrics();
    const healthy = config.storage.health.enabled ? () => health?.healthy() ?? true : undefined;
    driver = storageMetrics(metricsRegistry, healthy).wrap(driver);
    observe = httpMetrics(metricsRegistry, 'registry');
  }
  if (config.storage.health.enabled) {
    health = new StorageHealth(driver, config.storage.health, log);
    health.start();
  }
  const events = createNotifier(config, log);
  // One set of stores for the API, the cache and the purge below: one owner per upload session.
  const stores = createStores(driver, { gcClaimWindowMs: config.storage.gc.claimWindow * 1000 });
  const cache = config.upstreams.length
    ? new PullThroughCache({ driver, stores, upstreams: config.upstreams, log: log.child({ component: 'cache' }), maxManifestSize: config.registry.maxManifestSize })
    : undefined;
  const app = registryApp({
    stores,
    health,
    events,
    ...(cache ? { cache } : {}),
    verifier,
    realm: config.realm,
    service: config.token.service,
    settings: {
      deleteEnabled: config.registry.deleteEnabled,
      maxManifestSize: config.registry.maxManifestSize,
      gcClaimWindowMs: config.storage.gc.claimWindow * 1000,
    },
    log,
    ...(observe ? { observe } : {}),
  });
  const server = await listenHttps(app, {
    bind: config.bind,
    port: config.registry.port,
    tls,
    log,
    parserErrorBody: (_status, message) => errorBody('UNSUPPORTED', message),
    // Blob uploads may take hours on slow links; only idle connections are cut.
    requestTimeoutMs: 0,
    idleTimeoutMs: config.registry.uploadTimeout * 1000,
  });

  // Workers report to the primary, which serves the sum; a lone process serves its own.
  const metricsServer =
    metricsOn && !isClusterWorker()
      ? await (await import('../metrics/server.js')).startMetricsServer({ bind: config.registry.metricsBind, port: config.registry.metricsPort }, tls, log, false)
      : undefined;

  // Abandoned upload sessions are removed (after a week by default), as Docker Distribution does.
  const purging = config.registry.uploadPurging;
  const purge = async () => {
    try {
      const removed = await stores.uploads.purge(await stores.catalog.repositories(), purging.age * 1000);
      if (removed > 0) log.info({ removed }, 'purged abandoned uploads');
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'upload purge failed');
    }
  };
  const purgeTimer = purging.enabled ? setInterval(purge, Math.min(purging.interval * 1000, 2 ** 31 - 1)) : undefined;
  purgeTimer?.unref();

  let gcSchedule: { stop(): void } | undefined;
  if (config.storage.gc.interval > 0) {
    const { scheduleGc } = await import('../gc/schedule.js');
    const metrics = metricsOn ? (await import('../gc/metrics.js')).gcMetrics() : undefined;
    gcSchedule = scheduleGc(driver, config, log, metrics);
  }

  log.info(
    {
      bind: config.bind,
      port: config.registry.port,
      storage: driver.name,
      realm: config.realm,
      service: config.token.service,
      trustedCerts: trusted.length,
      ...(cache ? { upstreams: config.upstreams.map((u) => `${u.namespace}=${u.url}`) } : {}),
    },
    'registry listening',
  );
  return {
    name: 'registry',
    close: async () => {
      clearInterval(purgeTimer);
      gcSchedule?.stop();
      health?.stop();
      await closeServer(server);
      events.close();
      cache?.close();
      if (metricsServer) await closeServer(metricsServer);
      await driver.close?.();
    },
  };
}
