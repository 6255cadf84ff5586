/**
 * Running a sweep: the points not yet in the results database go to a pool of worker
 * threads (piscina), one point per thread at a time, each VM closed after its point
 * (src/experiments/worker.ts); each finished point is stored at once, in its own
 * transaction (src/experiments/store.ts). The caller gets progress events and draws them.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import type { Point, Sweep } from './spec.ts';
import { ResultStore } from './store.ts';
import type { PointOutcome, PointTask } from './worker.ts';

export interface SweepEvents {
  /** Before the first point runs: how many the spec has and how many the database already holds. */
  start?(info: { total: number; skipped: number; toRun: number; jobs: number; db: string; queue?: string }): void;
  pointDone?(p: Point, o: PointOutcome, done: number, toRun: number): void;
  pointFailed?(p: Point, error: Error, done: number, toRun: number): void;
}

export interface SweepSummary {
  db: string;
  total: number;
  skipped: number;
  ran: number;
  failed: { point: Point; error: Error }[];
  wallSeconds: number;
  /** Sum of the points' own wall times (what one thread would have taken). */
  pointSeconds: number;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Every .ts file under a folder (src/ freshness check). */
function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/**
 * The pool threads' module. From dist/ it is dist/experiments/worker.js. From the sources
 * (a checkout under tsx), the built dist/experiments/worker.js when dist/ is at least as new
 * as every source file under src/api, src/kvm, src/mm, src/native, src/guest, src/util and
 * src/experiments; otherwise the tsx bootstrap.
 */
export function workerModule(): string {
  // From dist/ (dist/experiments/, or the CLI bundle in dist/cli/): dist/experiments/worker.js.
  if (import.meta.url.endsWith('.js')) return pathToFileURL(join(here, '..', 'experiments', 'worker.js')).href;
  const root = join(here, '..', '..');
  const built = join(root, 'dist', 'experiments', 'worker.js');
  if (existsSync(built)) {
    const src = join(root, 'src');
    const fresh = ['api', 'kvm', 'mm', 'native', 'guest', 'util', 'experiments'].every((d) =>
      tsFiles(join(src, d)).every((ts) => {
        const js = join(root, 'dist', relative(src, ts)).replace(/\.ts$/, '.js');
        return ts.includes(`${join('mm', 'stress')}`) || (existsSync(js) && statSync(js).mtimeMs >= statSync(ts).mtimeMs);
      }),
    );
    if (fresh) return pathToFileURL(built).href;
  }
  return pathToFileURL(join(here, 'worker-bootstrap.mjs')).href;
}

export function defaultJobs(): number {
  return availableParallelism();
}

/** What a pool thread or a queue worker is given to run point `p` (src/experiments/worker.ts). */
export function pointTask(sweep: Sweep, p: Point): PointTask {
  return { guest: p.guest, guestPath: p.guestPath, config: p.config, sampleEvery: sweep.sampleEvery };
}

/** Where a sweep's points are settled: stored (done) or reported (failed), one at a time, on the main thread. */
export interface Settle {
  done(p: Point, o: PointOutcome): void;
  failed(p: Point, error: Error): void;
}

/**
 * Run the points of `sweep` that `outDir`'s database does not hold, `jobs` at a time on
 * this machine's threads, or, with `queue` (a redis:// URL), on whatever `hugevisor worker`
 * processes serve that queue (src/experiments/queue.ts). Either way each finished point is
 * stored here, by this process, in its own transaction. A point that throws (its guest does
 * not fit its memory, say) is reported and not stored, so a rerun tries it again; the
 * others go on.
 */
export async function runSweep(sweep: Sweep, opts: { outDir: string; jobs?: number; queue?: string; events?: SweepEvents }): Promise<SweepSummary> {
  const t0 = performance.now();
  const jobs = opts.queue ? 0 : Math.max(1, opts.jobs ?? defaultJobs());
  const store = new ResultStore(opts.outDir);
  const ev = opts.events ?? {};
  try {
    const done = store.finishedKeys();
    const todo = sweep.points.filter((p) => !done.has(p.key));
    const skipped = sweep.points.length - todo.length;
    store.recordSweep({ name: sweep.name, specPath: sweep.specPath, specText: sweep.specText, jobs, total: sweep.points.length, skipped });
    ev.start?.({ total: sweep.points.length, skipped, toRun: todo.length, jobs, db: store.path, queue: opts.queue });
    const summary: SweepSummary = { db: store.path, total: sweep.points.length, skipped, ran: 0, failed: [], wallSeconds: 0, pointSeconds: 0 };
    if (todo.length === 0) return summary;
    let finished = 0;
    const settle: Settle = {
      done: (p, o) => {
        store.add(sweep.name, p, o);
        summary.ran++;
        summary.pointSeconds += o.wallSeconds;
        ev.pointDone?.(p, o, ++finished, todo.length);
      },
      failed: (p, error) => {
        summary.failed.push({ point: p, error });
        ev.pointFailed?.(p, error, ++finished, todo.length);
      },
    };
    if (opts.queue) {
      const { runOnQueue } = await import('./queue.ts');
      await runOnQueue(opts.queue, store.path, sweep, todo, settle);
    } else await runOnPool(sweep, todo, jobs, settle);
    summary.wallSeconds = (performance.now() - t0) / 1000;
    return summary;
  } finally {
    store.close();
  }
}

/** Node flags without `--import tsx` (both spellings); the tsx bootstrap worker registers tsx itself. */
export function withoutTsLoader(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--(import|loader|require)=tsx\b/.test(a)) continue;
    if ((a === '--import' || a === '--loader' || a === '--require') && /^tsx\b/.test(argv[i + 1] ?? '')) {
      i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/** The points on `jobs` threads of this process, one point per thread at a time. */
async function runOnPool(sweep: Sweep, todo: Point[], jobs: number, settle: Settle): Promise<void> {
  const pool = new Piscina<PointTask, PointOutcome>({
    filename: workerModule(),
    // A TypeScript loader the main thread runs under (tsx, in a checkout) is not needed by
    // the built worker module, and loading it again in every thread cost ~0.5 s of start-up.
    execArgv: withoutTsLoader(process.execArgv),
    minThreads: Math.min(jobs, todo.length),
    maxThreads: Math.min(jobs, todo.length),
    concurrentTasksPerWorker: 1,
    idleTimeout: 60_000,
  });
  try {
    await Promise.all(
      todo.map(async (p) => {
        try {
          settle.done(p, await pool.run(pointTask(sweep, p)));
        } catch (e) {
          settle.failed(p, e instanceof Error ? e : new Error(String(e)));
        }
      }),
    );
  } finally {
    await pool.destroy();
  }
}
