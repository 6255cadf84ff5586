/**
 * The `hugevisor` command line: `run` a guest (an ELF file or a sample from build/guests),
 * `stat` it (a counter report, src/cli/stat-format.ts), `ept-dump` its EPT, `list` the
 * samples, `sweep` a spec into a results database and export it with `results`
 * (src/cli/experiments.ts), `--help`. Every failure the user can cause prints one line
 * `error: ...` and exits non-zero; stack traces only with --debug (docs/style.md rule 7).
 * docs/cli.md documents flags, the --json shape and the exit codes.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { ConfigError, createVm, HugevisorError, loadGuest, nativeAddonPath, sampleNames, samplePath, samples as sampleInfos, samplesDirectory, type RunResult, type Sample, type Vm, type VmConfig } from '../api/index.ts';
import { parseArgs, USAGE, type RunOptions } from './args.ts';
import { formatEptDump } from './ept-dump.ts';
import { flagForPath } from './flags.ts';
import { EXIT_INTERNAL, EXIT_USAGE, exitCodeFor, jsonResult, summary } from './format.ts';
import { formatSampleList } from './samples.ts';
import { intervalCsvHeader, intervalCsvRow, intervalHeader, intervalRow, statCsv, statReport } from './stat-format.ts';
import { StatusLine } from './status.ts';
import { DEFAULT_TRACE_INTERVAL, DEFAULT_TRACE_MAX_EVENTS, TraceRecorder } from './trace.ts';

/** Output streams: text, or bytes written as they are (the guest's console is bytes). */
export interface Io {
  out(data: string | Uint8Array): void;
  err(data: string | Uint8Array): void;
  /** stderr is a terminal: stat draws its live status line there. */
  errIsTTY?: boolean;
}
/**
 * The process streams. A reader that goes away (`hugevisor run x | head -1`) makes later
 * writes fail with EPIPE, reported asynchronously: drop further output quietly instead of
 * dying with an unhandled 'error' event (the run itself is synchronous and completes).
 */
function processIo(): Io {
  const closed = { out: false, err: false };
  const guard = (name: 'out' | 'err', stream: NodeJS.WriteStream): void => {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      closed[name] = true;
    });
  };
  guard('out', process.stdout);
  guard('err', process.stderr);
  return {
    out: (s) => void (closed.out || process.stdout.write(s)),
    err: (s) => void (closed.err || process.stderr.write(s)),
    errIsTTY: process.stderr.isTTY === true,
  };
}

class CliError extends HugevisorError {
  constructor(message: string) {
    super('EIO', message);
  }
}

/** A guest argument is a file when it looks like a path or exists; otherwise a sample name. */
function resolveGuest(arg: string): { name: string; path: string } {
  const looksLikePath = arg.includes('/') || arg.endsWith('.elf');
  if (!looksLikePath) {
    if (sampleNames().includes(arg)) return { name: arg, path: samplePath(arg) };
    if (!existsSync(arg)) {
      throw new CliError(`unknown sample '${arg}' (samples: ${sampleNames().join(', ') || 'none built'}; or give a path to an ELF file)`);
    }
  }
  if (!existsSync(arg)) throw new CliError(`cannot read '${arg}': no such file`);
  if (statSync(arg).isDirectory()) throw new CliError(`cannot read '${arg}': is a directory`);
  return { name: arg, path: arg };
}

/** What the CLI builds VMs with; tests pass a factory whose VM runs a scripted vCPU, and a wall clock. */
export interface CliDeps {
  createVm?: typeof createVm;
  /** Wall-clock ms for stat's live status line (default performance.now). */
  now?: () => number;
}

/** createVm with a config error on a path reported under the flag that set it. */
function createVmFromFlags(o: RunOptions, config: VmConfig, bytes: Uint8Array, name: string, deps: CliDeps): Vm {
  try {
    return (deps.createVm ?? createVm)(config, { bytes, name });
  } catch (e) {
    const flag = e instanceof ConfigError && e.path !== undefined ? flagForPath(e.path, o.given) : undefined;
    if (flag) throw new ConfigError(`${flag}: ${(e as ConfigError).detail}`);
    throw e;
  }
}

/** --trace: a recorder fed by the run's time series, or null without the flag. */
function traceRecorder(o: RunOptions, guest: string): TraceRecorder | null {
  if (!o.trace) return null;
  return new TraceRecorder(o.traceMaxEvents ?? DEFAULT_TRACE_MAX_EVENTS, { guest, interval: o.interval ?? o.traceInterval ?? DEFAULT_TRACE_INTERVAL });
}

/** Write the trace file and say so on stderr (one line: events kept and dropped). */
function writeTrace(o: RunOptions, rec: TraceRecorder, r: RunResult, io: Io): void {
  const text = rec.finish(r);
  try {
    writeFileSync(o.trace!, text);
  } catch (e) {
    throw new CliError(`cannot write trace '${o.trace}': ${(e as Error).message}`);
  }
  const info = JSON.parse(text).otherData as { kept: number; dropped: number };
  io.err(`trace: ${info.kept} events${info.dropped ? ` (${info.dropped} older ones dropped: --trace-max-events ${rec.maxEvents})` : ''} → ${o.trace}\n`);
}

/**
 * run, or ept-dump: the same run with the guest's console and the summary on stderr, then
 * the EPT view of each --gpa range on stdout (src/cli/ept-dump.ts).
 */
function run(o: RunOptions, io: Io, deps: CliDeps, dump = false): number {
  const guest = resolveGuest(o.guest);
  // ept-dump: stdout is the dump's; the guest's console moves to stderr. The console is
  // streamed as the bytes the guest wrote, whatever they are, and never truncated.
  let lastConsoleByte = -1;
  const consoleOut = (b: Uint8Array): void => {
    lastConsoleByte = b[b.length - 1]!;
    if (dump) io.err(b);
    else io.out(b);
  };
  const { bytes } = loadGuest(guest.path, guest.name);
  // Bounded: the VM passes on at most MAX_LOG_LINES + 3 diagnostics per run (src/kvm/vm.ts).
  const log: string[] = [];
  const config: VmConfig = {
    ...o.config,
    onConsoleBytes: o.json ? undefined : consoleOut,
    onLog: (m) => {
      log.push(m);
      if (!o.json) io.err(`hugevisor: ${m}\n`);
    },
  };
  const vm = createVmFromFlags(o, config, bytes, guest.name, deps);
  const rec = traceRecorder(o, guest.name);
  const r = (rec ? vm.run({ sampleEvery: o.traceInterval ?? DEFAULT_TRACE_INTERVAL, onSample: (s) => rec.sample(s, vm) }) : vm.run()) ?? vm.result();
  if (rec) writeTrace(o, rec, r, io);
  if (o.json) {
    io.out(JSON.stringify(jsonResult(r, { guest: guest.name, path: guest.path, addon: nativeAddonPath(), config: vm.effectiveConfig(), log })) + '\n');
  } else {
    // Keep the summary off the guest's last line when it did not end one.
    if (lastConsoleByte >= 0 && lastConsoleByte !== 0x0a) io.err('\n');
    if (r.error) io.err(`error: ${r.error.message}\n`);
    io.err(summary(guest.name, r));
  }
  if (dump) {
    const ranges = o.gpaRanges ?? [[0, vm.effectiveConfig().memory]];
    io.out(ranges.map(([a, b]) => formatEptDump(vm.eptView(a, b))).join('\n\n') + '\n');
  }
  return exitCodeFor(r);
}

/** Without -I, a terminal's status line is fed by a sample this often (the run is the same either way). */
const STATUS_SAMPLE_INSTRUCTIONS = 1 << 20;

/**
 * stat: run the guest as run does and print the counter report on stderr (the console
 * stays on stdout), interval rows with -I as the guest runs, or --json / --csv on stdout
 * instead (with --csv the console moves to stderr). A terminal gets a live status line.
 */
function stat(o: RunOptions, io: Io, deps: CliDeps): number {
  const guest = resolveGuest(o.guest);
  const { bytes } = loadGuest(guest.path, guest.name);
  const status = new StatusLine((s) => io.err(s), deps.now ?? (() => performance.now()), io.errIsTTY === true && !o.quiet);
  const consoleTo = o.csv ? io.err : io.out;
  let lastConsoleByte = -1;
  const log: string[] = [];
  const config: VmConfig = {
    ...o.config,
    onConsoleBytes: o.json
      ? undefined
      : (b) => {
          status.clear();
          lastConsoleByte = b[b.length - 1]!;
          consoleTo(b);
        },
    onLog: (m) => {
      log.push(m);
      if (o.json) return;
      status.clear();
      io.err(`hugevisor: ${m}\n`);
    },
  };
  const vm = createVmFromFlags(o, config, bytes, guest.name, deps);
  const rec = traceRecorder(o, guest.name);
  const intervals: Sample[] = [];
  const progress = { instructions: 0, simulatedNs: 0, guestPf: 0 };
  const onSample = (s: Sample): void => {
    progress.instructions = s.instructions;
    progress.simulatedNs = s.simulatedNs;
    progress.guestPf += s.counters.exc_pf ?? 0;
    if (o.interval) {
      if (o.json) intervals.push(s);
      else if (o.csv) io.out(intervalCsvRow(s));
      else {
        status.clear();
        io.err(intervalRow(s) + '\n');
      }
    }
    rec?.sample(s, vm);
    status.update(progress);
  };
  if (o.interval && o.csv) io.out(intervalCsvHeader());
  else if (o.interval && !o.json) io.err(intervalHeader() + '\n');
  const every = o.interval ?? (rec ? (o.traceInterval ?? DEFAULT_TRACE_INTERVAL) : status.enabled ? { instructions: STATUS_SAMPLE_INSTRUCTIONS } : undefined);
  const r: RunResult = (every ? vm.run({ sampleEvery: every, onSample }) : vm.run()) ?? vm.result();
  status.clear();
  if (rec) writeTrace(o, rec, r, io);
  if (o.json) {
    const json = jsonResult(r, { guest: guest.name, path: guest.path, addon: nativeAddonPath(), config: vm.effectiveConfig(), log });
    io.out(JSON.stringify({ ...json, interval: o.interval ?? null, intervals }) + '\n');
    return exitCodeFor(r);
  }
  if (lastConsoleByte >= 0 && lastConsoleByte !== 0x0a) io.err('\n');
  if (r.error) io.err(`error: ${r.error.message}\n`);
  if (o.csv) {
    if (!o.interval) io.out(statCsv(r));
  } else io.err((o.interval ? '\n' : '') + statReport(guest.name, r));
  return exitCodeFor(r);
}

export async function main(argv: string[], io: Io = processIo(), deps: CliDeps = {}): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    const first = argv[0];
    if ((first === 'sweep' || first === 'worker' || first === 'results' || first === 'report') && !argv.some((a) => a === '--help' || a === '-h')) {
      let experiments: typeof import('./experiments.ts');
      try {
        experiments = await import('./experiments.ts');
      } catch (e) {
        // The experiments backend (SQLite, the worker pool, the charts) is an optional
        // dependency: an install with --omit=optional runs guests but not sweeps.
        if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
        throw new CliError(`${first} needs hugevisor's optional dependencies (better-sqlite3, piscina, vega…), which are not installed: ${(e as Error).message.split('\n')[0]}`);
      }
      return await experiments.runExperimentCommand(experiments.parseExperimentArgs(first, argv.slice(1)), io);
    }
    const cmd = parseArgs(argv);
    if (cmd.kind === 'help') {
      io.out(USAGE);
      return 0;
    }
    if (cmd.kind === 'list') {
      const samples = sampleInfos();
      if (samples.length === 0) throw new CliError(`no sample guests in ${samplesDirectory()} (run \`npm run build:guests\`)`);
      io.out(cmd.json ? JSON.stringify({ schema: 'hugevisor.list/1', samples }) + '\n' : formatSampleList(samples));
      return 0;
    }
    if (cmd.kind === 'stat') return stat(cmd, io, deps);
    return run(cmd, io, deps, cmd.kind === 'ept-dump');
  } catch (e) {
    if (e instanceof HugevisorError) {
      io.err(`error: ${e.message}\n`);
      if (debug && e.stack) io.err(e.stack + '\n');
      return EXIT_USAGE;
    }
    const err = e as Error;
    io.err(`error: internal error: ${err?.message ?? String(e)}${debug ? '' : ' (run with --debug for the stack)'}\n`);
    if (debug && err?.stack) io.err(err.stack + '\n');
    return EXIT_INTERNAL;
  }
}
