import { KeystoneRejectedError } from './errors.js';
import type { KeystoneAuth, KeystoneClient, ProjectRef, RoleAssignment } from './keystone.js';
import { projectNamespace, type NamespaceRules } from './namespace.js';
import type { ServiceAccount } from './service-account.js';

/**
 * What the policy may need to know about an authenticated user beyond their name.
 * Each answer may cost a Keystone call, so the policy asks only when a request needs
 * it, and implementations remember answers for the life of the cached login.
 */
export interface AccessFacts {
  isAdmin(): Promise<boolean>;
  /** The user's roles in the project owning `namespace`, or undefined if they have none there. */
  projectRoles(namespace: string): Promise<ReadonlySet<string> | undefined>;
  /** Whether `namespace` is a project's; undefined when that cannot be known. */
  isProjectNamespace(namespace: string): Promise<boolean | undefined>;
  /** Everything at once, to carry in a refresh token when it cannot be re-read later. */
  snapshot(): Promise<FactsSnapshot>;
}

export interface FactsSnapshot {
  admin: boolean;
  /** project namespace -> roles */
  projects: Record<string, string[]>;
}

export interface FactsSettings {
  adminRole: string;
  adminProject: string;
  rules: NamespaceRules;
}

function memo<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= fn().catch((e) => {
      p = undefined; // do not remember failures
      throw e;
    });
    return p;
  };
}

function isAdminProject(s: FactsSettings, p: ProjectRef): boolean {
  return p.name === s.adminProject && p.domainId === s.rules.defaultDomainId;
}

/** Facts from the user's effective role assignments, read with the service account. */
export class ServiceAccountFacts implements AccessFacts {
  private readonly load: () => Promise<{ admin: boolean; projects: Map<string, Set<string>> }>;

  constructor(
    settings: FactsSettings,
    client: KeystoneClient,
    account: ServiceAccount,
    userId: string,
    private readonly projectNames: () => Promise<ReadonlySet<string>>,
  ) {
    this.load = memo(async () => {
      const assignments: RoleAssignment[] = await account.call((t) => client.roleAssignments(t, userId));
      const projects = new Map<string, Set<string>>();
      let admin = false;
      for (const a of assignments) {
        if (a.system && a.role === settings.adminRole) admin = true;
        if (!a.project) continue;
        if (a.role === settings.adminRole && isAdminProject(settings, a.project)) admin = true;
        const ns = projectNamespace(settings.rules, a.project.domainId, a.project.name);
        let roles = projects.get(ns);
        if (!roles) projects.set(ns, (roles = new Set()));
        roles.add(a.role);
      }
      return { admin, projects };
    });
  }

  async isAdmin(): Promise<boolean> {
    return (await this.load()).admin;
  }
  async projectRoles(namespace: string): Promise<ReadonlySet<string> | undefined> {
    return (await this.load()).projects.get(namespace);
  }
  async isProjectNamespace(namespace: string): Promise<boolean | undefined> {
    if ((await this.load()).projects.has(namespace)) return true;
    return (await this.projectNames()).has(namespace);
  }
  async snapshot(): Promise<FactsSnapshot> {
    const { admin, projects } = await this.load();
    return { admin, projects: Object.fromEntries([...projects].map(([k, v]) => [k, [...v].sort()])) };
  }
}

/**
 * Facts read with the user's own Keystone token, for deployments without a service
 * account: the user's projects come from /v3/auth/projects and their roles in one
 * project from a token rescoped to it (one call per project actually asked about).
 */
export class UserTokenFacts implements AccessFacts {
  private readonly projects: () => Promise<Map<string, ProjectRef>>;
  private readonly roles = new Map<string, () => Promise<ReadonlySet<string> | undefined>>();

  constructor(
    private readonly settings: FactsSettings,
    private readonly client: KeystoneClient,
    private readonly auth: KeystoneAuth,
  ) {
    this.projects = memo(async () => {
      const list = await client.authProjects(auth.token);
      return new Map(list.map((p) => [projectNamespace(settings.rules, p.domainId, p.name), p]));
    });
  }

  private rolesIn(p: ProjectRef): Promise<ReadonlySet<string> | undefined> {
    let get = this.roles.get(p.id);
    if (!get) {
      get = memo(async () => {
        if (this.auth.project?.id === p.id) return new Set(this.auth.project.roles);
        try {
          const scoped = await this.client.rescope(this.auth.token, p);
          return new Set(scoped.project?.roles ?? []);
        } catch (e) {
          if (e instanceof KeystoneRejectedError) return undefined;
          throw e;
        }
      });
      this.roles.set(p.id, get);
    }
    return get();
  }

  async isAdmin(): Promise<boolean> {
    for (const p of (await this.projects()).values()) {
      if (isAdminProject(this.settings, p)) return (await this.rolesIn(p))?.has(this.settings.adminRole) ?? false;
    }
    return false;
  }
  async projectRoles(namespace: string): Promise<ReadonlySet<string> | undefined> {
    const p = (await this.projects()).get(namespace);
    return p ? this.rolesIn(p) : undefined;
  }
  async isProjectNamespace(namespace: string): Promise<boolean | undefined> {
    return (await this.projects()).has(namespace) ? true : undefined;
  }
  async snapshot(): Promise<FactsSnapshot> {
    const out: Record<string, string[]> = {};
    for (const [ns, p] of await this.projects()) {
      const roles = await this.rolesIn(p);
      if (roles && roles.size > 0) out[ns] = [...roles].sort();
    }
    return { admin: await this.isAdmin(), projects: out };
  }
}

/** Fixed facts: an application credential's project roles, or a refresh token's snapshot. */
export class StaticFacts implements AccessFacts {
  constructor(private readonly snap: FactsSnapshot) {}

  static forApplicationCredential(settings: FactsSettings, auth: KeystoneAuth): StaticFacts {
    const projects: Record<string, string[]> = {};
    let admin = false;
    if (auth.project) {
      projects[projectNamespace(settings.rules, auth.project.domainId, auth.project.name)] = [...auth.project.roles].sort();
      admin = isAdminProject(settings, auth.project) && auth.project.roles.includes(settings.adminRole);
    }
    return new StaticFacts({ admin, projects });
  }

  async isAdmin(): Promise<boolean> {
    return this.snap.admin;
  }
  async projectRoles(namespace: string): Promise<ReadonlySet<string> | undefined> {
    const r = Object.hasOwn(this.snap.projects, namespace) ? this.snap.projects[namespace] : undefined;
    return r ? new Set(r) : undefined;
  }
  async isProjectNamespace(namespace: string): Promise<boolean | undefined> {
    return Object.hasOwn(this.snap.projects, namespace) ? true : undefined;
  }
  async snapshot(): Promise<FactsSnapshot> {
    return this.snap;
  }
}
