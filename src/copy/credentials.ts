import readline from 'node:readline';
import type { Credentials } from '../client/auth.js';

export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

export interface CredentialOptions {
  username?: string;
  passwordStdin: boolean;
}

/** The first line of standard input (what `echo "$PW" | keyport copy --password-stdin` sends). */
async function readStdinLine(stdin: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]!;
}

function ask(question: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<string> {
  const rl = readline.createInterface({ input: stdin, output: stderr, terminal: true });
  return new Promise((resolve) => rl.question(question, (answer) => {
    rl.close();
    resolve(answer.trim());
  }));
}

/** Reads a line from the terminal without echoing it. */
export function askHidden(question: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<string> {
  stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          return resolve(value);
        }
        if (ch === '\u0003') {
          finish();
          return reject(new CredentialsError('cancelled'));
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * The user's Keystone credentials: --username with --password-stdin, else
 * KEYPORT_USERNAME and KEYPORT_PASSWORD, else a prompt on the terminal for whatever is
 * missing. Without a terminal, missing credentials are an error, never a hang.
 */
export async function keystoneCredentials(o: CredentialOptions, env: NodeJS.ProcessEnv, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<Credentials> {
  let username = o.username ?? env.KEYPORT_USERNAME ?? '';
  let password: string | undefined;
  if (o.passwordStdin) {
    if (!username) throw new CredentialsError('--password-stdin needs --username (or KEYPORT_USERNAME)');
    password = await readStdinLine(stdin);
  } else {
    password = env.KEYPORT_PASSWORD;
  }
  if (!username || password === undefined) {
    if (!stdin.isTTY) {
      throw new CredentialsError('no credentials: give --username and --password-stdin, or set KEYPORT_USERNAME and KEYPORT_PASSWORD');
    }
    if (!username) username = await ask('Keystone user name: ', stdin, stderr);
    password = await askHidden(`Password for ${username}: `, stdin, stderr);
  }
  if (!username) throw new CredentialsError('the user name is empty');
  if (password === '') throw new CredentialsError('the password is empty');
  return { username, password };
}

/** --src-creds USER[:PASSWORD]; without a password, one is asked for on the terminal. */
export async function sourceCredentials(text: string, host: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<Credentials> {
  const i = text.indexOf(':');
  const username = i < 0 ? text : text.slice(0, i);
  if (!username) throw new CredentialsError('--src-creds: the user name is empty');
  if (i >= 0) return { username, password: text.slice(i + 1) };
  if (!stdin.isTTY) throw new CredentialsError('--src-creds USER without :PASSWORD needs a terminal to ask for it');
  return { username, password: await askHidden(`Password for ${username}@${host}: `, stdin, stderr) };
}
