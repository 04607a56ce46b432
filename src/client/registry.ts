import crypto from 'node:crypto';
import type { Descriptor } from '../oci/descriptor.js';
import type { Readable } from 'node:stream';
import { basicAuthorization, decodeAccess, parseChallenges, type Credentials, type GrantedAccess } from './auth.js';
import { errorMessageOf, LoginError, RegistryRequestError } from './errors.js';
import { discard, readBody, type HttpResponse, type HttpTransport } from './http.js';

export const ManifestTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** Every manifest type a copy can meet; schema 1 is asked for only to refuse it clearly. */
const ACCEPT = Object.values(ManifestTypes).join(', ');
const MAX_MANIFEST = 8 * 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;

export interface Manifest {
  body: Buffer;
  mediaType: string;
  /** algorithm:hex of the body, computed here (never taken from the server's word). */
  digest: string;
}

export type { Descriptor };

export interface RegistryClientOptions {
  /** https://host[:port] */
  url: string;
  transport: HttpTransport;
  /** None: anonymous (a token without credentials where the registry asks for one). */
  credentials?: Credentials;
  /** Scopes asked for in one token, e.g. repository:team/app:pull. */
  scopes: string[];
}

export function digestOf(body: Buffer, algorithm = 'sha256'): string {
  return `${algorithm}:${crypto.createHash(algorithm).update(body).digest('hex')}`;
}

/**
 * A client of one registry (Docker Registry v2 / OCI distribution API): the bearer
 * login, manifests, blobs (with cross-repository mounts) and referrers. One token
 * covers every scope the caller named, because a mount needs pull on the source and
 * push on the destination in the same token.
 */
export class RegistryClient {
  readonly base: URL;
  private authorization: string | undefined;
  private tokenExpires = Infinity;
  private bearer: { realm: string; service?: string } | undefined;
  private access: GrantedAccess[] | undefined;

  constructor(private readonly opts: RegistryClientOptions) {
    this.base = new URL(opts.url);
  }

  get host(): string {
    return this.base.host;
  }

  /** What the token grants, when the token is a JWT with an access claim. */
  get granted(): GrantedAccess[] | undefined {
    return this.access;
  }

  /**
   * GET /v2/: 200 without credentials means an open registry; a 401 names how to log
   * in. A token is fetched at once, so bad credentials fail before any work starts.
   */
  async login(): Promise<void> {
    const res = await this.opts.transport.request({ method: 'GET', url: new URL('/v2/', this.base) });
    const body = await readBody(res, MAX_ERROR_BODY);
    if (res.status === 200) return;
    if (res.status !== 401) throw this.refused(res, body, 'GET /v2/');
    const challenges = parseChallenges(res.headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      this.bearer = { realm: bearer.params.realm, ...(bearer.params.service ? { service: bearer.params.service } : {}) };
      await this.fetchToken();
    } else if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.opts.credentials) throw new LoginError(`${this.host} asks for a user name and password`);
      this.authorization = basicAuthorization(this.opts.credentials);
    } else {
      throw new LoginError(`${this.host} answered 401 without a challenge a client can follow`);
    }
    const check = await this.opts.transport.request({ method: 'GET', url: new URL('/v2/', this.base), headers: this.authHeaders() });
    const checkBody = await readBody(check, MAX_ERROR_BODY);
    if (check.status === 401) throw new LoginError(`${this.host} refused the login: ${errorMessageOf(checkBody).message ?? 'unauthorized'}`);
    if (check.status !== 200) throw this.refused(check, checkBody, 'GET /v2/');
  }

  private async fetchToken(): Promise<void> {
    const { realm, service } = this.bearer!;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new LoginError(`${this.host} names a token realm that is not a URL: ${JSON.stringify(realm)}`);
    }
    if (service) url.searchParams.set('service', service);
    for (const s of this.opts.scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (this.opts.credentials) headers.authorization = basicAuthorization(this.opts.credentials);
    const res = await this.opts.transport.request({ method: 'GET', url, headers });
    const body = await readBody(res, MAX_ERROR_BODY);
    if (res.status !== 200) {
      const { message } = errorMessageOf(body);
      const who = this.opts.credentials ? ` as ${this.opts.credentials.username}` : '';
      const retry = res.headers['retry-after'] ? ` (retry after ${res.headers['retry-after']} s)` : '';
      throw new LoginError(`login${who} at ${url.host} failed: ${res.status} ${message ?? ''}${retry}`.trim());
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      throw new LoginError(`the token server ${url.host} answered something that is not JSON`);
    }
    const token = typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
    if (!token) throw new LoginError(`the token server ${url.host} answered without a token`);
    // The spec's default lifetime is 60 s; renew a little early so no request meets an expired token.
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    this.tokenExpires = Date.now() + Math.max(lifetime - 15, lifetime / 2) * 1000;
    this.authorization = `Bearer ${token}`;
    this.access = decodeAccess(token);
  }

  private authHeaders(): Record<string, string> {
    return this.authorization ? { authorization: this.authorization } : {};
  }

  /** One API request; an expired token is renewed first, and once more on a 401 when the body can be sent again. */
  private async call(method: string, path: string, o: { headers?: Record<string, string | number>; body?: Buffer | Readable; follow?: boolean } = {}): Promise<HttpResponse> {
    if (this.bearer && Date.now() > this.tokenExpires) await this.fetchToken();
    const send = () =>
      this.opts.transport.request({
        method,
        url: new URL(path, this.base),
        headers: { ...this.authHeaders(), ...(o.headers ?? {}) },
        ...(o.body !== undefined ? { body: o.body } : {}),
        ...(o.follow ? { followRedirects: true } : {}),
      });
    const res = await send();
    const replayable = o.body === undefined || Buffer.isBuffer(o.body);
    if (res.status === 401 && this.bearer && replayable && !/insufficient_scope/.test(String(res.headers['www-authenticate'] ?? ''))) {
      discard(res);
      await this.fetchToken();
      return send();
    }
    return res;
  }

  private refused(res: HttpResponse, body: Buffer, what: string): RegistryRequestError {
    const { message, code } = errorMessageOf(body);
    return new RegistryRequestError(`${this.host}: ${what}: ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`, res.status, code);
  }

  private async fail(res: HttpResponse, what: string): Promise<never> {
    throw this.refused(res, await readBody(res, MAX_ERROR_BODY).catch(() => Buffer.alloc(0)), what);
  }

  /** A manifest by tag or digest, its digest checked against a digest reference. */
  async getManifest(repository: string, reference: string): Promise<Manifest> {
    const res = await this.call('GET', `/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT } });
    if (res.status !== 200) await this.fail(res, `manifest ${repository}:${reference}`);
    const body = await readBody(res, MAX_MANIFEST);
    const algorithm = reference.includes(':') ? reference.slice(0, reference.indexOf(':')) : 'sha256';
    if (!['sha256', 'sha512'].includes(algorithm)) throw new RegistryRequestError(`unsupported digest algorithm in ${reference}`, 400);
    const digest = digestOf(body, algorithm);
    if (reference.includes(':') && digest !== reference) {
      throw new RegistryRequestError(`${this.host} served ${repository}@${reference} with the digest ${digest}: refusing content that does not match its name`, 502);
    }
    const declared = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    let mediaType = declared;
    try {
      const doc = JSON.parse(body.toString('utf8')) as { mediaType?: unknown };
      if (typeof doc.mediaType === 'string') mediaType = doc.mediaType;
    } catch {
      throw new RegistryRequestError(`${this.host} served ${repository}:${reference} as something that is not JSON`, 502);
    }
    return { body, mediaType, digest };
  }

  /** Size of a blob in a repository, or undefined when it is not there. */
  async blobSize(repository: string, digest: string): Promise<number | undefined> {
    const res = await this.call('HEAD', `/v2/${repository}/blobs/${digest}`, { follow: true });
    discard(res);
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw this.refused(res, Buffer.alloc(0), `blob ${repository}@${digest}`);
    return Number(res.headers['content-length'] ?? 0);
  }

  /** The bytes of a blob (following a redirect to the store); the caller reads the stream. */
  async getBlob(repository: string, digest: string): Promise<{ stream: Readable; size: number | undefined }> {
    const res = await this.call('GET', `/v2/${repository}/blobs/${digest}`, { follow: true });
    if (res.status !== 200) await this.fail(res, `blob ${repository}@${digest}`);
    const length = res.headers['content-length'];
    return { stream: res.body, size: length === undefined ? undefined : Number(length) };
  }

  /**
   * Cross-repository mount: the registry links the blob it already holds into
   * `repository`, no bytes move. False when the registry started an upload instead (the
   * source lacks the blob, or the token cannot pull it); that upload is cancelled.
   */
  async mountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from });
    const res = await this.call('POST', `/v2/${repository}/blobs/uploads/?${q}`, { headers: { 'content-length': 0 } });
    discard(res);
    if (res.status === 201) return true;
    if (res.status !== 202) throw this.refused(res, Buffer.alloc(0), `mount ${digest} from ${from} into ${repository}`);
    const location = res.headers.location;
    if (location) {
      const session = new URL(location, this.base);
      discard(await this.call('DELETE', session.pathname + session.search));
    }
    return false;
  }

  /** Uploads a blob in one request (POST for a session, then PUT ?digest= with the bytes); the registry checks the digest. */
  async pushBlob(repository: string, digest: string, size: number, body: Readable): Promise<void> {
    const start = await this.call('POST', `/v2/${repository}/blobs/uploads/`, { headers: { 'content-length': 0 } });
    if (start.status !== 202) await this.fail(start, `upload to ${repository}`);
    discard(start);
    const location = start.headers.location;
    if (!location) throw new RegistryRequestError(`${this.host} started an upload without a Location`, 502);
    const url = new URL(location, this.base);
    url.searchParams.set('digest', digest);
    const res = await this.call('PUT', url.pathname + url.search, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': size },
      body,
    });
    if (res.status !== 201) await this.fail(res, `upload of ${digest} to ${repository}`);
    discard(res);
  }

  /** Stores a manifest under a tag or its digest; returns the digest the registry computed. */
  async putManifest(repository: string, reference: string, manifest: Manifest): Promise<string> {
    const res = await this.call('PUT', `/v2/${repository}/manifests/${reference}`, {
      headers: { 'content-type': manifest.mediaType, 'content-length': manifest.body.length },
      body: manifest.body,
    });
    if (res.status !== 201) await this.fail(res, `manifest ${repository}:${reference}`);
    discard(res);
    return String(res.headers['docker-content-digest'] ?? manifest.digest);
  }

  /**
   * Manifests whose subject is `digest` (OCI 1.1 referrers API). A registry without the
   * API answers 404; the spec's fallback is the tag `<alg>-<hex>` holding an index of
   * them, which registries like Distribution 2.8 serve as an ordinary tag.
   */
  async referrers(repository: string, digest: string): Promise<Descriptor[]> {
    const res = await this.call('GET', `/v2/${repository}/referrers/${digest}`, { headers: { accept: ManifestTypes.ociIndex } });
    if (res.status === 200) return manifestsOf(await readBody(res, MAX_MANIFEST));
    if (res.status !== 404) await this.fail(res, `referrers of ${repository}@${digest}`);
    discard(res);
    const fallback = await this.call('GET', `/v2/${repository}/manifests/${digest.replace(':', '-')}`, { headers: { accept: ManifestTypes.ociIndex } });
    if (fallback.status === 404) {
      discard(fallback);
      return [];
    }
    if (fallback.status !== 200) await this.fail(fallback, `referrers tag of ${repository}@${digest}`);
    return manifestsOf(await readBody(fallback, MAX_MANIFEST));
  }
}

function manifestsOf(body: Buffer): Descriptor[] {
  try {
    const doc = JSON.parse(body.toString('utf8')) as { manifests?: unknown };
    return Array.isArray(doc.manifests) ? doc.manifests.filter((d): d is Descriptor => !!d && typeof d.digest === 'string' && typeof d.mediaType === 'string') : [];
  } catch {
    return [];
  }
}
