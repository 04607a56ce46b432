/**
 * No import circle in src/. A module in a circle cannot be read, tested or replaced
 * without the others of the loop, and which of them is evaluated first depends on who
 * was imported first.
 *
 * Every arrow a reader follows counts: `import ... from`, `export ... from`, type-only
 * imports (they tie two modules together for a reader just the same, even though they
 * vanish from the JavaScript), `import('./x.js')` with a literal (loading lazily changes
 * when a module is evaluated, not what depends on what) and `import('./x.js').T` types.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Arrow {
  to: string;
  line: number;
}

interface ImportGraph {
  /** Module (path relative to the tree's root) to the modules it imports. */
  arrows: Map<string, Arrow[]>;
  /** Relative imports that name no file: arrows the graph would otherwise miss. */
  unresolved: string[];
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The module specifiers a source names, with their lines. */
function specifiers(file: string): Array<{ spec: string; line: number }> {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Array<{ spec: string; line: number }> = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ spec: node.text, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The file a relative specifier names: './x.js' is the source './x.ts' (NodeNext resolution). */
function resolve(from: string, spec: string): string | undefined {
  const target = path.resolve(path.dirname(from), spec);
  const candidates = [target.replace(/\.js$/, '.ts'), target, path.join(target, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && fs.existsSync(c) && fs.statSync(c).isFile());
}

function importGraph(treeRoot: string, dir: string): ImportGraph {
  const arrows = new Map<string, Arrow[]>();
  const unresolved: string[] = [];
  const name = (p: string) => path.relative(treeRoot, p);
  for (const file of tsFiles(path.join(treeRoot, dir))) {
    const out: Arrow[] = [];
    for (const { spec, line } of specifiers(file)) {
      if (!spec.startsWith('.')) continue; // node: built-ins and packages
      const to = resolve(file, spec);
      if (to) out.push({ to: name(to), line });
      else unresolved.push(`${name(file)}:${line} imports ${spec}`);
    }
    arrows.set(name(file), out);
  }
  return { arrows, unresolved };
}

/**
 * Every circle, one per group of modules that all reach each other (Tarjan's strongly
 * connected components), each shown as one shortest loop through the group's first
 * module, "a.ts:3 -> b.ts:7 -> a.ts" (the line holds the import), and the group's other
 * members.
 */
function circles(arrows: Map<string, Arrow[]>): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const connect = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const { to } of arrows.get(v) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v)!, index.get(to)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      const selfLoop = group.length === 1 && (arrows.get(v) ?? []).some((a) => a.to === v);
      if (group.length > 1 || selfLoop) groups.push(group.sort());
    }
  };
  for (const v of [...arrows.keys()].sort()) if (!index.has(v)) connect(v);

  return groups.map((group) => {
    const members = new Set(group);
    const start = group[0]!;
    // Breadth-first inside the group, back to the start: the shortest loop.
    const via = new Map<string, { from: string; line: number }>();
    const queue = [start];
    while (queue.length > 0) {
      const v = queue.shift()!;
      const next = (arrows.get(v) ?? []).filter((a) => members.has(a.to));
      const home = next.find((a) => a.to === start);
      if (home) {
        const steps = [`${v}:${home.line}`];
        for (let at = v; at !== start; ) {
          const { from, line } = via.get(at)!;
          steps.unshift(`${from}:${line}`);
          at = from;
        }
        const loop = [...steps, start];
        const others = group.filter((m) => !loop.some((step) => step.startsWith(`${m}:`)));
        return loop.join(' -> ') + (others.length > 0 ? ` (tied into the same circle: ${others.join(', ')})` : '');
      }
      for (const a of next) {
        if (a.to === start || via.has(a.to)) continue;
        via.set(a.to, { from: v, line: a.line });
        queue.push(a.to);
      }
    }
    throw new Error(`no loop found in ${group.join(', ')}`);
  });
}

test('imports: no circle in src/', () => {
  const { arrows, unresolved } = importGraph(root, 'src');
  assert.ok(arrows.size > 20, `the modules of src/ were found (${arrows.size})`);
  assert.deepEqual(unresolved, [], 'every relative import names a file of src/');
  const found = circles(arrows);
  assert.deepEqual(found, [], `import circles in src/:\n  ${found.join('\n  ')}`);
});

test('imports: a circle of any kind of arrow is found and shown as its loop', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyport-imports-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  };
  write('src/a.ts', "import type { B } from './b/b.js';\nexport type A = B;\n");
  write('src/b/b.ts', "import fs from 'node:fs';\nexport { c } from '../c.js';\nexport type B = typeof fs;\n");
  write('src/c.ts', "export const c = () => import('./a.js');\n");
  write('src/d.ts', "export type D = import('./d.js').D | string;\n");
  write('src/e.ts', "import { c } from './c.js';\nexport const e = c;\n");
  const { arrows, unresolved } = importGraph(dir, 'src');
  assert.deepEqual(unresolved, []);
  assert.deepEqual(circles(arrows), [
    `${path.join('src', 'a.ts')}:1 -> ${path.join('src', 'b', 'b.ts')}:2 -> ${path.join('src', 'c.ts')}:1 -> ${path.join('src', 'a.ts')}`,
    `${path.join('src', 'd.ts')}:1 -> ${path.join('src', 'd.ts')}`,
  ]);

  write('src/c.ts', 'export const c = 1;\n');
  write('src/d.ts', "export { nothing } from './missing.js';\n");
  const mended = importGraph(dir, 'src');
  assert.deepEqual(circles(mended.arrows), [], 'without the arrow back, no circle');
  assert.deepEqual(mended.unresolved, [`${path.join('src', 'd.ts')}:1 imports ./missing.js`], 'an import of no file is reported');
});
