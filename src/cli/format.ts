/**
 * What the CLI prints about a run: the human summary (stderr) and the --json object
 * (stdout). The JSON shape is documented in docs/cli.md and versioned by `schema`; add
 * fields freely, never rename or remove one without bumping the schema.
 */
import { resultSchema, type EffectiveConfig, type MemoryReport, type RunResult, type SizeSplit, type StopReason } from '../api/index.ts';

export const JSON_SCHEMA = resultSchema;

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
  'simulated-time': 'simulated-time limit reached',
  aborted: 'aborted by its signal',
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
  lines.push(...memorySummaryLines(r.memory));
  if (r.unhandledPorts.length) lines.push(`unhandled:    ports ${r.unhandledPorts.map((p) => '0x' + p.toString(16)).join(', ')}`);
  if (r.unhandledMmio.length) {
    const pages = r.vmm.mmio_pages ?? r.unhandledMmio.length;
    const more = pages > r.unhandledMmio.length ? ` and ${grouped(pages - r.unhandledMmio.length)} more (${grouped(pages)} pages)` : '';
    lines.push(`unhandled:    MMIO pages ${r.unhandledMmio.map((p) => '0x' + p.toString(16)).join(', ')}${more}`);
  }
  if (r.consoleTruncatedBytes > 0) {
    lines.push(`console:      ${grouped(r.vmm.console_bytes ?? 0)} bytes printed; the result keeps the first ${grouped(r.consoleBytes.length)}, ${grouped(r.consoleTruncatedBytes)} not kept (the stream had them all)`);
  }
  return lines.join('\n') + '\n';
}

const g = grouped;
const per = (n: number, d: number) => (d > 0 ? n / d : 0).toFixed(2);
const sizes = (s: SizeSplit) => `${g(s.total)} (4K ${g(s['4k'])}, 2M ${g(s['2m'])}, 1G ${g(s['1g'])})`;

/** Lines for the CLI's run summary (aligned with its other lines), in both modes. */
export function memorySummaryLines(m: MemoryReport): string[] {
  const t = m.tlb;
  const lines: string[] = [];
  if (m.ept) {
    const e = m.ept;
    lines.push(
      `ept:          ept_violations ${g(e.ept_violations)}, pages_4k ${g(e.pages_4k)}, pages_2m ${g(e.pages_2m)}; ` +
        `mmu_notifier_invalidate ${g(e.mmu_notifier_invalidate)}, mmu_zapped_leaves ${g(e.mmu_zapped_leaves)}, mmu_notifier_retry ${g(e.mmu_notifier_retry)}`,
    );
  } else lines.push('ept:          off (native translation: one-dimensional walks)');
  if (m.host) {
    const h = (k: string) => g(m.host![k] ?? 0);
    // A 6.x host splits PMDs and folios separately (thp_split_pmd, thp_split_page) and has no thp_split.
    const splits =
      'thp_split_pmd' in m.host
        ? `thp_split_pmd ${h('thp_split_pmd')}, thp_split_page ${h('thp_split_page')}, thp_deferred_split_page ${h('thp_deferred_split_page')}`
        : `thp_split ${h('thp_split')}`;
    lines.push(
      `host thp:     thp_fault_alloc ${h('thp_fault_alloc')}, thp_fault_fallback ${h('thp_fault_fallback')}, ` +
        `thp_collapse_alloc ${h('thp_collapse_alloc')}, ${splits}, ` +
        `nr_anon_transparent_hugepages ${h('nr_anon_transparent_hugepages')} (AnonHugePages ${g(m.meminfo?.AnonHugePages ?? 0)} kB)`,
      `host mm:      pgfault ${h('pgfault')}, pgmajfault ${h('pgmajfault')}, pswpin ${h('pswpin')}, pswpout ${h('pswpout')}`,
    );
    const c = m.clock;
    const clock = c ? (c.follows_guest ? `host clock ${c.host_ms.toFixed(3)} ms, following the guest` : `host clock ${c.host_ms.toFixed(3)} ms, stopped`) : 'no host clock';
    lines.push(`khugepaged:   full_scans ${h('full_scans')}, pages_collapsed ${h('pages_collapsed')}; ${clock}`);
  }
  lines.push(
    `tlb misses:   L1 itlb ${sizes(t.misses.itlb)}, L1 dtlb ${sizes(t.misses.dtlb)}, stlb ${sizes(t.misses.stlb)}`,
    `page walks:   ${g(t.walks)} walks, ${per(t.walk_refs, t.walks)} refs/walk = ${per(t.walk_refs_guest, t.walks)} guest + ` +
      `${per(t.walk_refs_ept, t.walks)} ept (${g(t.walk_refs_guest)} + ${g(t.walk_refs_ept)} refs)`,
    `walk caches:  pwc hits pml4e ${g(t.pwc_hits.pml4e)}, pdpte ${g(t.pwc_hits.pdpte)}, pde ${g(t.pwc_hits.pde)}; nested tlb hits ${g(t.nested_tlb_hits)}`,
  );
  return lines;
}

export interface JsonExtras {
  guest: string;
  path: string;
  /** The native addon binary that ran the guest. */
  addon: string;
  /** The configuration the VM ran with, every default filled in. */
  config: EffectiveConfig;
  log: string[];
}

/**
 * The --json object: the RunResult plus what the CLI knows (exit code, guest, config, log).
 * The console's exact bytes go out as base64 (`consoleBase64`), beside `console`, their
 * UTF-8 decoding.
 */
export function jsonResult(r: RunResult, extra: JsonExtras): Record<string, unknown> {
  const json: Record<string, unknown> = { schema: JSON_SCHEMA, guest: extra.guest, path: extra.path, addon: extra.addon, exitCode: exitCodeFor(r) };
  for (const [k, v] of Object.entries(r)) {
    if (k !== 'consoleBytes') json[k] = v;
    else json.consoleBase64 = Buffer.from(r.consoleBytes.buffer, r.consoleBytes.byteOffset, r.consoleBytes.byteLength).toString('base64');
  }
  json.config = extra.config;
  json.log = extra.log;
  return json;
}
