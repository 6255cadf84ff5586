/**
 * Option plumbing for EPT mode: VmConfig.host (the simulated host: RAM, THP knobs under
 * their sysfs names, whether the host clock follows the guest) and VmConfig.tlb (presets or
 * a JSON geometry), and the mapping from the CLI's --ept/--thp/--thp-defrag/--host-memory/
 * --host-clock, --khugepaged-... and --tlb flags to those fields. Every bad value is one
 * ConfigError naming the field or flag and what it accepts.
 */
import { readFileSync } from 'node:fs';
import type { NativeAddon, TlbArrayGeometry, TlbGeometry } from '../native/types.ts';
import type { ThpKnobs } from '../mm/types.ts';
import { defaultKnobs, setKnob } from '../mm/knobs.ts';
import { ConfigError } from '../util/errors.ts';
import { loadAddon } from '../native/addon.ts';
import type { EptBackendOptions } from './mmu/ept-memory.ts';

type ThpMode = 'always' | 'madvise' | 'never';

/** transparent_hugepage/khugepaged/* (sysfs names; 2.6.38 defaults in src/mm/knobs.ts). */
export interface KhugepagedOptions {
  pages_to_scan?: number;
  scan_sleep_millisecs?: number;
  alloc_sleep_millisecs?: number;
  max_ptes_none?: number;
  defrag?: boolean;
}

/** VmConfig.host: the simulated host in EPT mode. */
export interface HostOptions {
  /** Host RAM in bytes (multiple of 2 MiB). Default: guest memory + 1/8 + 32 MiB. */
  memory?: number;
  /** transparent_hugepage/enabled (default 'always', the 2.6.38 default). */
  thp?: ThpMode;
  /** transparent_hugepage/defrag (default 'always', the 2.6.38 default). */
  defrag?: ThpMode;
  /** transparent_hugepage/khugepaged/* knobs. */
  khugepaged?: KhugepagedOptions;
  /**
   * The host's simulated time follows the guest's (default true): at every return of the
   * native run loop the host clock is advanced to the run's simulated time (cost model), so
   * khugepaged and kswapd run during the run. false: the host clock stands still unless a
   * script calls host.advanceTime.
   */
  clock?: boolean;
  /** Check host and EPT invariants after every operation (slow; tests). */
  debugChecks?: boolean;
}

/** What resolveHostOptions gives the Vm: the backend's options and the host-clock switch. */
export interface ResolvedHostOptions {
  backend: EptBackendOptions;
  clock: boolean;
}

const HOST_KEYS = ['memory', 'thp', 'defrag', 'khugepaged', 'clock', 'debugChecks'];
const KHUGEPAGED_KEYS = ['pages_to_scan', 'scan_sleep_millisecs', 'alloc_sleep_millisecs', 'max_ptes_none', 'defrag'] as const;
const THP = ['always', 'madvise', 'never'];

/** Validate VmConfig.host, naming the field. */
export function resolveHostOptions(h: unknown): ResolvedHostOptions {
  if (h === undefined) return { backend: {}, clock: true };
  if (typeof h !== 'object' || h === null) throw new ConfigError(`host must be an object { ${HOST_KEYS.join(', ')} }`);
  const o = h as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!HOST_KEYS.includes(k)) throw new ConfigError(`unknown host config field '${k}' (known: ${HOST_KEYS.join(', ')})`);
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
  const thp: NonNullable<EptBackendOptions['thp']> = {};
  if (o.thp !== undefined) thp.enabled = o.thp as ThpMode;
  if (o.defrag !== undefined) thp.defrag = o.defrag as ThpMode;
  if (o.khugepaged !== undefined) thp.khugepaged = resolveKhugepaged(o.khugepaged);
  if (Object.keys(thp).length) out.thp = thp;
  for (const f of ['clock', 'debugChecks'] as const) {
    if (o[f] !== undefined && typeof o[f] !== 'boolean') throw new ConfigError(`host.${f} must be a boolean, got ${String(o[f])}`);
  }
  if (o.debugChecks !== undefined) out.debugChecks = o.debugChecks as boolean;
  return { backend: out, clock: (o.clock as boolean | undefined) ?? true };
}

/** host.khugepaged: each knob validated as its sysfs store would (src/mm/knobs.ts). */
function resolveKhugepaged(v: unknown): Partial<ThpKnobs['khugepaged']> {
  if (typeof v !== 'object' || v === null) throw new ConfigError(`host.khugepaged must be an object { ${KHUGEPAGED_KEYS.join(', ')} }`);
  const o = v as Record<string, unknown>;
  const probe = defaultKnobs();
  const out: Partial<ThpKnobs['khugepaged']> = {};
  for (const [k, x] of Object.entries(o)) {
    if (!(KHUGEPAGED_KEYS as readonly string[]).includes(k)) throw new ConfigError(`unknown host.khugepaged field '${k}' (known: ${KHUGEPAGED_KEYS.join(', ')})`);
    if (x === undefined) continue;
    if (k === 'defrag' ? typeof x !== 'boolean' : typeof x !== 'number') {
      throw new ConfigError(`host.khugepaged.${k} must be ${k === 'defrag' ? 'a boolean' : 'an integer'}, got ${String(x)}`);
    }
    try {
      setKnob(probe, `khugepaged/${k}`, x as number | boolean);
    } catch (e) {
      throw new ConfigError(`host.khugepaged.${k}: ${(e as Error).message.replace(/^transparent_hugepage\/khugepaged\/\w+: /, '')}`);
    }
    (out as Record<string, unknown>)[k] = (probe.khugepaged as unknown as Record<string, unknown>)[k];
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

/** What the CLI's host flags carry (src/cli/args.ts RunOptions). */
export interface CliHostFlags {
  ept?: boolean;
  thp?: ThpMode;
  thpDefrag?: ThpMode;
  hostMemory?: number;
  hostClock?: boolean;
  khugepaged?: KhugepagedOptions;
  tlb?: string;
}

/** Flags that only mean something with the host model (each implies --ept on). */
export function hostFlagsGiven(o: CliHostFlags): string[] {
  const given: string[] = [];
  if (o.thp !== undefined) given.push('--thp');
  if (o.thpDefrag !== undefined) given.push('--thp-defrag');
  if (o.hostMemory !== undefined) given.push('--host-memory');
  if (o.hostClock !== undefined) given.push('--host-clock');
  for (const k of Object.keys(o.khugepaged ?? {})) given.push(`--khugepaged-${k.replace(/_/g, '-')}`);
  return given;
}

/** The VmConfig fields the CLI's host and TLB flags give. */
export function cliEptConfig(o: CliHostFlags): { ept?: boolean; host?: HostOptions; tlb?: TlbGeometry } {
  const out: { ept?: boolean; host?: HostOptions; tlb?: TlbGeometry } = {};
  const given = hostFlagsGiven(o);
  if (o.ept === false && given.length) throw new ConfigError(`${given[0]} needs --ept on (the host THP model backs guest RAM only in EPT mode)`);
  if (o.ept !== undefined) out.ept = o.ept;
  else if (given.length) out.ept = true; // a host flag alone means EPT mode even if the default changes
  if (o.hostMemory !== undefined && (o.hostMemory < 8 * 1024 * 1024 || o.hostMemory % (2 * 1024 * 1024) !== 0)) {
    throw new ConfigError(`--host-memory: ${o.hostMemory} bytes is not a multiple of 2M of at least 8M`);
  }
  if (given.length) {
    const h: HostOptions = {};
    if (o.thp !== undefined) h.thp = o.thp;
    if (o.thpDefrag !== undefined) h.defrag = o.thpDefrag;
    if (o.hostMemory !== undefined) h.memory = o.hostMemory;
    if (o.hostClock !== undefined) h.clock = o.hostClock;
    if (o.khugepaged && Object.keys(o.khugepaged).length) h.khugepaged = { ...o.khugepaged };
    out.host = h;
  }
  if (o.tlb !== undefined) out.tlb = resolveTlbOption(o.tlb, loadAddon());
  return out;
}
