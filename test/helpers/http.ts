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
