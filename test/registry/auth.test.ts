/**
 * The registry accepts only tokens from the token server's key, with the right
 * issuer, audience, lifetime and access; everything else is a 401 with a challenge
 * that sends the client back to the token server.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as jose from 'jose';
import { createCertificate } from '../../src/tls/x509.js';
import { KeyportProcess, tempDir } from '../helpers/keyport.js';
import { codes, RegistryClient, startRegistry } from '../helpers/registry.js';
import { TokenMinter } from '../helpers/tokens.js';

let kp: KeyportProcess;
let minter: TokenMinter;
let client: RegistryClient;

before(async () => {
  ({ kp, minter, client } = await startRegistry({ KEYPORT_ISSUER: 'auth-issuer', KEYPORT_SERVICE: 'auth.registry', KEYPORT_REALM: 'https://tokens.example:9002/token' }));
});
after(async () => kp?.stop());

function challenge(r: { headers: Record<string, unknown> }): string {
  return String(r.headers['www-authenticate'] ?? '');
}

describe('registry token checks', () => {
  it('GET /v2/ without a token: 401 with a Bearer challenge naming realm and service', async () => {
    const r = await client.api('GET', '/v2/', undefined);
    assert.equal(r.status, 401);
    assert.equal(challenge(r), 'Bearer realm="https://tokens.example:9002/token",service="auth.registry"');
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.deepEqual(codes(r), ['UNAUTHORIZED']);
  });

  it('GET /v2/ with a valid token: 200 and the API version header', async () => {
    const r = await client.api('GET', '/v2/', await minter.mint([]));
    assert.equal(r.status, 200);
    assert.equal(r.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  it('the challenge of a repository request carries the scope it needs', async () => {
    const pull = await client.api('GET', '/v2/alice/app/tags/list', undefined);
    assert.match(challenge(pull), /scope="repository:alice\/app:pull"$/);
    const push = await client.api('POST', '/v2/alice/app/blobs/uploads/', undefined);
    assert.match(challenge(push), /scope="repository:alice\/app:pull,push"$/);
    const del = await client.api('DELETE', `/v2/alice/app/manifests/sha256:${'a'.repeat(64)}`, undefined);
    assert.match(challenge(del), /scope="repository:alice\/app:delete"$/);
    const cat = await client.api('GET', '/v2/_catalog', undefined);
    assert.match(challenge(cat), /scope="registry:catalog:\*"$/);
  });

  it('kid-only and x5c-only headers both work', async () => {
    for (const header of ['kid', 'x5c', 'both'] as const) {
      const r = await client.api('GET', '/v2/', await minter.mint([], { header }));
      assert.equal(r.status, 200, header);
    }
  });

  it('tokens with a bad issuer, audience, lifetime or key get invalid_token', async () => {
    const { privateKey: otherKey, publicKey: otherPub } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const otherCert = new crypto.X509Certificate(createCertificate({ subjectCN: 'impostor', publicKey: otherPub, selfSignKey: otherKey, days: 30, keyUsage: ['digitalSignature'] }));
    const cases: Array<[string, string]> = [
      ['wrong issuer', await minter.mint([], { issuer: 'someone-else' })],
      ['wrong audience', await minter.mint([], { audience: 'other.registry' })],
      ['audience list without this service', await minter.mint([], { audience: ['other', 'x'] })],
      ['expired', await minter.mint([], { expiresIn: -120 })],
      ['not yet valid', await minter.mint([], { notBefore: Math.floor(Date.now() / 1000) + 3600 })],
      ['untrusted key with its own cert in x5c', await minter.mint([], { key: otherKey, cert: otherCert, header: 'x5c' })],
      ['untrusted key with its own kid', await minter.mint([], { key: otherKey, cert: otherCert, header: 'kid' })],
      ['untrusted key claiming the trusted kid', await minter.mint([], { key: otherKey, header: 'kid' })],
      ['untrusted key with the trusted cert in x5c', await minter.mint([], { key: otherKey, header: 'x5c' })],
      ['no key named', await minter.mint([], { header: 'none' })],
      ['garbage', 'not.a.token'],
    ];
    for (const [what, token] of cases) {
      const r = await client.api('GET', '/v2/', token);
      assert.equal(r.status, 401, what);
      assert.match(challenge(r), /error="invalid_token"/, what);
      assert.deepEqual(codes(r), ['UNAUTHORIZED'], what);
    }
  });

  it('alg none and HMAC signed with the public certificate are refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'auth-issuer', aud: 'auth.registry', sub: 'x', iat: now, nbf: now, exp: now + 300, access: [{ type: 'repository', name: 'alice/app', actions: ['pull'] }] };
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'JWT', kid: 'x' })}.${b64(claims)}.`;
    const certPem = fs.readFileSync(path.join(kp.certsDir, 'token.crt'));
    const hs = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', x5c: [minter.cert.raw.toString('base64')] }).sign(certPem);
    const hsDer = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'x' }).sign(minter.cert.publicKey.export({ type: 'spki', format: 'der' }));
    for (const [what, t] of [['none', none], ['HS256 with the PEM', hs], ['HS256 with the DER key', hsDer]]) {
      const r = await client.api('GET', '/v2/alice/app/tags/list', t);
      assert.equal(r.status, 401, what);
      assert.match(challenge(r), /error="invalid_token"/, what);
    }
  });

  it('a valid token without the needed action gets insufficient_scope for each action', async () => {
    const pullOnly = await minter.mint([{ name: 'alice/app', actions: ['pull'] }]);
    const pushOnly = await minter.mint([{ name: 'alice/app', actions: ['push'] }]);
    const otherRepo = await minter.all('bob/app');
    const denied = await minter.mint([{ name: 'alice/app', actions: [] }]);
    const cases: Array<[string, string, string, string]> = [
      ['push with a pull-only token', 'POST', '/v2/alice/app/blobs/uploads/', pullOnly],
      ['delete with a pull-only token', 'DELETE', `/v2/alice/app/blobs/sha256:${'b'.repeat(64)}`, pullOnly],
      ['pull with a push-only token', 'GET', '/v2/alice/app/tags/list', pushOnly],
      ['pull of another repository', 'GET', '/v2/alice/app/tags/list', otherRepo],
      ['pull with an explicit denial', 'GET', '/v2/alice/app/tags/list', denied],
      ['catalog without registry:catalog:*', 'GET', '/v2/_catalog', otherRepo],
    ];
    for (const [what, method, p, t] of cases) {
      const r = await client.api(method, p, t);
      assert.equal(r.status, 401, what);
      assert.match(challenge(r), /error="insufficient_scope"/, what);
      assert.deepEqual(codes(r), ['DENIED'], what);
    }
    const star = await minter.mint([{ name: 'alice/app', actions: ['*'] }]);
    assert.equal((await client.api('POST', '/v2/alice/app/blobs/uploads/', star)).status, 202, '* grants push');
  });

  it('key rotation: a bundle with two certificates accepts tokens from both keys', async () => {
    const dir = tempDir('rotation');
    const { privateKey: newKey, publicKey: newPub } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const newCertPem = createCertificate({ subjectCN: 'next token key', publicKey: newPub, selfSignKey: newKey, days: 30, keyUsage: ['digitalSignature'] });
    const bundle = path.join(dir, 'bundle.pem');
    fs.writeFileSync(bundle, fs.readFileSync(path.join(kp.certsDir, 'token.crt'), 'utf8') + newCertPem);
    const rotated = await new KeyportProcess({ command: 'registry', dir, env: { KEYPORT_CERTS_DIR: kp.certsDir, KEYPORT_TRUSTED_TOKEN_CERTS: bundle } }).start();
    try {
      const c = new RegistryClient(rotated);
      const m = new TokenMinter(kp.certsDir);
      const next = new crypto.X509Certificate(newCertPem);
      for (const header of ['kid', 'x5c'] as const) {
        assert.equal((await c.api('GET', '/v2/', await m.mint([], { header }))).status, 200, `old key, ${header}`);
        assert.equal((await c.api('GET', '/v2/', await m.mint([], { header, key: newKey, cert: next }))).status, 200, `new key, ${header}`);
      }
    } finally {
      await rotated.stop();
    }
  });

  it('an x5c chain through an intermediate to a trusted CA is accepted; a broken chain is not', async () => {
    const dir = tempDir('chain');
    const { privateKey: caKey, publicKey: caPub } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const caPem = createCertificate({ subjectCN: 'token CA', publicKey: caPub, selfSignKey: caKey, days: 30, isCA: true, keyUsage: ['keyCertSign', 'digitalSignature'] });
    const ca = new crypto.X509Certificate(caPem);
    const { privateKey: leafKey, publicKey: leafPub } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = new crypto.X509Certificate(createCertificate({ subjectCN: 'token signer', publicKey: leafPub, issuer: { cert: ca, key: caKey }, days: 30, keyUsage: ['digitalSignature'] }));
    fs.writeFileSync(path.join(dir, 'ca.pem'), caPem);
    const reg = await new KeyportProcess({ command: 'registry', dir, env: { KEYPORT_CERTS_DIR: kp.certsDir, KEYPORT_TRUSTED_TOKEN_CERTS: path.join(dir, 'ca.pem') } }).start();
    try {
      const c = new RegistryClient(reg);
      const now = Math.floor(Date.now() / 1000);
      const sign = (x5c: crypto.X509Certificate[]) =>
        new jose.SignJWT({ access: [] })
          .setProtectedHeader({ alg: 'ES256', x5c: x5c.map((x) => x.raw.toString('base64')) })
          .setIssuer('keyport')
          .setAudience('keyport-registry')
          .setIssuedAt(now)
          .setExpirationTime(now + 60)
          .sign(leafKey);
      assert.equal((await c.api('GET', '/v2/', await sign([leaf, ca]))).status, 200, 'leaf + CA');
      assert.equal((await c.api('GET', '/v2/', await sign([leaf]))).status, 200, 'leaf issued by the trusted CA');
      const { privateKey: k2, publicKey: p2 } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const stranger = new crypto.X509Certificate(createCertificate({ subjectCN: 'stranger', publicKey: p2, selfSignKey: k2, days: 30, keyUsage: ['digitalSignature'] }));
      assert.equal((await c.api('GET', '/v2/', await sign([leaf, stranger]))).status, 401, 'chain that does not link up');
    } finally {
      await reg.stop();
    }
  });
});
