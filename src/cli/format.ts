/**
 * What the CLI prints about a run: the human summary (stderr) and the --json object
 * (stdout). The JSON shape is documented in docs/cli.md and versioned by `schema`; add
 * fields freely, never rename or remove one without bumping the schema.
 */
import type { RunResult } from '../api/types.ts';
import type { StopReason } from '../kvm/exits.ts';
import { memorySummaryLines } from '../kvm/report.ts';

export const JSON_SCHEMA = 'hugevisor.run/1';

/** Process exit codes besides the guest's own status (docs/cli.md). */
export const EXIT_USAGE = 2;
export const EXIT_LIMIT = 124;
export const EXIT_CRASH = 125;
/** The simulated host ran out of memory (stopReason host-oom): the experiment's host was too small. */
export const EXIT_HOST_OOM = 123;
export const EXIT_INTERNAL = 70;

export function exitCodeFor(r: RunResult): number {
  switch (r.stopReason) {
    case 'exit':
    case 'hlt':
      return (r.exitStatus ?? 0) & 0xff;
    case 'max-instructions':
    case 'timeout':
      return EXIT_LIMIT;
    case 'host-oom':
      return EXIT_HOST_OOM;
    default:
      return EXIT_CRASH;
  }
}

const STOP_TEXT: Record<StopReason, string> = {
  exit: 'the guest wrote its status to the debug-exit port',
  hlt: 'hlt with nothing to wake it',
  'triple-fault': 'triple fault',
  'unhandled-io': 'unhandled I/O port in strict mode',
  mmio: 'access outside guest memory',
  'ept-violation': 'unresolved EPT violation',
  'ept-misconfig': 'malformed EPT entry (hypervisor bug)',
  'host-oom': 'the simulated host ran out of memory',
  efault: 'guest memory behind a memslot cannot be faulted in',
  'internal-error': 'emulator internal error',
  'max-instructions': 'instruction limit reached',
  timeout: 'wall-clock timeout',
  paused: 'paused, not finished',
};

/** 1234567 → "1,234,567" (fixed locale so the output is the same everywhere). */
export function grouped(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Seconds with a unit that keeps 3 significant digits: 15.7 µs, 1.10 ms, 2.35 s. */
export function duration(s: number): string {
  const abs = Math.abs(s);
  const [v, unit] = abs >= 1 ? [s, 's'] : abs >= 1e-3 ? [s * 1e3, 'ms'] : abs >= 1e-6 ? [s * 1e6, 'µs'] : [s * 1e9, 'ns'];
  return `${v.toPrecision(3)} ${unit}`;
}

export function summary(guest: string, r: RunResult): string {
  const exits = Object.entries(r.exits).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${grouped(n)}`).join(', ') || 'none';
  const ghz = (r.simulated.seconds > 0 ? r.simulated.cycles / r.simulated.seconds : 0) / 1e9;
  const lines = [
    `--- hugevisor: ${guest} ---`,
    `exit status:  ${r.exitStatus ?? 'none'}`,
    `stop reason:  ${r.stopReason} (${STOP_TEXT[r.stopReason]})`,
    `instructions: ${grouped(r.instructions)}`,
    `guest faults: ${grouped(r.counters.exc_pf ?? 0)} #PF`,
    `exits:        ${exits}`,
    `wall time:    ${duration(r.wallSeconds)} (${r.mips.toFixed(2)} guest MIPS)`,
    `simulated:    ${grouped(r.simulated.cycles)} cycles = ${duration(r.simulated.seconds)} at ${ghz.toFixed(2)} GHz`,
  ];
  if (r.roi.length) {
    r.roi.forEach((roi, i) => lines.push(`roi ${i}:        ${grouped(roi.counters.instructions)} instructions, ${grouped(roi.counters.exc_pf ?? 0)} #PF, ${duration(roi.simulated.seconds)} simulated`));
  }
  lines.push(...memorySummaryLines(r.memory)); // ept: EPT, host THP, khugepaged, TLB and walk figures
  if (r.unhandledPorts.length) lines.push(`unhandled:    ports ${r.unhandledPorts.map((p) => '0x' + p.toString(16)).join(', ')}`);
  if (r.unhandledMmio.length) lines.push(`unhandled:    MMIO pages ${r.unhandledMmio.map((p) => '0x' + p.toString(16)).join(', ')}`);
  return lines.join('\n') + '\n';
}

export interface JsonExtras {
  guest: string;
  path: string;
  /** The native addon binary that ran the guest. */
  addon: string;
  config: Record<string, unknown>;
  log: string[];
}

/** The --json object: the RunResult plus what the CLI knows (exit code, guest, config, log). */
export function jsonResult(r: RunResult, extra: JsonExtras): Record<string, unknown> {
  return { schema: JSON_SCHEMA, guest: extra.guest, path: extra.path, addon: extra.addon, exitCode: exitCodeFor(r), ...r, config: extra.config, log: extra.log };
}
