import crypto from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log/logger.js';
import { AuthenticationError, InvalidGrantError, InvalidRequestError, KeystoneRejectedError, ThrottledError } from './errors.js';
import { ServiceAccountFacts, StaticFacts, UserTokenFacts, type AccessFacts, type FactsSettings } from './facts.js';
import type { KeystoneAuth, KeystoneClient } from './keystone.js';
import { parseCredentials, type BasicCredentials, type LoginName } from './login-name.js';
import { userNamespace, type NamespaceRules } from './namespace.js';
import type { RefreshClaims } from './issuer.js';
import type { ProjectDirectory, ServiceAccount } from './service-account.js';
import type { LoginThrottle } from './throttle.js';
import type { TokenMetrics } from './metrics.js';

/** The authenticated user behind a token request. */
export interface Principal {
  userId: string;
  userName: string;
  domainId: string;
  /** The user's personal namespace (see namespace.ts). */
  namespace: string;
  method: 'password' | 'application_credential' | 'refresh_token';
  applicationCredentialId?: string;
}

export interface Session {
  principal: Principal;
  facts: AccessFacts;
}

export interface AuthenticatorSettings {
  defaultDomainId: string;
  realm: string;
  cacheTtlSeconds: number;
  cacheSize: number;
  facts: Omit<FactsSettings, 'rules'>;
  /** Namespaces never given to a user or project (the shared ones). */
  reservedNamespaces: ReadonlySet<string>;
}

export interface AuthenticatorDeps {
  client: KeystoneClient;
  throttle: LoginThrottle;
  /** Login cache hits and misses; none counted by default. */
  metrics?: TokenMetrics;
  log: Logger;
  serviceAccount?: ServiceAccount;
  directory?: ProjectDirectory;
}

const EMPTY_FACTS = { admin: false, projects: {} };

/**
 * Turns credentials (Basic auth or a refresh token) into a Session. Successful
 * logins are remembered for a short time under a keyed hash of the credentials, so a
 * burst of token requests (one docker pull asks for several) costs one Keystone call;
 * concurrent identical logins share that call. Failures are never remembered as
 * success, and failed attempts feed the per-(user, address) throttle.
 */
export class Authenticator {
  private readonly cacheKey = crypto.randomBytes(32);
  private readonly logins: LRUCache<string, Promise<Session>> | undefined;
  private readonly refreshes: LRUCache<string, Promise<Session>> | undefined;

  constructor(
    private readonly settings: AuthenticatorSettings,
    private readonly deps: AuthenticatorDeps,
  ) {
    if (settings.cacheTtlSeconds > 0) {
      const opts = { max: settings.cacheSize, ttl: settings.cacheTtlSeconds * 1000 };
      this.logins = new LRUCache(opts);
      this.refreshes = new LRUCache(opts);
    }
  }

  get hasServiceAccount(): boolean {
    return this.deps.serviceAccount !== undefined;
  }

  private async rules(): Promise<NamespaceRules> {
    const rules: NamespaceRules = {
      defaultDomainId: this.settings.defaultDomainId,
      reserved: this.settings.reservedNamespaces,
    };
    if (this.deps.directory) rules.projectNames = await this.deps.directory.projectNames();
    return rules;
  }

  private factsSettings(rules: NamespaceRules): FactsSettings {
    return { ...this.settings.facts, rules };
  }

  async login(creds: BasicCredentials, address: string): Promise<Session> {
    const wait = this.deps.throttle.retryAfter(creds.username, address);
    if (wait > 0) throw new ThrottledError(wait);
    let name: LoginName;
    try {
      name = parseCredentials(creds);
    } catch (e) {
      // Malformed credentials are a failed login like a wrong password, only never sent to Keystone.
      if (e instanceof InvalidRequestError) {
        await this.deps.throttle.recordFailure(creds.username, address);
        this.deps.log.info({ user: creds.username, client: address, reason: e.message }, 'login refused: malformed credentials');
      }
      throw e;
    }

    const key = crypto.createHmac('sha256', this.cacheKey).update(creds.username).update('\0').update(creds.password).digest('base64');
    let pending = this.logins?.get(key);
    this.deps.metrics?.loginCache(pending !== undefined);
    if (!pending) {
      // Going to Keystone: first the count of every token-server host (memcached).
      const shared = await this.deps.throttle.check(creds.username, address);
      if (shared > 0) throw new ThrottledError(shared);
      // Another request with the same credentials may have started meanwhile: join it.
      pending = this.logins?.get(key);
      if (!pending) {
        pending = this.keystoneLogin(name, creds.password);
        this.logins?.set(key, pending);
        const mine = pending;
        mine.catch(() => {
          if (this.logins?.get(key) === mine) this.logins.delete(key);
        });
      }
    }
    try {
      const session = await pending;
      this.deps.throttle.recordSuccess(creds.username, address);
      return session;
    } catch (e) {
      if (e instanceof KeystoneRejectedError) {
        await this.deps.throttle.recordFailure(creds.username, address);
        this.deps.log.info({ user: creds.username, client: address }, 'login refused by keystone');
        throw new AuthenticationError('invalid user name or password', this.settings.realm);
      }
      throw e;
    }
  }

  private async keystoneLogin(name: LoginName, secret: string): Promise<Session> {
    const { client, serviceAccount } = this.deps;
    let auth: KeystoneAuth;
    if (name.kind === 'application_credential') {
      auth = await client.authApplicationCredential(name.id, secret);
    } else {
      const domain = name.domainName ? { name: name.domainName } : { id: this.settings.defaultDomainId };
      auth = await client.authPassword(name.user, domain, secret);
    }
    const rules = await this.rules();
    const fs = this.factsSettings(rules);
    const principal: Principal = {
      userId: auth.user.id,
      userName: auth.user.name,
      domainId: auth.user.domainId,
      namespace: userNamespace(rules, auth.user.domainId, auth.user.name),
      method: name.kind,
    };
    let facts: AccessFacts;
    if (auth.applicationCredentialId) {
      // An application credential carries exactly its project's roles, never more.
      principal.applicationCredentialId = auth.applicationCredentialId;
      facts = StaticFacts.forApplicationCredential(fs, auth);
    } else if (serviceAccount) {
      facts = new ServiceAccountFacts(fs, client, serviceAccount, auth.user.id, () => this.deps.directory!.projectNames());
    } else {
      facts = new UserTokenFacts(fs, client, auth);
    }
    return { principal, facts };
  }

  /**
   * A session from a verified refresh token. With a service account the user is
   * re-read (deleted or disabled users are refused) and their roles are current;
   * without one the roles recorded at login are used until the refresh token expires.
   */
  async refresh(claims: RefreshClaims): Promise<Session> {
    const key = `${claims.userId}\0${claims.applicationCredentialId ?? ''}`;
    let pending = this.refreshes?.get(key);
    if (!pending) {
      pending = this.refreshSession(claims);
      this.refreshes?.set(key, pending);
      const mine = pending;
      mine.catch(() => {
        if (this.refreshes?.get(key) === mine) this.refreshes.delete(key);
      });
    }
    return pending;
  }

  private async refreshSession(claims: RefreshClaims): Promise<Session> {
    const { client, serviceAccount } = this.deps;
    const rules = await this.rules();
    let userName = claims.userName;
    let domainId = claims.domainId;
    if (serviceAccount) {
      const user = await serviceAccount.call((t) => client.getUser(t, claims.userId));
      if (!user || !user.enabled) throw new InvalidGrantError('the user no longer exists or is disabled; log in again');
      userName = user.name;
      domainId = user.domainId;
      if (claims.applicationCredentialId) {
        const exists = await serviceAccount.call((t) => client.applicationCredentialExists(t, claims.userId, claims.applicationCredentialId!));
        if (exists === false) throw new InvalidGrantError('the application credential no longer exists; log in again');
      }
    }
    const principal: Principal = {
      userId: claims.userId,
      userName,
      domainId,
      namespace: userNamespace(rules, domainId, userName),
      method: 'refresh_token',
    };
    if (claims.applicationCredentialId) principal.applicationCredentialId = claims.applicationCredentialId;
    const facts =
      serviceAccount && !claims.applicationCredentialId
        ? new ServiceAccountFacts(this.factsSettings(rules), client, serviceAccount, claims.userId, () => this.deps.directory!.projectNames())
        : new StaticFacts(claims.facts ?? EMPTY_FACTS);
    return { principal, facts };
  }
}
