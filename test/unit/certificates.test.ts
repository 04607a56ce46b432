import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { certPaths, ensureCertificates, loadTokenSigner } from '../../src/tls/certificates.js';
import { libtrustKeyId } from '../../src/tls/x509.js';
import { tempDir } from '../helpers/keyport.js';

test('missing certificates are generated: CA, server certificate, token key; keys are 0600', () => {
  const dir = path.join(tempDir('certs'), 'certs');
  ensureCertificates({ certsDir: dir, names: ['registry.example', '10.1.2.3'], tokenKeyType: 'ec' });
  const p = certPaths(dir);
  for (const f of [p.caKey, p.serverKey, p.tokenKey]) assert.equal(fs.statSync(f).mode & 0o777, 0o600, f);
  const ca = new crypto.X509Certificate(fs.readFileSync(p.caCert));
  const server = new crypto.X509Certificate(fs.readFileSync(p.serverCert));
  assert.ok(ca.ca, 'CA certificate has basicConstraints CA');
  assert.ok(server.verify(ca.publicKey), 'server certificate is signed by the CA');
  assert.ok(!server.ca);
  for (const n of ['localhost', 'registry.example']) assert.ok(server.checkHost(n), n);
  for (const ip of ['127.0.0.1', '::1', '10.1.2.3']) assert.ok(server.checkIP(ip), ip);
  assert.ok(server.checkPrivateKey(crypto.createPrivateKey(fs.readFileSync(p.serverKey))));
  const signer = loadTokenSigner(dir);
  assert.equal(signer.alg, 'ES256');
  assert.match(signer.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  // No leftover temporary files.
  assert.deepEqual(fs.readdirSync(dir).sort(), ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'token.crt', 'token.key']);
});

test('an RSA token key can be chosen', () => {
  const dir = tempDir('certs-rsa');
  ensureCertificates({ certsDir: dir, names: [], tokenKeyType: 'rsa' });
  assert.equal(loadTokenSigner(dir).alg, 'RS256');
});

test('files an operator supplied are used as they are and never overwritten', () => {
  const dir = tempDir('certs-operator');
  const other = tempDir('certs-source');
  ensureCertificates({ certsDir: other, names: [], tokenKeyType: 'ec' });
  fs.copyFileSync(path.join(other, 'server.crt'), path.join(dir, 'server.crt'));
  fs.copyFileSync(path.join(other, 'server.key'), path.join(dir, 'server.key'));
  const before = fs.readFileSync(path.join(dir, 'server.crt'));
  ensureCertificates({ certsDir: dir, names: ['new.example'], tokenKeyType: 'ec' });
  assert.deepEqual(fs.readFileSync(path.join(dir, 'server.crt')), before, 'operator server certificate untouched');
  assert.ok(!fs.existsSync(path.join(dir, 'ca.key')), 'no CA generated when the server certificate is supplied');
  assert.ok(fs.existsSync(path.join(dir, 'token.key')));
});

test('a certificate without its key is an error, not a silent regeneration', () => {
  const dir = tempDir('certs-half');
  fs.writeFileSync(path.join(dir, 'token.crt'), 'x');
  assert.throws(() => ensureCertificates({ certsDir: dir, names: [], tokenKeyType: 'ec' }), /token\.crt exists without .*token\.key/);
  assert.equal(fs.readFileSync(path.join(dir, 'token.crt'), 'utf8'), 'x');
});

test('a generated server certificate is reissued when new names are configured', () => {
  const dir = tempDir('certs-names');
  ensureCertificates({ certsDir: dir, names: [], tokenKeyType: 'ec' });
  const tokenBefore = fs.readFileSync(path.join(dir, 'token.key'));
  ensureCertificates({ certsDir: dir, names: ['added.example'], tokenKeyType: 'ec' });
  const server = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'server.crt')));
  assert.ok(server.checkHost('added.example'));
  assert.deepEqual(fs.readFileSync(path.join(dir, 'token.key')), tokenBefore, 'token key kept');
});

test('libtrust key id matches the documented derivation', () => {
  const { publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = crypto.createHash('sha256').update(der).digest().subarray(0, 30);
  // RFC 4648 base32 of 30 bytes is exactly 48 characters, no padding.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const b of hash) bits += b.toString(2).padStart(8, '0');
  let b32 = '';
  for (let i = 0; i < bits.length; i += 5) b32 += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  assert.equal(libtrustKeyId(publicKey), b32.match(/.{4}/g)!.join(':'));
});

test('under umask 077 (the units set UMask=) public certificates are 0644, keys 0600, a created directory 0755', () => {
  const base = tempDir('certs-umask');
  const dir = path.join(base, 'etc', 'certs');
  const old = process.umask(0o077);
  try {
    ensureCertificates({ certsDir: dir, names: [], tokenKeyType: 'ec' });
    // Reissuing the server certificate for a new name replaces it: same modes.
    ensureCertificates({ certsDir: dir, names: ['added.example'], tokenKeyType: 'ec' });
  } finally {
    process.umask(old);
  }
  const p = certPaths(dir);
  const mode = (f: string) => fs.statSync(f).mode & 0o777;
  for (const f of [p.caCert, p.serverCert, p.tokenCert]) assert.equal(mode(f), 0o644, f);
  for (const f of [p.caKey, p.serverKey, p.tokenKey]) assert.equal(mode(f), 0o600, f);
  assert.ok(new crypto.X509Certificate(fs.readFileSync(p.serverCert)).checkHost('added.example'));
  for (const d of [dir, path.dirname(dir)]) assert.equal(mode(d), 0o755, d);
});

test('the modes of an existing directory and of supplied files are left as the operator set them', () => {
  const dir = tempDir('certs-operator-modes');
  const other = tempDir('certs-operator-source');
  ensureCertificates({ certsDir: other, names: [], tokenKeyType: 'ec' });
  fs.chmodSync(dir, 0o750);
  for (const f of ['token.crt', 'token.key']) fs.copyFileSync(path.join(other, f), path.join(dir, f));
  fs.chmodSync(path.join(dir, 'token.crt'), 0o640);
  fs.chmodSync(path.join(dir, 'token.key'), 0o640);
  const old = process.umask(0o077);
  try {
    ensureCertificates({ certsDir: dir, names: [], tokenKeyType: 'ec' });
  } finally {
    process.umask(old);
  }
  const mode = (f: string) => fs.statSync(path.join(dir, f)).mode & 0o777;
  assert.equal(mode('.'), 0o750);
  assert.equal(mode('token.crt'), 0o640);
  assert.equal(mode('token.key'), 0o640);
  assert.equal(mode('ca.crt'), 0o644, 'what Keyport generates beside them still gets its own modes');
  assert.equal(mode('server.key'), 0o600);
});
