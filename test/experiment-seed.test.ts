// docs/experiments/seed-claim.md's table is exactly reproducible: its figures are counts and
// simulated time, deterministic, so re-running one guest's points of
// experiments/seed-npt-thp.json through the same code (scripts/experiment-seed.ts) gives
// the doc's rows for that guest byte for byte. One small guest keeps the test short.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { betweenMarkers, orderRows, tableHeader, tableRow } from '../src/experiments/doc-table.ts';
import { expandSpec } from '../src/experiments/spec.ts';
import { DOC, MARKER, SPEC, runSeedPoints, specGuests } from '../scripts/experiment-seed.ts';

const GUEST = 'gups';

test(`the doc's table rows for ${GUEST} are what its points give when run again`, async (t) => {
  const lines = betweenMarkers(readFileSync(DOC, 'utf8'), MARKER);
  t.deepEqual(lines.slice(0, 2), tableHeader(), 'the table has the heading the code writes');
  const documented = lines.filter((l) => l.startsWith(`| ${GUEST} |`));
  // EPT off (THP dropped: one point per guest page size) + EPT on × THP never/always × 4K/2M.
  t.is(documented.length, 6);
  const out = mkdtempSync(join(tmpdir(), 'hv-seed-'));
  try {
    const rows = await runSeedPoints(out, { guests: [GUEST], jobs: 2 });
    t.is(rows.length, 6);
    t.deepEqual(orderRows(rows, specGuests()).map(tableRow), documented);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('a guest whose 2 MiB pages are its own knob gets it only at guestPageSize=2m, outside the label', (t) => {
  const pts = expandSpec(SPEC).points.filter((p) => p.guest === 'demand-paging' || p.guest === 'c-chase');
  for (const p of pts) {
    const huge = p.effective.guestPageSize === '2m';
    if (p.guest === 'demand-paging') t.is(p.effective.args[1], huge ? '1' : '0', p.label);
    else t.is(p.effective.cmdline, huge ? 'gthp=always' : null, p.label);
    t.notRegex(p.label, /cmdline|args/);
  }
  t.is(pts.length, 12);
});
