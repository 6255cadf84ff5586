/**
 * The experiment commands (docs/experiments.md): `sweep` runs a spec's points on a pool of
 * threads into a results database, drawing a progress bar with ETA on a terminal (cli-progress)
 * or one plain line per point otherwise; `results` exports a database; `report` renders it.
 * Loaded by src/cli/main.ts only for these commands, so `run` never loads SQLite or the pool.
 */
import { SingleBar } from 'cli-progress';
import { basename, extname } from 'node:path';
import { ConfigError } from '../api/index.ts';
import { defaultJobs, runSweep, type SweepEvents } from '../experiments/pool.ts';
import { checkQueueUrl } from '../experiments/queue-url.ts';
import { expandSpec } from '../experiments/spec.ts';
import { exportResults } from '../experiments/export.ts';
import type { Io } from './main.ts';

export type ExperimentCommand =
  | { kind: 'sweep'; spec: string; out?: string; jobs?: number; queue?: string; quiet: boolean }
  | { kind: 'worker'; queue: string; stallSeconds: number; quiet: boolean }
  | { kind: 'results'; db: string; format: 'csv' | 'jsonl'; where?: string }
  | { kind: 'report'; db: string; out?: string };

/** How long a worker's job lock lives without renewal: a dead worker's point runs again elsewhere after at most about this long. */
export const DEFAULT_STALL_SECONDS = 30;

/** Exit code of a sweep in which some point failed (the others are stored; a rerun retries it). */
export const EXIT_POINTS_FAILED = 1;

/** Parse the arguments after `sweep`, `worker`, `results` or `report`. */
export function parseExperimentArgs(cmd: 'sweep' | 'worker' | 'results' | 'report', rest: readonly string[]): ExperimentCommand {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const valued = new Set(cmd === 'sweep' ? ['--out', '--jobs', '--queue'] : cmd === 'worker' ? ['--queue', '--stall-seconds'] : cmd === 'results' ? ['--where'] : ['--out']);
  const bool = new Set(cmd === 'sweep' || cmd === 'worker' ? ['--quiet', '--debug'] : cmd === 'results' ? ['--csv', '--jsonl', '--debug'] : ['--debug']);
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(0, eq) : a;
    if (bool.has(flag)) {
      if (eq >= 0) throw new ConfigError(`${flag} takes no value`);
      flags.set(flag, true);
    } else if (valued.has(flag)) {
      const v = eq >= 0 ? a.slice(eq + 1) : rest[++i];
      if (v === undefined) throw new ConfigError(`${flag} needs a value`);
      flags.set(flag, v);
    } else throw new ConfigError(`unknown option '${flag}' for ${cmd} (try: hugevisor --help)`);
  }
  if (cmd === 'worker') {
    if (positional.length) throw new ConfigError(`worker takes no argument, got '${positional[0]}'`);
    const q = flags.get('--queue');
    if (q === undefined) throw new ConfigError('worker needs --queue redis://HOST:PORT');
    const st = flags.get('--stall-seconds');
    const stallSeconds = st === undefined ? DEFAULT_STALL_SECONDS : /^\d+(\.\d+)?$/.test(String(st)) ? Number(st) : NaN;
    if (!(stallSeconds >= 1 && stallSeconds <= 86400)) throw new ConfigError(`--stall-seconds: '${st}' is not a number of seconds from 1 to 86400`);
    return { kind: 'worker', queue: checkQueueUrl(String(q)), stallSeconds, quiet: flags.has('--quiet') };
  }
  const what = cmd === 'sweep' ? 'a spec file (JSON or YAML)' : 'a results database or its folder';
  if (positional.length !== 1) throw new ConfigError(positional.length ? `${cmd} takes one argument, got '${positional[0]}' and '${positional[1]}'` : `${cmd} needs ${what}`);
  const arg = positional[0]!;
  if (cmd === 'sweep') {
    const j = flags.get('--jobs');
    let jobs: number | undefined;
    if (j !== undefined) {
      jobs = /^\d+$/.test(String(j)) ? Number(j) : NaN;
      if (!(Number.isSafeInteger(jobs) && jobs >= 1 && jobs <= 1024)) throw new ConfigError(`--jobs: '${j}' is not a number of threads from 1 to 1024`);
    }
    const q = flags.get('--queue');
    if (q !== undefined && jobs !== undefined) throw new ConfigError('sweep runs on --jobs threads or on --queue workers, not both');
    return { kind: 'sweep', spec: arg, out: flags.get('--out') as string | undefined, jobs, queue: q === undefined ? undefined : checkQueueUrl(String(q)), quiet: flags.has('--quiet') };
  }
  if (cmd === 'results') {
    if (flags.has('--csv') && flags.has('--jsonl')) throw new ConfigError('results prints --csv or --jsonl, not both');
    return { kind: 'results', db: arg, format: flags.has('--jsonl') ? 'jsonl' : 'csv', where: flags.get('--where') as string | undefined };
  }
  return { kind: 'report', db: arg, out: flags.get('--out') as string | undefined };
}

function seconds(s: number): string {
  return s < 10 ? `${s.toFixed(2)} s` : s < 600 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Progress: a bar with ETA on a terminal, one line per point otherwise. */
function progress(io: Io, tty: boolean): SweepEvents & { stop(): void } {
  let bar: SingleBar | null = null;
  // On a terminal a line goes above the bar: erase the bar's line, print, and the next update redraws it.
  const line = (s: string) => io.err(bar ? `\r\x1b[2K${s}\n` : s + '\n');
  return {
    start: (i) => {
      const where = i.queue ? ` on the workers of ${i.queue}` : ` on ${Math.min(i.jobs, i.toRun)} thread${Math.min(i.jobs, i.toRun) === 1 ? '' : 's'}`;
      io.err(`sweep: ${i.total} point${i.total === 1 ? '' : 's'}, ${i.skipped} already in ${i.db}, ${i.toRun} to run${i.toRun ? where : ''}\n`);
      if (tty && i.toRun > 0) {
        bar = new SingleBar({
          stream: { write: (s: string) => (io.err(s), true), isTTY: true, columns: 120 } as never,
          format: 'sweep [{bar}] {value}/{total} points | {percentage}% | elapsed {duration_formatted} | ETA {eta_formatted} | {last}',
          barsize: 30,
          hideCursor: false,
          etaBuffer: 8,
          fps: 4,
          noTTYOutput: false,
        });
        bar.start(i.toRun, 0, { last: '' });
      }
    },
    pointDone: (p, o, done, n) => {
      if (bar) bar.update(done, { last: p.label });
      else line(`[${done}/${n}] ${p.label}: ${o.result.stopReason}${o.result.exitStatus !== null ? ` ${o.result.exitStatus}` : ''}, ${(o.result.simulated.seconds * 1e3).toFixed(3)} ms simulated, ${seconds(o.wallSeconds)}`);
    },
    pointFailed: (p, e, done, n) => {
      line(`[${done}/${n}] ${p.label}: error: ${e.message}`);
      bar?.update(done, { last: p.label });
    },
    stop: () => {
      (bar as SingleBar | null)?.stop();
    },
  };
}

/** The default output folder: `<spec name>-results` in the current folder. */
export function defaultOutDir(spec: string): string {
  return `${basename(spec, extname(spec))}-results`;
}

export async function runExperimentCommand(c: ExperimentCommand, io: Io): Promise<number> {
  if (c.kind === 'results') {
    io.out(exportResults(c.db, c.format, c.where));
    return 0;
  }
  if (c.kind === 'report') {
    const { writeReport } = await import('../experiments/report.ts');
    const r = await writeReport(c.db, c.out);
    io.err(`report: ${r.points} points → ${r.html} and ${r.svgs.length} SVG charts in ${r.dir}\n`);
    return 0;
  }
  if (c.kind === 'worker') return runWorker(c, io);
  const sweep = expandSpec(c.spec);
  const out = c.out ?? defaultOutDir(c.spec);
  if (sweep.duplicates) io.err(`sweep: ${sweep.duplicates} point${sweep.duplicates === 1 ? '' : 's'} of the product run the same configuration as another (EPT off drops the host section) and run once\n`);
  const ev = progress(io, io.errIsTTY === true && !c.quiet);
  let s;
  try {
    s = await runSweep(sweep, { outDir: out, jobs: c.jobs ?? defaultJobs(), queue: c.queue, events: ev });
  } finally {
    ev.stop();
  }
  io.err(
    `sweep: ${s.ran} run, ${s.skipped} already there, ${s.failed.length} failed in ${seconds(s.wallSeconds)}` +
      (s.ran ? ` (${seconds(s.pointSeconds)} of point time)` : '') +
      ` → ${s.db}\n`,
  );
  for (const f of s.failed) io.err(`error: point ${f.point.index} (${f.point.label}): ${f.error.message}\n`);
  return s.failed.length ? EXIT_POINTS_FAILED : 0;
}

/**
 * `hugevisor worker --queue URL`: serve the queue until SIGINT or SIGTERM (the point in
 * hand finishes first). A line on stderr when it is ready and per point started and ended.
 */
async function runWorker(c: Extract<ExperimentCommand, { kind: 'worker' }>, io: Io): Promise<number> {
  const { serveQueue } = await import('../experiments/queue.ts');
  let stopped: () => void = () => {};
  const stop = new Promise<void>((r) => (stopped = r));
  const onSignal = () => stopped();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const say = (s: string) => io.err(`worker ${process.pid}: ${s}\n`);
  try {
    await serveQueue(c.queue, {
      stallSeconds: c.stallSeconds,
      stop,
      events: {
        ready: (i) => say(`serving ${i.queue}`),
        started: (d) => c.quiet || say(`started ${d.key} ${d.label}${d.attempt > 1 ? ` (attempt ${d.attempt})` : ''}`),
        done: (d, o) => c.quiet || say(`done ${d.key} ${d.label}: ${o.result.stopReason}, ${seconds(o.wallSeconds)}`),
        failed: (d, e) => say(`error: ${d.key} ${d.label}: ${e.message}`),
        error: (e) => say(`error: ${e.message}`),
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  say('stopped');
  return 0;
}
