/**
 * The C workloads table of docs/c-workloads.md: every guests/c workload at a modest size,
 * under guest 4 KiB vs 2 MiB heap pages (the guest kernel's `gthp=never|always`) × host THP
 * never vs always, EPT on, through the public API. Every figure is a count or a ratio of
 * counts, so the table is the same on any machine.
 *
 *   npm run c-workloads             rewrites the table between the markers of docs/c-workloads.md
 *   npm run c-workloads -- --check  prints the table and fails if the doc differs
 *
 * test/c-workloads.test.ts recomputes one workload's rows with measure() and compares them
 * with the committed doc.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVm, sample, type RunResult } from '../src/api/index.ts';

const MiB = 1 << 20;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DOC = join(root, 'docs', 'c-workloads.md');
export const BEGIN = '<!-- c-workloads table: begin (npm run c-workloads rewrites it) -->';
export const END = '<!-- c-workloads table: end -->';
export const COMMAND = 'npm run c-workloads';

export interface Workload {
  guest: string;
  /** The guest's arguments (its header in guests/c/NAME.c names them). */
  args: number[];
  /** Guest memory in bytes. */
  memory: number;
  /** What the arguments mean, for the table. */
  size: string;
}

/** Every C workload at its table size: working sets of 8 to 24 MiB, beyond the sTLB's 4 KiB reach. */
export const WORKLOADS: Workload[] = [
  { guest: 'c-hello', args: [1 << 20, 7], memory: 64 * MiB, size: '1 Mi numbers (8 MiB)' },
  { guest: 'c-gups', args: [16 * MiB, 1 << 20, 1, 0], memory: 64 * MiB, size: '16 MiB table, 1 Mi updates, no verification' },
  { guest: 'c-stream', args: [1 << 20, 1], memory: 64 * MiB, size: '3 × 8 MiB, 1 pass' },
  { guest: 'c-chase', args: [262144, 500000, 1], memory: 64 * MiB, size: '16 MiB of nodes, 500 k steps' },
  { guest: 'c-hash', args: [1 << 20, 500000, 1], memory: 64 * MiB, size: '1 Mi slots (16 MiB), 500 k operations' },
  { guest: 'c-rbtree', args: [100000, 200000, 1], memory: 64 * MiB, size: '100 k keys, 200 k lookups' },
  { guest: 'c-bfs', args: [14, 16, 2, 1], memory: 64 * MiB, size: 'scale 14, edgefactor 16, 2 roots' },
  { guest: 'c-sort', args: [1 << 19, 1], memory: 64 * MiB, size: '512 Ki keys (4 MiB, 4 MiB scratch)' },
  { guest: 'c-allocmix', args: [100000, 4096, 1], memory: 64 * MiB, size: '100 k operations, 4096 live' },
];

export interface Config {
  gthp: 'never' | 'always';
  hostThp: 'never' | 'always';
}

/** The four configurations, in table order. */
export const CONFIGS: Config[] = [
  { gthp: 'never', hostThp: 'never' },
  { gthp: 'never', hostThp: 'always' },
  { gthp: 'always', hostThp: 'never' },
  { gthp: 'always', hostThp: 'always' },
];

export interface Row {
  guest: string;
  config: Config;
  instructions: number;
  guestPf: number;
  eptViolations: number;
  dtlbMpki: number;
  stlbMpki: number;
  refsPerWalk: number;
  /** The workload's own output line (`NAME: ... checksum 0x...`). */
  checksum: string;
}

/** Runs one workload under one configuration (EPT on, default TLBs and costs); a failed run throws. */
export function measure(w: Workload, c: Config): Row {
  const vm = createVm(
    { memory: w.memory, args: w.args, cmdline: `gthp=${c.gthp}`, host: { thp: { enabled: c.hostThp } } },
    sample(w.guest),
  );
  let r: RunResult;
  try {
    r = vm.run();
  } finally {
    vm.close();
  }
  if (r.exitStatus !== 0 || !r.finished) {
    throw new Error(`${w.guest} gthp=${c.gthp} host THP ${c.hostThp}: ${r.stopReason}, status ${r.exitStatus}\n${r.console}`);
  }
  const checksum = /^.*checksum 0x[0-9a-f]{16}$/m.exec(r.console)?.[0];
  if (!checksum) throw new Error(`${w.guest}: no checksum line in ${JSON.stringify(r.console)}`);
  return {
    guest: w.guest,
    config: c,
    instructions: r.instructions,
    guestPf: r.rates.events.guest_pf.total,
    eptViolations: r.rates.events.ept_violations.total,
    dtlbMpki: r.rates.tlb.dtlb.mpki.total,
    stlbMpki: r.rates.tlb.stlb.mpki.total,
    refsPerWalk: r.rates.walks.refs_per_walk,
    checksum,
  };
}

const pageOf = (m: Config['gthp']) => (m === 'never' ? '4K' : '2M');

/** One markdown table row. */
export function formatRow(row: Row): string {
  return `| \`${row.guest}\` | ${pageOf(row.config.gthp)} | ${row.config.hostThp} | ${row.instructions} | ${row.guestPf} | ` +
    `${row.eptViolations} | ${row.dtlbMpki.toFixed(3)} | ${row.stlbMpki.toFixed(3)} | ${row.refsPerWalk.toFixed(2)} |`;
}

export const HEADER = [
  '| workload | guest pages | host THP | instructions | guest #PF | EPT violations | dTLB MPKI | sTLB MPKI | refs/walk |',
  '|---|---|---|---:|---:|---:|---:|---:|---:|',
];

/** The text between the markers for the given rows (grouped by workload, CONFIGS order). */
export function renderTable(rows: Row[]): string {
  const sizes = WORKLOADS.map((w) => `| \`${w.guest}\` | ${w.args.join(' ')} | ${w.memory / MiB} MiB | ${w.size} |`);
  const sums = [...new Map(rows.map((r) => [r.guest, r.checksum])).entries()].map(([, line]) => `    ${line}`);
  return [
    `Produced by \`${COMMAND}\` (\`tools/c-workloads.ts\`); EPT on, default TLBs, whole run.`,
    '',
    '| workload | arguments (`--arg`) | guest memory | size |',
    '|---|---|---|---|',
    ...sizes,
    '',
    ...HEADER,
    ...rows.map(formatRow),
    '',
    'Each workload printed the same line under all four configurations:',
    '',
    ...sums,
  ].join('\n');
}

/** The table rows of a doc text, by `guest|pages|thp`. */
export function docRows(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\| `(c-[\w-]+)` \| (4K|2M) \| (never|always) \|/.exec(line);
    if (m) out.set(`${m[1]}|${m[2]}|${m[3]}`, line);
  }
  return out;
}

export const rowKey = (r: Row) => `${r.guest}|${pageOf(r.config.gthp)}|${r.config.hostThp}`;

/** Every workload × every configuration; a workload whose output differs between configurations throws. */
export function measureAll(log: (s: string) => void = () => {}): Row[] {
  const rows: Row[] = [];
  for (const w of WORKLOADS) {
    for (const c of CONFIGS) {
      const row = measure(w, c);
      const first = rows.find((r) => r.guest === w.guest);
      if (first && first.checksum !== row.checksum) {
        throw new Error(`${w.guest}: output differs between configurations:\n${first.checksum}\n${row.checksum}`);
      }
      rows.push(row);
      log(formatRow(row));
    }
  }
  return rows;
}

function replaceBetweenMarkers(doc: string, body: string): string {
  const a = doc.indexOf(BEGIN), b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOC}: markers missing`);
  return `${doc.slice(0, a + BEGIN.length)}\n${body}\n${doc.slice(b)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  const rows = measureAll((s) => console.log(s));
  const doc = readFileSync(DOC, 'utf8');
  const next = replaceBetweenMarkers(doc, renderTable(rows));
  if (check) {
    if (next !== doc) {
      console.error(`docs/c-workloads.md differs from what ${COMMAND} computes`);
      process.exit(1);
    }
    console.log('docs/c-workloads.md is up to date');
  } else if (next !== doc) {
    writeFileSync(DOC, next);
    console.log(`rewrote the table in ${DOC}`);
  } else {
    console.log(`${DOC} already up to date`);
  }
}
