import crypto from 'node:crypto';
import * as jose from 'jose';
import { LRUCache } from 'lru-cache';
import type { AccessEntry } from '../../oci/scope.js';
import { libtrustKeyId } from '../../tls/x509.js';

export interface VerifierSettings {
  issuer: string;
  service: string;
  leewaySeconds: number;
  /** Certificates whose keys may sign tokens (several during a key rotation). */
  trusted: crypto.X509Certificate[];
}

export interface VerifiedToken {
  subject: string;
  /** The Keystone user id (`uid` claim), when the token server put it in. */
  userId?: string;
  access: AccessEntry[];
  expiresAt: number;
}

/** Why a token was refused; only ever shown as error="invalid_token". */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

const ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

/**
 * Verifies bearer tokens from the token server. The signing key is found through the
 * JWT header exactly as Docker Distribution does: `x5c` (a chain that must end in a
 * trusted certificate) or `kid` (the libtrust id of a trusted certificate's key).
 * Only asymmetric algorithms are accepted, so a token "signed" with HMAC using the
 * public certificate as the secret, or with alg none, never passes. Verified tokens are
 * remembered until they expire: a push or pull repeats the same token many times.
 */
export class TokenVerifier {
  private readonly byKid = new Map<string, crypto.X509Certificate>();
  private readonly trustedDer: Set<string>;
  private readonly cache = new LRUCache<string, VerifiedToken>({ max: 50_000 });

  constructor(private readonly settings: VerifierSettings) {
    if (settings.trusted.length === 0) throw new Error('no trusted token certificates');
    for (const cert of settings.trusted) this.byKid.set(libtrustKeyId(cert.publicKey), cert);
    this.trustedDer = new Set(settings.trusted.map((c) => c.raw.toString('base64')));
  }

  async verify(token: string): Promise<VerifiedToken> {
    const now = Math.floor(Date.now() / 1000);
    const cached = this.cache.get(token);
    if (cached) {
      if (cached.expiresAt + this.settings.leewaySeconds >= now) return cached;
      this.cache.delete(token);
    }
    if (token.length > 64 * 1024) throw new InvalidTokenError('token too large');
    let header: jose.ProtectedHeaderParameters;
    try {
      header = jose.decodeProtectedHeader(token);
    } catch {
      throw new InvalidTokenError('malformed token');
    }
    if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg)) {
      throw new InvalidTokenError(`algorithm ${String(header.alg)} not accepted`);
    }
    const key = this.signingKey(header);
    let payload: jose.JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, key, {
        algorithms: ALGORITHMS,
        issuer: this.settings.issuer,
        audience: this.settings.service,
        clockTolerance: this.settings.leewaySeconds,
        requiredClaims: ['exp'],
      }));
    } catch (e) {
      throw new InvalidTokenError((e as Error).message);
    }
    const access = parseAccess(payload.access);
    const verified: VerifiedToken = { subject: typeof payload.sub === 'string' ? payload.sub : '', access, expiresAt: payload.exp! };
    if (typeof payload.uid === 'string') verified.userId = payload.uid;
    this.cache.set(token, verified, { ttl: Math.max(1, (verified.expiresAt + this.settings.leewaySeconds - now) * 1000) });
    return verified;
  }

  private signingKey(header: jose.ProtectedHeaderParameters): crypto.KeyObject {
    if (Array.isArray(header.x5c) && header.x5c.length > 0) {
      let chain: crypto.X509Certificate[];
      try {
        chain = header.x5c.map((c) => new crypto.X509Certificate(Buffer.from(String(c), 'base64')));
      } catch {
        throw new InvalidTokenError('malformed x5c');
      }
      this.checkChain(chain);
      return chain[0]!.publicKey;
    }
    if (typeof header.kid === 'string') {
      const cert = this.byKid.get(header.kid);
      if (!cert) throw new InvalidTokenError('token signed by an unknown key');
      return cert.publicKey;
    }
    throw new InvalidTokenError('token header names no key (x5c or kid)');
  }

  /** Each certificate must be signed by the next; the last must be, or be signed by, a trusted one. */
  private checkChain(chain: crypto.X509Certificate[]): void {
    const now = Date.now();
    for (const c of chain) {
      if (Date.parse(c.validFrom) > now + this.settings.leewaySeconds * 1000 || Date.parse(c.validTo) < now) {
        throw new InvalidTokenError('certificate in x5c is not valid now');
      }
    }
    for (let i = 0; i + 1 < chain.length; i++) {
      if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey)) {
        throw new InvalidTokenError('x5c is not a chain');
      }
    }
    const last = chain[chain.length - 1]!;
    if (this.trustedDer.has(last.raw.toString('base64'))) return;
    for (const root of this.settings.trusted) {
      if (last.checkIssued(root) && last.verify(root.publicKey)) return;
    }
    throw new InvalidTokenError('x5c does not chain to a trusted certificate');
  }
}

function parseAccess(raw: unknown): AccessEntry[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new InvalidTokenError('access claim is not a list');
  const out: AccessEntry[] = [];
  for (const e of raw) {
    if (!e || typeof e !== 'object') throw new InvalidTokenError('malformed access entry');
    const { type, name, actions } = e as Record<string, unknown>;
    if (typeof type !== 'string' || typeof name !== 'string' || !Array.isArray(actions) || actions.some((a) => typeof a !== 'string')) {
      throw new InvalidTokenError('malformed access entry');
    }
    out.push({ type, name, actions: actions as string[] });
  }
  return out;
}
