/**
 * `hugevisor report`: the charts and the table of a results database. Each chart is a
 * vega-lite spec, rendered twice from the same spec: as an SVG file through vega's Node API
 * (headless, no canvas), and live in one self-contained HTML page with the vega, vega-lite
 * and vega-embed browser builds inlined from node_modules, so the page opens offline.
 * Charts: grouped bars per guest across configurations (simulated time, EPT violations,
 * walk references per walk, STLB MPKI), a fault-rate time series when the sweep sampled
 * one, and a table of every point (docs/experiments.md "Reports").
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { dbPath, openResults, selectPoints } from './store.ts';

/** One bar chart: a column of `points` and how the axis names it. */
export interface BarMetric {
  file: string;
  title: string;
  column: string;
  axis: string;
  /** Multiply the column by this (seconds → ms). */
  scale?: number;
}

export const BAR_METRICS: readonly BarMetric[] = [
  { file: 'simulated-time.svg', title: 'Simulated time', column: 'simulated_seconds', axis: 'simulated ms', scale: 1e3 },
  { file: 'ept-violations.svg', title: 'EPT violations', column: 'ept_violations', axis: 'EPT violations' },
  { file: 'refs-per-walk.svg', title: 'Memory references per page walk (per STLB miss)', column: 'refs_per_walk', axis: 'references per walk' },
  { file: 'stlb-mpki.svg', title: 'STLB misses per 1,000 instructions', column: 'stlb_mpki', axis: 'STLB MPKI' },
];
export const SERIES_FILE = 'fault-rates.svg';

/** A point's configuration as a chart names it: its label without the guest and the repeat. */
export function configurationOf(row: { guest?: unknown; label?: unknown }): string {
  const label = String(row.label).replace(/ #\d+$/, '');
  const rest = label.startsWith(`${row.guest} `) ? label.slice(String(row.guest).length + 1) : label === row.guest ? '' : label;
  return rest || 'base config';
}

function barSpec(m: BarMetric, rows: Record<string, unknown>[]): TopLevelSpec {
  const values = rows.map((r) => ({ guest: r.guest, configuration: configurationOf(r), value: r[m.column] === null ? null : Number(r[m.column]) * (m.scale ?? 1) }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: m.title,
    width: { step: 14 },
    height: 220,
    data: { values },
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: { field: 'guest', type: 'nominal', title: 'guest', axis: { labelAngle: 0 } },
      xOffset: { field: 'configuration', type: 'nominal' },
      // Repeats of a point are deterministic but may be many: one bar, their mean.
      y: { aggregate: 'mean', field: 'value', type: 'quantitative', title: m.axis },
      color: { field: 'configuration', type: 'nominal', title: 'configuration', legend: { orient: 'bottom', columns: 2, labelLimit: 400 } },
    },
    config: { font: 'sans-serif' },
  } as TopLevelSpec;
}

function seriesSpec(samples: { guest: string; configuration: string; ms: number; rate: number }[]): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'EPT violations per simulated second, over the run',
    data: { values: samples },
    facet: { row: { field: 'guest', type: 'nominal', title: null } },
    spec: {
      width: 520,
      height: 140,
      mark: { type: 'line', point: false, tooltip: true },
      encoding: {
        x: { field: 'ms', type: 'quantitative', title: 'simulated ms' },
        y: { field: 'rate', type: 'quantitative', title: 'EPT violations / sim-s' },
        color: { field: 'configuration', type: 'nominal', title: 'configuration', legend: { orient: 'bottom', columns: 2, labelLimit: 400 } },
      },
    },
    resolve: { scale: { y: 'independent' } },
    config: { font: 'sans-serif' },
  } as TopLevelSpec;
}

/** An SVG of a vega-lite spec, rendered headless (vega's Node API; text measured without a canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** A browser build of a package, found beside its Node entry point (`build/`). */
function browserBuild(pkg: string, file: string): string {
  return readFileSync(join(dirname(fileURLToPath(import.meta.resolve(pkg))), file), 'utf8');
}

const escapeHtml = (s: unknown) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
/** Script text that cannot close its <script> element early. */
const inlineScript = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');

const TABLE_COLUMNS = ['guest', 'configuration', 'repeat', 'stop_reason', 'instructions', 'simulated_seconds', 'ept_violations', 'guest_pf', 'host_fault_4k', 'host_fault_2m', 'stlb_mpki', 'refs_per_walk', 'ept_pages_2m', 'wall_seconds'];

function fmt(v: unknown): string {
  if (typeof v !== 'number') return escapeHtml(v);
  return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toPrecision(4);
}

function html(title: string, specs: { id: string; spec: TopLevelSpec }[], rows: Record<string, unknown>[]): string {
  const table = [
    `<table><thead><tr>${TABLE_COLUMNS.map((c) => `<th>${c}</th>`).join('')}</tr></thead><tbody>`,
    ...rows.map((r) => `<tr>${TABLE_COLUMNS.map((c) => `<td>${fmt(c === 'configuration' ? configurationOf(r) : r[c])}</td>`).join('')}</tr>`),
    '</tbody></table>',
  ].join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}.chart{margin:1em 0}</style>
<script>${inlineScript(browserBuild('vega', 'vega.min.js'))}</script>
<script>${inlineScript(browserBuild('vega-lite', 'vega-lite.min.js'))}</script>
<script>${inlineScript(browserBuild('vega-embed', 'vega-embed.min.js'))}</script>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>${rows.length} points. Each chart is also an SVG file beside this page.</p>
${specs.map((s) => `<div class="chart" id="${s.id}"></div>`).join('\n')}
<h2>Points</h2>
${table}
<script>
const specs = ${inlineScript(JSON.stringify(Object.fromEntries(specs.map((s) => [s.id, s.spec]))))};
// data-drawn counts the charts that rendered; data-error holds the first failure (checked by test/experiments-report.test.ts).
Promise.all(Object.entries(specs).map(([id, spec]) => vegaEmbed('#' + id, spec, { actions: false, renderer: 'svg' })))
  .then((r) => { document.body.dataset.drawn = String(r.length); })
  .catch((e) => { document.body.dataset.error = String(e); console.error(e); });
</script>
</body></html>
`;
}

export interface ReportFiles {
  dir: string;
  html: string;
  svgs: string[];
  points: number;
}

/**
 * Write report.html and the SVG charts of a results database into `outDir` (default: `report/`
 * beside the database). Rows come in the order points finished, which varies between runs on
 * several threads; `order` puts them in a fixed one, so the SVGs come out byte for byte the same.
 */
export async function writeReport(dbOrDir: string, outDir?: string, opts: { order?: (rows: Record<string, unknown>[]) => Record<string, unknown>[] } = {}): Promise<ReportFiles> {
  const db = openResults(dbOrDir);
  let rows: Record<string, unknown>[];
  let samples: { guest: string; configuration: string; ms: number; rate: number }[];
  try {
    rows = selectPoints(db);
    if (opts.order) rows = opts.order(rows);
    samples = (
      db
        .prepare('SELECT p.guest, p.label, s.simulated_ns, s.rates FROM samples s JOIN points p ON p.key = s.point_key WHERE p.repeat = 0 ORDER BY p.rowid, s.idx')
        .all() as { guest: string; label: string; simulated_ns: number; rates: string }[]
    ).map((s) => ({ guest: s.guest, configuration: configurationOf(s), ms: s.simulated_ns / 1e6, rate: JSON.parse(s.rates).events.ept_violations.per_sim_second as number }));
  } finally {
    db.close();
  }
  const dir = resolve(outDir ?? join(dirname(dbPath(dbOrDir)), 'report'));
  mkdirSync(dir, { recursive: true });
  const charts = BAR_METRICS.map((m) => ({ id: m.file.replace(/\.svg$/, ''), file: m.file, spec: barSpec(m, rows) }));
  if (samples.length) charts.push({ id: 'fault-rates', file: SERIES_FILE, spec: seriesSpec(samples) });
  const svgs: string[] = [];
  for (const c of charts) {
    const p = join(dir, c.file);
    writeFileSync(p, await renderSvg(c.spec));
    svgs.push(p);
  }
  const page = join(dir, 'report.html');
  const sweeps = [...new Set(rows.map((r) => String(r.sweep)))].join(', ');
  writeFileSync(page, html(`hugevisor sweep: ${sweeps || 'no points'}`, charts, rows));
  return { dir, html: page, svgs, points: rows.length };
}
