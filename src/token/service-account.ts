import type { Logger } from '../log/logger.js';
import { KeystoneRejectedError, KeystoneUnavailableError } from './errors.js';
import type { KeystoneClient } from './keystone.js';

export interface ServiceAccountSettings {
  user: string;
  password: string;
  userDomain: string;
  project: string;
  projectDomain: string;
}

/**
 * Keyport's own Keystone account, used for what users' tokens may not do: listing a
 * user's role assignments, re-reading a user on refresh, and listing project names.
 * Its token is reused until shortly before it expires, and renewed once when Keystone
 * stops accepting it.
 */
export class ServiceAccount {
  private token: { value: string; expiresAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly client: KeystoneClient,
    private readonly settings: ServiceAccountSettings,
    private readonly log: Logger,
  ) {}

  private async login(): Promise<string> {
    try {
      const auth = await this.client.authService(
        this.settings.user,
        this.settings.userDomain,
        this.settings.password,
        this.settings.project,
        this.settings.projectDomain,
      );
      this.token = { value: auth.token, expiresAt: auth.expiresAt.getTime() };
      return auth.token;
    } catch (e) {
      if (e instanceof KeystoneRejectedError) {
        // A misconfigured service account is an outage of Keyport, not the user's fault.
        this.log.error({ user: this.settings.user }, 'keystone refused the service account credentials');
        throw new KeystoneUnavailableError('service account rejected');
      }
      throw e;
    }
  }

  private async currentToken(): Promise<string> {
    if (this.token && this.token.expiresAt - Date.now() > 60_000) return this.token.value;
    this.pending ??= this.login().finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Runs a call with the service token, renewing the token once if Keystone rejects it. */
  async call<T>(fn: (token: string) => Promise<T>): Promise<T> {
    const token = await this.currentToken();
    try {
      return await fn(token);
    } catch (e) {
      if (!(e instanceof KeystoneRejectedError)) throw e;
      if (this.token?.value === token) this.token = undefined;
      const fresh = await this.currentToken();
      try {
        return await fn(fresh);
      } catch (e2) {
        if (e2 instanceof KeystoneRejectedError) throw new KeystoneUnavailableError('service token rejected');
        throw e2;
      }
    }
  }
}

/**
 * Names of the default domain's projects, refreshed at most once a minute. They decide
 * which plain namespaces belong to projects rather than to same-named users.
 */
export class ProjectDirectory {
  private names: ReadonlySet<string> | undefined;
  private fetchedAt = 0;
  private pending: Promise<ReadonlySet<string>> | undefined;

  constructor(
    private readonly client: KeystoneClient,
    private readonly account: ServiceAccount,
    private readonly domainId: string,
    private readonly maxAgeMs = 60_000,
  ) {}

  async projectNames(): Promise<ReadonlySet<string>> {
    if (this.names && Date.now() - this.fetchedAt < this.maxAgeMs) return this.names;
    this.pending ??= this.account
      .call((t) => this.client.projectNames(t, this.domainId))
      .then((list) => {
        this.names = new Set(list);
        this.fetchedAt = Date.now();
        return this.names;
      })
      .finally(() => (this.pending = undefined));
    try {
      return await this.pending;
    } catch (e) {
      // A stale list is better than refusing every login while Keystone hiccups.
      if (this.names) return this.names;
      throw e;
    }
  }
}
