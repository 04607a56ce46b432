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

export function parseLoginName(raw: string): LoginName {
  if (raw.length === 0 || raw.length > 255) throw new InvalidRequestError('user name must be 1 to 255 characters');
  if (/[\u0000-\u001f\u007f]/.test(raw)) throw new InvalidRequestError('user name contains control characters');
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
  if (password.length > 4096) throw new InvalidRequestError('password too long');
  return { username, password };
}
