/**
 * The import graph of src/, checked against the layering in docs/architecture.md:
 *
 *   util ← native ← mm ← kvm ← api ← experiments ← cli      (guest/ is a leaf library kvm uses)
 *
 * Rules, over every import (type-only ones included, and dynamic import()):
 *   1. no cycle between src/ folders;
 *   2. a folder imports only the folders its layer allows (ALLOWED below): nothing below
 *      api/ imports api/ or cli/, mm/ imports nothing from kvm/, util/ imports nothing;
 *   3. src/api/types.ts, the public contract, imports nothing at all;
 *   4. src/cli/ imports only src/api/ and src/experiments/ (and its own files): the CLI is a
 *      client of the API; experiments/ (sweeps, results, reports) imports only src/api/ and
 *      src/util/, so a sweep sees exactly what a user script sees.
 *
 *   node --import tsx tools/check-deps/check.ts     prints the folder graph, exits 1 on a violation
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which src/ folders each folder may import (besides itself). */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  util: [],
  native: ['util'],
  guest: ['util'],
  mm: ['util', 'native'],
  kvm: ['util', 'native', 'guest', 'mm'],
  api: ['util', 'native', 'guest', 'mm', 'kvm'],
  experiments: ['util', 'api'],
  cli: ['api', 'experiments'],
};

export interface Edge {
  from: string;
  to: string;
  /** The importing file and the specifier, for messages. */
  file: string;
  spec: string;
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s*(?:type\s+)?(?:[^'"`;]*?\sfrom\s*)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (/\.(ts|mts|mjs|js)$/.test(name)) yield p;
  }
}

/** Strip comments so an import in a doc comment does not count. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** Every import between files of src/, as folder edges. */
export function importEdges(srcDir: string): Edge[] {
  const edges: Edge[] = [];
  for (const file of tsFiles(srcDir)) {
    const from = relative(srcDir, file).split(sep)[0]!;
    for (const m of code(readFileSync(file, 'utf8')).matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2])!;
      if (!spec.startsWith('.')) continue;
      const target = relative(srcDir, resolve(dirname(file), spec));
      if (target.startsWith('..')) {
        edges.push({ from, to: '(outside src)', file: relative(srcDir, file), spec });
        continue;
      }
      edges.push({ from, to: target.split(sep)[0]!, file: relative(srcDir, file), spec });
    }
  }
  return edges;
}

/** Folder cycles (each as a path a → b → … → a), by depth-first search over the folder graph. */
export function folderCycles(edges: readonly Edge[]): string[][] {
  const graph = new Map<string, Set<string>>();
  for (const e of edges) if (e.from !== e.to) (graph.get(e.from) ?? graph.set(e.from, new Set()).get(e.from)!).add(e.to);
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return cycles;
}

/** Every rule violation, one line each. */
export function violations(srcDir: string): string[] {
  const edges = importEdges(srcDir);
  const out: string[] = [];
  for (const c of folderCycles(edges)) out.push(`cycle between folders: ${c.join(' → ')}`);
  for (const e of edges) {
    if (e.from === e.to) continue;
    const allowed = ALLOWED[e.from];
    if (!allowed) out.push(`${e.file}: folder src/${e.from}/ has no place in the layering (tools/check-deps/check.ts ALLOWED)`);
    else if (!allowed.includes(e.to)) out.push(`${e.file}: src/${e.from}/ may not import src/${e.to}/ ('${e.spec}')`);
  }
  for (const e of edges) {
    if (e.file === join('api', 'types.ts')) out.push(`api/types.ts: the public contract imports nothing ('${e.spec}')`);
  }
  return [...new Set(out)];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
  const edges = importEdges(src);
  const folders = new Map<string, Set<string>>();
  for (const e of edges) if (e.from !== e.to) (folders.get(e.from) ?? folders.set(e.from, new Set()).get(e.from)!).add(e.to);
  for (const [f, to] of [...folders].sort()) console.log(`${f.padEnd(7)} → ${[...to].sort().join(', ')}`);
  const v = violations(src);
  for (const line of v) console.error(`violation: ${line}`);
  console.log(v.length ? `${v.length} violation(s)` : 'import graph: no cycles, every import follows the layering');
  process.exitCode = v.length ? 1 : 0;
}
