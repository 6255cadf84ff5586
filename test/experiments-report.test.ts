// hugevisor report: the SVG charts carry one bar per point with the database's value (parsed
// back out of the SVG), the time series has a line per configuration, and the HTML page is
// self-contained and draws every chart in headless Chromium (screenshot not blank, no console
// messages). Without a chromium binary the browser test skips, saying so.
import test from 'ava';
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { runSweep } from '../src/experiments/pool.ts';
import { BAR_METRICS, configurationOf, SERIES_FILE, writeReport, type ReportFiles } from '../src/experiments/report.ts';
import { expandSpec } from '../src/experiments/spec.ts';
import { decodePng } from './fixtures/png.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'hv-report-'));
const chromium = ['chromium', 'chromium-browser']
  .flatMap((b) => (process.env.PATH ?? '').split(delimiter).map((d) => join(d, b)))
  .find((p) => existsSync(p));

let made: Promise<{ report: ReportFiles; rows: Record<string, unknown>[] }> | undefined;
/** One small sweep (8 points with a time series) and its report, shared by the tests. */
function report() {
  made ??= (async () => {
    const spec = join(dir, 'grid.json');
    writeFileSync(
      spec,
      JSON.stringify({
        guests: [{ guest: 'mem-scan', args: [1 << 20] }, { guest: 'pointer-chase', args: [1 << 20, 20000] }],
        config: { memory: 8 << 20 },
        sampleEvery: { instructions: 100000 },
        vary: { ept: [false, true], guestPageSize: ['4k', '2m'] },
      }),
    );
    const out = join(dir, 'out');
    const s = await runSweep(expandSpec(spec), { outDir: out, jobs: 2 });
    if (s.failed.length) throw s.failed[0]!.error;
    const db = new Database(s.db, { readonly: true });
    const rows = db.prepare('SELECT * FROM points').all() as Record<string, unknown>[];
    db.close();
    return { report: await writeReport(out), rows };
  })();
  return made;
}

/** Tags open and close in order: the SVG is one well-formed element tree. */
function wellFormed(svg: string): boolean {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    if (m[3]) continue;
    if (!m[1]) stack.push(m[2]!);
    else if (stack.pop() !== m[2]) return false;
  }
  return stack.length === 0 && svg.startsWith('<svg');
}

test('each bar chart SVG has one bar per point, at the value the database holds', async (t) => {
  const { report: r, rows } = await report();
  t.is(r.points, 8);
  t.deepEqual(r.svgs.map((p) => p.slice(r.dir.length + 1)).sort(), [...BAR_METRICS.map((m) => m.file), SERIES_FILE].sort());
  for (const m of BAR_METRICS) {
    const svg = readFileSync(join(r.dir, m.file), 'utf8');
    t.true(wellFormed(svg), `${m.file} is well-formed`);
    const bars = new Map<string, number>();
    const re = new RegExp(`aria-label="guest: ([^;]+); ${m.axis}: ([^;]+); configuration: ([^"]+)"`, 'g');
    for (const b of svg.matchAll(re)) bars.set(`${b[1]} | ${b[3]}`, Number(b[2]));
    t.is(bars.size, rows.length, `${m.file}: a bar per point`);
    for (const row of rows) {
      const got = bars.get(`${row.guest} | ${configurationOf(row)}`);
      const want = Number(row[m.column]) * (m.scale ?? 1);
      t.true(got !== undefined && Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${m.file}: ${row.label} is ${got}, want ${want}`);
    }
  }
});

test('the fault-rate series SVG has a line per configuration for each guest', async (t) => {
  const { report: r, rows } = await report();
  const svg = readFileSync(join(r.dir, SERIES_FILE), 'utf8');
  t.true(wellFormed(svg));
  const lines = new Set([...svg.matchAll(/aria-label="simulated ms: [^;]+; EPT violations \/ sim-s: [^;]+; configuration: ([^"]+)"/g)].map((m) => m[1]));
  t.deepEqual([...lines].sort(), [...new Set(rows.map(configurationOf))].sort());
});

test('report.html is self-contained: the vega runtime inlined, nothing fetched', async (t) => {
  const { report: r } = await report();
  const html = readFileSync(r.html, 'utf8');
  t.false(/<script[^>]+src=|<link[^>]+href=|url\(\s*['"]?https?:/i.test(html), 'no external script, stylesheet or resource');
  t.true(html.includes('vegaEmbed('));
  t.regex(html, /<td>pointer-chase<\/td>/);
});

(chromium ? test : test.skip)('headless Chromium draws every chart of report.html: a screenshot that is not blank, no console message', async (t) => {
  t.timeout(3 * 60_000);
  const { report: r } = await report();
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--enable-logging=stderr', '--v=0', '--virtual-time-budget=15000'];
  const url = `file://${r.html}`;
  const dom = await run(chromium!, [...flags, '--dump-dom', url], { maxBuffer: 64 << 20 });
  t.regex(dom.stdout, new RegExp(`<body data-drawn="${BAR_METRICS.length + 1}">`), 'every chart rendered');
  t.notRegex(dom.stdout, /data-error=/);
  t.deepEqual(dom.stderr.split('\n').filter((l) => /:CONSOLE[:(]/.test(l)), [], 'no console message');
  const shot = join(dir, 'report.png');
  await run(chromium!, [...flags, '--window-size=1200,1800', `--screenshot=${shot}`, url]);
  const img = decodePng(readFileSync(shot));
  t.is(img.width, 1200);
  let ink = 0;
  const colors = new Set<number>();
  for (let i = 0; i < img.rgba.length; i += 4) {
    const [r0, g, b] = [img.rgba[i]!, img.rgba[i + 1]!, img.rgba[i + 2]!];
    if (r0 < 235 || g < 235 || b < 235) ink++;
    if (Math.max(r0, g, b) - Math.min(r0, g, b) > 60) colors.add((r0 >> 4) * 256 + (g >> 4) * 16 + (b >> 4));
  }
  t.true(ink / (img.width * img.height) > 0.02, `ink covers ${((100 * ink) / (img.width * img.height)).toFixed(1)}% of the page`);
  t.true(colors.size >= 4, `the bars show the series colours (${colors.size} saturated colours)`);
});

if (!chromium) console.warn('experiments-report: no chromium on PATH: the headless-browser test is skipped (Debian: apt-get install chromium)');
