import crypto from 'node:crypto';
import type { TokenSigner } from '../tls/certificates.js';

const HASH: Record<TokenSigner['alg'], string> = { ES256: 'sha256', ES384: 'sha384', ES512: 'sha512', RS256: 'sha256' };

/**
 * Compact JWS signing with node:crypto, synchronously. Signing is the token server's hot
 * path: a library's generic, promise-based signer (WebCrypto underneath) costs several
 * times the signature itself per token. The header never changes, so it is encoded once;
 * ECDSA signatures use the JOSE encoding (r || s, RFC 7518 §3.4), not DER.
 */
export class JwsSigner {
  private readonly encodedHeader: string;
  private readonly hash: string;
  private readonly keyInput: crypto.KeyObject | crypto.SignKeyObjectInput;

  constructor(signer: TokenSigner, header: Record<string, unknown>) {
    this.encodedHeader = Buffer.from(JSON.stringify({ ...header, alg: signer.alg })).toString('base64url');
    this.hash = HASH[signer.alg];
    this.keyInput = signer.alg.startsWith('ES') ? { key: signer.key, dsaEncoding: 'ieee-p1363' } : signer.key;
  }

  sign(payload: Record<string, unknown>): string {
    const input = `${this.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    const signature = crypto.sign(this.hash, Buffer.from(input), this.keyInput);
    return `${input}.${signature.toString('base64url')}`;
  }
}

const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let offset = POOL_SIZE;

/**
 * 16 random bytes as base64url, for token ids. Drawn from a buffer filled by the CSPRNG
 * 4 KiB at a time: one call into the kernel's generator per 256 ids instead of per id.
 * The bytes are as random as randomBytes(16); each is handed out once.
 */
export function randomTokenId(): string {
  if (offset + 16 > POOL_SIZE) {
    pool = crypto.randomFillSync(Buffer.allocUnsafe(POOL_SIZE));
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + 16);
  offset += 16;
  return id;
}
