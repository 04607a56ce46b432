import { formatScope, type AccessEntry, type ResourceScope } from '../oci/scope.js';
import type { Authenticator, Session } from './authenticator.js';
import { InvalidGrantError, InvalidRequestError } from './errors.js';
import type { TokenIssuer } from './issuer.js';
import type { BasicCredentials } from './login-name.js';
import { anonymousActions, grantedActions, type PolicySettings } from './policy.js';
import { describeAccess, type WhoAmI } from './whoami.js';

export interface TokenRequest {
  credentials: { kind: 'basic'; basic: BasicCredentials } | { kind: 'refresh'; refreshToken: string } | { kind: 'anonymous' };
  service: string | undefined;
  scopes: ResourceScope[];
  /** Whether the client asked for a refresh token (offline_token=true / access_type=offline). */
  offline: boolean;
  clientId: string | undefined;
  clientAddress: string;
  grantType: 'basic' | 'password' | 'refresh_token' | 'anonymous';
}

export interface TokenResponse {
  token: string;
  expiresIn: number;
  issuedAt: Date;
  refreshToken?: string;
  access: AccessEntry[];
  /** The decision record: who asked for what from where, and what they got. */
  audit: Record<string, unknown>;
}

/**
 * One token request from credentials to signed JWT: authenticate, decide every scope
 * with the policy, write the audit line, mint.
 */
export class TokenService {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly issuer: TokenIssuer,
    private readonly policy: PolicySettings,
    private readonly maxScopes: number,
  ) {}

  async handle(req: TokenRequest): Promise<TokenResponse> {
    if (req.service !== undefined && req.service !== this.issuer.service) {
      throw new InvalidRequestError(`unknown service ${JSON.stringify(req.service)}; this token server issues tokens for ${JSON.stringify(this.issuer.service)}`);
    }
    if (req.scopes.length > this.maxScopes) throw new InvalidRequestError(`too many scopes (at most ${this.maxScopes})`);

    if (req.credentials.kind === 'anonymous') return this.anonymous(req);
    // Refresh tokens turned off: one minted before stays refused, so clients log in again.
    const session = await this.authenticate(req.credentials, req.clientAddress);
    const { principal, facts } = session;

    const access = mergeScopes(req.scopes);
    for (const entry of access) {
      entry.actions = await grantedActions(this.policy, principal.namespace, facts, entry);
    }
    // A user who may not list the whole registry still sees the repositories they may
    // pull: the registry filters the catalog by these entries.
    const catalog = access.find((e) => e.type === 'registry' && e.name === 'catalog');
    if (catalog && catalog.actions.length === 0) {
      const who = await describeAccess(this.policy, principal, facts);
      for (const n of who.namespaces) if (n.actions.includes('pull')) access.push({ type: 'namespace', name: n.namespace, actions: ['pull'] });
    }
    const audit = {
        audit: true,
        user: principal.userName,
        userId: principal.userId,
        domain: principal.domainId,
        namespace: principal.namespace,
        auth: principal.method,
        grant: req.grantType,
        client: req.clientAddress,
        clientId: req.clientId,
        requested: req.scopes.map(formatScope),
        granted: access.map(formatScope),
    };

    const issued = await this.issuer.accessToken(principal.userName, access, principal.userId);
    const res: TokenResponse = { ...issued, access, audit };
    // Without a refresh token in the answer, docker stores the password (as for a plain
    // Basic registry), which podman and skopeo can read beside it.
    if (req.offline && req.credentials.kind === 'basic' && this.issuer.refreshEnabled) {
      res.refreshToken = await this.issuer.refreshToken({
        userId: principal.userId,
        userName: principal.userName,
        domainId: principal.domainId,
        ...(principal.applicationCredentialId ? { applicationCredentialId: principal.applicationCredentialId } : {}),
        // Roles travel in the token only when they cannot be re-read at refresh time.
        ...(this.authenticator.hasServiceAccount && !principal.applicationCredentialId ? {} : { facts: await facts.snapshot() }),
      });
    }
    return res;
  }

  /** The caller's identity and namespaces (GET /whoami): Basic credentials or a refresh token. */
  async whoami(credentials: TokenRequest['credentials'], clientAddress: string): Promise<WhoAmI> {
    const session = await this.authenticate(credentials, clientAddress);
    return describeAccess(this.policy, session.principal, session.facts);
  }

  private async authenticate(credentials: TokenRequest['credentials'], clientAddress: string): Promise<Session> {
    if (credentials.kind === 'basic') return this.authenticator.login(credentials.basic, clientAddress);
    if (credentials.kind === 'anonymous') throw new InvalidRequestError('whoami needs credentials');
    if (!this.issuer.refreshEnabled) throw new InvalidGrantError('refresh tokens are turned off on this server; log in again');
    return this.authenticator.refresh(await this.issuer.verifyRefreshToken(credentials.refreshToken));
  }

  /** Whether requests without credentials get (pull-only) tokens at all. */
  get anonymousEnabled(): boolean {
    return this.policy.anonymousNamespaces.size > 0;
  }

  /**
   * Docker's anonymous token request (no Authorization): a token with an empty subject
   * that pulls in the anonymous namespaces and nothing else, never a refresh token.
   */
  private async anonymous(req: TokenRequest): Promise<TokenResponse> {
    const access = mergeScopes(req.scopes);
    for (const entry of access) entry.actions = anonymousActions(this.policy, { ...entry, actions: entry.actions });
    const audit = {
      audit: true,
      user: '',
      anonymous: true,
      grant: req.grantType,
      client: req.clientAddress,
      clientId: req.clientId,
      requested: req.scopes.map(formatScope),
      granted: access.map(formatScope),
    };
    const issued = await this.issuer.accessToken('', access);
    return { ...issued, access, audit };
  }
}

/** One access entry per resource, with the union of the actions asked for it. */
function mergeScopes(scopes: ResourceScope[]): AccessEntry[] {
  const byKey = new Map<string, AccessEntry>();
  for (const s of scopes) {
    const key = `${s.type}\0${s.class ?? ''}\0${s.name}`;
    const existing = byKey.get(key);
    if (existing) {
      for (const a of s.actions) if (!existing.actions.includes(a)) existing.actions.push(a);
    } else {
      const entry: AccessEntry = { type: s.type, name: s.name, actions: [...s.actions] };
      if (s.class) entry.class = s.class;
      byKey.set(key, entry);
    }
  }
  return [...byKey.values()];
}
