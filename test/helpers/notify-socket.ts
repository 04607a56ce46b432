import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './keyport.js';

/**
 * The receiving end of systemd's notification protocol ($NOTIFY_SOCKET), for running a
 * Type=notify service's ExecStart outside systemd (no systemd runs here or in CI). It
 * binds the AF_UNIX datagram socket, records every message, and closes file descriptors
 * passed with BARRIER=1 the way the service manager does, which is what lets
 * `systemd-notify` return. Python, because Node has no unix datagram sockets.
 */
const RECEIVER = String.raw`
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
print(json.dumps({"bound": True}), flush=True)
while True:
    msg, anc, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(json.dumps({"message": msg.decode("utf-8", "replace")}), flush=True)
`;

export class NotifySocket {
  readonly path: string;
  readonly messages: string[] = [];
  private child: ChildProcess | undefined;
  private waiters: Array<() => void> = [];

  constructor() {
    // World-traversable: the service may run as another user.
    const dir = tempDir('notify');
    fs.chmodSync(dir, 0o755);
    this.path = path.join(dir, 'notify.sock');
  }

  async start(): Promise<this> {
    const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const child = spawn(python, ['-c', RECEIVER, this.path], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child = child;
    let buf = '';
    let bound: () => void = () => {};
    const isBound = new Promise<void>((r) => (bound = r));
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i)) as { bound?: true; message?: string };
        buf = buf.slice(i + 1);
        if (line.bound) bound();
        if (line.message !== undefined) {
          this.messages.push(line.message);
          for (const w of this.waiters.splice(0)) w();
        }
      }
    });
    const exited = new Promise<never>((_, reject) => child.once('exit', (c) => reject(new Error(`notify receiver exited with ${c}`))));
    await Promise.race([isBound, exited]);
    return this;
  }

  /** Fields of every message received so far, in order (FIELD=value lines). */
  fields(): Array<Record<string, string>> {
    return this.messages.map((m) => Object.fromEntries(m.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
  }

  /** The first message carrying READY=1, waiting up to `ms` for it; undefined on timeout. */
  async ready(ms: number): Promise<Record<string, string> | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.fields().find((f) => f.READY === '1');
      if (hit || Date.now() >= deadline) return hit;
      await new Promise<void>((r) => {
        const t = setTimeout(r, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  stop(): void {
    this.child?.kill();
    fs.rmSync(path.dirname(this.path), { recursive: true, force: true });
  }
}
