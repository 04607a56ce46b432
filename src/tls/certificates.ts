import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { writeFileAtomicSync } from '../util/atomic-file.js';
import { createCertificate, libtrustKeyId } from './x509.js';

export interface CertificateOptions {
  certsDir: string;
  /** Names (DNS or IP) the server certificate must cover besides the defaults. */
  names: string[];
  tokenKeyType: 'ec' | 'rsa';
}

/** TLS material for an HTTPS server. */
export interface ServerTls {
  cert: string;
  key: string;
  /** The CA that signed cert, when Keyport generated it (clients need it to trust the server). */
  caFile: string | null;
}

/** The token-signing key pair. */
export interface TokenSigner {
  key: crypto.KeyObject;
  certPem: string;
  cert: crypto.X509Certificate;
  /** JOSE algorithm matching the key. */
  alg: 'ES256' | 'ES384' | 'ES512' | 'RS256';
  /** libtrust key id, what Docker Distribution matches `kid` against. */
  kid: string;
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

const FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  serverCert: 'server.crt',
  serverKey: 'server.key',
  tokenCert: 'token.crt',
  tokenKey: 'token.key',
} as const;

export function certPaths(certsDir: string) {
  const p = (f: string) => path.join(certsDir, f);
  return {
    caCert: p(FILES.caCert),
    caKey: p(FILES.caKey),
    serverCert: p(FILES.serverCert),
    serverKey: p(FILES.serverKey),
    tokenCert: p(FILES.tokenCert),
    tokenKey: p(FILES.tokenKey),
  };
}

/** Names every generated server certificate covers. */
export function defaultServerNames(extra: string[]): string[] {
  const names = ['localhost', '127.0.0.1', '::1', os.hostname(), ...extra];
  return [...new Set(names.filter((n) => n && n !== '0.0.0.0' && n !== '::'))];
}

/**
 * Makes sure the certificates directory holds a CA, a server certificate and a
 * token-signing key, generating only what is missing. Files an operator supplied are
 * never overwritten. Several processes may call this at once (token server and
 * registry starting together): a lock directory serialises generation.
 */
export function ensureCertificates(opts: CertificateOptions, log?: Logger): void {
  makeCertsDir(opts.certsDir);
  withLock(opts.certsDir, () => {
    const p = certPaths(opts.certsDir);
    const names = defaultServerNames(opts.names);
    ensurePair(p.serverCert, p.serverKey, 'server');
    ensurePair(p.tokenCert, p.tokenKey, 'token');

    if (!fs.existsSync(p.serverCert)) {
      const ca = ensureCa(p, log);
      generateServer(p, ca, names);
      log?.info({ file: p.serverCert, names }, 'generated TLS server certificate');
    } else if (fs.existsSync(p.caKey) && fs.existsSync(p.caCert)) {
      // Regenerate our own server certificate when configured names were added later;
      // a certificate from another issuer belongs to the operator and is left alone.
      const cert = new crypto.X509Certificate(fs.readFileSync(p.serverCert));
      const ca = new crypto.X509Certificate(fs.readFileSync(p.caCert));
      if (cert.checkIssued(ca) && cert.verify(ca.publicKey) && !coversAll(cert, names)) {
        const caKey = crypto.createPrivateKey(fs.readFileSync(p.caKey));
        fs.rmSync(p.serverCert);
        generateServer(p, { cert: ca, key: caKey }, names);
        log?.warn({ file: p.serverCert, names }, 'regenerated TLS server certificate to cover new names');
      }
    }

    if (!fs.existsSync(p.tokenKey)) {
      const { privateKey, publicKey } =
        opts.tokenKeyType === 'rsa'
          ? crypto.generateKeyPairSync('rsa', { modulusLength: 3072 })
          : crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const pem = createCertificate({
        subjectCN: 'Keyport token signing',
        subjectO: 'Keyport',
        publicKey,
        selfSignKey: privateKey,
        days: 3650,
        keyUsage: ['digitalSignature'],
      });
      writeKey(p.tokenKey, privateKey);
      writeFileAtomicSync(p.tokenCert, pem, { mode: 0o644, exclusive: true });
      log?.info({ file: p.tokenCert, type: opts.tokenKeyType }, 'generated token-signing key and certificate');
    }
  });
}

/**
 * Creates the certificates directory when missing. Directories Keyport creates get 0755
 * whatever the umask, so another user (a Docker Distribution reading token.crt) can
 * reach the public certificates; the private keys are protected by their own 0600. An
 * existing directory belongs to the operator and keeps its mode.
 */
function makeCertsDir(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  const top = path.resolve(first);
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    fs.chmodSync(d, 0o755);
    if (d === top || d === path.dirname(d)) break;
  }
}

function ensurePair(certFile: string, keyFile: string, what: string): void {
  const c = fs.existsSync(certFile);
  const k = fs.existsSync(keyFile);
  if (c !== k) {
    throw new CertificateError(
      `${c ? certFile : keyFile} exists without ${c ? keyFile : certFile}; supply both ${what} files or neither`,
    );
  }
}

function ensureCa(p: ReturnType<typeof certPaths>, log?: Logger) {
  ensurePair(p.caCert, p.caKey, 'CA');
  if (fs.existsSync(p.caCert)) {
    return {
      cert: new crypto.X509Certificate(fs.readFileSync(p.caCert)),
      key: crypto.createPrivateKey(fs.readFileSync(p.caKey)),
    };
  }
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = createCertificate({
    subjectCN: `Keyport CA ${os.hostname()}`,
    subjectO: 'Keyport',
    publicKey,
    selfSignKey: privateKey,
    days: 7300,
    isCA: true,
    keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  });
  writeKey(p.caKey, privateKey);
  writeFileAtomicSync(p.caCert, pem, { mode: 0o644, exclusive: true });
  log?.info({ file: p.caCert }, 'generated self-signed CA');
  return { cert: new crypto.X509Certificate(pem), key: privateKey };
}

function generateServer(
  p: ReturnType<typeof certPaths>,
  ca: { cert: crypto.X509Certificate; key: crypto.KeyObject },
  names: string[],
): void {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = createCertificate({
    subjectCN: names.find((n) => !net.isIP(n)) ?? 'localhost',
    subjectO: 'Keyport',
    publicKey,
    issuer: ca,
    days: 1825,
    serverAuth: true,
    altNames: names,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
  });
  writeKey(p.serverKey, privateKey, true);
  writeFileAtomicSync(p.serverCert, pem, { mode: 0o644 });
}

function writeKey(file: string, key: crypto.KeyObject, replace = false): void {
  const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const ok = writeFileAtomicSync(file, pem, { mode: 0o600, exclusive: !replace });
  if (!ok) throw new CertificateError(`${file} appeared while generating it; refusing to overwrite`);
}

function coversAll(cert: crypto.X509Certificate, names: string[]): boolean {
  return names.every((n) => (net.isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n) !== undefined));
}

function withLock(dir: string, fn: () => void): void {
  const lock = path.join(dir, '.generate.lock');
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock older than a minute was left by a crashed process.
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 60_000) fs.rmdirSync(lock);
      } catch {
        /* raced with its owner */
      }
      if (Date.now() > deadline) throw new CertificateError(`timed out waiting for ${lock}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** Reads the HTTPS server certificate and key. */
export function loadServerTls(certsDir: string): ServerTls {
  const p = certPaths(certsDir);
  try {
    return {
      cert: fs.readFileSync(p.serverCert, 'utf8'),
      key: fs.readFileSync(p.serverKey, 'utf8'),
      caFile: fs.existsSync(p.caCert) ? p.caCert : null,
    };
  } catch (e) {
    throw new CertificateError(`cannot read TLS certificate or key in ${certsDir}: ${(e as Error).message}`);
  }
}

/** Reads the token-signing key and certificate and checks that they belong together. */
export function loadTokenSigner(certsDir: string): TokenSigner {
  const p = certPaths(certsDir);
  let key: crypto.KeyObject;
  let certPem: string;
  try {
    key = crypto.createPrivateKey(fs.readFileSync(p.tokenKey));
    certPem = fs.readFileSync(p.tokenCert, 'utf8');
  } catch (e) {
    throw new CertificateError(`cannot read token key or certificate in ${certsDir}: ${(e as Error).message}`);
  }
  const cert = new crypto.X509Certificate(certPem);
  if (!cert.checkPrivateKey(key)) {
    throw new CertificateError(`${p.tokenCert} does not match ${p.tokenKey}`);
  }
  return { key, certPem, cert, alg: algorithmFor(key), kid: libtrustKeyId(cert.publicKey) };
}

export function algorithmFor(key: crypto.KeyObject): TokenSigner['alg'] {
  if (key.asymmetricKeyType === 'rsa') {
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return 'ES256';
    if (curve === 'secp384r1' || curve === 'P-384') return 'ES384';
    if (curve === 'secp521r1' || curve === 'P-521') return 'ES512';
  }
  throw new CertificateError(`unsupported token key type ${key.asymmetricKeyType}`);
}

/** Splits a PEM bundle into certificates. */
export function parseCertificateBundle(pem: string): crypto.X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new crypto.X509Certificate(b));
}
