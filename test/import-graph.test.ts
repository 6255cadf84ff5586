// The layering of docs/architecture.md holds for every import in src/ (type-only ones too):
// no folder cycles, nothing below api/ imports api/ or cli/, mm/ knows nothing of kvm/, the
// public contract imports nothing, the CLI goes through the API (tools/check-deps/check.ts).
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { folderCycles, importEdges, violations } from '../tools/check-deps/check.ts';

const src = fileURLToPath(new URL('../src', import.meta.url));

test('src/ follows the layering: no folder cycles and no import against the dependency direction', (t) => {
  t.deepEqual(violations(src), []);
});

test('the checker sees type-only and dynamic imports, and finds a cycle', (t) => {
  const edges = importEdges(src);
  t.true(edges.some((e) => e.from === 'cli' && e.to === 'api'), 'the CLI imports the API');
  t.true(edges.length > 100);
  const cycle = folderCycles([
    { from: 'mm', to: 'kvm', file: 'mm/x.ts', spec: '../kvm/y.ts' },
    { from: 'kvm', to: 'mm', file: 'kvm/y.ts', spec: '../mm/x.ts' },
  ]);
  t.deepEqual(cycle, [['kvm', 'mm', 'kvm']]);
});
