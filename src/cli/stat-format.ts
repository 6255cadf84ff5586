/**
 * What `hugevisor stat` prints: a perf-stat-style counter report (one line per counter: the
 * value, its name, and `#` notes with its rates), interval rows for -I, and the same data as
 * CSV. Every figure is a field of the run's result, an ROI's or a sample row's (the rate
 * blocks of src/api/types.ts); this file only lays them out.
 */
import type { FaultRates, MemoryReport, RatedEvent, RunResult, Sample, SimulatedTime } from '../api/index.ts';
import { duration, grouped } from './format.ts';

/** One note of a counter line: a figure and its unit (`3,927.5 /M instr`). */
export interface StatNote {
  value: number;
  unit: string;
  /** How the value reads in text. */
  text: string;
}

/** One line of the report: a counter's value, its name and notes (its rates). */
export interface StatLine {
  name: string;
  value: number;
  notes: StatNote[];
}

/** The events of the rate block, in report order. */
export const EVENTS: readonly RatedEvent[] = [
  'guest_pf',
  'ept_violations',
  'vm_exits',
  'host_fault_4k',
  'host_fault_2m',
  'thp_fault_fallback',
  'pgmajfault',
  'thp_split',
  'thp_collapse_alloc',
  'pswpin',
  'pswpout',
];
const LEVELS = ['itlb', 'dtlb', 'stlb'] as const;

const fixed = (v: number, digits: number): string => {
  const [int, frac] = v.toFixed(digits).split('.');
  return grouped(Number(int)) + (frac ? '.' + frac : '');
};
/** 3 significant digits with a k/M/G prefix: 211 k, 1.20 M, 0. */
export function si(v: number): string {
  if (v === 0) return '0 ';
  const [d, p] = v >= 1e9 ? [1e9, ' G'] : v >= 1e6 ? [1e6, ' M'] : v >= 1e3 ? [1e3, ' k'] : [1, ' '];
  return (v / d).toPrecision(3) + p;
}
const note = (value: number, unit: string, text: string): StatNote => ({ value, unit, text });
const perMi = (v: number): StatNote => note(v, 'per_million_instructions', `${fixed(v, 1)} /M instr`);
const perSec = (v: number): StatNote => note(v, 'per_sim_second', `${si(v)}/sim-s`);
const pct = (v: number, of: string): StatNote => note(v, `ratio_of_${of.replace(/ /g, '_')}`, `${(v * 100).toFixed(2)}% of ${of}`);

/** The counter lines of an interval (the whole run or an ROI): instructions, events, exits, TLB, walks. */
export function statLines(counters: Readonly<Record<string, number>>, sim: SimulatedTime, rates: FaultRates): StatLine[] {
  const instructions = counters.instructions ?? 0;
  const ipc = sim.cycles > 0 ? instructions / sim.cycles : 0;
  const lines: StatLine[] = [{ name: 'instructions', value: instructions, notes: [note(ipc, 'insn_per_cycle', `${ipc === 0 ? '0' : ipc.toPrecision(3)} insn per cycle`)] }];
  lines.push({ name: 'cycles', value: sim.cycles, notes: [note(sim.seconds, 'sim_seconds', `${duration(sim.seconds)} simulated`)] });
  for (const e of EVENTS) {
    const r = rates.events[e];
    lines.push({ name: e, value: r.total, notes: [perMi(r.per_million_instructions), perSec(r.per_sim_second)] });
  }
  // VM exits by reason: the counters exits_<reason> (exits_budget is the VMM's chunking, not an exit).
  const exits = rates.events.vm_exits.total;
  for (const [k, v] of Object.entries(counters)) {
    if (!k.startsWith('exits_') || k === 'exits_budget' || v === 0) continue;
    lines.push({ name: `exits.${k.slice('exits_'.length)}`, value: v, notes: [pct(exits > 0 ? v / exits : 0, 'vm_exits'), perMi(instructions > 0 ? v / (instructions / 1e6) : 0)] });
  }
  for (const l of LEVELS) {
    const t = rates.tlb[l];
    const m = t.mpki;
    lines.push({
      name: `${l}.misses`,
      value: t.misses.total,
      notes: [
        note(m.total, 'mpki', `${fixed(m.total, 2)} MPKI`),
        pct(t.miss_ratio, 'lookups'),
        note(m['2m'], 'mpki_2m', `4K ${fixed(m['4k'], 2)} / 2M ${fixed(m['2m'], 2)} / 1G ${fixed(m['1g'], 2)} MPKI`),
      ],
    });
  }
  const w = rates.walks;
  lines.push({
    name: 'page_walks',
    value: w.walks,
    notes: [note(w.refs_per_walk, 'refs_per_walk', `${fixed(w.refs_per_walk, 2)} refs/walk`), note(w.ept_refs_per_walk, 'ept_refs_per_walk', `${fixed(w.guest_refs_per_walk, 2)} guest + ${fixed(w.ept_refs_per_walk, 2)} ept`)],
  });
  lines.push({ name: 'walk_refs', value: counters.walk_refs ?? 0, notes: [note(counters.walk_refs_guest ?? 0, 'guest_refs', `${grouped(counters.walk_refs_guest ?? 0)} guest + ${grouped(counters.walk_refs_ept ?? 0)} ept`)] });
  return lines;
}

/** EPT leaves mapped at the end of the run (EPT mode): 4K and 2M, with the memory they map. */
export function eptLines(m: MemoryReport): StatLine[] {
  if (!m.ept) return [];
  const kib4 = m.ept.pages_4k * 4;
  const kib2 = m.ept.pages_2m * 2048;
  const share = kib4 + kib2 > 0 ? kib2 / (kib4 + kib2) : 0;
  const mib = (kib: number) => note(kib, 'kib_mapped', `${fixed(kib / 1024, 1)} MiB mapped`);
  return [
    { name: 'ept.pages_4k', value: m.ept.pages_4k, notes: [mib(kib4)] },
    { name: 'ept.pages_2m', value: m.ept.pages_2m, notes: [mib(kib2), pct(share, 'EPT-mapped memory')] },
  ];
}

const VALUE_WIDTH = 18;
const NAME_WIDTH = 20;
/** A note's number is right-aligned in this many characters, and a note (but the last) fills NOTE_WIDTH. */
const NOTE_NUMBER_WIDTH = 11;
const NOTE_WIDTH = 23;
const NUMBER = /^-?[\d,.]+%?$/;

/** Aligned text: value right-aligned, name, then each note after `#`, its number right-aligned in its column. */
export function formatStatLines(lines: readonly StatLine[]): string[] {
  return lines.map((l) => {
    const notes = l.notes.map((n, i) => {
      const sp = n.text.indexOf(' ');
      const head = sp > 0 ? n.text.slice(0, sp) : n.text;
      const cell = NUMBER.test(head) ? head.padStart(NOTE_NUMBER_WIDTH) + n.text.slice(head.length) : n.text;
      return `# ${i === l.notes.length - 1 ? cell : cell.padEnd(NOTE_WIDTH)}`;
    });
    return `${grouped(l.value).padStart(VALUE_WIDTH)}  ${l.name.padEnd(NAME_WIDTH)}  ${notes.join('  ')}`.trimEnd();
  });
}

const stopText = (r: RunResult): string => `${r.stopReason}${r.exitStatus !== null ? `, status ${r.exitStatus}` : ''}`;

/** The whole report: the run's block, then a block per ROI, then the time lines. */
export function statReport(guest: string, r: RunResult): string {
  const out: string[] = [` Performance counter stats for '${guest}' (simulated; stop: ${stopText(r)}):`, ''];
  out.push(...formatStatLines([...statLines(r.counters, r.simulated, r.rates), ...eptLines(r.memory)]));
  r.roi.forEach((roi, i) => {
    out.push('', ` ROI ${i} (${grouped(roi.counters.instructions ?? 0)} instructions, ${duration(roi.simulated.seconds)} simulated):`, '');
    out.push(...formatStatLines(statLines(roi.counters, roi.simulated, roi.rates)));
  });
  if (r.roiOpen) out.push('', ' (a region of interest was begun and not ended)');
  const ghz = r.simulated.seconds > 0 ? r.simulated.cycles / r.simulated.seconds / 1e9 : 0;
  out.push(
    '',
    `${r.simulated.seconds.toFixed(9).padStart(VALUE_WIDTH)}  seconds simulated (${grouped(r.simulated.cycles)} cycles at ${ghz.toFixed(2)} GHz)`,
    `${r.wallSeconds.toFixed(9).padStart(VALUE_WIDTH)}  seconds wall (${r.mips.toFixed(2)} guest MIPS)`,
    '',
  );
  return out.join('\n') + '\n';
}

/** The columns of an interval row: time, instructions, and the interval's counts and rates. */
const ROW_COLUMNS: { head: string; width: number; cell(s: Sample): string }[] = [
  { head: 'time(ms)', width: 12, cell: (s) => (s.simulatedNs / 1e6).toFixed(3) },
  { head: 'instructions', width: 15, cell: (s) => grouped(s.counters.instructions ?? 0) },
  { head: 'guest_pf', width: 10, cell: (s) => grouped(s.rates.events.guest_pf.total) },
  { head: 'pf/M instr', width: 12, cell: (s) => fixed(s.rates.events.guest_pf.per_million_instructions, 1) },
  { head: 'pf/sim-s', width: 10, cell: (s) => si(s.rates.events.guest_pf.per_sim_second).trimEnd() },
  { head: 'ept_viol', width: 10, cell: (s) => grouped(s.rates.events.ept_violations.total) },
  { head: 'host_4k', width: 9, cell: (s) => grouped(s.rates.events.host_fault_4k.total) },
  { head: 'host_2m', width: 9, cell: (s) => grouped(s.rates.events.host_fault_2m.total) },
  { head: 'vm_exits', width: 10, cell: (s) => grouped(s.rates.events.vm_exits.total) },
  { head: 'dtlb MPKI', width: 10, cell: (s) => fixed(s.rates.tlb.dtlb.mpki.total, 2) },
  { head: 'stlb MPKI', width: 10, cell: (s) => fixed(s.rates.tlb.stlb.mpki.total, 2) },
  { head: 'refs/walk', width: 10, cell: (s) => fixed(s.rates.walks.refs_per_walk, 2) },
];

/** The header line of the interval rows (`#` first, as perf stat -I). */
export function intervalHeader(): string {
  return '#' + ROW_COLUMNS.map((c, i) => c.head.padStart(i === 0 ? c.width - 1 : c.width)).join('');
}

/** One interval row as text, under intervalHeader. */
export function intervalRow(s: Sample): string {
  return ROW_COLUMNS.map((c) => c.cell(s).padStart(c.width)).join('');
}

/** CSV cell: numbers as JavaScript prints them (exact and deterministic), text quoted when it must be. */
const csvCell = (v: string | number): string => (typeof v === 'number' ? String(v) : /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
const csvLine = (cells: (string | number)[]): string => cells.map(csvCell).join(',') + '\n';

/** The CSV header of interval rows. */
export function intervalCsvHeader(): string {
  const cols = ['index', 'sim_ns', 'instructions_total', 'instructions'];
  for (const e of EVENTS) cols.push(e, `${e}_per_m_instr`, `${e}_per_sim_s`);
  for (const l of LEVELS) cols.push(`${l}_misses`, `${l}_misses_4k`, `${l}_misses_2m`, `${l}_misses_1g`, `${l}_mpki`, `${l}_miss_ratio`);
  cols.push('walks', 'refs_per_walk', 'guest_refs_per_walk', 'ept_refs_per_walk');
  return csvLine(cols);
}

/** One interval row as CSV, under intervalCsvHeader. */
export function intervalCsvRow(s: Sample): string {
  const r = s.rates;
  const cells: number[] = [s.index, s.simulatedNs, s.instructions, s.counters.instructions ?? 0];
  for (const e of EVENTS) cells.push(r.events[e].total, r.events[e].per_million_instructions, r.events[e].per_sim_second);
  for (const l of LEVELS) {
    const t = r.tlb[l];
    cells.push(t.misses.total, t.misses['4k'], t.misses['2m'], t.misses['1g'], t.mpki.total, t.miss_ratio);
  }
  cells.push(r.walks.walks, r.walks.refs_per_walk, r.walks.guest_refs_per_walk, r.walks.ept_refs_per_walk);
  return csvLine(cells);
}

/**
 * The counters as CSV (stat --csv without -I): one row per report line, scope `run` or
 * `roi N`, the value, and up to three notes as value/unit pairs.
 */
export function statCsv(r: RunResult): string {
  let out = csvLine(['scope', 'counter', 'value', 'metric1', 'metric1_unit', 'metric2', 'metric2_unit', 'metric3', 'metric3_unit']);
  const rows = (scope: string, lines: StatLine[]) => {
    for (const l of lines) {
      const cells: (string | number)[] = [scope, l.name, l.value];
      for (let i = 0; i < 3; i++) cells.push(l.notes[i]?.value ?? '', l.notes[i]?.unit ?? '');
      out += csvLine(cells);
    }
  };
  rows('run', [...statLines(r.counters, r.simulated, r.rates), ...eptLines(r.memory)]);
  r.roi.forEach((roi, i) => rows(`roi ${i}`, statLines(roi.counters, roi.simulated, roi.rates)));
  return out;
}
