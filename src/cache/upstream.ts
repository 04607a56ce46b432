import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { basicAuthorization, parseChallenges, type Credentials } from '../client/auth.js';
import { ConnectionError, discard, HttpTransport, readBody, type HttpResponse } from '../client/http.js';
import { trustedCertificates } from '../client/trust.js';
import type { Upstream } from '../config/upstreams.js';
import { SingleFlight } from './single-flight.js';
import { UpstreamNotFoundError, UpstreamThrottledError, UpstreamUnavailableError } from './errors.js';

/** Every manifest type the registry stores; an index is asked for, so all its platforms come along. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const MAX_TOKEN_BODY = 1024 * 1024;
/** Seconds a token lives when the token server does not say (the spec's default). */
const DEFAULT_TOKEN_LIFETIME = 60;

export interface UpstreamManifest {
  body: Buffer;
  contentType: string | undefined;
}

interface Token {
  authorization: string;
  expires: number;
}

export interface UpstreamClientOptions {
  userAgent: string;
  /** Milliseconds without an answer or a byte before the upstream counts as unavailable. */
  timeoutMs: number;
}

/**
 * The cache's client of one upstream registry. Logging in is docker's: a request goes
 * out with the token held for its repository (if any); a 401 with a Bearer challenge
 * sends the cache to the realm for a pull token for that repository (anonymously, or
 * with the configured login as Basic auth), a Basic challenge gets the login directly,
 * and the request is sent once more. Tokens are kept per repository until shortly
 * before they expire; concurrent requests share one token request.
 *
 * Every failure is one of the domain errors in errors.ts, so the cache can tell "not
 * there" from "cannot ask now".
 */
export class UpstreamClient {
  readonly url: string;
  private readonly base: URL;
  private readonly transport: HttpTransport;
  private readonly credentials: Credentials | undefined;
  private readonly tokens = new Map<string, Token>();
  private readonly tokenFlights = new SingleFlight<Token>();
  private basic = false;

  constructor(
    readonly config: Upstream,
    opts: UpstreamClientOptions,
  ) {
    this.url = config.url;
    this.base = new URL(config.url);
    this.transport = new HttpTransport({
      userAgent: opts.userAgent,
      idleTimeoutMs: opts.timeoutMs,
      maxSockets: 64,
      ...(config.insecure ? { insecure: true } : {}),
      ...(config.caFile ? { ca: trustedCertificates([config.caFile]) } : {}),
    });
    this.credentials = config.username ? { username: config.username, password: passwordOf(config) } : undefined;
  }

  close(): void {
    this.transport.close();
  }

  /** GET of a manifest by tag or digest; the caller checks the digest. */
  async getManifest(remote: string, reference: string, maxSize: number): Promise<UpstreamManifest> {
    const res = await this.send('GET', remote, `/v2/${remote}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    await this.check(res, 'manifest', `${remote}:${reference}`);
    const announced = Number(res.headers['content-length'] ?? 0);
    if (announced > maxSize) {
      res.body.destroy();
      throw new UpstreamUnavailableError(this.url, `the manifest ${remote}:${reference} is larger than ${maxSize} bytes`);
    }
    let body: Buffer;
    try {
      body = await readBody(res, maxSize);
    } catch (e) {
      throw this.unavailable(e);
    }
    const contentType = res.headers['content-type'];
    return { body, contentType: typeof contentType === 'string' ? contentType : undefined };
  }

  /** HEAD of a manifest: the digest the upstream names for a tag, when it says. */
  async headManifest(remote: string, reference: string): Promise<string | undefined> {
    const res = await this.send('HEAD', remote, `/v2/${remote}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    discard(res);
    await this.check(res, 'manifest', `${remote}:${reference}`);
    const digest = res.headers['docker-content-digest'];
    return typeof digest === 'string' && digest ? digest : undefined;
  }

  /** The blob's bytes (following a redirect to the upstream's store); the caller reads the stream. */
  async getBlob(remote: string, digest: string): Promise<{ stream: Readable; size: number | undefined }> {
    const res = await this.send('GET', remote, `/v2/${remote}/blobs/${digest}`, {}, true);
    await this.check(res, 'blob', `${remote}@${digest}`);
    const length = res.headers['content-length'];
    return { stream: res.body, size: length === undefined ? undefined : Number(length) };
  }

  /** The blob's size, when the upstream has it in that repository (else UpstreamNotFoundError). */
  async headBlob(remote: string, digest: string): Promise<number | undefined> {
    const res = await this.send('HEAD', remote, `/v2/${remote}/blobs/${digest}`, {}, true);
    discard(res);
    await this.check(res, 'blob', `${remote}@${digest}`);
    const length = res.headers['content-length'];
    return length === undefined ? undefined : Number(length);
  }

  /** Maps an answer other than 200 to the domain error it means (its body is dropped). */
  private async check(res: HttpResponse, kind: 'manifest' | 'blob', reference: string): Promise<void> {
    if (res.status === 200) return;
    discard(res);
    if (res.status === 404 || res.status === 401 || res.status === 403) throw new UpstreamNotFoundError(this.url, kind, reference, res.status);
    if (res.status === 429) {
      const retry = res.headers['retry-after'];
      throw new UpstreamThrottledError(this.url, typeof retry === 'string' ? retry : undefined);
    }
    throw new UpstreamUnavailableError(this.url, `it answered ${res.status} for the ${kind} ${reference}`);
  }

  private unavailable(e: unknown): Error {
    if (e instanceof UpstreamUnavailableError) return e;
    return new UpstreamUnavailableError(this.url, (e as Error).message);
  }

  private authorization(remote: string): string | undefined {
    const t = this.tokens.get(remote);
    if (t && Date.now() < t.expires) return t.authorization;
    if (this.basic && this.credentials) return basicAuthorization(this.credentials);
    return undefined;
  }

  /** One request, logged in as the upstream asks; network failures become UpstreamUnavailableError. */
  private async send(method: string, remote: string, path: string, headers: Record<string, string>, follow = false): Promise<HttpResponse> {
    const once = async (authorization: string | undefined) => {
      try {
        return await this.transport.request({
          method,
          url: new URL(path, this.base),
          headers: { ...headers, ...(authorization ? { authorization } : {}) },
          followRedirects: follow,
        });
      } catch (e) {
        throw this.unavailable(e);
      }
    };
    const first = await once(this.authorization(remote));
    if (first.status !== 401) return first;
    const challenges = parseChallenges(first.headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      discard(first);
      this.tokens.delete(remote);
      const token = await this.token(remote, bearer.params.realm!, bearer.params.service);
      return once(token.authorization);
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.credentials && !this.basic) {
      discard(first);
      this.basic = true;
      return once(basicAuthorization(this.credentials));
    }
    return first;
  }

  private async token(remote: string, realm: string, service: string | undefined): Promise<Token> {
    const { promise } = this.tokenFlights.run(remote, async () => {
      let url: URL;
      try {
        url = new URL(realm);
      } catch {
        throw new UpstreamUnavailableError(this.url, `its token realm ${JSON.stringify(realm)} is not a URL`);
      }
      if (service) url.searchParams.set('service', service);
      url.searchParams.set('scope', `repository:${remote}:pull`);
      const headers: Record<string, string> = this.credentials ? { authorization: basicAuthorization(this.credentials) } : {};
      let res: HttpResponse;
      let body: Buffer;
      try {
        res = await this.transport.request({ method: 'GET', url, headers });
        body = await readBody(res, MAX_TOKEN_BODY);
      } catch (e) {
        throw new UpstreamUnavailableError(this.url, `its token server ${url.host}: ${(e as Error).message}`);
      }
      if (res.status === 429) throw new UpstreamThrottledError(this.url, typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined);
      if (res.status !== 200) {
        throw new UpstreamUnavailableError(this.url, `its token server ${url.host} refused the cache's ${this.credentials ? 'login' : 'anonymous login'} (${res.status})`);
      }
      let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
      try {
        doc = JSON.parse(body.toString('utf8'));
      } catch {
        throw new UpstreamUnavailableError(this.url, `its token server ${url.host} answered something that is not JSON`);
      }
      const value = typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
      if (!value) throw new UpstreamUnavailableError(this.url, `its token server ${url.host} answered without a token`);
      const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_LIFETIME;
      // Renewed a little early, so no request meets an expired token.
      const token = { authorization: `Bearer ${value}`, expires: Date.now() + Math.max(lifetime - 15, lifetime / 2) * 1000 };
      this.tokens.set(remote, token);
      return token;
    });
    return promise;
  }
}

/** The configured password, or the first line of its file (read once, at start). */
function passwordOf(u: Upstream): string {
  if (u.password !== undefined) return u.password;
  if (!u.passwordFile) return '';
  try {
    return fs.readFileSync(u.passwordFile, 'utf8').split(/\r?\n/)[0]!;
  } catch (e) {
    throw new Error(`upstream ${u.namespace}: cannot read passwordFile ${u.passwordFile}: ${(e as Error).message}`);
  }
}

export { ConnectionError };
