import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import axios, { type AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import type { Logger } from '../log/logger.js';
import { keystoneOperation, noTokenMetrics, type TokenMetrics } from './metrics.js';
import { KeystoneRejectedError, KeystoneUnavailableError } from './errors.js';

/** Connection settings for Keystone (from config.keystone). */
export interface KeystoneSettings {
  url: string;
  timeout: number;
  caFile: string;
  insecure: boolean;
}

export interface KeystoneUser {
  id: string;
  name: string;
  domainId: string;
  domainName: string;
}

export interface ProjectRef {
  id: string;
  name: string;
  domainId: string;
}

/** The outcome of a successful authentication. */
export interface KeystoneAuth {
  user: KeystoneUser;
  /** Keystone token (kept in memory only, for rescoping). */
  token: string;
  expiresAt: Date;
  /** The project the token is scoped to, with the user's roles there. */
  project?: ProjectRef & { roles: string[] };
  applicationCredentialId?: string;
}

export interface RoleAssignment {
  role: string;
  project?: ProjectRef;
  system?: boolean;
}

type Identity =
  | { methods: ['password']; password: { user: { name: string; password: string; domain: { id: string } | { name: string } } } }
  | { methods: ['application_credential']; application_credential: { id: string; secret: string } }
  | { methods: ['token']; token: { id: string } };

/**
 * The request function axios sends Keystone calls with: http(s).request, except that a
 * connection which carried a 5xx answer is closed instead of going back to the
 * keep-alive pool. A failing Keystone may leave the connection in any state: uWSGI, for
 * one, answers a password it cannot hash (one with a NUL byte) with an empty 500 and
 * then neither closes nor reads the socket, so the next login sent on it would wait for
 * the timeout and fail too. The socket is destroyed as the status line arrives, before
 * Node's agent can hand it to a waiting request (which it does on the response's end);
 * the body of a 5xx is never needed, as every 5xx becomes a 503.
 */
function closingOnServerError(base: typeof http | typeof https) {
  return {
    request(options: http.RequestOptions, callback?: (res: http.IncomingMessage) => void): http.ClientRequest {
      const req = base.request(options, callback);
      req.on('response', (res) => {
        if ((res.statusCode ?? 0) >= 500) req.destroy();
      });
      return req;
    },
  };
}

/**
 * A small Keystone v3 client. Every failure is classified: Keystone saying "no" is
 * KeystoneRejectedError; Keystone being unreachable, slow or broken (network errors,
 * timeouts, 5xx, unparseable answers) is KeystoneUnavailableError, which users see as
 * a 503 rather than as a wrong password.
 */
export class KeystoneClient {
  private readonly http: AxiosInstance;
  private readonly timeout: number;

  constructor(
    settings: KeystoneSettings,
    private readonly log: Logger,
    private readonly metrics: TokenMetrics = noTokenMetrics,
  ) {
    const ca = settings.caFile ? fs.readFileSync(settings.caFile) : undefined;
    const baseURL = settings.url.replace(/\/+$/, '');
    this.timeout = settings.timeout;
    this.http = axios.create({
      baseURL,
      // Idle time on the socket; send() adds a deadline for the whole call.
      timeout: settings.timeout,
      transport: closingOnServerError(new URL(baseURL).protocol === 'https:' ? https : http),
      // Keystone is an internal service: never route it through a proxy from the environment.
      proxy: false,
      maxRedirects: 0,
      maxContentLength: 16 * 1024 * 1024,
      validateStatus: () => true,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64, ca, rejectUnauthorized: !settings.insecure }),
    });
  }

  private async send(method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<AxiosResponse> {
    const started = Date.now();
    const operation = keystoneOperation(method, path);
    const seconds = () => (Date.now() - started) / 1000;
    try {
      const res = await this.http.request({
        method,
        url: path,
        data: body,
        headers: token ? { 'x-auth-token': token } : {},
        // A Keystone that trickles its answer never resets this one.
        signal: AbortSignal.timeout(this.timeout),
      });
      this.log.debug({ keystone: `${method} ${path.split('?')[0]}`, status: res.status, ms: Date.now() - started }, 'keystone call');
      this.metrics.keystone(operation, seconds(), { status: res.status });
      return res;
    } catch (e) {
      const err = e as AxiosError;
      if (err.response && err.response.status >= 500) {
        // Cut off on purpose by closingOnServerError: the status is the whole answer.
        this.log.debug({ keystone: `${method} ${path.split('?')[0]}`, status: err.response.status, ms: Date.now() - started }, 'keystone call');
        this.metrics.keystone(operation, seconds(), { status: err.response.status });
        return err.response;
      }
      const timedOut = axios.isCancel(e) || err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT';
      this.metrics.keystone(operation, seconds(), { error: timedOut ? 'timeout' : 'network' });
      const code = axios.isCancel(e) ? 'ETIMEDOUT' : err.code;
      const message = axios.isCancel(e) ? `no complete answer within ${this.timeout} ms` : err.message;
      this.log.warn({ code, err: message, path }, 'keystone request failed');
      throw new KeystoneUnavailableError(`${code ?? 'error'}: ${message ?? ''}`);
    }
  }

  private unavailable(res: AxiosResponse, what: string): KeystoneUnavailableError {
    this.log.warn({ status: res.status, what }, 'keystone answered with an error');
    return new KeystoneUnavailableError(`${what}: HTTP ${res.status}`);
  }

  private async authenticate(identity: Identity, scope?: unknown): Promise<KeystoneAuth> {
    const body: { auth: Record<string, unknown> } = { auth: { identity } };
    if (scope !== undefined) body.auth.scope = scope;
    const res = await this.send('POST', '/auth/tokens?nocatalog', body);
    if (res.status === 201 || res.status === 200) return this.parseAuth(res);
    if (res.status === 401 || res.status === 403 || res.status === 404 || res.status === 400) {
      // 400 comes back for names Keystone will not even look up (too long, bad domain).
      throw new KeystoneRejectedError(`keystone refused the credentials (HTTP ${res.status})`);
    }
    throw this.unavailable(res, 'authentication');
  }

  private parseAuth(res: AxiosResponse): KeystoneAuth {
    const token = res.headers['x-subject-token'];
    const t = (res.data as { token?: Record<string, any> } | undefined)?.token;
    if (typeof token !== 'string' || !t?.user?.id || !t.user.name || !t.user.domain?.id) {
      throw this.unavailable(res, 'authentication answer without a token');
    }
    const auth: KeystoneAuth = {
      token,
      expiresAt: new Date(t.expires_at),
      user: { id: t.user.id, name: t.user.name, domainId: t.user.domain.id, domainName: t.user.domain.name ?? t.user.domain.id },
    };
    if (t.project?.id) {
      auth.project = {
        id: t.project.id,
        name: t.project.name,
        domainId: t.project.domain?.id ?? '',
        roles: Array.isArray(t.roles) ? t.roles.map((r: { name: string }) => r.name) : [],
      };
    }
    if (t.application_credential?.id) auth.applicationCredentialId = t.application_credential.id;
    return auth;
  }

  /** Password authentication; the token is scoped to the user's default project when it has one. */
  authPassword(user: string, domain: { id: string } | { name: string }, password: string): Promise<KeystoneAuth> {
    return this.authenticate({ methods: ['password'], password: { user: { name: user, password, domain } } });
  }

  authApplicationCredential(id: string, secret: string): Promise<KeystoneAuth> {
    return this.authenticate({ methods: ['application_credential'], application_credential: { id, secret } });
  }

  /** A token of the same user scoped to another project; KeystoneRejectedError if they hold no role there. */
  rescope(token: string, project: { id: string }): Promise<KeystoneAuth> {
    return this.authenticate({ methods: ['token'], token: { id: token } }, { project: { id: project.id } });
  }

  /** Service-account login scoped to a project. */
  authService(user: string, userDomainId: string, password: string, project: string, projectDomainId: string): Promise<KeystoneAuth> {
    return this.authenticate(
      { methods: ['password'], password: { user: { name: user, password, domain: { id: userDomainId } } } },
      { project: { name: project, domain: { id: projectDomainId } } },
    );
  }

  /** Projects the token's user has a role on (allowed for every user). */
  async authProjects(token: string): Promise<ProjectRef[]> {
    const res = await this.send('GET', '/auth/projects', undefined, token);
    if (res.status === 401) throw new KeystoneRejectedError('keystone token no longer valid');
    if (res.status !== 200 || !Array.isArray(res.data?.projects)) throw this.unavailable(res, 'listing projects');
    return (res.data.projects as Array<Record<string, any>>)
      .filter((p) => p.enabled !== false)
      .map((p) => ({ id: p.id, name: p.name, domainId: p.domain_id }));
  }

  /** Effective role assignments of a user, with names (needs a privileged token). */
  async roleAssignments(serviceToken: string, userId: string): Promise<RoleAssignment[]> {
    const res = await this.send(
      'GET',
      `/role_assignments?user.id=${encodeURIComponent(userId)}&effective&include_names`,
      undefined,
      serviceToken,
    );
    if (res.status === 401) throw new KeystoneRejectedError('service token no longer valid');
    if (res.status !== 200 || !Array.isArray(res.data?.role_assignments)) throw this.unavailable(res, 'listing role assignments');
    const out: RoleAssignment[] = [];
    for (const a of res.data.role_assignments as Array<Record<string, any>>) {
      const role = a.role?.name;
      if (typeof role !== 'string') continue;
      if (a.scope?.project) {
        const p = a.scope.project;
        out.push({ role, project: { id: p.id, name: p.name, domainId: p.domain?.id ?? '' } });
      } else if (a.scope?.system) {
        out.push({ role, system: true });
      }
    }
    return out;
  }

  /** A user by id, or undefined when it no longer exists (needs a privileged token). */
  async getUser(serviceToken: string, userId: string): Promise<(KeystoneUser & { enabled: boolean }) | undefined> {
    const res = await this.send('GET', `/users/${encodeURIComponent(userId)}`, undefined, serviceToken);
    if (res.status === 404) return undefined;
    if (res.status === 401) throw new KeystoneRejectedError('service token no longer valid');
    const u = res.data?.user;
    if (res.status !== 200 || !u?.id) throw this.unavailable(res, 'reading a user');
    return { id: u.id, name: u.name, domainId: u.domain_id, domainName: u.domain_id, enabled: u.enabled !== false };
  }

  /** Whether an application credential still exists (needs a privileged token). */
  async applicationCredentialExists(serviceToken: string, userId: string, id: string): Promise<boolean | undefined> {
    const res = await this.send(
      'GET',
      `/users/${encodeURIComponent(userId)}/application_credentials/${encodeURIComponent(id)}`,
      undefined,
      serviceToken,
    );
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    if (res.status === 401) throw new KeystoneRejectedError('service token no longer valid');
    if (res.status === 403) return undefined; // not visible to the service account: cannot tell
    throw this.unavailable(res, 'reading an application credential');
  }

  /** Names of the projects of a domain (needs a privileged token). */
  async projectNames(serviceToken: string, domainId: string): Promise<string[]> {
    const res = await this.send('GET', `/projects?domain_id=${encodeURIComponent(domainId)}`, undefined, serviceToken);
    if (res.status === 401) throw new KeystoneRejectedError('service token no longer valid');
    if (res.status !== 200 || !Array.isArray(res.data?.projects)) throw this.unavailable(res, 'listing projects');
    return (res.data.projects as Array<{ name: string }>).map((p) => p.name);
  }

  /** Succeeds when Keystone answers its version document. */
  async ping(): Promise<void> {
    const res = await this.send('GET', '/');
    if (res.status !== 200 && res.status !== 300) throw this.unavailable(res, 'version document');
  }
}
