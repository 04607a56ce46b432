import * as jose from 'jose';
import type { AccessEntry } from '../oci/scope.js';
import type { TokenSigner } from '../tls/certificates.js';
import { InvalidGrantError } from './errors.js';
import type { FactsSnapshot } from './facts.js';
import { JwsSigner, randomTokenId } from './jws.js';

export interface IssuerSettings {
  issuer: string;
  service: string;
  lifetime: number;
  refreshLifetime: number;
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: Date;
}

/** What a refresh token carries: who, and (without a service account) what they could do. */
export interface RefreshClaims {
  userId: string;
  userName: string;
  domainId: string;
  applicationCredentialId?: string;
  /** Present when roles cannot be re-read from Keystone at refresh time. */
  facts?: FactsSnapshot;
}

const REFRESH_KIND = 'keyport-refresh';

/**
 * Mints access tokens (what registries verify) and refresh tokens (docker's identity
 * token). Both are JWTs signed with the token key; refresh tokens are not stored
 * anywhere, so they survive restarts and work on every token-server instance holding
 * the same key. A refresh token's audience differs from the registry's so it can never
 * be presented to a registry as an access token, and it carries a kind claim so an
 * access token can never be used as a refresh token.
 */
export class TokenIssuer {
  private readonly x5c: string[];
  private readonly accessSigner: JwsSigner;
  private readonly refreshSigner: JwsSigner;

  constructor(
    private readonly signer: TokenSigner,
    private readonly settings: IssuerSettings,
  ) {
    this.x5c = [Buffer.from(signer.cert.raw).toString('base64')];
    // Registries (Distribution among them) find the verification key through kid or x5c.
    this.accessSigner = new JwsSigner(signer, { typ: 'JWT', kid: signer.kid, x5c: this.x5c });
    this.refreshSigner = new JwsSigner(signer, { typ: 'JWT', kid: signer.kid });
  }

  get service(): string {
    return this.settings.service;
  }

  /** False when refreshLifetime is 0: no refresh tokens are issued or accepted. */
  get refreshEnabled(): boolean {
    return this.settings.refreshLifetime > 0;
  }

  private refreshAudience(): string {
    return `${this.settings.service}#refresh`;
  }

  /** `userId` (the Keystone user id) travels as the `uid` claim, so registry events can name the user unambiguously. */
  async accessToken(subject: string, access: AccessEntry[], userId?: string): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const token = this.accessSigner.sign({
      access,
      ...(userId ? { uid: userId } : {}),
      iss: this.settings.issuer,
      sub: subject,
      aud: this.settings.service,
      iat: now,
      nbf: now,
      exp: now + this.settings.lifetime,
      jti: randomTokenId(),
    });
    return { token, expiresIn: this.settings.lifetime, issuedAt: new Date(now * 1000) };
  }

  async refreshToken(claims: RefreshClaims): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = { kind: REFRESH_KIND, name: claims.userName, dom: claims.domainId };
    if (claims.applicationCredentialId) payload.acid = claims.applicationCredentialId;
    if (claims.facts) payload.facts = claims.facts;
    return this.refreshSigner.sign({
      ...payload,
      iss: this.settings.issuer,
      sub: claims.userId,
      aud: this.refreshAudience(),
      iat: now,
      exp: now + this.settings.refreshLifetime,
      jti: randomTokenId(),
    });
  }

  /** Checks a refresh token; any problem is InvalidGrantError. */
  async verifyRefreshToken(token: string): Promise<RefreshClaims> {
    if (token.length > 16_384) throw new InvalidGrantError('refresh token too long; log in again');
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, this.signer.cert.publicKey, {
        issuer: this.settings.issuer,
        audience: this.refreshAudience(),
        algorithms: [this.signer.alg],
        clockTolerance: 30,
      }));
    } catch (e) {
      const reason = e instanceof jose.errors.JWTExpired ? 'refresh token expired; log in again' : 'invalid refresh token; log in again';
      throw new InvalidGrantError(reason);
    }
    if (payload.kind !== REFRESH_KIND || typeof payload.sub !== 'string' || typeof payload.name !== 'string' || typeof payload.dom !== 'string') {
      throw new InvalidGrantError('invalid refresh token; log in again');
    }
    const claims: RefreshClaims = { userId: payload.sub, userName: payload.name, domainId: payload.dom };
    if (typeof payload.acid === 'string') claims.applicationCredentialId = payload.acid;
    if (payload.facts && typeof payload.facts === 'object') claims.facts = payload.facts as FactsSnapshot;
    return claims;
  }

  /** The public signing key as a JWK set. */
  async jwks(): Promise<{ keys: jose.JWK[] }> {
    const jwk = await jose.exportJWK(this.signer.cert.publicKey);
    return { keys: [{ ...jwk, kid: this.signer.kid, alg: this.signer.alg, use: 'sig', x5c: this.x5c }] };
  }
}
