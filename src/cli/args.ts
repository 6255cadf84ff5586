/**
 * Command-line parsing for `hugevisor`: commands, the CLI's own flags, and the run flags
 * of the table in src/cli/flags.ts, which become a VM config. Messages name the flag and
 * what it accepts (test/cli-*.test.ts checks them exactly). No library: the grammar is
 * small and the messages are part of the interface.
 */
import { ConfigError } from '../api/index.ts';
import { configFlag, configFlagsUsage, parseSize, setConfigPath } from './flags.ts';

export { parseSize, parseU64 } from './flags.ts';

export interface RunOptions {
  guest: string;
  /** The VM config the run flags give (validated by createVm, errors mapped back to flags). */
  config: Record<string, unknown>;
  /** The config flags given, in order (to name a flag in a config error). */
  given: string[];
  json: boolean;
  debug: boolean;
  /** ept-dump: GPA ranges [start, end) to print after the run. */
  gpaRanges?: [number, number][];
  /** stat -I: print a row every this much simulated time or this many instructions. */
  interval?: StatInterval;
  /** stat --csv: CSV on stdout (the interval rows, or the counters without -I). */
  csv?: boolean;
  /** stat --quiet: no live status line. */
  quiet?: boolean;
  /** run/stat --trace: write a Chrome trace-event JSON file of the run (src/cli/trace.ts). */
  trace?: string;
  /** --trace-max-events: the most events the trace keeps (the latest ones). */
  traceMaxEvents?: number;
  /** --trace-interval: the trace's sampling interval (stat's -I sets it too). */
  traceInterval?: StatInterval;
}

export type StatInterval = { simulatedNs: number } | { instructions: number };

export type Command = { kind: 'help' } | { kind: 'list'; debug: boolean; json: boolean } | ({ kind: 'run' | 'ept-dump' | 'stat' } & RunOptions);

/** The shortest -I: below it a long run prints millions of rows. */
export const MIN_INTERVAL_NS = 1000;
export const MIN_INTERVAL_INSTRUCTIONS = 1000;
const TIME_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9 };
const COUNT_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };

/**
 * A stat -I interval: simulated time (250us, 1ms, 10ms, 1s, 500000ns; a bare number is ms,
 * as perf stat -I reads it) or instructions with the suffix insn (100000insn, 500kinsn, 1Minsn;
 * decimal multipliers).
 */
export function parseInterval(text: string, flag = '-I'): StatInterval {
  const t = text.trim();
  const bad = (why = '') =>
    new ConfigError(`${flag}: '${text}' is not an interval${why} (simulated time: 250us, 1ms, 10ms, 1s; instructions: 100000insn, 500kinsn, 1Minsn)`);
  const time = /^(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)?$/i.exec(t);
  if (time) {
    const ns = Number(time[1]) * TIME_UNITS[(time[2] ?? 'ms').toLowerCase()]!;
    if (!Number.isSafeInteger(ns)) throw bad(' of whole nanoseconds');
    if (ns < MIN_INTERVAL_NS) throw bad(` of at least ${MIN_INTERVAL_NS} ns`);
    return { simulatedNs: ns };
  }
  const insn = /^(\d+(?:\.\d+)?)\s*([kmg]?)insn$/i.exec(t);
  if (insn) {
    const n = Number(insn[1]) * COUNT_UNITS[insn[2]!.toLowerCase()]!;
    if (!Number.isSafeInteger(n)) throw bad(' of whole instructions');
    if (n < MIN_INTERVAL_INSTRUCTIONS) throw bad(` of at least ${MIN_INTERVAL_INSTRUCTIONS} instructions`);
    return { instructions: n };
  }
  throw bad();
}

/** A GPA range START-END (sizes or hex, END exclusive), e.g. 0x800000-0xa00000 or 8M-10M. */
export function parseGpaRange(text: string): [number, number] {
  const m = /^\s*([^-\s]+)\s*-\s*([^-\s]+)\s*$/.exec(text);
  const bad = () => new ConfigError(`--gpa: '${text}' is not a range START-END with START < END (e.g. 0x800000-0xa00000, 8M-10M)`);
  if (!m) throw bad();
  let a: number;
  let b: number;
  try {
    a = parseSize(m[1], '--gpa');
    b = parseSize(m[2], '--gpa');
  } catch {
    throw bad();
  }
  if (a >= b) throw bad();
  return [a, b];
}
/** The CLI's own flags (not config): value-less ones, and --gpa, -I. */
const OWN_BOOL_FLAGS = new Set(['--json', '--debug', '--csv', '--quiet']);
/** run/stat's trace flags, each with a value. */
const TRACE_FLAGS = new Set(['--trace', '--trace-max-events', '--trace-interval']);
/** The largest --trace-max-events: about 200 bytes an event, a few hundred MB of JSON. */
export const MAX_TRACE_EVENTS = 2_000_000;
/** Flags that belong to one command only. */
const STAT_ONLY = new Set(['--csv', '--quiet']);

export function parseArgs(argv: readonly string[]): Command {
  const debug = argv.includes('--debug');
  if (argv.length === 0) throw new ConfigError('missing command (try: hugevisor --help)');
  if (argv.some((a) => a === '--help' || a === '-h') || argv[0] === 'help') return { kind: 'help' };
  const [cmd, ...rest] = argv as [string, ...string[]];
  if (cmd === 'list') {
    const extra = rest.filter((a) => a !== '--debug' && a !== '--json');
    if (extra.length) throw new ConfigError(`list takes no arguments, got '${extra[0]}'`);
    return { kind: 'list', debug, json: rest.includes('--json') };
  }
  if (cmd !== 'run' && cmd !== 'ept-dump' && cmd !== 'stat') {
    throw new ConfigError(cmd.startsWith('-') ? `unknown option '${cmd}' (try: hugevisor --help)` : `unknown command '${cmd}' (commands: run, stat, ept-dump, list, sweep, worker, results, report; try: hugevisor --help)`);
  }

  const o: RunOptions = { guest: '', config: {}, given: [], json: false, debug };
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') {
      positional.push(...rest.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(0, eq) : a;
    if (OWN_BOOL_FLAGS.has(flag)) {
      if (eq >= 0) throw new ConfigError(`${flag} takes no value`);
      if (STAT_ONLY.has(flag) && cmd !== 'stat') throw new ConfigError(`${flag} belongs to stat (hugevisor stat <guest> ${flag})`);
      if (flag === '--json') o.json = true;
      if (flag === '--csv') o.csv = true;
      if (flag === '--quiet') o.quiet = true;
      continue;
    }
    const spec = configFlag(flag);
    if (TRACE_FLAGS.has(flag)) {
      if (cmd === 'ept-dump') throw new ConfigError(`${flag} belongs to run and stat (hugevisor run <guest> --trace FILE)`);
      let value: string;
      if (eq >= 0) value = a.slice(eq + 1);
      else {
        if (i + 1 >= rest.length) throw new ConfigError(`${flag} needs a value`);
        value = rest[++i]!;
      }
      if (flag === '--trace') {
        if (!value) throw new ConfigError('--trace needs a file name');
        o.trace = value;
      } else if (flag === '--trace-interval') o.traceInterval = parseInterval(value, flag);
      else {
        const n = /^\d+$/.test(value) ? Number(value) : NaN;
        if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_TRACE_EVENTS)) throw new ConfigError(`--trace-max-events: '${value}' is not a number of events from 1 to ${MAX_TRACE_EVENTS}`);
        o.traceMaxEvents = n;
      }
      continue;
    }
    const own = flag === '--gpa' || flag === '-I' || flag === '--interval';
    if (!spec && !own) throw new ConfigError(`unknown option '${flag}' (try: hugevisor --help)`);
    if (spec && !spec.metavar) {
      // A switch (--strict): no value.
      if (eq >= 0) throw new ConfigError(`${flag} takes no value`);
      setConfigPath(o.config, spec, spec.parse('', flag));
      o.given.push(flag);
      continue;
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      if (i + 1 >= rest.length) throw new ConfigError(`${flag} needs a value`);
      value = rest[++i]!;
    }
    if (!spec && flag !== '--gpa') {
      if (cmd !== 'stat') throw new ConfigError(`${flag} belongs to stat (hugevisor stat <guest> -I 1ms)`);
      o.interval = parseInterval(value, flag);
      continue;
    }
    if (!spec) {
      if (cmd !== 'ept-dump') throw new ConfigError('--gpa belongs to ept-dump (hugevisor ept-dump <guest> --gpa START-END)');
      (o.gpaRanges ??= []).push(parseGpaRange(value));
      continue;
    }
    setConfigPath(o.config, spec, spec.parse(value, flag));
    o.given.push(flag);
  }
  if (positional.length === 0) throw new ConfigError(`${cmd} needs a guest: an ELF file or a sample name (see: hugevisor list)`);
  if (positional.length > 1) throw new ConfigError(`${cmd} takes one guest, got '${positional[0]}' and '${positional[1]}'`);
  o.guest = positional[0]!;
  if (cmd === 'ept-dump') {
    if (o.json) throw new ConfigError('ept-dump prints text: --json belongs to run');
    if (o.config.ept === false) throw new ConfigError('ept-dump needs EPT: drop --ept off');
    return { kind: 'ept-dump', ...o };
  }
  if ((o.traceMaxEvents !== undefined || o.traceInterval) && !o.trace) throw new ConfigError(`${o.traceInterval ? '--trace-interval' : '--trace-max-events'} needs --trace FILE`);
  if (o.traceInterval && o.interval) throw new ConfigError('--trace-interval and -I: give one (with -I the trace samples at -I)');
  if (cmd === 'stat') {
    if (o.json && o.csv) throw new ConfigError('stat prints --json or --csv, not both');
    return { kind: 'stat', ...o };
  }
  return { kind: 'run', ...o };
}

export const USAGE = `usage: hugevisor run <guest.elf | sample-name> [options]
       hugevisor stat <guest.elf | sample-name> [-I INTERVAL] [--json | --csv] [--quiet] [run options]
       hugevisor ept-dump <guest.elf | sample-name> [--gpa START-END]... [run options]
       hugevisor list [--json]
       hugevisor sweep <spec.json | spec.yaml> [--out DIR] [--jobs N | --queue redis://HOST:PORT] [--quiet]
       hugevisor worker --queue redis://HOST:PORT [--stall-seconds S] [--quiet]
       hugevisor results <DIR | results.sqlite> [--csv | --jsonl] [--where "SQL"]
       hugevisor report <DIR | results.sqlite> [--out DIR]
       hugevisor --help

Boots a static x86-64 ELF guest (docs/guest-abi.md) on the hugevisor vCPU. Console output goes
to stdout as the guest prints it; a run summary goes to stderr at the end.

run options:
${configFlagsUsage()}
  --json                    print one JSON object (docs/cli.md) instead of console + summary
  --debug                   stack traces for errors
  --trace FILE              write the run as Chrome trace-event JSON (Perfetto, chrome://tracing)
                            on the simulated-time axis: VM exits, EPT violations, guest #PF,
                            ROI markers, host THP/khugepaged/swap events (also for stat)
  --trace-interval INTERVAL the trace's sampling interval (as -I; default 100us; stat's -I
                            sets it)
  --trace-max-events N      keep at most N events, the latest (default 200000)

stat options (and every run option; docs/cli.md "stat"):
  -I, --interval INTERVAL   a row of interval counts and rates every INTERVAL of simulated time
                            (250us, 1ms, 10ms, 1s; a bare number is ms) or instructions
                            (100000insn, 500kinsn, 1Minsn)
  --json                    one JSON object on stdout: the run's result plus intervals[]
  --csv                     CSV on stdout: the interval rows, or the counters without -I
  --quiet                   no live status line on stderr
stat runs the guest like run and prints a perf-stat-style counter report on stderr: events
with their rates per million instructions and per simulated second, TLB MPKI and miss
ratios, walk references per walk, for the run and for each region of interest.

ept-dump options (and every run option but --json):
  --gpa START-END           a guest-physical range to print, END exclusive, sizes or hex
                            (8M-10M, 0x800000-0xa00000); repeatable; default all guest memory
ept-dump runs the guest like run, with its console and the summary on stderr, then prints
on stdout each EPT leaf of the ranges beside the host mapping of its HVA (docs/cli.md).

sweep runs every point of a spec (guests × varied config values × repeats; docs/experiments.md)
on N worker threads (--jobs, default: the available cores) into DIR/results.sqlite (--out,
default <spec name>-results); points already there are skipped, so a rerun resumes.
  --queue redis://HOST:PORT put the points on a Redis queue instead; hugevisor worker
                            processes (any number, on any machines) run them, and the
                            results come back into this DIR/results.sqlite
  --quiet                   no progress bar (a line per point when stderr is not a terminal)
worker serves such a queue: it runs one point at a time, as a sweep's thread does, until
SIGINT or SIGTERM. A worker that dies mid-point has its point run again by another one,
--stall-seconds after its last sign of life (default 30).
results prints a results database as CSV (default) or JSON Lines, rows filtered by --where,
an SQL expression over its columns (stop_reason = 'exit' AND ept = 1). report writes
report.html (self-contained, opens offline) and the same charts as SVG files into --out
(default: report/ beside the database).

The exit code is the guest's exit status (mod 256); 2 = bad usage, file or image;
123 = the simulated host ran out of memory; 124 = a limit stopped the guest;
125 = the guest crashed (triple fault, strict I/O, MMIO).
`;
