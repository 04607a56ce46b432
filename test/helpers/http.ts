import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

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
  headers: Record<string, string>;
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
  /** Body length, sent as Content-Length. */
  total: number;
  /** The i-th 1 MiB piece of the body (default: the same random MiB each time). */
  piece?: (i: number) => Buffer;
  /** Destroys the connection once this many bytes are written (a client killed mid-push). */
  abortAfter?: number;
}

/**
 * Streams a large body the way docker's and containers/image's (Go) clients do: the
 * answer is read while the body is still being written, and writing goes on to the end
 * of the body whatever the answer. Node's own client cannot be used for this: once the
 * answer has ended it stops relaying 'drain' to the request (or closes its socket), so
 * the body stalls. Speaks HTTP/1.1 over a raw TLS socket; resolves once both the answer
 * and the body are done, or the connection failed.
 */
export function streamBody(url: string, opts: StreamOptions): Promise<StreamedResponse> {
  const MiB = 1024 * 1024;
  const filler = crypto.randomBytes(MiB);
  const piece = opts.piece ?? (() => filler);
  const u = new URL(url);
  return new Promise((resolve) => {
    const out: StreamedResponse = { status: 0, headers: {}, text: '', sentAtAnswer: -1, sent: 0 };
    const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca: opts.ca, servername: 'localhost' });
    let answered = false;
    let bodyDone = false;
    let settled = false;
    const finish = () => {
      if (settled || !(answered && bodyDone)) return;
      settled = true;
      socket.destroy();
      resolve(out);
    };
    const fail = (why: string) => {
      out.error ??= why;
      answered = bodyDone = true;
      finish();
    };
    let received = Buffer.alloc(0);
    let bodyStart = -1;
    let length = 0;
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      if (bodyStart < 0) {
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [statusLine, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
        out.status = Number(statusLine!.split(' ')[1]);
        for (const l of lines) {
          const i = l.indexOf(':');
          out.headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        out.sentAtAnswer = out.sent;
        length = Number(out.headers['content-length'] ?? 0);
        bodyStart = end + 4;
      }
      if (received.length - bodyStart >= length) {
        out.text = received.subarray(bodyStart, bodyStart + length).toString('utf8');
        answered = true;
        finish();
      }
    });
    socket.on('error', (e) => fail(e.message));
    socket.on('close', () => fail('connection closed'));
    const head = [`${opts.method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, `Content-Length: ${opts.total}`];
    for (const [k, v] of Object.entries(opts.headers)) head.push(`${k}: ${v}`);
    let i = 0;
    const pump = () => {
      while (out.sent < opts.total) {
        if (opts.abortAfter !== undefined && out.sent >= opts.abortAfter) {
          out.error = 'aborted by the client';
          answered = bodyDone = true;
          return finish();
        }
        const p = piece(i++).subarray(0, Math.min(MiB, opts.total - out.sent));
        out.sent += p.length;
        if (!socket.write(p)) return void socket.once('drain', pump);
      }
      bodyDone = true;
      finish();
    };
    socket.once('secureConnect', () => {
      socket.write(head.join('\r\n') + '\r\n\r\n');
      pump();
    });
  });
}
