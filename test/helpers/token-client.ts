import { basic, decodeJwt, request, type Response } from './http.js';
import type { KeyportProcess } from './keyport.js';

export interface GetTokenOptions {
  user?: string;
  password?: string;
  scopes?: string[];
  offline?: boolean;
  clientId?: string;
  service?: string | null;
  account?: string;
  headers?: Record<string, string>;
  localAddress?: string;
  /** A new connection for this request (lands on any worker process). */
  fresh?: boolean;
}

/** GET /token as docker, podman and skopeo send it. */
export function getToken(kp: KeyportProcess, o: GetTokenOptions = {}): Promise<Response> {
  const q = new URLSearchParams();
  if (o.account) q.append('account', o.account);
  if (o.clientId) q.append('client_id', o.clientId);
  if (o.offline) q.append('offline_token', 'true');
  for (const s of o.scopes ?? []) q.append('scope', s);
  if (o.service !== null) q.append('service', o.service ?? kp.service);
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.user !== undefined) headers.authorization = basic(o.user, o.password ?? '');
  return request(`${kp.tokenUrl}/token?${q}`, {
    headers,
    ca: kp.ca,
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    ...(o.localAddress || o.fresh ? { agent: false } : {}),
  });
}

/** POST /token with a form, as docker does after login. */
export function postToken(kp: KeyportProcess, form: Record<string, string>, contentType = 'application/x-www-form-urlencoded'): Promise<Response> {
  return request(`${kp.tokenUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: new URLSearchParams(form).toString(),
    ca: kp.ca,
  });
}

/** The actions a token grants on one resource. */
export function granted(token: string, name: string, type = 'repository'): string[] | undefined {
  const access = decodeJwt(token).payload.access as Array<{ type: string; name: string; actions: string[] }>;
  return access.find((a) => a.type === type && a.name === name)?.actions;
}

/** Asks for one scope and returns what was granted (throws unless the answer is 200). */
export async function grantFor(kp: KeyportProcess, user: string, password: string, scope: string): Promise<string[]> {
  const r = await getToken(kp, { user, password, scopes: [scope] });
  if (r.status !== 200) throw new Error(`token request for ${scope} as ${user}: ${r.status} ${r.text}`);
  const [type, ...rest] = scope.split(':');
  const name = rest.slice(0, -1).join(':');
  return granted(r.json().token, name, type) ?? [];
}
