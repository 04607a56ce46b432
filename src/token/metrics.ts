/**
 * What the token server counts, in its own terms. The Prometheus implementation is
 * src/metrics/token.ts, loaded only when the metrics port is on; otherwise every call
 * goes to `noTokenMetrics`.
 */
export type KeystoneOutcome = { status: number } | { error: 'timeout' | 'network' };

export interface TokenMetrics {
  /** A token was issued (grant: basic, password, refresh_token or anonymous). */
  granted(grant: string): void;
  /** A refresh token (docker's identity token) was issued with an access token. */
  refreshIssued(): void;
  /** A token or whoami request refused (reason: the OAuth error code). */
  denied(reason: string): void;
  /** A login refused by the throttle, never sent to Keystone. */
  throttled(): void;
  /** A login answered from the login cache (hit) or sent to Keystone (miss). */
  loginCache(hit: boolean): void;
  /** One Keystone call: its operation (method and path pattern), duration and outcome. */
  keystone(operation: string, seconds: number, outcome: KeystoneOutcome): void;
}

export const noTokenMetrics: TokenMetrics = {
  granted() {},
  refreshIssued() {},
  denied() {},
  throttled() {},
  loginCache() {},
  keystone() {},
};

/**
 * A Keystone path as a label: no query, ids replaced, so a label value never names a
 * user or project (`/users/{id}/application_credentials/{id}`).
 */
export function keystoneOperation(method: string, path: string): string {
  const pattern = path
    .split('?')[0]!
    .split('/')
    .map((seg) => (seg === '' || /^[a-z_]+$/.test(seg) ? seg : '{id}'))
    .join('/');
  return `${method} ${pattern || '/'}`;
}
