import axios, { type AxiosInstance, type AxiosResponse, type ResponseType } from 'axios';
import type { Readable } from 'node:stream';
import type { Logger } from '../../log/logger.js';
import { StorageError, StorageUnavailableError } from '../driver.js';
import { isTransportError, type Agents } from '../transport.js';
import { SwiftAuthenticator, type SwiftAuthOptions, type SwiftSession } from './auth.js';

export interface SwiftRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'COPY';
  /** Object name inside the container; '' addresses the container, null the account. */
  object: string | null;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer | string;
  responseType?: ResponseType;
}

/** One object of a container listing (format=json). */
export interface ListingEntry {
  name?: string;
  subdir?: string;
  bytes?: number;
  content_type?: string;
  last_modified?: string;
  slo_etag?: string;
}

/** What the cluster announces at /info that the driver adapts to. */
export interface SwiftCapabilities {
  maxManifestSegments: number;
  bulkDelete: { maxDeletesPerRequest: number } | undefined;
}

const LISTING_LIMIT = 10_000;
/** Logins tried for one request before a 401 is reported as the store being unavailable. */
const RELOGINS = 4;
const RELOGIN_BACKOFF_MS = 250;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Object names in URLs: each '/'-separated part percent-encoded, the slashes kept.
 * Names are made of the driver path alphabet, so this is mostly the identity.
 */
export function encodeName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/**
 * Talks to one Swift container: authentication, transparent re-login when Swift rejects
 * a token (401), and the mapping of connection failures, timeouts and 5xx answers to
 * StorageUnavailableError. Every other status is returned to the caller to interpret.
 */
export class SwiftClient {
  readonly auth: SwiftAuthenticator;
  private readonly http: AxiosInstance;
  private caps: Promise<SwiftCapabilities> | undefined;

  constructor(
    readonly container: string,
    authOpts: SwiftAuthOptions,
    agents: Agents,
    private readonly timeout: number,
    private readonly log: Logger,
  ) {
    this.http = axios.create({
      httpAgent: agents.httpAgent,
      httpsAgent: agents.httpsAgent,
      maxRedirects: 0,
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
      decompress: false,
      proxy: false,
      validateStatus: () => true,
      // Bodies are Buffers or JSON text already: no transformation, no guessing of types.
      transformRequest: [(d: unknown) => d],
    });
    this.auth = new SwiftAuthenticator(authOpts, this.http, log);
  }

  url(session: SwiftSession, object: string | null): string {
    if (object === null) return session.storageUrl;
    const c = `${session.storageUrl}/${encodeURIComponent(this.container)}`;
    return object === '' ? c : `${c}/${encodeName(object)}`;
  }

  /**
   * Sends a request with the current token. Streamed responses are returned as soon as the
   * headers arrive, with the timeout then lifted: the caller's consumer sets the pace of the
   * body. Bodies are Buffers, so a request can be sent again.
   *
   * Re-login: a 401 means the token died (expired, revoked, or a tempauth token handed out
   * just before its end). The session is dropped and the request repeated with a new login;
   * concurrent requests that hit the same 401 share that one login (the authenticator keeps
   * one pending login). A fresh token can itself be refused once more: a tempauth login can
   * return the cached token that expires a moment later, and a proxy's token cache can still
   * hold a revocation of a token issued in the same second. So a refused fresh token is
   * retried after a short back-off, and a login that hands back the token just refused is
   * not used (the authenticator is told to log in again). Only when RELOGINS attempts all
   * fail is the store reported unavailable: a healthy Swift never turns into an error.
   */
  async request(req: SwiftRequest): Promise<AxiosResponse> {
    let refused: string | undefined;
    for (let attempt = 0; ; attempt++) {
      let session = await this.auth.session();
      if (refused !== undefined && session.token === refused) {
        this.auth.invalidate(session);
        session = await this.auth.session();
      }
      const res = await this.send(session, req);
      if (res.status === 401 && attempt < RELOGINS) {
        discard(res);
        refused = session.token;
        this.auth.invalidate(session);
        if (attempt === 0) this.log.info({ status: 401 }, 'swift: token rejected, logging in again');
        else {
          this.log.warn({ status: 401, attempt }, 'swift: a fresh token was rejected too; retrying after a pause');
          await sleep(RELOGIN_BACKOFF_MS * 2 ** (attempt - 1));
        }
        continue;
      }
      if (res.status >= 500 || res.status === 401) {
        discard(res);
        throw new StorageUnavailableError(`swift ${req.method} ${req.object ?? '(account)'} answered ${res.status}`);
      }
      return res;
    }
  }

  private async send(session: SwiftSession, req: SwiftRequest): Promise<AxiosResponse> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`no answer from swift within ${this.timeout} ms`)), this.timeout);
    try {
      return await this.http.request({
        method: req.method,
        url: this.url(session, req.object),
        params: req.query,
        // false: no axios default Content-Type, which a copy would store on the object.
        headers: { 'Content-Type': false, 'X-Auth-Token': session.token, ...(req.headers ?? {}) },
        data: req.body,
        responseType: req.responseType ?? 'arraybuffer',
        signal: ac.signal,
      });
    } catch (e) {
      const answered = req.method === 'HEAD' ? headAnswer(e) : undefined;
      if (answered) return answered;
      // Any failure of the exchange (refused, reset, timed out, an answer that is not HTTP)
      // means Swift is unavailable to this request: 503 for the client, never 500.
      if (isTransportError(e) || ac.signal.aborted) {
        throw new StorageUnavailableError(`swift ${req.method} ${req.object ?? '(account)'} failed: ${(e as Error).message}`);
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every entry under `prefix` (one level when `delimiter` is given), following pagination. */
  async *list(prefix: string, delimiter?: string, limit?: number): AsyncGenerator<ListingEntry> {
    let marker = '';
    let left = limit ?? Infinity;
    for (;;) {
      const query: Record<string, string> = { format: 'json', prefix, limit: String(Math.min(LISTING_LIMIT, left)) };
      if (delimiter) query.delimiter = delimiter;
      if (marker) query.marker = marker;
      const res = await this.request({ method: 'GET', object: '', query, responseType: 'json' });
      if (res.status === 404) return;
      if (res.status !== 200 && res.status !== 204) throw unexpected('list', prefix, res);
      const page = (Array.isArray(res.data) ? res.data : []) as ListingEntry[];
      for (const e of page) yield e;
      left -= page.length;
      if (page.length < LISTING_LIMIT || left <= 0) return;
      const last = page[page.length - 1]!;
      marker = last.name ?? last.subdir ?? '';
    }
  }

  /** Deletes objects of this container, in bulk when the cluster allows it. */
  async deleteObjects(names: string[]): Promise<void> {
    if (names.length === 0) return;
    const caps = await this.capabilities();
    if (caps.bulkDelete && names.length > 1) {
      const per = Math.max(1, caps.bulkDelete.maxDeletesPerRequest);
      for (let i = 0; i < names.length; i += per) await this.bulkDelete(names.slice(i, i + per));
      return;
    }
    await runLimited(names, 8, async (n) => {
      const res = await this.request({ method: 'DELETE', object: n });
      if (res.status >= 300 && res.status !== 404) throw unexpected('delete', n, res);
    });
  }

  /**
   * One bulk-delete request. The proxy checks the token for every object it deletes, so a
   * token that expires while a large batch runs makes the rest fail with 401 inside a 200
   * answer: those objects are retried with a new login, like a 401 on any request.
   */
  private async bulkDelete(names: string[]): Promise<void> {
    let left = names;
    for (let attempt = 0; ; attempt++) {
      const session = await this.auth.session();
      const body = left.map((n) => `/${encodeURIComponent(this.container)}/${encodeName(n)}`).join('\n');
      const res = await this.request({
        method: 'POST',
        object: null,
        query: { 'bulk-delete': 'true' },
        headers: { 'Content-Type': 'text/plain', Accept: 'application/json' },
        body,
        responseType: 'json',
      });
      if (res.status >= 300) throw unexpected('bulk delete', `${left.length} objects`, res);
      // Bulk delete answers 200 and reports per-object failures in the body.
      const r = res.data as { 'Response Status'?: string; Errors?: Array<[string, string]> } | undefined;
      const errors = (r?.Errors ?? []).filter(([, status]) => !status.startsWith('404'));
      if (errors.length === 0) return;
      const refused = errors.filter(([, status]) => status.startsWith('401'));
      if (refused.length === errors.length && attempt < RELOGINS) {
        this.auth.invalidate(session);
        const prefix = `/${encodeURIComponent(this.container)}/`;
        const again = new Set(refused.map(([ref]) => ref));
        const matched = left.filter((n) => again.has(`${prefix}${encodeName(n)}`) || again.has(`/${this.container}/${n}`));
        // Names that cannot be matched: send the whole batch again (deleting twice is harmless).
        if (matched.length > 0) left = matched;
        if (attempt > 0) await sleep(RELOGIN_BACKOFF_MS * 2 ** (attempt - 1));
        continue;
      }
      const first = errors[0]!;
      const unavailable = errors.some(([, s]) => s.startsWith('5') || s.startsWith('401'));
      const msg = `swift bulk delete failed for ${errors.length} objects, e.g. ${first[0]}: ${first[1]}`;
      throw unavailable ? new StorageUnavailableError(msg) : new StorageError(msg);
    }
  }

  /** /info of the cluster, read once; conservative defaults when it is not published. */
  capabilities(): Promise<SwiftCapabilities> {
    if (!this.caps) {
      this.caps = this.readInfo().catch((e) => {
        this.caps = undefined;
        throw e;
      });
    }
    return this.caps;
  }

  private async readInfo(): Promise<SwiftCapabilities> {
    const session = await this.auth.session();
    // /info sits next to /v1 on the proxy: https://host/[prefix/]info.
    const infoUrl = session.storageUrl.replace(/\/v1(\/.*)?$/, '') + '/info';
    const fallback: SwiftCapabilities = { maxManifestSegments: 1000, bulkDelete: undefined };
    try {
      const res = await this.http.get(infoUrl, { responseType: 'json', signal: AbortSignal.timeout(this.timeout) });
      if (res.status !== 200 || typeof res.data !== 'object') return fallback;
      const info = res.data as { slo?: { max_manifest_segments?: number }; bulk_delete?: { max_deletes_per_request?: number } };
      return {
        maxManifestSegments: info.slo?.max_manifest_segments ?? 1000,
        bulkDelete: info.bulk_delete ? { maxDeletesPerRequest: info.bulk_delete.max_deletes_per_request ?? 1000 } : undefined,
      };
    } catch (e) {
      if (isTransportError(e)) throw new StorageUnavailableError(`swift /info unreachable: ${(e as Error).message}`);
      return fallback;
    }
  }
}

/**
 * The answer to a HEAD whose headers arrived complete before the parser failed. Swift's
 * proxy answers a HEAD it refuses (401) with `Transfer-Encoding: chunked` and then sends
 * the terminating chunk, although a HEAD answer has no body; Node reads those five bytes
 * as the start of the next response and fails the exchange with a parse error after the
 * response (status and headers, all a HEAD carries) was already in. That answer is the
 * real one; the connection is closed by Node and not reused.
 */
function headAnswer(e: unknown): AxiosResponse | undefined {
  const err = e as { code?: string; request?: { res?: { statusCode?: number; headers?: Record<string, unknown> } }; config?: unknown };
  if (!/^HPE_/.test(err?.code ?? '')) return undefined;
  const res = err.request?.res;
  if (!res?.statusCode) return undefined;
  return { status: res.statusCode, statusText: '', headers: res.headers ?? {}, data: undefined, config: err.config } as AxiosResponse;
}

/** Releases a response's socket when its body is not wanted. */
export function discard(res: AxiosResponse): void {
  const d = res.data as Readable | undefined;
  if (d && typeof (d as Readable).resume === 'function' && typeof (d as Readable).destroy === 'function') d.destroy();
}

export function unexpected(op: string, what: string, res: AxiosResponse): StorageError {
  discard(res);
  return new StorageError(`swift ${op} ${what}: unexpected status ${res.status}`);
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure wins. */
export async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
