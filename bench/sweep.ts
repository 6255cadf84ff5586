// `npm run bench -- sweep`: a 16-point sweep on a pool of 2 threads against the ideal, the sum
// of the points' own wall times (VM creation, run, close, measured in the worker) halved.
// The ratio covers everything a sweep adds: starting the pool threads and loading the addon
// in each, handing points out, storing each row in SQLite, and the tail where one thread
// idles. Bar: ≤ 1.2× (exit status 1 above it). The points are the memory-bound guests
// under EPT, host THP never/always × guest pages 4K/2M, twice each (the repeat is a new point).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSweep, workerModule } from '../src/experiments/pool.ts';
import { expandSpec } from '../src/experiments/spec.ts';

export const BAR = 1.2;
const JOBS = 2;
const MiB = 2 ** 20;

const dir = mkdtempSync(join(tmpdir(), 'hv-bench-sweep-'));
try {
  const spec = join(dir, 'bench.json');
  writeFileSync(
    spec,
    JSON.stringify({
      guests: [{ guest: 'mem-scan', args: [32 * MiB] }, { guest: 'pointer-chase', args: [32 * MiB, 600000] }],
      config: { memory: 64 * MiB },
      vary: { guestPageSize: ['4k', '2m'], 'host.thp.enabled': ['never', 'always'] },
      repeats: 2,
    }),
  );
  const sweep = expandSpec(spec);
  if (sweep.points.length !== 16) throw new Error(`the bench sweep has ${sweep.points.length} points, not 16`);
  const s = await runSweep(sweep, { outDir: join(dir, 'out'), jobs: JOBS });
  if (s.failed.length) throw s.failed[0]!.error;
  const ideal = s.pointSeconds / JOBS;
  const ratio = s.wallSeconds / ideal;
  console.log(`sweep: pool threads load ${workerModule().endsWith('.js') ? 'dist/experiments/worker.js' : 'the sources through tsx'}`);
  console.log(
    `sweep: ${s.ran} points on ${JOBS} threads in ${s.wallSeconds.toFixed(2)} s wall; points ${s.pointSeconds.toFixed(2)} s in all, ` +
      `/ ${JOBS} = ${ideal.toFixed(2)} s; ratio ${ratio.toFixed(3)}× (bar ≤ ${BAR}×: ${ratio <= BAR ? 'met' : 'NOT met'})`,
  );
  if (ratio > BAR) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
