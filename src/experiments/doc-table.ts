/**
 * A results database as a Markdown table inside a document: one row per point, formatted
 * from the deterministic columns only (counts and simulated time, never wall time), so the
 * same sweep writes the same table byte for byte. The table sits between two HTML comment
 * markers, and `replaceBetweenMarkers` rewrites only what is between them
 * (docs/experiments/seed-claim.md, scripts/experiment-seed.ts).
 * Columns: the `points` columns, and two parts of the simulated time from the cost model's
 * breakdown: page walks, and VM exits with the host's faults and zeroing.
 */

/** The columns a row shows: heading, and how a `points` row gives the cell. */
const COLUMNS: readonly [string, (r: Record<string, unknown>) => string][] = [
  ['guest', (r) => String(r.guest)],
  ['EPT', (r) => (Number(r.ept) ? 'on' : 'off')],
  ['host THP', (r) => (r.thp_enabled === null || r.thp_enabled === undefined ? '—' : String(r.thp_enabled))],
  ['guest pages', (r) => String(r.guest_page_size)],
  ['instructions', (r) => int(r.instructions)],
  ['STLB MPKI', (r) => fixed(r.stlb_mpki, 3)],
  ['walks', (r) => int(r.walks)],
  ['refs/walk', (r) => fixed(r.refs_per_walk, 2)],
  ['guest refs/walk', (r) => fixed(r.guest_refs_per_walk, 2)],
  ['EPT refs/walk', (r) => fixed(r.ept_refs_per_walk, 2)],
  ['EPT violations', (r) => (Number(r.ept) ? int(r.ept_violations) : '—')],
  ['EPT leaves 4K / 2M', (r) => (r.ept_pages_4k === null || r.ept_pages_4k === undefined ? '—' : `${int(r.ept_pages_4k)} / ${int(r.ept_pages_2m)}`)],
  ['walk ms', (r) => fixed(breakdownMs(r, ['walk_ref']), 3)],
  ['exits + host ms', (r) => fixed(breakdownMs(r, ['vm_exit', 'host_fault_4k', 'host_fault_2m', 'kib_zeroed', 'kib_copied', 'swap_io_page']), 3)],
  ['simulated ms', (r) => fixed(Number(r.simulated_seconds) * 1e3, 3)],
];

/** Simulated ms of some items of the cost model (the result's `simulated.breakdown`, cycles, over the config's clock). */
function breakdownMs(r: Record<string, unknown>, items: readonly string[]): number {
  const result = typeof r.result === 'string' ? JSON.parse(r.result) : r.result;
  const config = typeof r.config === 'string' ? JSON.parse(r.config) : r.config;
  const cycles = items.reduce((a, k) => a + Number(result?.simulated?.breakdown?.[k] ?? NaN), 0);
  return (cycles / Number(config?.costs?.clock_hz)) * 1e3;
}

function int(v: unknown): string {
  return v === null || v === undefined ? '—' : Number(v).toLocaleString('en-US');
}

function fixed(v: unknown, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(Number(v)) ? '—' : Number(v).toFixed(digits);
}

/** The table's heading and separator lines. */
export function tableHeader(): string[] {
  return [`| ${COLUMNS.map(([h]) => h).join(' | ')} |`, `|${COLUMNS.map(() => '---').join('|')}|`];
}

/** One point's line of the table. */
export function tableRow(r: Record<string, unknown>): string {
  return `| ${COLUMNS.map(([, f]) => f(r)).join(' | ')} |`;
}

const ORDER_THP: Record<string, number> = { never: 0, always: 1 };

/**
 * Rows in a fixed order whatever order the sweep finished them in: by guest (in the order
 * given), EPT off before on, THP never before always, 4K guest pages before 2M; repeats
 * beyond the first are left out (runs are deterministic).
 */
export function orderRows(rows: Record<string, unknown>[], guests: readonly string[]): Record<string, unknown>[] {
  const rank = (r: Record<string, unknown>) => [
    guests.indexOf(String(r.guest)),
    Number(r.ept),
    ORDER_THP[String(r.thp_enabled)] ?? -1,
    String(r.guest_page_size) === '4k' ? 0 : 1,
  ];
  return rows
    .filter((r) => Number(r.repeat ?? 0) === 0)
    .sort((a, b) => {
      const x = rank(a);
      const y = rank(b);
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
      return 0;
    });
}

/** The whole table (heading, separator, one line per point), without a trailing newline. */
export function markdownTable(rows: Record<string, unknown>[], guests: readonly string[]): string {
  return [...tableHeader(), ...orderRows(rows, guests).map(tableRow)].join('\n');
}

/** Replace what lies between `<!-- NAME:begin -->` and `<!-- NAME:end -->` (both kept); an error when either is missing. */
export function replaceBetweenMarkers(text: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`markers ${begin} … ${end} not found in order`);
  return `${text.slice(0, i + begin.length)}\n${body}\n${text.slice(j)}`;
}

/** The lines between the markers (what `replaceBetweenMarkers` wrote). */
export function betweenMarkers(text: string, name: string): string[] {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`markers ${begin} … ${end} not found in order`);
  return text.slice(i + begin.length, j).split('\n').filter((l) => l.trim() !== '');
}
