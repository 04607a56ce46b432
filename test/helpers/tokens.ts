import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { libtrustKeyId } from '../../src/tls/x509.js';

export interface Access {
  type?: string;
  name: string;
  actions: string[];
}

export interface MintOptions {
  issuer?: string;
  audience?: string | string[];
  subject?: string;
  expiresIn?: number;
  notBefore?: number;
  /** Header fields to send; default both kid and x5c, as the token server does. */
  header?: 'both' | 'kid' | 'x5c' | 'none';
  /** Sign with another key than the registry trusts. */
  key?: crypto.KeyObject;
  cert?: crypto.X509Certificate;
  /** More claims, e.g. the token server's uid. */
  claims?: Record<string, unknown>;
}

/**
 * Mints registry tokens exactly as the token server does (same key, same header and
 * claims), so registry tests can ask for any access without going through Keystone.
 */
export class TokenMinter {
  readonly key: crypto.KeyObject;
  readonly cert: crypto.X509Certificate;
  constructor(
    certsDir: string,
    readonly issuer = 'keyport',
    readonly service = 'keyport-registry',
  ) {
    this.key = crypto.createPrivateKey(fs.readFileSync(path.join(certsDir, 'token.key')));
    this.cert = new crypto.X509Certificate(fs.readFileSync(path.join(certsDir, 'token.crt')));
  }

  async mint(access: Access[], o: MintOptions = {}): Promise<string> {
    const key = o.key ?? this.key;
    const cert = o.cert ?? this.cert;
    const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256';
    const header: jose.JWTHeaderParameters = { alg, typ: 'JWT' };
    const mode = o.header ?? 'both';
    if (mode === 'both' || mode === 'kid') header.kid = libtrustKeyId(cert.publicKey);
    if (mode === 'both' || mode === 'x5c') header.x5c = [cert.raw.toString('base64')];
    const now = Math.floor(Date.now() / 1000);
    return new jose.SignJWT({ ...(o.claims ?? {}), access: access.map((a) => ({ type: a.type ?? 'repository', name: a.name, actions: a.actions })) })
      .setProtectedHeader(header)
      .setIssuer(o.issuer ?? this.issuer)
      .setAudience(o.audience ?? this.service)
      .setSubject(o.subject ?? 'tester')
      .setIssuedAt(now)
      .setNotBefore(o.notBefore ?? now)
      .setExpirationTime(now + (o.expiresIn ?? 3600))
      .setJti(crypto.randomBytes(8).toString('hex'))
      .sign(key);
  }

  /** pull, push and delete on each repository. */
  all(...repos: string[]): Promise<string> {
    return this.mint(repos.map((name) => ({ name, actions: ['pull', 'push', 'delete'] })));
  }
}
