// The relative imports of lib/ form no cycle: every `import`, `import type`, `export ... from` and `import('...')`
// between lib/ files counts, type-only ones included (a type cycle is a design cycle too).
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { packageRoot } from '../../lib/native/load.js';

/** `import ... from '...'` / `export ... from '...'` at a line's start (the clause holds names, braces, commas, `*`, `as`, `type`). */
const FROM_CLAUSE = /^[ \t]*(?:import|export)\b[\w\s{},*$]*?\bfrom\s*['"]([^'"\n]+)['"]/gm;
/** `import '...'` for its side effects. */
const BARE_IMPORT = /^[ \t]*import\s*['"]([^'"\n]+)['"]/gm;
/** `import('...')`, dynamic or in a type position. */
const IMPORT_CALL = /\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/g;

/** The module specifiers a TypeScript source names, in order of appearance per form. */
export function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  for (const re of [FROM_CLAUSE, BARE_IMPORT, IMPORT_CALL]) for (const m of source.matchAll(re)) out.push(m[1]);
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The file a relative specifier names ('./x.js' is x.ts in the sources), or null when it names none. */
function resolveRelative(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts'), base];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c)) ?? null;
}

/** file -> the lib files it imports; throws on a relative import of a .js/.ts path that names no file. */
function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of tsFiles(root)) {
    const deps: string[] = [];
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(file, spec);
      if (target === null) {
        if (/\.(js|ts)$/.test(spec)) throw new Error(`${file} imports '${spec}', which names no .ts file`);
        continue; // e.g. a JSON file
      }
      if (target.startsWith(root + path.sep) && !deps.includes(target)) deps.push(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Every cycle's files, one cycle per strongly connected component (Tarjan), each as a closed path a -> ... -> a. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(c);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return components.map((c) => closedPath(graph, new Set(c)));
}

/** A shortest closed path through a component's first file, staying inside the component (breadth first). */
function closedPath(graph: Map<string, string[]>, members: Set<string>): string[] {
  const start = [...members].sort()[0];
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const between: string[] = [];
        for (let u = v; u !== start; u = parent.get(u)!) between.unshift(u);
        return [start, ...between, start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

describe('import cycles', () => {
  it('the import scanner reads every form of relative import and ignores code that only mentions one', () => {
    const src = [
      "import { a, type B } from './a.js';",
      "import type { C } from '../c.js';",
      'import {',
      '  d,',
      '  e as f,',
      "} from './d.js';",
      "export { g } from './g.js';",
      "export * as h from './h.js';",
      "export type { I } from './i.js';",
      "import './side.js';",
      "type J = import('./j.js').J;",
      "const s = 'x from \\'./not.js\\'';",
      " * import k from './in-a-comment.js' (a doc line: starts with '*')",
      "export const l = load('./not-either.js');",
    ].join('\n');
    expect(importSpecifiers(src).sort()).to.deep.equal(['../c.js', './a.js', './d.js', './g.js', './h.js', './i.js', './j.js', './side.js']);
  });

  it('the cycle finder names a cycle and passes an acyclic graph', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c', 'd']],
      ['c', ['a']],
      ['d', []],
      ['e', ['e']],
    ]);
    expect(findCycles(g).sort()).to.deep.equal([
      ['a', 'b', 'c', 'a'],
      ['e', 'e'],
    ]);
    expect(findCycles(new Map([['a', ['b']], ['b', []]]))).to.deep.equal([]);
  });

  it('lib/ has no import cycle (import, import type, export ... from)', () => {
    const root = path.join(packageRoot(), 'lib');
    const graph = importGraph(root);
    const rel = (f: string) => path.relative(packageRoot(), f);
    // The scan sees the index's re-exports: a scanner that found nothing would pass vacuously.
    expect(graph.get(path.join(root, 'index.ts'))?.map(rel)).to.include.members(['lib/errors.ts', 'lib/sae/topk-sae.ts', 'lib/fit/fit.ts']);
    const cycles = findCycles(graph).map((c) => c.map(rel).join(' -> '));
    expect(cycles, `import cycles in lib/:\n  ${cycles.join('\n  ')}`).to.deep.equal([]);
  });
});
