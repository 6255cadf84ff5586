/**
 * The one table from command-line flags to the VM config (src/api/types.ts VmConfig). Each
 * run flag names the config path it sets and how its text becomes a value; the values are
 * validated once, by the config schema of the layer that owns them, and a schema error on a
 * path is reported under the flag that set it. The usage text is generated from this table.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../api/index.ts';

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
    v = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
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

function parseSwitch(text: string, what: string, on: string, off: string): boolean {
  if (text === on) return true;
  if (text === off) return false;
  throw new ConfigError(`${what}: '${text}' is not ${on} or ${off}`);
}

/** Largest config file read (a TLB geometry is a few hundred bytes). */
const MAX_CONFIG_FILE = 1024 * 1024;

/** --tlb: a preset name passes through to the schema; anything else is a JSON file. */
function parseTlb(text: string, what: string): unknown {
  if (text === 'default' || text === 'none') return text;
  let st;
  try {
    st = statSync(text);
  } catch {
    throw new ConfigError(`${what}: '${text}' is neither a preset (default, none) nor a readable JSON file`);
  }
  if (!st.isFile()) throw new ConfigError(`${what}: '${text}' is not a regular file`);
  if (st.size > MAX_CONFIG_FILE) throw new ConfigError(`${what}: '${text}' is ${st.size} bytes, larger than a TLB geometry can be (at most ${MAX_CONFIG_FILE})`);
  try {
    return JSON.parse(readFileSync(text, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${what}: ${text} is not valid JSON (${(e as Error).message})`);
  }
}

export interface FlagSpec {
  flag: string;
  /** What the value looks like in the usage text. */
  metavar: string;
  help: string;
  /** The VmConfig path the flag sets ('host.thp.enabled'); '*' in `costs.*` is the ITEM of ITEM=CYCLES. */
  path: string;
  /** Text → the config value (syntax only: ranges and choices are the schema's). */
  parse(text: string, flag: string): unknown;
  /** Repeatable: each use appends to the array at `path`. */
  repeat?: boolean;
}

const size = (t: string, f: string) => parseSize(t, f);
const count = (t: string, f: string) => parseCount(t, f);
const text = (t: string) => t;

/** Every run flag that sets a VM config value, in usage order. */
export const CONFIG_FLAGS: readonly FlagSpec[] = [
  { flag: '--memory', metavar: 'SIZE', path: 'memory', parse: size, help: 'guest memory (default 64M; 4096, 0x1000, 64M, 1G...)' },
  { flag: '--guest-pages', metavar: '4k|2m|1g', path: 'guestPageSize', parse: (t) => t.toLowerCase(), help: 'page size of the boot identity map (default 4k)' },
  { flag: '--arg', metavar: 'N', path: 'args', parse: (t, f) => parseU64(t, f), repeat: true, help: 'a u64 parameter for the guest (boot info args); repeat, at most 16' },
  { flag: '--cmdline', metavar: 'TEXT', path: 'cmdline', parse: text, help: 'guest command line (at most 3000 bytes)' },
  { flag: '--max-instructions', metavar: 'N', path: 'maxInstructions', parse: count, help: 'stop after N instructions (exit code 124; 0 = no limit)' },
  { flag: '--timeout', metavar: 'SECONDS', path: 'timeoutMs', parse: (t, f) => parseSeconds(t, f) * 1000, help: 'stop after this much wall-clock time (exit code 124)' },
  { flag: '--strict', metavar: '', path: 'strict', parse: () => true, help: 'an unhandled I/O port or MMIO access stops the guest (exit code 125)' },
  {
    flag: '--cost',
    metavar: 'ITEM=CYCLES',
    path: 'costs.*',
    parse: (t, f) => {
      const m = /^([a-z_0-9]+)=(\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/i.exec(t.trim());
      if (!m) throw new ConfigError(`${f}: '${t}' is not ITEM=CYCLES (e.g. walk_ref=40, clock_hz=2.5e9)`);
      return [m[1]!, Number(m[2])];
    },
    help: 'override one cost-model entry (docs/mmu-model.md), e.g. walk_ref=40',
  },
  { flag: '--ept', metavar: 'on|off', path: 'ept', parse: (t, f) => parseSwitch(t, f, 'on', 'off'), help: 'KVM-like EPT over the simulated THP host (default on), or off: native one-dimensional translation' },
  { flag: '--host-kernel', metavar: '2.6.38|6.x', path: 'host.kernel', parse: text, help: "the host's THP design: 2.6.38 (compound pages, split_huge_page) or 6.x (Linux 6.18 folios, deferred split, huge zero page) (default 2.6.38)" },
  { flag: '--nx-huge-pages', metavar: 'on|off', path: 'kvm.nx_huge_pages', parse: text, help: 'KVM nx_huge_pages: no executable 2 MiB EPT leaves, a fetch splits its range to 4K (needs --host-kernel 6.x; default off)' },
  { flag: '--eager-page-split', metavar: 'on|off', path: 'kvm.eager_page_split', parse: text, help: 'KVM eager_page_split: split 2 MiB EPT leaves when dirty logging starts (6.x; 2.6.38 zaps them) (default on)' },
  { flag: '--thp', metavar: 'always|madvise|never', path: 'host.thp.enabled', parse: text, help: 'host transparent_hugepage/enabled (default always)' },
  { flag: '--thp-defrag', metavar: 'always|madvise|never', path: 'host.thp.defrag', parse: text, help: 'host transparent_hugepage/defrag (default always; madvise with --host-kernel 6.x)' },
  {
    flag: '--thp-size',
    metavar: 'SIZE=MODE',
    path: 'host.thp.sizes.*',
    parse: (t, f) => {
      const m = /^(\d+kB)=([a-z]+)$/.exec(t.trim());
      if (!m) throw new ConfigError(`${f}: '${t}' is not SIZE=MODE (e.g. 64kB=always)`);
      return [m[1]!, m[2]!];
    },
    help: 'with --host-kernel 6.x: hugepages-<SIZE>/enabled, SIZE 16kB to 2048kB, MODE always|inherit|madvise|never (e.g. 64kB=always); repeatable',
  },
  { flag: '--host-memory', metavar: 'SIZE', path: 'host.memory', parse: size, help: 'simulated host RAM (default guest memory + 1/8 + 32M)' },
  { flag: '--host-clock', metavar: 'on|off', path: 'host.clock', parse: (t, f) => parseSwitch(t, f, 'on', 'off'), help: "the host's simulated time follows the guest's, so khugepaged and kswapd run during the run (default on)" },
  { flag: '--khugepaged-pages-to-scan', metavar: 'N', path: 'host.thp.khugepaged.pages_to_scan', parse: count, help: 'khugepaged/pages_to_scan (default 4096)' },
  { flag: '--khugepaged-scan-sleep-millisecs', metavar: 'MS', path: 'host.thp.khugepaged.scan_sleep_millisecs', parse: count, help: 'khugepaged/scan_sleep_millisecs (default 10000)' },
  { flag: '--khugepaged-alloc-sleep-millisecs', metavar: 'MS', path: 'host.thp.khugepaged.alloc_sleep_millisecs', parse: count, help: 'khugepaged/alloc_sleep_millisecs (default 60000)' },
  { flag: '--khugepaged-max-ptes-none', metavar: 'N', path: 'host.thp.khugepaged.max_ptes_none', parse: count, help: 'khugepaged/max_ptes_none, 0 to 511 (default 511)' },
  { flag: '--khugepaged-defrag', metavar: 'yes|no', path: 'host.thp.khugepaged.defrag', parse: (t, f) => parseSwitch(t, f, 'yes', 'no'), help: 'khugepaged/defrag (default yes)' },
  { flag: '--tlb', metavar: 'PRESET|FILE', path: 'tlb', parse: parseTlb, help: 'TLB geometry: default, none (every TLB and cache off), or a JSON file of { structure: { entries, ways } }' },
];

const BY_FLAG = new Map(CONFIG_FLAGS.map((f) => [f.flag, f]));

export function configFlag(flag: string): FlagSpec | undefined {
  return BY_FLAG.get(flag);
}

/** Set `value` at the dotted `path` of `config`, creating objects on the way. */
export function setConfigPath(config: Record<string, unknown>, spec: FlagSpec, value: unknown): void {
  let path = spec.path;
  if (path.endsWith('.*')) {
    const [key, v] = value as [string, unknown];
    path = path.slice(0, -1) + key;
    value = v;
  }
  const keys = path.split('.');
  let o = config;
  for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (spec.repeat) ((o[last] ??= []) as unknown[]).push(value);
  else o[last] = value;
}

/**
 * The flag a schema error belongs to: the flag that set that path (or a field inside it),
 * or, for a whole section (`host`), the first given flag that set something in it.
 */
export function flagForPath(path: string, given: readonly string[]): string | undefined {
  const norm = path.replace(/\[\d+\]$/, '');
  for (const f of given) {
    const spec = BY_FLAG.get(f);
    if (!spec) continue;
    const p = spec.path.endsWith('.*') ? spec.path.slice(0, -2) : spec.path;
    if (norm === p || norm.startsWith(p + '.') || p.startsWith(norm + '.')) return f;
  }
  return undefined;
}

/** The options part of the usage text, from the table. */
export function configFlagsUsage(): string {
  const lines: string[] = [];
  for (const f of CONFIG_FLAGS) {
    const left = `  ${f.flag}${f.metavar ? ' ' + f.metavar : ''}`;
    lines.push(left.length < 28 ? `${left.padEnd(28)}${f.help}` : `${left}\n${''.padEnd(28)}${f.help}`);
  }
  return lines.join('\n');
}
