// docs/thp-eras.md's tables are reproducible: their figures are counts, so re-running parts
// of `npm run experiment:eras` (scripts/experiment-eras.ts) gives the doc's rows exactly.
// The refcount stress table is wall-clock rates and is not compared (only its shape).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { betweenMarkers } from '../src/experiments/doc-table.ts';
import { DOC, dirtyLogPass, dirtyLogTable, partialUnmap, partialUnmapTable, runEraPoints, sweepTable } from '../scripts/experiment-eras.ts';

const doc = () => readFileSync(DOC, 'utf8');

test("the doc's dirty-logging table is what the two KVMs give when run again", (t) => {
  const rows = [dirtyLogPass('2.6.38'), dirtyLogPass('6.x')];
  t.deepEqual(betweenMarkers(doc(), 'eras-dirty-log'), dirtyLogTable(rows).split('\n'));
  // 2.6.38 zaps the 17 large leaves and the read pass refaults every page; 6.x splits them in place.
  t.deepEqual([rows[0]!.zapped, rows[0]!.split, rows[1]!.zapped, rows[1]!.split], [17, 0, 0, 17]);
  t.true(rows[0]!.exitsSecondPass > 8000 && rows[1]!.exitsSecondPass < 8);
});

test("the doc's partial-unmap table is what the two hosts give when run again", (t) => {
  const rows = [...partialUnmap('2.6.38'), ...partialUnmap('6.x')];
  t.deepEqual(betweenMarkers(doc(), 'eras-partial-unmap'), partialUnmapTable(rows).split('\n'));
});

test("the doc's sweep rows for c-stream are what its points give when run again", async (t) => {
  const lines = betweenMarkers(doc(), 'eras-sweep');
  const documented = lines.filter((l) => l.startsWith('| c-stream '));
  t.is(documented.length, 2);
  const out = mkdtempSync(join(tmpdir(), 'hv-eras-'));
  try {
    const rows = await runEraPoints(out, { guests: ['c-stream'], jobs: 2 });
    t.deepEqual(sweepTable(rows).split('\n').slice(2), documented);
    t.deepEqual(sweepTable(rows).split('\n').slice(0, 2), lines.slice(0, 2));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
