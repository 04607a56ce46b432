import crypto from 'node:crypto';
import net from 'node:net';
import { createRequire } from 'node:module';
import type Forge from 'node-forge';

type Asn1 = Forge.asn1.Asn1;

let loaded: typeof Forge | undefined;
/**
 * node-forge, loaded on first use: only making a certificate needs it, which a
 * process does at most once, on its first start, while loading it costs every
 * process about 10 MiB of memory for as long as it runs.
 */
function forge(): typeof Forge {
  return (loaded ??= createRequire(import.meta.url)('node-forge') as typeof Forge);
}
/** forge's ASN.1 namespace, reached through forge() on each use. */
const asn1 = new Proxy({} as typeof Forge.asn1, { get: (_, key) => forge().asn1[key as keyof typeof Forge.asn1] });

/**
 * Minimal X.509 v3 certificate builder on node-forge's ASN.1 layer.
 *
 * forge's high-level pki API only handles RSA keys, but the token-signing key is
 * EC P-256 by default, so certificates are assembled here from forge ASN.1 nodes and
 * signed with Node's native crypto (which also keeps key generation fast).
 */

export interface CertificateRequest {
  subjectCN: string;
  subjectO?: string;
  publicKey: crypto.KeyObject;
  /** Issuer; omitted for self-signed certificates. */
  issuer?: { cert: crypto.X509Certificate; key: crypto.KeyObject };
  /** Signing key for self-signed certificates (the private half of publicKey). */
  selfSignKey?: crypto.KeyObject;
  days: number;
  isCA?: boolean;
  serverAuth?: boolean;
  /** DNS names and IP addresses for subjectAltName. */
  altNames?: string[];
  keyUsage: KeyUsage[];
}

export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';

const KEY_USAGE_BIT: Record<KeyUsage, number> = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
};

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  sha256WithRSA: '1.2.840.113549.1.1.11',
};

function seq(items: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
}
function set(items: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, items);
}
function oid(o: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
}
function utf8(s: string): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge().util.encodeUtf8(s));
}
function octets(b: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, b.toString('binary'));
}
function bool(v: boolean): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, v ? '\xff' : '\x00');
}
function int(b: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, b.toString('binary'));
}
function bitString(b: Buffer, unused = 0): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(unused) + b.toString('binary'));
}
function der(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}
function fromDer(b: Buffer): Asn1 {
  return asn1.fromDer(forge().util.createBuffer(b.toString('binary')));
}
function time(d: Date): Asn1 {
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function name(cn: string, o?: string): Asn1 {
  const rdns = [];
  if (o) rdns.push(set([seq([oid(OID.organization), utf8(o)])]));
  rdns.push(set([seq([oid(OID.commonName), utf8(cn)])]));
  return seq(rdns);
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(id)];
  if (critical) parts.push(bool(true));
  parts.push(octets(der(value)));
  return seq(parts);
}

function keyUsageBits(usages: KeyUsage[]): Asn1 {
  let bits = 0;
  for (const u of usages) bits |= 0x80 >> KEY_USAGE_BIT[u];
  // DER named bit lists drop trailing zero bits.
  let unused = 0;
  while (unused < 7 && bits !== 0 && ((bits >> unused) & 1) === 0) unused++;
  return bitString(Buffer.from([bits]), unused);
}

function altNames(names: string[]): Asn1 {
  const items = names.map((n) => {
    if (net.isIP(n)) {
      const bytes = ipBytes(n);
      return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 7, false, bytes.toString('binary'));
    }
    return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 2, false, n);
  });
  return seq(items);
}

function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // Expand IPv6 (including "::" and embedded IPv4) to 16 bytes.
  let [head, tail] = ip.split('::') as [string, string | undefined];
  const parse = (s: string | undefined): number[] => {
    if (!s) return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const v4 = part.split('.').map(Number);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else out.push(parseInt(part, 16));
    }
    return out;
  };
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  const fill = ip.includes('::') ? new Array(8 - h.length - t.length).fill(0) : [];
  const words = [...h, ...fill, ...t];
  const buf = Buffer.alloc(16);
  words.forEach((w, i) => buf.writeUInt16BE(w, i * 2));
  return buf;
}

function spkiDer(key: crypto.KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

/** SHA-1 of the subjectPublicKey bits, as RFC 5280 section 4.2.1.2 method 1 suggests. */
export function keyIdentifier(key: crypto.KeyObject): Buffer {
  const spki = fromDer(spkiDer(key));
  const bits = (spki.value as Asn1[])[1]!.value as string;
  return crypto.createHash('sha1').update(Buffer.from(bits.slice(1), 'binary')).digest();
}

function signatureAlgorithm(key: crypto.KeyObject): { node: Asn1; digest: string } {
  if (key.asymmetricKeyType === 'ec') return { node: seq([oid(OID.ecdsaWithSHA256)]), digest: 'sha256' };
  if (key.asymmetricKeyType === 'rsa') {
    return {
      node: seq([oid(OID.sha256WithRSA), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')]),
      digest: 'sha256',
    };
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
}

function serialNumber(): Buffer {
  const b = crypto.randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive and without a redundant leading zero
  return b;
}

/** Builds and signs a certificate; returns it in PEM. */
export function createCertificate(req: CertificateRequest): string {
  const signer = req.issuer?.key ?? req.selfSignKey;
  if (!signer) throw new Error('createCertificate needs an issuer or a self-signing key');
  const { node: sigAlg, digest } = signatureAlgorithm(signer);

  const notBefore = new Date(Date.now() - 5 * 60 * 1000); // tolerate small clock skew
  const notAfter = new Date(Date.now() + req.days * 86400 * 1000);
  const subject = name(req.subjectCN, req.subjectO);
  const issuerNameNode = req.issuer ? subjectOf(Buffer.from(req.issuer.cert.raw)) : subject;

  const exts: Asn1[] = [];
  const basic: Asn1[] = [];
  if (req.isCA) basic.push(bool(true), int(Buffer.from([0])));
  exts.push(extension(OID.basicConstraints, true, seq(basic)));
  exts.push(extension(OID.keyUsage, true, keyUsageBits(req.keyUsage)));
  if (req.serverAuth) exts.push(extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth)])));
  if (req.altNames && req.altNames.length > 0) exts.push(extension(OID.subjectAltName, false, altNames(req.altNames)));
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(req.publicKey))));
  const authorityKey = req.issuer ? req.issuer.cert.publicKey : req.publicKey;
  exts.push(
    extension(
      OID.authorityKeyIdentifier,
      false,
      seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, keyIdentifier(authorityKey).toString('binary'))]),
    ),
  );

  const tbs = seq([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [int(Buffer.from([2]))]),
    int(serialNumber()),
    sigAlg,
    issuerNameNode,
    seq([time(notBefore), time(notAfter)]),
    subject,
    fromDer(spkiDer(req.publicKey)),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [seq(exts)]),
  ]);
  const tbsDer = der(tbs);
  const signature = crypto.sign(digest, tbsDer, signer);
  const cert = seq([tbs, signatureAlgorithm(signer).node, bitString(signature)]);
  const b64 = der(cert).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** The subject Name node of a DER certificate (the issuer name of what it signs). */
function subjectOf(certDer: Buffer): Asn1 {
  const tbs = ((fromDer(certDer).value as Asn1[])[0]!.value as Asn1[]);
  const first = tbs[0]!;
  const hasVersion = first.tagClass === asn1.Class.CONTEXT_SPECIFIC && first.type === 0;
  return tbs[hasVersion ? 5 : 4]!;
}

/**
 * The key id Docker's libtrust derives from a public key: SHA-256 of the DER
 * SubjectPublicKeyInfo, first 240 bits, base32 without padding, in 12 groups of 4.
 * Docker Distribution matches the JWT `kid` header against it.
 */
export function libtrustKeyId(key: crypto.KeyObject): string {
  const hash = crypto.createHash('sha256').update(spkiDer(key)).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}
