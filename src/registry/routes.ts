import { isValidRepositoryName } from '../oci/reference.js';
import { errors } from './errors.js';

/** The API endpoint a request path names. */
export type Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'referrers'; name: string; digest: string };

/** Each endpoint's path pattern, as metrics label requests (never by the raw path). */
export const ROUTE_PATTERNS: Record<Route['kind'], string> = {
  base: '/v2/',
  catalog: '/v2/_catalog',
  tags: '/v2/<name>/tags/list',
  manifest: '/v2/<name>/manifests/<reference>',
  uploads: '/v2/<name>/blobs/uploads/',
  upload: '/v2/<name>/blobs/uploads/<uuid>',
  blob: '/v2/<name>/blobs/<digest>',
  referrers: '/v2/<name>/referrers/<digest>',
};

// The repository name may contain '/', so each pattern anchors on what follows it.
const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => Route]> = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog\/?$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/tags\/list\/?$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/** Matches a /v2 path; undefined when no endpoint has that shape. Invalid names are NAME_INVALID. */
export function matchRoute(rawPath: string): Route | undefined {
  let path: string;
  try {
    // Some clients percent-encode the ':' of digests; names never contain '%' legitimately.
    path = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  for (const [re, make] of PATTERNS) {
    const m = re.exec(path);
    if (!m) continue;
    const route = make(m);
    if ('name' in route && !isValidRepositoryName(route.name)) throw errors.nameInvalid(route.name);
    return route;
  }
  return undefined;
}
