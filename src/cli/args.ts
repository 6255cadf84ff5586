/**
 * Command-line parsing for `hugevisor`: flags, sizes and numbers, validated with messages
 * that name the flag and what it accepts. No library: the grammar is small and the error
 * messages are part of the interface (test/cli-*.test.ts checks them exactly).
 */
import type { GuestPageSize } from '../guest/boot.ts';
import { ConfigError } from '../util/errors.ts';
import type { KhugepagedOptions } from '../kvm/ept-options.ts';

export interface RunOptions {
  guest: string;
  memory?: number;
  guestPages?: GuestPageSize;
  args: bigint[];
  cmdline?: string;
  maxInstructions?: number;
  timeoutSeconds?: number;
  /** --cost ITEM=CYCLES overrides of the cost table (validated by makeCostTable). */
  costs: Record<string, number>;
  strict: boolean;
  json: boolean;
  debug: boolean;
  // ept: EPT mode and the simulated host (src/kvm/ept-options.ts CliHostFlags)
  ept?: boolean;
  thp?: 'always' | 'madvise' | 'never';
  thpDefrag?: 'always' | 'madvise' | 'never';
  hostMemory?: number;
  hostClock?: boolean;
  khugepaged?: KhugepagedOptions;
  tlb?: string;
  /** ept-dump: GPA ranges [start, end) to print after the run. */
  gpaRanges?: [number, number][];
}

export type Command = { kind: 'help' } | { kind: 'list'; debug: boolean } | ({ kind: 'run' | 'ept-dump' } & RunOptions);

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/**
 * A byte size: 4096, 0x1000, 64M, 64MiB, 64mb, 1G, 1.5G (binary units; the result must be a
 * whole number of bytes).
 */
export function parseSize(text: string, what = 'size'): number {
  const t = text.trim();
  let v: number;
  if (/^0x[0-9a-f]+$/i.test(t)) {
    v = Number.parseInt(t.slice(2), 16);
  } else {
    const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(t);
    if (!m) throw new ConfigError(`${what}: '${text}' is not a size (examples: 4096, 0x1000, 64M, 1G)`);
    v = Number(m[1]) * UNITS[m[2].toLowerCase()];
  }
  if (!Number.isSafeInteger(v)) throw new ConfigError(`${what}: '${text}' is not a whole number of bytes below 2^53`);
  return v;
}

/** A u64: decimal, 0x hex, or a size with a binary unit (64M). */
export function parseU64(text: string, what: string): bigint {
  const t = text.trim();
  let v: bigint;
  if (/^\d+$/.test(t)) v = BigInt(t);
  else if (/^0x[0-9a-f]+$/i.test(t)) v = BigInt(t);
  else if (/^\d+(\.\d+)?\s*[kmgt](i?b)?$/i.test(t)) v = BigInt(parseSize(t, what));
  else throw new ConfigError(`${what}: '${text}' is not a u64 (decimal, 0x hex, or a size like 64M)`);
  if (v >= 1n << 64n) throw new ConfigError(`${what}: '${text}' does not fit in 64 bits`);
  return v;
}

function parseCount(text: string, what: string): number {
  const t = text.trim();
  const v = /^\d+$/.test(t) ? Number(t) : /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : NaN;
  if (!Number.isSafeInteger(v)) throw new ConfigError(`${what}: '${text}' is not a non-negative integer`);
  return v;
}

function parseSeconds(text: string, what: string): number {
  const v = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
  if (!(v > 0) || !Number.isFinite(v)) throw new ConfigError(`${what}: '${text}' is not a positive number of seconds`);
  return v;
}

const PAGES = ['4k', '2m', '1g'];
/** Flags that take a value. */
const VALUE_FLAGS = new Set([
  '--memory', '--guest-pages', '--arg', '--cmdline', '--max-instructions', '--timeout', '--cost',
  '--ept', '--thp', '--thp-defrag', '--host-memory', '--host-clock', '--tlb', '--gpa',
  '--khugepaged-pages-to-scan', '--khugepaged-scan-sleep-millisecs', '--khugepaged-alloc-sleep-millisecs',
  '--khugepaged-max-ptes-none', '--khugepaged-defrag',
]);
const UINT_MAX = 0xffffffff;
/** --khugepaged-* flags: sysfs knob name and the range its *_store accepts (src/mm/knobs.ts). */
const KHUGEPAGED_UINT: Record<string, [keyof KhugepagedOptions, number, number]> = {
  '--khugepaged-pages-to-scan': ['pages_to_scan', 1, UINT_MAX],
  '--khugepaged-scan-sleep-millisecs': ['scan_sleep_millisecs', 0, UINT_MAX],
  '--khugepaged-alloc-sleep-millisecs': ['alloc_sleep_millisecs', 0, UINT_MAX],
  '--khugepaged-max-ptes-none': ['max_ptes_none', 0, 511],
};
const THP_MODES = ['always', 'madvise', 'never'] as const;

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new ConfigError(`${flag}: '${value}' is not one of ${allowed.join(', ')}`);
  return value as T;
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
const BOOL_FLAGS = new Set(['--strict', '--json', '--debug']);

export function parseArgs(argv: readonly string[]): Command {
  const debug = argv.includes('--debug');
  if (argv.length === 0) throw new ConfigError('missing command (try: hugevisor --help)');
  if (argv.some((a) => a === '--help' || a === '-h') || argv[0] === 'help') return { kind: 'help' };
  const [cmd, ...rest] = argv;
  if (cmd === 'list') {
    const extra = rest.filter((a) => a !== '--debug');
    if (extra.length) throw new ConfigError(`list takes no arguments, got '${extra[0]}'`);
    return { kind: 'list', debug };
  }
  if (cmd !== 'run' && cmd !== 'ept-dump') {
    throw new ConfigError(cmd.startsWith('-') ? `unknown option '${cmd}' (try: hugevisor --help)` : `unknown command '${cmd}' (commands: run, ept-dump, list; try: hugevisor --help)`);
  }

  const o: RunOptions = { guest: '', args: [], costs: {}, strict: false, json: false, debug };
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--') || a === '--') {
      if (a === '--') positional.push(...rest.slice(i + 1));
      else positional.push(a);
      if (a === '--') break;
      continue;
    }
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(0, eq) : a;
    if (BOOL_FLAGS.has(flag)) {
      if (eq >= 0) throw new ConfigError(`${flag} takes no value`);
      if (flag === '--strict') o.strict = true;
      else if (flag === '--json') o.json = true;
      continue;
    }
    if (!VALUE_FLAGS.has(flag)) throw new ConfigError(`unknown option '${flag}' (try: hugevisor --help)`);
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      if (i + 1 >= rest.length) throw new ConfigError(`${flag} needs a value`);
      value = rest[++i];
    }
    switch (flag) {
      case '--memory':
        o.memory = parseSize(value, '--memory');
        break;
      case '--guest-pages': {
        const p = value.toLowerCase();
        if (!PAGES.includes(p)) throw new ConfigError(`--guest-pages: '${value}' is not one of 4k, 2m, 1g`);
        o.guestPages = p as GuestPageSize;
        break;
      }
      case '--arg':
        o.args.push(parseU64(value, '--arg'));
        break;
      case '--cmdline':
        o.cmdline = value;
        break;
      case '--max-instructions':
        o.maxInstructions = parseCount(value, '--max-instructions');
        break;
      case '--timeout':
        o.timeoutSeconds = parseSeconds(value, '--timeout');
        break;
      case '--cost': {
        const m = /^([a-z_0-9]+)=(\d+(?:\.\d+)?(?:e\d+)?)$/i.exec(value.trim());
        if (!m) throw new ConfigError(`--cost: '${value}' is not ITEM=CYCLES (e.g. walk_ref=40, clock_hz=2.5e9)`);
        o.costs[m[1]] = Number(m[2]);
        break;
      }
      // ept: ---
      case '--ept':
        o.ept = oneOf(flag, value, ['on', 'off']) === 'on';
        break;
      case '--thp':
        o.thp = oneOf(flag, value, THP_MODES);
        break;
      case '--thp-defrag':
        o.thpDefrag = oneOf(flag, value, THP_MODES);
        break;
      case '--host-memory':
        o.hostMemory = parseSize(value, '--host-memory');
        break;
      case '--host-clock':
        o.hostClock = oneOf(flag, value, ['on', 'off']) === 'on';
        break;
      case '--khugepaged-defrag':
        o.khugepaged = { ...o.khugepaged, defrag: oneOf(flag, value, ['yes', 'no']) === 'yes' };
        break;
      case '--tlb':
        o.tlb = value;
        break;
      case '--gpa':
        if (cmd !== 'ept-dump') throw new ConfigError('--gpa belongs to ept-dump (hugevisor ept-dump <guest> --gpa START-END)');
        (o.gpaRanges ??= []).push(parseGpaRange(value));
        break;
      default: {
        const [knob, min, max] = KHUGEPAGED_UINT[flag];
        const t = value.trim();
        const n = /^\d+$/.test(t) ? Number(t) : NaN;
        if (!(n >= min && n <= max)) throw new ConfigError(`${flag}: '${value}' is not an integer from ${min} to ${max}`);
        o.khugepaged = { ...o.khugepaged, [knob]: n };
      }
    }
  }
  if (positional.length === 0) throw new ConfigError('run needs a guest: an ELF file or a sample name (see: hugevisor list)');
  if (positional.length > 1) throw new ConfigError(`run takes one guest, got '${positional[0]}' and '${positional[1]}'`);
  o.guest = positional[0];
  if (cmd === 'ept-dump') {
    if (o.json) throw new ConfigError('ept-dump prints text: --json belongs to run');
    if (o.ept === false) throw new ConfigError('ept-dump needs EPT: drop --ept off');
    return { kind: 'ept-dump', ...o };
  }
  return { kind: 'run', ...o };
}

export const USAGE = `usage: hugevisor run <guest.elf | sample-name> [options]
       hugevisor ept-dump <guest.elf | sample-name> [--gpa START-END]... [run options]
       hugevisor list
       hugevisor --help

Boots a static x86-64 ELF guest (GUEST-ABI.md) on the hugevisor vCPU. Console output goes
to stdout as the guest prints it; a run summary goes to stderr at the end.

run options:
  --memory SIZE             guest memory (default 64M; 4096, 0x1000, 64M, 1G...)
  --guest-pages 4k|2m|1g    page size of the boot identity map (default 4k)
  --arg N                   a u64 parameter for the guest (boot info args); repeat, at most 16
  --cmdline TEXT            guest command line (at most 3000 bytes)
  --max-instructions N      stop after N instructions (exit code 124)
  --timeout SECONDS         stop after this much wall-clock time (exit code 124)
  --strict                  an unhandled I/O port stops the guest (exit code 125)
  --cost ITEM=CYCLES        override one cost-model entry (src/kvm/cost.ts), e.g. walk_ref=40
  --ept on|off              KVM-like EPT over the simulated THP host (default on), or
                            off: native one-dimensional translation
  --thp always|madvise|never  host transparent_hugepage/enabled (default always)
  --thp-defrag always|madvise|never  host transparent_hugepage/defrag (default always)
  --host-memory SIZE        simulated host RAM (default guest memory + 1/8 + 32M)
  --host-clock on|off       the host's simulated time follows the guest's, so khugepaged and
                            kswapd run during the run (default on)
  --khugepaged-pages-to-scan N          khugepaged/pages_to_scan (default 4096)
  --khugepaged-scan-sleep-millisecs MS  khugepaged/scan_sleep_millisecs (default 10000)
  --khugepaged-alloc-sleep-millisecs MS khugepaged/alloc_sleep_millisecs (default 60000)
  --khugepaged-max-ptes-none N          khugepaged/max_ptes_none, 0 to 511 (default 511)
  --khugepaged-defrag yes|no            khugepaged/defrag (default yes)
                            (the host flags need EPT and imply --ept on)
  --tlb PRESET|FILE         TLB geometry: default, none (every TLB and cache off), or a JSON
                            file of { structure: { entries, ways } }
  --json                    print one JSON object (docs/cli.md) instead of console + summary
  --debug                   stack traces for errors

ept-dump options (and every run option but --json):
  --gpa START-END           a guest-physical range to print, END exclusive, sizes or hex
                            (8M-10M, 0x800000-0xa00000); repeatable; default all guest memory
ept-dump runs the guest like run, with its console and the summary on stderr, then prints
on stdout each EPT leaf of the ranges beside the host mapping of its HVA (src/kvm/mmu/debug.ts).

The exit code is the guest's exit status (mod 256); 2 = bad usage, file or image;
124 = a limit stopped the guest; 125 = the guest crashed (triple fault, strict I/O, MMIO).
`;
