import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: <T = any>() => T;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number | string[]>;
  body?: string | Buffer | NodeJS.ReadableStream;
  ca?: string | Buffer;
  agent?: http.Agent | false;
  timeoutMs?: number;
  /** Source address, e.g. 127.0.0.2 to look like another client. */
  localAddress?: string;
}

/** A plain HTTP(S) request with an explicit CA; resolves for every status code. */
export function request(url: string, opts: RequestOptions = {}): Promise<Response> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ca: opts.ca,
        agent: opts.agent,
        localAddress: opts.localAddress,
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json: () => JSON.parse(text),
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (opts.body && typeof (opts.body as NodeJS.ReadableStream).pipe === 'function') {
      (opts.body as NodeJS.ReadableStream).pipe(req);
    } else {
      req.end(opts.body as string | Buffer | undefined);
    }
  });
}

export function basic(user: string, password: string): string {
  return 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
}

/** Decodes a JWT's header and payload without verifying it. */
export function decodeJwt(token: string): { header: any; payload: any } {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString()),
  };
}

/**
 * A server that accepts connections and never answers (a hung backend, which the real
 * services cannot be made to do on demand). Returns its port; closed when `t` ends.
 */
export async function silentServer(t: { after: (fn: () => void) => void }): Promise<number> {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    silent.close();
  });
  return (silent.address() as net.AddressInfo).port;
}

export interface StreamedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Body bytes written when the answer's headers arrived. */
  sentAtAnswer: number;
  /** Body bytes written in all. */
  sent: number;
  /** The client-side error, if the connection failed (or was cut on purpose). */
  error?: string;
}

export interface StreamOptions {
  method: string;
  headers: Record<string, string | number>;
  ca: Buffer;
  /** Body length; sent as Content-Length unless `chunked`. */
  total: number;
  /** The i-th 1 MiB piece of the body (default: the same random MiB each time). */
  piece?: (i: number) => Buffer;
  chunked?: boolean;
  /** Destroys the connection once this many bytes are written (a client killed mid-push). */
  abortAfter?: number;
}

/**
 * Streams a large body the way a push does and reads the answer even when it comes
 * before the body is sent, as docker's and containers/image's clients do; the body is
 * sent to its end regardless (unless `abortAfter`). Resolves once both the answer and
 * the body are done, or the connection failed.
 */
export function streamBody(url: string, opts: StreamOptions): Promise<StreamedResponse> {
  const MiB = 1024 * 1024;
  const filler = crypto.randomBytes(MiB);
  const piece = opts.piece ?? (() => filler);
  return new Promise((resolve) => {
    const headers: Record<string, string | number> = { ...opts.headers };
    if (!opts.chunked) headers['content-length'] = opts.total;
    const req = https.request(new URL(url), { method: opts.method, ca: opts.ca, headers, agent: false });
    const out: StreamedResponse = { status: 0, headers: {}, text: '', sentAtAnswer: -1, sent: 0 };
    let answered = false;
    let bodyDone = false;
    const finish = () => {
      if (answered && bodyDone) resolve(out);
    };
    let i = 0;
    const pump = () => {
      while (out.sent < opts.total && !req.destroyed) {
        if (opts.abortAfter !== undefined && out.sent >= opts.abortAfter) {
          req.destroy();
          out.error = 'aborted by the client';
          answered = bodyDone = true;
          return finish();
        }
        const p = piece(i++).subarray(0, Math.min(MiB, opts.total - out.sent));
        out.sent += p.length;
        if (!req.write(p)) return void req.once('drain', pump);
      }
      req.end(() => {
        bodyDone = true;
        finish();
      });
    };
    req.on('response', (res) => {
      out.status = res.statusCode ?? 0;
      out.headers = res.headers;
      out.sentAtAnswer = out.sent;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        out.text = Buffer.concat(chunks).toString('utf8');
        answered = true;
        finish();
      });
      res.on('error', () => undefined);
    });
    req.on('error', (e) => {
      out.error ??= e.message;
      answered = bodyDone = true;
      finish();
    });
    pump();
  });
}
