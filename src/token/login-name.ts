import { InvalidRequestError } from './errors.js';

/**
 * What a user types as the docker login user name:
 *   alice                  a user of the default domain (keystone.defaultDomain)
 *   ldap\alice             a user of the domain named "ldap"
 *   appcred/<id>           an application credential (the password is its secret)
 * Basic auth cannot carry ':' in user names, so none of the forms use it.
 */
export type LoginName =
  | { kind: 'password'; user: string; domainName?: string }
  | { kind: 'application_credential'; id: string };

const APP_CRED_PREFIX = 'appcred/';
const APP_CRED_ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_SECRET = 4096;

/**
 * Control characters: Unicode category Cc, that is C0 (U+0000 to U+001F, NUL, tab and
 * line breaks included), DEL and C1 (U+0080 to U+009F). No keyboard types them into a
 * password prompt, so a credential holding one is malformed, never a typo: it is refused
 * before Keystone sees it. Keystone is no judge here: its password hashing fails on a
 * NUL byte (an empty 500 from uWSGI, the socket left hanging), and what it does with the
 * others is not specified anywhere.
 */
const CONTROL = /\p{Cc}/u;

export function parseLoginName(raw: string): LoginName {
  if (raw.length === 0 || raw.length > 255) throw new InvalidRequestError('user name must be 1 to 255 characters');
  if (CONTROL.test(raw)) throw new InvalidRequestError('user name contains control characters');
  if (raw.startsWith(APP_CRED_PREFIX)) {
    const id = raw.slice(APP_CRED_PREFIX.length);
    if (!APP_CRED_ID.test(id)) throw new InvalidRequestError('malformed application credential id');
    return { kind: 'application_credential', id };
  }
  const bs = raw.indexOf('\\');
  if (bs > 0 && bs < raw.length - 1) return { kind: 'password', domainName: raw.slice(0, bs), user: raw.slice(bs + 1) };
  return { kind: 'password', user: raw };
}

export interface BasicCredentials {
  username: string;
  password: string;
}

/**
 * The login name of credentials, once both halves are well formed; InvalidRequestError
 * otherwise. The same rules hold for Basic auth and the password grant, for passwords and
 * application-credential secrets.
 */
export function parseCredentials(creds: BasicCredentials): LoginName {
  const name = parseLoginName(creds.username);
  const what = name.kind === 'application_credential' ? 'application credential secret' : 'password';
  if (creds.password.length === 0) throw new InvalidRequestError(`empty ${what}`);
  if (creds.password.length > MAX_SECRET) throw new InvalidRequestError(`${what} too long`);
  if (CONTROL.test(creds.password)) throw new InvalidRequestError(`${what} contains control characters`);
  return name;
}

/** Parses an Authorization: Basic header; undefined when absent, InvalidRequestError when malformed. */
export function parseBasicAuth(header: string | undefined): BasicCredentials | undefined {
  if (!header) return undefined;
  const m = /^Basic[ ]+([A-Za-z0-9+/=_-]*)\s*$/i.exec(header);
  if (!m) {
    if (/^Basic\b/i.test(header)) throw new InvalidRequestError('malformed Basic authorization header');
    return undefined; // another scheme (e.g. Bearer): treated as no credentials
  }
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new InvalidRequestError('malformed Basic authorization header: no ":" between user and password');
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (username === '') throw new InvalidRequestError('empty user name');
  if (password === '') throw new InvalidRequestError('empty password');
  return { username, password };
}
