// docs/c-workloads.md's table is what tools/c-workloads.ts computes: one workload is rerun
// under the four configurations with the script's own measure() and its rows must be the
// committed ones, character for character; the table covers every C workload.
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { BEGIN, CONFIGS, DOC, END, WORKLOADS, docRows, formatRow, measure, rowKey } from '../tools/c-workloads.ts';
import { requireBuiltGuests } from './guests-helpers.ts';

test.before(() => requireBuiltGuests());

const doc = readFileSync(DOC, 'utf8');

test('the table has a row for every C workload under each of the four configurations', (t) => {
  t.true(doc.indexOf(BEGIN) >= 0 && doc.indexOf(END) > doc.indexOf(BEGIN), 'both markers');
  const rows = docRows(doc);
  t.is(rows.size, WORKLOADS.length * CONFIGS.length);
  const guests = WORKLOADS.map((w) => w.guest);
  t.deepEqual(guests, [...new Set(guests)], 'each workload once');
});

test('every guests/c workload is in the table', (t) => {
  const sources = readdirSync(new URL('../guests/c/', import.meta.url)).filter((f) => /^c-[\w-]+\.c$/.test(f)).map((f) => f.slice(0, -2)).sort();
  t.deepEqual(WORKLOADS.map((w) => w.guest).sort(), sources);
});

test('c-gups: the committed rows are what the script computes now', (t) => {
  const w = WORKLOADS.find((x) => x.guest === 'c-gups')!;
  const committed = docRows(doc);
  for (const c of CONFIGS) {
    const row = measure(w, c);
    t.is(committed.get(rowKey(row)), formatRow(row), `gthp=${c.gthp}, host THP ${c.hostThp}`);
    t.true(doc.includes(`    ${row.checksum}\n`), 'its output line is shown');
  }
});
