/**
 * Errors of the token server. Each is a typed value; routes.ts maps them to HTTP in
 * one place (OAuth 2 style JSON bodies, plus Docker's `errors` array that the docker
 * CLI prints).
 */
export abstract class TokenError extends Error {
  abstract readonly status: number;
  /** OAuth 2 error code (RFC 6749 section 5.2 and friends). */
  abstract readonly oauthCode: string;
  /** Docker registry error code, for clients that read `errors`. */
  readonly dockerCode: string = 'UNAUTHORIZED';
  readonly headers: Record<string, string> = {};
}

/** Malformed request: bad scope, unknown grant type, wrong service, bad parameters. */
export class InvalidRequestError extends TokenError {
  override name = 'InvalidRequestError';
  readonly status = 400;
  readonly oauthCode: string;
  override readonly dockerCode = 'INVALID_REQUEST';
  constructor(message: string, oauthCode = 'invalid_request') {
    super(message);
    this.oauthCode = oauthCode;
  }
}

/** A request body over the limit, refused before it is read. */
export class RequestTooLargeError extends TokenError {
  override name = 'RequestTooLargeError';
  readonly status = 413;
  readonly oauthCode = 'invalid_request';
  override readonly dockerCode = 'SIZE_INVALID';
  constructor() {
    super('request body too large');
  }
}

/** No credentials, or credentials Keystone refused. */
export class AuthenticationError extends TokenError {
  override name = 'AuthenticationError';
  readonly status = 401;
  readonly oauthCode = 'invalid_client';
  constructor(message: string, realm: string) {
    super(message);
    this.headers['WWW-Authenticate'] = `Basic realm="${realm.replace(/"/g, '')}", charset="UTF-8"`;
  }
}

/**
 * A refresh token that is expired, tampered with, for another service or user no longer valid.
 *
 * 400, as RFC 6749 section 5.2 has it (401 belongs to invalid_client). What clients do with it,
 * read from their sources and tried with the real ones:
 * - docker (dockerd's distribution token handler) decides on the body's `errors` array, not on
 *   the status: `errors[0].code` UNAUTHORIZED makes pulls fail with "unauthorized: <message>",
 *   as at 401. `docker login` then prompts again (it keeps no password next to an identity
 *   token), or takes -u/--password-stdin, and replaces the identity token.
 * - containers/image (podman, skopeo) only uses a refresh token found as identitytoken in an
 *   auth file (docker's config.json); at 401 it prints the body's message, at any other status
 *   only "invalid status code from registry 400 (Bad Request)". Either way the way back is the
 *   same: `podman logout` (or `skopeo logout`) and logging in with the password, which podman
 *   and skopeo refuse while the file holds an identity token, whatever the status.
 * - containerd (remotes/docker authorizer) falls back from POST to GET on 400 and 401 alike.
 * So `errors` keeps Docker's UNAUTHORIZED code, and the description says to log in again.
 */
export class InvalidGrantError extends TokenError {
  override name = 'InvalidGrantError';
  readonly status = 400;
  readonly oauthCode = 'invalid_grant';
}

/** Too many failed logins for this user name from this address. */
export class ThrottledError extends TokenError {
  override name = 'ThrottledError';
  readonly status = 429;
  readonly oauthCode = 'slow_down';
  override readonly dockerCode = 'TOOMANYREQUESTS';
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed logins; try again in ${retryAfterSeconds} s`);
    this.headers['Retry-After'] = String(retryAfterSeconds);
  }
}

/** Keystone cannot be reached, timed out or failed; never reported as a wrong password. */
export class KeystoneUnavailableError extends TokenError {
  override name = 'KeystoneUnavailableError';
  readonly status = 503;
  readonly oauthCode = 'temporarily_unavailable';
  override readonly dockerCode = 'UNAVAILABLE';
  constructor(readonly detail: string) {
    super('Keystone (the OpenStack identity service) is unavailable; please try again later');
    this.headers['Retry-After'] = '5';
  }
}

/** Keystone refused the credentials (HTTP 401 from Keystone). Internal: becomes AuthenticationError. */
export class KeystoneRejectedError extends Error {
  override name = 'KeystoneRejectedError';
}
