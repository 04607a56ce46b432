import crypto from 'node:crypto';
import { request } from './http.js';
import type { KeystoneService } from './services.js';

/**
 * Administrative calls against the test Keystone, so each test file creates the users,
 * projects and roles it needs under unique names and never disturbs another file.
 */
export class KeystoneAdmin {
  private token: string | undefined;
  constructor(readonly ks: Pick<KeystoneService, 'url' | 'adminPassword'>) {}

  get url(): string {
    return this.ks.url;
  }

  private async call(method: string, path: string, body?: unknown, token?: string) {
    const r = await this.send(method, path, body, token);
    // The test Keystone's tokens live two minutes: log in again when the admin token died.
    if (r.status === 401 && !token && this.token && !path.startsWith('/auth/tokens')) {
      await this.login();
      return this.send(method, path, body, token);
    }
    return r;
  }

  private async send(method: string, path: string, body?: unknown, token?: string) {
    const r = await request(this.url + path, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(token ?? this.token ? { 'x-auth-token': (token ?? this.token)! } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status >= 300 && !(method === 'GET' && r.status === 404)) {
      throw new Error(`keystone ${method} ${path} -> ${r.status} ${r.text}`);
    }
    return r;
  }

  async login(): Promise<void> {
    const r = await this.call('POST', '/auth/tokens?nocatalog', {
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'admin', domain: { id: 'default' }, password: this.ks.adminPassword } } },
        scope: { project: { name: 'admin', domain: { id: 'default' } } },
      },
    });
    this.token = r.headers['x-subject-token'] as string;
  }

  async ensureLogin(): Promise<void> {
    if (!this.token) await this.login();
  }

  /** A short random suffix for unique names. */
  static suffix(): string {
    return crypto.randomBytes(3).toString('hex');
  }

  async createDomain(name: string): Promise<string> {
    await this.ensureLogin();
    const r = await this.call('POST', '/domains', { domain: { name, enabled: true } });
    return r.json().domain.id;
  }

  async createProject(name: string, domainId = 'default'): Promise<string> {
    await this.ensureLogin();
    const r = await this.call('POST', '/projects', { project: { name, domain_id: domainId, enabled: true } });
    return r.json().project.id;
  }

  async createUser(
    name: string,
    password: string,
    opts: { domainId?: string; enabled?: boolean; defaultProject?: string; ignoreLockout?: boolean } = {},
  ): Promise<string> {
    await this.ensureLogin();
    const user: Record<string, unknown> = {
      name,
      password,
      domain_id: opts.domainId ?? 'default',
      enabled: opts.enabled ?? true,
      options: { ignore_lockout_failure_attempts: opts.ignoreLockout ?? false },
    };
    if (opts.defaultProject) user.default_project_id = opts.defaultProject;
    const r = await this.call('POST', '/users', { user });
    return r.json().user.id;
  }

  /** A user of the default domain with exactly this name and a new password, created when missing. */
  async resetUser(name: string, password: string): Promise<string> {
    await this.ensureLogin();
    const found = (await this.call('GET', `/users?domain_id=default&name=${encodeURIComponent(name)}`)).json().users as Array<{ id: string }>;
    if (!found.length) return this.createUser(name, password, { ignoreLockout: true });
    await this.call('PATCH', `/users/${found[0]!.id}`, { user: { password, enabled: true } });
    return found[0]!.id;
  }

  async setEnabled(userId: string, enabled: boolean): Promise<void> {
    await this.ensureLogin();
    await this.call('PATCH', `/users/${userId}`, { user: { enabled } });
  }

  async deleteUser(userId: string): Promise<void> {
    await this.ensureLogin();
    await this.call('DELETE', `/users/${userId}`);
  }

  async roleId(name: string): Promise<string> {
    await this.ensureLogin();
    const r = await this.call('GET', `/roles?name=${encodeURIComponent(name)}`);
    const role = r.json().roles[0];
    if (!role) throw new Error(`no role ${name}`);
    return role.id;
  }

  async projectId(name: string, domainId = 'default'): Promise<string> {
    await this.ensureLogin();
    const r = await this.call('GET', `/projects?name=${encodeURIComponent(name)}&domain_id=${domainId}`);
    const p = r.json().projects[0];
    if (!p) throw new Error(`no project ${name}`);
    return p.id;
  }

  async grant(projectId: string, userId: string, role: string): Promise<void> {
    await this.ensureLogin();
    await this.call('PUT', `/projects/${projectId}/users/${userId}/roles/${await this.roleId(role)}`);
  }

  async revoke(projectId: string, userId: string, role: string): Promise<void> {
    await this.ensureLogin();
    await this.call('DELETE', `/projects/${projectId}/users/${userId}/roles/${await this.roleId(role)}`);
  }

  /** Creates an application credential as the user (needs their password and a project). */
  async createAppCredential(
    userName: string,
    password: string,
    userId: string,
    project: string,
    name: string,
    secret: string,
    roles?: string[],
  ): Promise<string> {
    const auth = await this.call('POST', '/auth/tokens?nocatalog', {
      auth: {
        identity: { methods: ['password'], password: { user: { name: userName, domain: { id: 'default' }, password } } },
        scope: { project: { name: project, domain: { id: 'default' } } },
      },
    });
    const userToken = auth.headers['x-subject-token'] as string;
    const body: Record<string, unknown> = { name, secret };
    if (roles) body.roles = roles.map((r) => ({ name: r }));
    const r = await this.call('POST', `/users/${userId}/application_credentials`, { application_credential: body }, userToken);
    return r.json().application_credential.id;
  }
}

/** A user created for one test file, with its password. */
export interface TestUser {
  id: string;
  name: string;
  password: string;
}

export async function makeUser(admin: KeystoneAdmin, name: string, opts: Parameters<KeystoneAdmin['createUser']>[2] = {}): Promise<TestUser> {
  const password = `pw-${crypto.randomBytes(8).toString('hex')}`;
  const id = await admin.createUser(name, password, opts);
  return { id, name, password };
}
