import { PathNotFoundError, type StorageDriver } from '../../storage/driver.js';
import { INTERNAL_DIRS, paths } from './paths.js';

/**
 * Every repository name in the store: directories under repositories/ that hold
 * manifests, found by walking the tree (there is no other index to keep consistent
 * between registry instances).
 */
export class CatalogStore {
  constructor(private readonly driver: StorageDriver) {}

  async repositories(): Promise<string[]> {
    const driver = this.driver;
    const root = paths.repositoriesRoot();
    const out: string[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > 64) return;
      let children: string[];
      try {
        children = await driver.list(dir);
      } catch (e) {
        if (e instanceof PathNotFoundError) return;
        throw e;
      }
      const names = children.map((c) => c.slice(c.lastIndexOf('/') + 1));
      if (names.includes('_manifests') || names.includes('_layers')) out.push(dir.slice(root.length + 1));
      for (const child of children) {
        const n = child.slice(child.lastIndexOf('/') + 1);
        if (!INTERNAL_DIRS.has(n)) {
          const st = await driver.stat(child).catch(() => undefined);
          if (st?.isDir) await walk(child, depth + 1);
        }
      }
    };
    await walk(root, 0);
    return out.sort();
  }
}

/** One page of a sorted list, as the tags and catalog endpoints page them. */
export function page(items: string[], n: number | undefined, last: string | undefined): { items: string[]; more: boolean } {
  let start = 0;
  if (last !== undefined) {
    start = items.findIndex((i) => i > last);
    if (start < 0) start = items.length;
  }
  if (n === undefined) return { items: items.slice(start), more: false };
  const slice = items.slice(start, start + n);
  return { items: slice, more: start + n < items.length };
}
