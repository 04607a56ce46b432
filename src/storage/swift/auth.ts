import type { AxiosInstance, AxiosResponse } from 'axios';
import type { SwiftSettings } from './settings.js';
import type { Logger } from '../../log/logger.js';
import { StorageUnavailableError } from '../driver.js';
import { isTransportError } from '../transport.js';

/** The settings authentication needs (see storage.swift in the config schema). */
export type SwiftAuthOptions = Pick<
  SwiftSettings,
  | 'authUrl'
  | 'authVersion'
  | 'username'
  | 'password'
  | 'applicationCredentialId'
  | 'applicationCredentialName'
  | 'applicationCredentialSecret'
  | 'tenant'
  | 'tenantId'
  | 'domain'
  | 'domainId'
  | 'tenantDomain'
  | 'tenantDomainId'
  | 'region'
  | 'endpointType'
  | 'storageUrl'
  | 'timeout'
>;

/** A token and the account URL it is good for. */
export interface SwiftSession {
  token: string;
  storageUrl: string;
  /** Epoch milliseconds, when the auth service said. */
  expiresAt?: number;
  /** Epoch milliseconds when the login answered. */
  obtainedAt?: number;
}

/** Auth failed for a reason retrying will not fix (bad credentials, no object-store endpoint). */
export class SwiftAuthError extends StorageUnavailableError {
  override name = 'SwiftAuthError';
}

/**
 * Renew this long before the announced expiry, so no request carries a token that dies in
 * flight: a minute, or a quarter of the token's life when tokens live less than 4 minutes
 * (a fixed minute would mean a login before every request).
 */
const RENEW_BEFORE_MS = 60_000;

export function renewAt(s: SwiftSession): number {
  if (s.expiresAt === undefined) return Infinity;
  const life = s.obtainedAt !== undefined ? s.expiresAt - s.obtainedAt : Infinity;
  return s.expiresAt - Math.min(RENEW_BEFORE_MS, Math.max(0, life / 4));
}

export function guessAuthVersion(authUrl: string): 1 | 2 | 3 {
  const p = new URL(authUrl).pathname.replace(/\/+$/, '');
  if (/\/v1(\.0)?$/.test(p) || /\/auth$/.test(p)) return 1;
  if (/\/v2(\.0)?$/.test(p)) return 2;
  return 3;
}

/**
 * Logs in to Swift (v1 auth, Keystone v2 or v3) and keeps one session for all requests.
 * Concurrent callers share one login; a session is renewed shortly before it expires and
 * whenever Swift rejects its token (invalidate()).
 */
export class SwiftAuthenticator {
  readonly version: 1 | 2 | 3;
  private current: SwiftSession | undefined;
  private pending: Promise<SwiftSession> | undefined;

  constructor(
    private readonly opts: SwiftAuthOptions,
    private readonly http: AxiosInstance,
    private readonly log: Logger,
  ) {
    this.version = opts.authVersion === 0 ? guessAuthVersion(opts.authUrl) : opts.authVersion;
  }

  async session(): Promise<SwiftSession> {
    const s = this.current;
    if (s && renewAt(s) > Date.now()) return s;
    return this.login();
  }

  /** Forgets `s` (if it is still the current session) so the next call logs in again. */
  invalidate(s: SwiftSession): void {
    if (this.current === s) this.current = undefined;
  }

  private login(): Promise<SwiftSession> {
    if (!this.pending) {
      const started = Date.now();
      this.pending = this.authenticate()
        .then((s) => {
          if (this.opts.storageUrl) s.storageUrl = this.opts.storageUrl;
          s.storageUrl = s.storageUrl.replace(/\/+$/, '');
          s.obtainedAt ??= started;
          this.current = s;
          this.log.debug({ authVersion: this.version, storageUrl: s.storageUrl }, 'swift: logged in');
          return s;
        })
        .finally(() => {
          this.pending = undefined;
        });
    }
    return this.pending;
  }

  private authenticate(): Promise<SwiftSession> {
    switch (this.version) {
      case 1:
        return this.v1();
      case 2:
        return this.v2();
      default:
        return this.v3();
    }
  }

  private async send(method: 'GET' | 'POST', url: string, headers: Record<string, string>, body?: unknown): Promise<AxiosResponse> {
    let res: AxiosResponse;
    try {
      res = await this.http.request({
        method,
        url,
        headers,
        data: body === undefined ? undefined : JSON.stringify(body),
        responseType: 'json',
        validateStatus: () => true,
        signal: AbortSignal.timeout(this.opts.timeout),
      });
    } catch (e) {
      if (isTransportError(e)) throw new StorageUnavailableError(`swift auth at ${url} unreachable: ${(e as Error).message}`);
      throw e;
    }
    if (res.status >= 500) throw new StorageUnavailableError(`swift auth at ${url} answered ${res.status}`);
    if (res.status === 401 || res.status === 403) {
      throw new SwiftAuthError(`swift auth at ${url} rejected the credentials (${res.status})`);
    }
    if (res.status >= 300) throw new SwiftAuthError(`swift auth at ${url} answered ${res.status}`);
    return res;
  }

  /** Swift v1 auth (tempauth, swauth, SoftLayer-style stores). */
  private async v1(): Promise<SwiftSession> {
    const res = await this.send('GET', this.opts.authUrl, { 'X-Auth-User': this.opts.username, 'X-Auth-Key': this.opts.password });
    const token = header(res, 'x-auth-token') ?? header(res, 'x-storage-token');
    const storageUrl = header(res, 'x-storage-url');
    if (!token || !storageUrl) throw new SwiftAuthError('swift v1 auth answered without X-Auth-Token or X-Storage-Url');
    const expires = Number(header(res, 'x-auth-token-expires'));
    return { token, storageUrl, expiresAt: Number.isFinite(expires) && expires > 0 ? Date.now() + expires * 1000 : undefined };
  }

  /** Keystone v2.0, for clouds that still run it. */
  private async v2(): Promise<SwiftSession> {
    const o = this.opts;
    const auth: Record<string, unknown> = { passwordCredentials: { username: o.username, password: o.password } };
    if (o.tenantId) auth.tenantId = o.tenantId;
    else if (o.tenant) auth.tenantName = o.tenant;
    const url = `${o.authUrl.replace(/\/+$/, '')}/tokens`;
    const res = await this.send('POST', url, { 'Content-Type': 'application/json', Accept: 'application/json' }, { auth });
    const access = (res.data as { access?: V2Access } | undefined)?.access;
    const token = access?.token?.id;
    if (!token) throw new SwiftAuthError('keystone v2 answered without a token');
    const key = `${o.endpointType}URL` as 'publicURL' | 'internalURL' | 'adminURL';
    const storageUrl = o.storageUrl || pickEndpoint(
      (access.serviceCatalog ?? []).filter((s) => s.type === 'object-store').flatMap((s) => s.endpoints ?? []).map((e) => ({ url: e[key], region: e.region })),
      o.region,
    );
    if (!storageUrl) throw new SwiftAuthError(this.noEndpoint());
    const exp = access.token?.expires ? Date.parse(access.token.expires) : NaN;
    return { token, storageUrl, expiresAt: Number.isFinite(exp) ? exp : undefined };
  }

  /** Keystone v3: password or application credential, project by id or name. */
  private async v3(): Promise<SwiftSession> {
    const o = this.opts;
    const userDomain = o.domainId ? { id: o.domainId } : o.domain ? { name: o.domain } : { id: 'default' };
    let identity: Record<string, unknown>;
    let scope: Record<string, unknown> | undefined;
    if (o.applicationCredentialId || o.applicationCredentialName) {
      // An application credential carries its own project; a scope is refused.
      const cred: Record<string, unknown> = { secret: o.applicationCredentialSecret };
      if (o.applicationCredentialId) cred.id = o.applicationCredentialId;
      else Object.assign(cred, { name: o.applicationCredentialName, user: { name: o.username, domain: userDomain } });
      identity = { methods: ['application_credential'], application_credential: cred };
    } else {
      identity = { methods: ['password'], password: { user: { name: o.username, domain: userDomain, password: o.password } } };
      const projectDomain = o.tenantDomainId ? { id: o.tenantDomainId } : o.tenantDomain ? { name: o.tenantDomain } : userDomain;
      if (o.tenantId) scope = { project: { id: o.tenantId } };
      else if (o.tenant) scope = { project: { name: o.tenant, domain: projectDomain } };
    }
    const base = o.authUrl.replace(/\/+$/, '');
    const url = /\/v3$/.test(base) ? `${base}/auth/tokens` : /\/auth\/tokens$/.test(base) ? base : `${base}/v3/auth/tokens`;
    const body = { auth: scope ? { identity, scope } : { identity } };
    const res = await this.send('POST', url, { 'Content-Type': 'application/json', Accept: 'application/json' }, body);
    const token = header(res, 'x-subject-token');
    const t = (res.data as { token?: V3Token } | undefined)?.token;
    if (!token || !t) throw new SwiftAuthError('keystone v3 answered without a token');
    const storageUrl = o.storageUrl || pickEndpoint(
      (t.catalog ?? []).filter((s) => s.type === 'object-store').flatMap((s) => s.endpoints ?? [])
        .filter((e) => e.interface === o.endpointType)
        .map((e) => ({ url: e.url, region: e.region_id ?? e.region })),
      o.region,
    );
    if (!storageUrl) throw new SwiftAuthError(this.noEndpoint());
    const exp = t.expires_at ? Date.parse(t.expires_at) : NaN;
    return { token, storageUrl, expiresAt: Number.isFinite(exp) ? exp : undefined };
  }

  private noEndpoint(): string {
    const where = this.opts.region ? ` in region ${this.opts.region}` : '';
    return `the catalog has no ${this.opts.endpointType} object-store endpoint${where}; set storage.swift.storageUrl or fix region/endpointType`;
  }
}

interface V2Access {
  token?: { id?: string; expires?: string };
  serviceCatalog?: Array<{ type?: string; endpoints?: Array<{ region?: string; publicURL?: string; internalURL?: string; adminURL?: string }> }>;
}

interface V3Token {
  expires_at?: string;
  catalog?: Array<{ type?: string; endpoints?: Array<{ interface?: string; region?: string; region_id?: string; url?: string }> }>;
}

function header(res: AxiosResponse, name: string): string | undefined {
  const v = res.headers[name];
  if (Array.isArray(v)) return v[0];
  return v === undefined || v === null || v === '' ? undefined : String(v);
}

function pickEndpoint(candidates: Array<{ url?: string; region?: string }>, region: string): string | undefined {
  const usable = candidates.filter((c) => !!c.url);
  const hit = region ? usable.find((c) => c.region === region) : usable[0];
  return hit?.url;
}
