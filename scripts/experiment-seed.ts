/**
 * `npm run experiment:seed`: regenerate docs/experiments/seed-claim.md's table and charts.
 * Runs the sweep experiments/seed-npt-thp.json into a fresh build/seed-npt-thp-results/
 * (and its uncached twin, experiments/seed-npt-thp-uncached.json, beside it)
 * (every run from scratch: the figures are deterministic counts, so the table comes out the
 * same byte for byte), renders the report's SVG charts into docs/experiments/seed-claim/,
 * and rewrites the table between the doc's `seed-table` markers.
 *
 *   node --import tsx scripts/experiment-seed.ts [--jobs N] [--keep]
 *
 * --keep reuses the results folder (the sweep then runs only the points it lacks).
 * test/experiment-seed.test.ts re-runs one guest's points through `runSeedPoints` and checks
 * the doc's rows for it.
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runSweep } from '../src/experiments/pool.ts';
import { writeReport } from '../src/experiments/report.ts';
import { expandSpec, readSpec } from '../src/experiments/spec.ts';
import { openResults, selectPoints } from '../src/experiments/store.ts';
import { markdownTable, orderRows, replaceBetweenMarkers } from '../src/experiments/doc-table.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SPEC = join(ROOT, 'experiments', 'seed-npt-thp.json');
/** The same grid for one guest with every TLB and walk cache off: each walk costs the reference counts of docs/mmu-model.md. */
export const UNCACHED_SPEC = join(ROOT, 'experiments', 'seed-npt-thp-uncached.json');
export const DOC = join(ROOT, 'docs', 'experiments', 'seed-claim.md');
export const CHART_DIR = join(ROOT, 'docs', 'experiments', 'seed-claim');
export const MARKER = 'seed-table';
export const UNCACHED_MARKER = 'seed-uncached-table';

/** The spec's guests, in the spec's order (the table's row order). */
export function specGuests(spec = SPEC): string[] {
  return (readSpec(spec).spec.guests ?? []).map((g) => (typeof g === 'string' ? g : g.guest));
}

/**
 * Run the spec's points (only those of `guests` when given) into `outDir` and return their
 * database rows, restricted to the points this spec expands to.
 */
export async function runSeedPoints(outDir: string, opts: { spec?: string; guests?: readonly string[]; jobs?: number; log?: (s: string) => void } = {}): Promise<Record<string, unknown>[]> {
  const sweep = expandSpec(opts.spec ?? SPEC);
  if (opts.guests) sweep.points = sweep.points.filter((p) => opts.guests!.includes(p.guest));
  const s = await runSweep(sweep, {
    outDir,
    jobs: opts.jobs ?? 2,
    events: opts.log ? { pointDone: (p, o, done, n) => opts.log!(`[${done}/${n}] ${p.label}: ${(o.result.simulated.seconds * 1e3).toFixed(3)} ms simulated, ${o.wallSeconds.toFixed(2)} s`) } : undefined,
  });
  if (s.failed.length) throw new Error(`points failed: ${s.failed.map((f) => `${f.point.label}: ${f.error.message}`).join('; ')}`);
  const keys = new Set(sweep.points.map((p) => p.key));
  const db = openResults(outDir);
  try {
    return selectPoints(db).filter((r) => keys.has(String(r.key)));
  } finally {
    db.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const j = argv.indexOf('--jobs');
  const jobs = j >= 0 ? Number(argv[j + 1]) : 2;
  const out = join(ROOT, 'build', 'seed-npt-thp-results');
  const outUncached = join(ROOT, 'build', 'seed-npt-thp-uncached-results');
  if (!argv.includes('--keep')) for (const d of [out, outUncached]) rmSync(d, { recursive: true, force: true });
  const log = (s: string) => process.stderr.write(s + '\n');
  const rows = await runSeedPoints(out, { jobs, log });
  const uncached = await runSeedPoints(outUncached, { spec: UNCACHED_SPEC, jobs, log });
  const report = await writeReport(out, join(out, 'report'), { order: (r) => orderRows(r, specGuests()) });
  mkdirSync(CHART_DIR, { recursive: true });
  for (const f of readdirSync(CHART_DIR)) if (f.endsWith('.svg')) rmSync(join(CHART_DIR, f));
  for (const svg of report.svgs) copyFileSync(svg, join(CHART_DIR, basename(svg)));
  const doc = readFileSync(DOC, 'utf8');
  let text = replaceBetweenMarkers(doc, MARKER, markdownTable(rows, specGuests()));
  text = replaceBetweenMarkers(text, UNCACHED_MARKER, markdownTable(uncached, specGuests(UNCACHED_SPEC)));
  writeFileSync(DOC, text);
  log(`experiment:seed: ${rows.length} points; table → ${DOC}; ${report.svgs.length} charts → ${CHART_DIR}; full report: ${report.html}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`experiment:seed: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
