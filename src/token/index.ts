import type { Running } from '../http/running.js';
import type { Config } from '../config/load.js';
import { createApp, type AppOptions } from '../http/app.js';
import { isClusterWorker } from '../http/cluster.js';
import { closeServer, listenHttps } from '../http/server.js';
import type { Logger } from '../log/logger.js';
import { loadServerTls, loadTokenSigner } from '../tls/certificates.js';
import { Authenticator } from './authenticator.js';
import { TokenIssuer } from './issuer.js';
import { KeystoneClient } from './keystone.js';
import { tokenFastPath } from './fast-path.js';
import { errorBody, errorHandler, notFound, tokenRoutes } from './routes.js';
import { noTokenMetrics, type TokenMetrics } from './metrics.js';
import { ProjectDirectory, ServiceAccount } from './service-account.js';
import { SharedFailureCounter } from './shared-failures.js';
import { LoginThrottle, shareThrottleWithWorkers } from './throttle.js';
import { TokenService } from './token-service.js';

/** Wires the token server from configuration and starts it. */
export async function runTokenServer(config: Config, rootLog: Logger): Promise<Running> {
  const log = rootLog.child({ component: 'token' });
  const signer = loadTokenSigner(config.tls.certsDir);
  const tls = loadServerTls(config.tls.certsDir);
  const k = config.keystone;
  const metricsOn = config.token.metricsPort > 0;
  let metrics: TokenMetrics = noTokenMetrics;
  let observe: AppOptions['observe'];
  if (metricsOn) {
    const { metricsRegistry, startMetrics } = await import('../metrics/server.js');
    const { tokenMetrics } = await import('../metrics/token.js');
    const { httpMetrics } = await import('../metrics/http.js');
    startMetrics();
    metrics = tokenMetrics(metricsRegistry);
    observe = httpMetrics(metricsRegistry, 'token');
  }
  const keystone = new KeystoneClient({ url: k.url, timeout: k.timeout, caFile: k.caFile, insecure: k.insecure }, log, metrics);

  let serviceAccount: ServiceAccount | undefined;
  let directory: ProjectDirectory | undefined;
  if (k.serviceUser) {
    serviceAccount = new ServiceAccount(
      keystone,
      { user: k.serviceUser, password: k.servicePassword, userDomain: k.serviceUserDomain, project: k.serviceProject, projectDomain: k.serviceProjectDomain },
      log,
    );
    directory = new ProjectDirectory(keystone, serviceAccount, k.defaultDomain);
  } else {
    log.warn(
      'no Keystone service account configured (keystone.serviceUser): refresh tokens carry the roles seen at login, and a user named like a project the user is not a member of cannot be detected',
    );
  }

  const throttle = new LoginThrottle(config.throttle.maxFailures, config.throttle.window * 1000);
  shareThrottleWithWorkers(throttle);
  const sharedFailures = config.throttle.memcached.length
    ? new SharedFailureCounter(config.throttle.memcached, config.throttle.window * 1000, log)
    : undefined;
  if (sharedFailures) throttle.shareThrough(sharedFailures);
  // Anonymous namespaces are shared ones too: nobody's personal namespace, pulled by all.
  const anonymous = new Set(config.policy.anonymousNamespaces);
  const shared = new Set([...config.policy.sharedNamespaces, ...anonymous]);
  // A cache namespace's first component is nobody's personal namespace either.
  const cacheNamespaces = config.upstreams.map((u) => ({ namespace: u.namespace, pull: u.pull ?? [] }));
  const reserved = new Set([...shared, ...cacheNamespaces.map((c) => c.namespace.split('/')[0]!)]);
  const authenticator = new Authenticator(
    {
      defaultDomainId: k.defaultDomain,
      realm: config.realm,
      cacheTtlSeconds: k.cacheTtl,
      cacheSize: k.cacheSize,
      facts: { adminRole: config.policy.adminRole, adminProject: config.policy.adminProject },
      reservedNamespaces: reserved,
    },
    {
      client: keystone,
      throttle,
      log,
      metrics,
      ...(serviceAccount ? { serviceAccount } : {}),
      ...(directory ? { directory } : {}),
    },
  );
  const issuer = new TokenIssuer(signer, {
    issuer: config.token.issuer,
    service: config.token.service,
    lifetime: config.token.lifetime,
    refreshLifetime: config.token.refreshLifetime,
  });
  const tokens = new TokenService(
    authenticator,
    issuer,
    {
      projectNamespaces: config.policy.projectNamespaces,
      pushRoles: new Set(config.policy.pushRoles),
      sharedNamespaces: shared,
      pullOtherUsers: config.policy.pullOtherUsers,
      anonymousNamespaces: anonymous,
      cacheNamespaces,
    },
    config.token.maxScopes,
  );

  const appOptions = observe ? { observe } : {};
  const routeDeps = { tokens, issuer, keystone, realm: config.realm, metrics };
  const app = createApp(log, appOptions);
  app.use(tokenRoutes(routeDeps));
  app.use(notFound);
  app.use(errorHandler(metrics));

  const server = await listenHttps(app, {
    bind: config.bind,
    port: config.token.port,
    tls,
    log,
    parserErrorBody: (status, message) => errorBody(status, 'invalid_request', message, 'INVALID_REQUEST'),
    requestTimeoutMs: 30_000,
    idleTimeoutMs: 120_000,
    fastPath: tokenFastPath(log, routeDeps, appOptions),
  });
  log.info(
    { bind: config.bind, port: config.token.port, service: config.token.service, issuer: config.token.issuer, realm: config.realm, kid: signer.kid, keystone: k.url },
    'token server listening',
  );
  // Workers report to the primary, which serves the sum; a lone process serves its own.
  const metricsServer =
    metricsOn && !isClusterWorker()
      ? await (await import('../metrics/server.js')).startMetricsServer({ bind: config.token.metricsBind, port: config.token.metricsPort }, tls, log, false)
      : undefined;
  return {
    name: 'token',
    close: async () => {
      await closeServer(server);
      if (metricsServer) await closeServer(metricsServer);
      sharedFailures?.close();
    },
  };
}
