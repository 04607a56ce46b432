import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The shell commands of the README's fenced block marked `<!-- readme-test: NAME -->`,
 * one per entry, comments and blank lines left out. Tests run these lines as written
 * (only the host and port are swapped for the test's), so the README cannot drift
 * from what works.
 */
export function readmeCommands(name: string): string[] {
  const text = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const marker = `<!-- readme-test: ${name} -->`;
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no block marked ${marker}`);
  const m = /^```sh\n([\s\S]*?)^```$/m.exec(text.slice(at + marker.length));
  if (!m) throw new Error(`no sh block after ${marker}`);
  return m[1]!
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}
