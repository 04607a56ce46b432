/** Object name prefixes use the driver path alphabet, so they can never hide a traversal. */
const ROOT_RE = /^\/?([A-Za-z0-9._:-]+\/)*[A-Za-z0-9._:-]*\/?$/;

/** Why `root`, an object name prefix set as `key`, is unsafe, or undefined when it is fine. */
export function prefixProblem(key: string, root: string): string | undefined {
  if (root === '') return undefined;
  if (!ROOT_RE.test(root) || root.split('/').some((c) => c === '.' || c === '..')) {
    return `${key}: must be a plain prefix of [A-Za-z0-9._:-] components separated by "/", got ${JSON.stringify(root)}`;
  }
  return undefined;
}
