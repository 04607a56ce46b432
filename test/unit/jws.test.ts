import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import * as jose from 'jose';
import { algorithmFor, type TokenSigner } from '../../src/tls/certificates.js';
import { createCertificate } from '../../src/tls/x509.js';
import { TokenIssuer } from '../../src/token/issuer.js';
import { randomTokenId } from '../../src/token/jws.js';

/** A signer with a throw-away self-signed certificate for the key (what the token server loads from certs/). */
function generateCertificatePair(kind: 'ec' | 'rsa'): { key: crypto.KeyObject; certPem: string } {
  const { privateKey, publicKey } =
    kind === 'ec' ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }) : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const certPem = createCertificate({ subjectCN: 'token', publicKey, selfSignKey: privateKey, days: 1, keyUsage: ['digitalSignature'] });
  return { key: privateKey, certPem };
}

function signerFor(key: crypto.KeyObject, certPem: string): TokenSigner {
  return { key, certPem, cert: new crypto.X509Certificate(certPem), alg: algorithmFor(key), kid: 'TEST:KID' };
}

const settings = { issuer: 'keyport-token', service: 'keyport-registry', lifetime: 300, refreshLifetime: 3600 };

describe('token signing', () => {
  for (const kind of ['ec', 'rsa'] as const) {
    it(`${kind}: access tokens verify with a standard JOSE library and carry the registry's header and claims`, async () => {
      const { key, certPem } = generateCertificatePair(kind);
      const issuer = new TokenIssuer(signerFor(key, certPem), settings);
      const access = [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }];
      const t = await issuer.accessToken('alice', access, 'uid-1');
      const pub = new crypto.X509Certificate(certPem).publicKey;
      const { payload, protectedHeader } = await jose.jwtVerify(t.token, pub, { issuer: settings.issuer, audience: settings.service });
      assert.equal(protectedHeader.alg, kind === 'ec' ? 'ES256' : 'RS256');
      assert.equal(protectedHeader.kid, 'TEST:KID');
      assert.equal(protectedHeader.typ, 'JWT');
      assert.deepEqual(protectedHeader.x5c, [new crypto.X509Certificate(certPem).raw.toString('base64')]);
      assert.equal(payload.sub, 'alice');
      assert.equal(payload.uid, 'uid-1');
      assert.deepEqual(payload.access, access);
      assert.equal(payload.exp! - payload.iat!, 300);
      assert.match(String(payload.jti), /^[A-Za-z0-9_-]{22}$/);
      // A refresh token round-trips through the issuer's own check, and is no access token.
      const r = await issuer.refreshToken({ userId: 'uid-1', userName: 'alice', domainId: 'default' });
      assert.deepEqual(await issuer.verifyRefreshToken(r), { userId: 'uid-1', userName: 'alice', domainId: 'default' });
      await assert.rejects(jose.jwtVerify(r, pub, { audience: settings.service }));
    });
  }

  it('token ids are unique', () => {
    const ids = new Set(Array.from({ length: 5000 }, randomTokenId));
    assert.equal(ids.size, 5000);
  });
});
