/**
 * The memory side of a run's result: EPT-layer counters, the host's THP counters (vmstat
 * names) and the TLB/walk figures from the vCPU counters, plus the option plumbing for EPT
 * mode (`ept`, `host`, `tlb` in VmConfig; --ept/--thp/--host-memory/--tlb on the CLI).
 * Kept here so the Vm and CLI files only call in.
 */
import { readFileSync } from 'node:fs';
import type { NativeAddon, TlbArrayGeometry, TlbGeometry } from '../native/types.ts';
import type { ThpEnabled } from '../mm/types.ts';
import { ConfigError } from '../util/errors.ts';
import { loadAddon } from '../native/addon.ts';
import type { EptBackendOptions, EptMemoryBackend, EptRunStats } from './ept-backend.ts';
import type { GuestMemoryBackend } from './vm-memory.ts';

/**
 * Whether a Vm runs with EPT when its config does not say (VmConfig.ept, CLI --ept).
 * EPT mode works end to end (test/ept-guest.test.ts); the default stays native until the
 * Vm/CLI tests that pin native-mode exits and cycles say `ept: false` explicitly.
 */
export const EPT_DEFAULT = false;

/** VmConfig.host: the simulated host in EPT mode. */
export interface HostOptions {
  /** Host RAM in bytes (multiple of 2 MiB). Default: guest memory + 1/8 + 32 MiB. */
  memory?: number;
  /** transparent_hugepage/enabled (default 'always', the 2.6.38 default). */
  thp?: ThpEnabled;
  /** transparent_hugepage/defrag. */
  defrag?: ThpEnabled;
  /** Check host and EPT invariants after every operation (slow; tests). */
  debugChecks?: boolean;
}

const HOST_KEYS = new Set(['memory', 'thp', 'defrag', 'debugChecks']);
const THP = ['always', 'madvise', 'never'];

/** Validate VmConfig.host, naming the field. */
export function resolveHostOptions(h: unknown): EptBackendOptions {
  if (h === undefined) return {};
  if (typeof h !== 'object' || h === null) throw new ConfigError('host must be an object { memory, thp, defrag, debugChecks }');
  const o = h as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!HOST_KEYS.has(k)) throw new ConfigError(`unknown host config field '${k}' (known: ${[...HOST_KEYS].join(', ')})`);
  const out: EptBackendOptions = {};
  if (o.memory !== undefined) {
    if (typeof o.memory !== 'number' || !Number.isSafeInteger(o.memory) || o.memory <= 0 || o.memory % (2 * 1024 * 1024) !== 0) {
      throw new ConfigError(`host.memory must be a positive multiple of 2 MiB, got ${String(o.memory)}`);
    }
    out.hostMemory = o.memory;
  }
  for (const f of ['thp', 'defrag'] as const) {
    if (o[f] !== undefined && !THP.includes(o[f] as string)) throw new ConfigError(`host.${f} must be one of always, madvise, never, got ${String(o[f])}`);
  }
  if (o.thp !== undefined || o.defrag !== undefined) {
    out.thp = { ...(o.thp !== undefined ? { enabled: o.thp as ThpEnabled } : {}), ...(o.defrag !== undefined ? { defrag: o.defrag as ThpEnabled } : {}) };
  }
  if (o.debugChecks !== undefined) {
    if (typeof o.debugChecks !== 'boolean') throw new ConfigError('host.debugChecks must be a boolean');
    out.debugChecks = o.debugChecks;
  }
  return out;
}

const TLB_KEYS = ['itlb4k', 'itlb2m', 'itlb1g', 'dtlb4k', 'dtlb2m', 'dtlb1g', 'stlb', 'stlb1g', 'pwcPml4e', 'pwcPdpte', 'pwcPde', 'nested'] as const;
const OFF: TlbArrayGeometry = { entries: 0, ways: 0 };

/**
 * TLB presets: 'default' (MMU-MODEL.md's table, the native defaults) and 'none' (every TLB,
 * paging-structure cache and the nested TLB disabled: each access walks, so walk counts
 * match the 2D reference formula exactly).
 */
export const TLB_PRESETS: Record<string, TlbGeometry> = {
  default: {},
  none: Object.fromEntries(TLB_KEYS.map((k) => [k, OFF])) as TlbGeometry,
};

/** A preset name or a JSON file holding a TlbGeometry; checked against the native MMU. */
export function resolveTlbOption(spec: string, addon?: NativeAddon): TlbGeometry {
  let g: unknown;
  if (spec in TLB_PRESETS) g = TLB_PRESETS[spec];
  else {
    let text: string;
    try {
      text = readFileSync(spec, 'utf8');
    } catch {
      throw new ConfigError(`--tlb: '${spec}' is neither a preset (${Object.keys(TLB_PRESETS).join(', ')}) nor a readable JSON file`);
    }
    try {
      g = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`--tlb: ${spec} is not valid JSON (${(e as Error).message})`);
    }
  }
  return checkTlbGeometry(g, addon);
}

/** Shape check in TS (names the field), then the native MMU's own validation. */
export function checkTlbGeometry(g: unknown, addon?: NativeAddon): TlbGeometry {
  if (typeof g !== 'object' || g === null || Array.isArray(g)) throw new ConfigError('tlb must be an object of { entries, ways } by structure name');
  for (const [k, v] of Object.entries(g)) {
    if (!(TLB_KEYS as readonly string[]).includes(k)) throw new ConfigError(`tlb: unknown structure '${k}' (known: ${TLB_KEYS.join(', ')})`);
    const a = v as Record<string, unknown>;
    if (typeof a !== 'object' || a === null || !Number.isInteger(a.entries) || !Number.isInteger(a.ways)) {
      throw new ConfigError(`tlb.${k} must be { entries: integer, ways: integer }`);
    }
  }
  if (addon) {
    // Let the native MMU judge the numbers on a throwaway vCPU, so a bad geometry is a
    // ConfigError here rather than an exception at boot.
    const arena = new addon.Arena(1 << 21);
    const v = new addon.Vcpu(arena);
    try {
      v.configureMmu({ ept: false, guestBase: 0, guestSize: 1 << 21, tlb: g as TlbGeometry });
    } catch (e) {
      throw new ConfigError(`tlb: ${(e as Error).message}`);
    }
  }
  return g as TlbGeometry;
}

/** TLB misses per level and walk references per miss, from the vCPU counters. */
export interface TlbReport {
  l1_misses: { itlb: number; dtlb: number };
  stlb_misses: number;
  walks: number;
  walk_refs: number;
  walk_refs_guest: number;
  walk_refs_ept: number;
  /** walk_refs / walks: 24 for 4K guest over 4K EPT with cold caches (MMU-MODEL.md). */
  refs_per_walk: number;
}

export interface MemoryReport {
  mode: 'ept' | 'native';
  /** EPT-layer counters (null in native mode). */
  ept: EptRunStats | null;
  /** Host /proc/vmstat + khugepaged counters (null in native mode). */
  host: Record<string, number> | null;
  tlb: TlbReport;
}

const sum = (c: Readonly<Record<string, number>>, names: string[]) => names.reduce((s, n) => s + (c[n] ?? 0), 0);

export function tlbReport(c: Readonly<Record<string, number>>): TlbReport {
  const walks = c.walks ?? 0;
  const refs = c.walk_refs ?? 0;
  return {
    l1_misses: {
      itlb: sum(c, ['itlb_4k_misses', 'itlb_2m_misses', 'itlb_1g_misses']),
      dtlb: sum(c, ['dtlb_4k_misses', 'dtlb_2m_misses', 'dtlb_1g_misses']),
    },
    stlb_misses: sum(c, ['stlb_4k_misses', 'stlb_2m_misses', 'stlb_1g_misses']),
    walks,
    walk_refs: refs,
    walk_refs_guest: c.walk_refs_guest ?? 0,
    walk_refs_ept: c.walk_refs_ept ?? 0,
    refs_per_walk: walks > 0 ? refs / walks : 0,
  };
}

function isEpt(b: GuestMemoryBackend): b is EptMemoryBackend {
  return b.kind === 'ept';
}

export function memoryReport(b: GuestMemoryBackend, counters: Readonly<Record<string, number>>): MemoryReport {
  return {
    mode: isEpt(b) ? 'ept' : 'native',
    ept: isEpt(b) ? b.eptStats() : null,
    host: isEpt(b) ? b.hostStats() : null,
    tlb: tlbReport(counters),
  };
}

const g = (n: number) => Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** Lines for the CLI's run summary (aligned with its other lines). */
export function memorySummaryLines(m: MemoryReport): string[] {
  const t = m.tlb;
  const lines: string[] = [];
  if (m.ept) {
    const e = m.ept;
    lines.push(
      `ept:          ${g(e.ept_violations)} violations, ${g(e.pages_4k)} 4K + ${g(e.pages_2m)} 2M leaves mapped, ` +
        `${g(e.mmu_notifier_invalidate)} invalidations, ${g(e.mmu_zapped_leaves)} zapped, ${g(e.mmu_notifier_retry)} retries`,
    );
  } else lines.push('ept:          off (native translation)');
  if (m.host) {
    const h = m.host;
    lines.push(
      `host thp:     thp_fault_alloc ${g(h.thp_fault_alloc ?? 0)}, thp_fault_fallback ${g(h.thp_fault_fallback ?? 0)}, ` +
        `thp_split ${g(h.thp_split ?? 0)}, thp_collapse_alloc ${g(h.thp_collapse_alloc ?? 0)}, pgfault ${g(h.pgfault ?? 0)}`,
    );
  }
  lines.push(
    `tlb misses:   L1 itlb ${g(t.l1_misses.itlb)}, L1 dtlb ${g(t.l1_misses.dtlb)}, stlb ${g(t.stlb_misses)}; ` +
      `${g(t.walks)} walks, ${t.refs_per_walk.toFixed(2)} refs/walk (${g(t.walk_refs_guest)} guest + ${g(t.walk_refs_ept)} ept)`,
  );
  return lines;
}

/** The VmConfig fields the CLI's --ept, --thp, --host-memory and --tlb give. */
export function cliEptConfig(o: { ept?: boolean; thp?: ThpEnabled; hostMemory?: number; tlb?: string }): {
  ept?: boolean;
  host?: HostOptions;
  tlb?: TlbGeometry;
} {
  const out: { ept?: boolean; host?: HostOptions; tlb?: TlbGeometry } = {};
  // --thp or --host-memory alone imply EPT mode: they only mean something there.
  if (o.ept !== undefined) out.ept = o.ept;
  else if (o.thp !== undefined || o.hostMemory !== undefined) out.ept = true;
  if (o.hostMemory !== undefined && (o.hostMemory <= 0 || o.hostMemory % (2 * 1024 * 1024) !== 0)) {
    throw new ConfigError(`--host-memory: ${o.hostMemory} bytes is not a positive multiple of 2M`);
  }
  if (o.thp !== undefined || o.hostMemory !== undefined) {
    out.host = { ...(o.thp !== undefined ? { thp: o.thp } : {}), ...(o.hostMemory !== undefined ? { memory: o.hostMemory } : {}) };
  }
  if (o.tlb !== undefined) out.tlb = resolveTlbOption(o.tlb, loadAddon());
  return out;
}
