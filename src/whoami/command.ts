import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { basicAuthorization } from '../client/auth.js';
import { errorMessageOf } from '../client/errors.js';
import { ConnectionError, HttpTransport, readBody } from '../client/http.js';
import { trustedCertificates } from '../client/trust.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { CredentialsError, keystoneCredentials } from '../copy/credentials.js';

export const WHOAMI_HELP = `Usage: keyport whoami [options]

Logs in to this Keyport's token server with your Keystone credentials and prints who
you are: user, domain, personal namespace, and each namespace you can reach with the
actions you have there.

Options:
  -u, --username NAME   Keystone user name (else KEYPORT_USERNAME, else asked)
      --password-stdin  read the password from standard input (else KEYPORT_PASSWORD, else asked)
      --json            print the token server's JSON answer
  -c, --config FILE     the configuration Keyport runs with (to find the token server)
  -h, --help            this help
`;

export interface WhoamiIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

interface Answer {
  user: string;
  userId: string;
  domain: string;
  namespace: string;
  admin: boolean;
  namespaces: Array<{ namespace: string; kind: string; roles?: string[]; actions: string[] }>;
}

/** `keyport whoami`: exit 0 with the answer, 1 when refused or unreachable, 2 on bad usage, 78 on bad configuration. */
export async function runWhoami(argv: string[], io: WhoamiIo): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        username: { type: 'string', short: 'u' },
        'password-stdin': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    io.stderr.write(`keyport whoami: ${(e as Error).message}\n${WHOAMI_HELP}`);
    return 2;
  }
  if (v.help) {
    io.stdout.write(WHOAMI_HELP);
    return 0;
  }
  let config;
  try {
    config = loadConfig({ ...(v.config ? { file: v.config } : {}), env: io.env });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    io.stderr.write(`keyport whoami: ${e.message}\n`);
    return 78;
  }
  const url = new URL(config.realm);
  url.pathname = url.pathname.replace(/\/token\/?$/, '') + '/whoami';
  const ownCa = path.join(config.tls.certsDir, 'ca.crt');
  const transport = new HttpTransport({ ca: trustedCertificates(fs.existsSync(ownCa) ? [ownCa] : [], io.env), userAgent: 'keyport-whoami', idleTimeoutMs: 30_000 });
  try {
    const creds = await keystoneCredentials({ ...(v.username !== undefined ? { username: v.username } : {}), passwordStdin: v['password-stdin']! }, io.env, io.stdin, io.stderr);
    const res = await transport.request({ method: 'GET', url, headers: { authorization: basicAuthorization(creds), accept: 'application/json' } });
    const body = await readBody(res, 1 << 20);
    if (res.status !== 200) {
      const m = errorMessageOf(body).message ?? `HTTP ${res.status}`;
      io.stderr.write(`keyport whoami: ${url.host} refused: ${m}\n`);
      return 1;
    }
    if (v.json) {
      io.stdout.write(`${body.toString('utf8').trim()}\n`);
      return 0;
    }
    io.stdout.write(describe(JSON.parse(body.toString('utf8')) as Answer));
    return 0;
  } catch (e) {
    if (e instanceof CredentialsError || e instanceof ConnectionError) {
      io.stderr.write(`keyport whoami: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    transport.close();
  }
}

function describe(a: Answer): string {
  const lines = [
    `user       ${a.user} (id ${a.userId}, domain ${a.domain})${a.admin ? ', registry admin' : ''}`,
    `namespace  ${a.namespace}/`,
    '',
    'NAMESPACE'.padEnd(32) + 'KIND'.padEnd(11) + 'ACTIONS'.padEnd(20) + 'ROLES',
  ];
  for (const n of a.namespaces) {
    lines.push(`${n.namespace}/`.padEnd(32) + n.kind.padEnd(11) + (n.actions.join(',') || '-').padEnd(20) + (n.roles ?? []).join(','));
  }
  return `${lines.join('\n')}\n`;
}
