import net from 'node:net';

/** A failure the real Keystone cannot be made to produce on demand. */
export type KeystoneFault =
  /** An empty 500, then the connection stays open and nothing more is read (uWSGI after a NUL in a password). */
  | 'empty-500-then-silence'
  /** A 201 whose body arrives one byte every 200 ms and never completes. */
  | 'trickle';

export interface TapOptions {
  /** Decides, for each request (head and body as text), whether to answer it with a fault instead of Keystone. */
  fault?: (request: string) => KeystoneFault | undefined;
}

/**
 * A relay on loopback in front of the real Keystone. The token server under test is
 * pointed at it; it passes every request through unchanged and records it, so a test can
 * tell exactly what reached Keystone. It can also answer chosen requests with a fault.
 */
export class KeystoneTap {
  /** Every request seen, in order, as text (request line, headers and body). */
  readonly requests: string[] = [];
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private port = 0;

  constructor(
    private readonly keystoneUrl: string,
    private readonly opts: TapOptions = {},
  ) {}

  /** The Keystone URL to configure (same path as the real one). */
  get url(): string {
    const u = new URL(this.keystoneUrl);
    return `http://127.0.0.1:${this.port}${u.pathname}`;
  }

  /** Requests whose request line matches, e.g. /^POST \/v3\/auth\/tokens/. */
  matching(line: RegExp): string[] {
    return this.requests.filter((r) => line.test(r));
  }

  async start(): Promise<this> {
    const target = new URL(this.keystoneUrl);
    this.server = net.createServer((client) => this.relay(client, Number(target.port), target.hostname));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  private track(s: net.Socket): net.Socket {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
    return s;
  }

  /**
   * Splits the client's stream into requests (Content-Length framing, which is what the
   * token server sends) and forwards each to one upstream connection, in order; answers
   * flow back unchanged.
   */
  private relay(client: net.Socket, port: number, host: string): void {
    this.track(client);
    let upstream: net.Socket | undefined;
    let buf = Buffer.alloc(0);
    let stopped = false;
    client.on('data', (d: Buffer) => {
      if (stopped) return;
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (/^transfer-encoding:/im.test(head)) {
          // Not what the token server sends; cut off, so the test fails visibly.
          client.destroy();
          return;
        }
        const length = Number(/^content-length:\s*(\d+)/im.exec(head)?.[1] ?? 0);
        const total = end + 4 + length;
        if (buf.length < total) return;
        const raw = buf.subarray(0, total);
        buf = buf.subarray(total);
        const text = raw.toString('utf8');
        this.requests.push(text);
        const fault = this.opts.fault?.(text);
        if (fault) {
          stopped = true;
          this.answerWith(client, fault);
          return;
        }
        if (!upstream) {
          upstream = this.track(net.connect(port, host));
          upstream.pipe(client);
          upstream.on('close', () => client.destroy());
        }
        upstream.write(raw);
      }
    });
    client.on('close', () => upstream?.destroy());
  }

  private answerWith(client: net.Socket, fault: KeystoneFault): void {
    if (fault === 'empty-500-then-silence') {
      client.write('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    client.write('HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{');
    const t = setInterval(() => (client.writable ? client.write(' ') : clearInterval(t)), 200);
    this.timers.add(t);
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
