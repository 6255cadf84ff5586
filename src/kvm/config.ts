/**
 * Validation of VmConfig at the edge (Firecracker's resources.rs): every field checked,
 * unknown fields refused, messages naming the field and the allowed values. What passes
 * is a complete ResolvedVmConfig with defaults filled in.
 */
import type { VmConfig } from '../api/types.ts';
import { GUEST_PAGE_BYTES, type GuestPageSize } from '../guest/boot.ts';
import { ConfigError } from '../util/errors.ts';
import { makeCostTable, type CostTable } from './cost.ts';
import { EPT_DEFAULT } from './report.ts';
import { resolveHostOptions } from './ept-options.ts';
import type { EptBackendOptions } from './mmu/ept-memory.ts';
import type { TlbGeometry } from '../native/types.ts';

export const DEFAULT_MEMORY = 64 * 1024 * 1024;
export const DEFAULT_GUEST_PAGE_SIZE: GuestPageSize = '4k';
export const DEFAULT_CHUNK_INSTRUCTIONS = 4 * 1024 * 1024;
/** Largest guest the VMM accepts (the boot tables alone would need 2 GiB of 4 KiB PTs at 1 TiB). */
export const MAX_MEMORY = 1024 * 1024 * 1024 * 1024;

export interface ResolvedVmConfig {
  memory: number;
  guestPageSize: GuestPageSize;
  cmdline: string | undefined;
  args: readonly (number | bigint)[];
  strict: boolean;
  maxInstructions: number;
  timeoutMs: number;
  chunkInstructions: number;
  costs: CostTable;
  tlb: TlbGeometry | undefined;
  onConsole: ((text: string) => void) | undefined;
  onLog: ((message: string) => void) | undefined;
  /** ept: EPT mode on (default) or native translation; host model options. */
  ept: boolean;
  host: EptBackendOptions;
  /** The host clock follows the guest's simulated time (src/kvm/host-clock.ts). */
  hostClock: boolean;
}

const KNOWN = new Set(['tlb', 'memory', 'guestPageSize', 'cmdline', 'args', 'strict', 'maxInstructions', 'timeoutMs', 'chunkInstructions', 'costs', 'onConsole', 'onLog', 'ept', 'host']);

function count(name: string, v: unknown, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new ConfigError(`${name} must be an integer ≥ ${min}, got ${String(v)}`);
  }
  return v;
}

function duration(name: string, v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`${name} must be a number ≥ 0, got ${String(v)}`);
  return v;
}

export function resolveVmConfig(c: VmConfig): ResolvedVmConfig {
  for (const k of Object.keys(c)) {
    if (!KNOWN.has(k)) throw new ConfigError(`unknown VM config field '${k}' (known: ${[...KNOWN].join(', ')})`);
  }
  const memory = count('memory', c.memory, DEFAULT_MEMORY, 4096);
  if (memory % 4096 !== 0) throw new ConfigError(`memory must be a multiple of 4 KiB, got ${memory}`);
  if (memory > MAX_MEMORY) throw new ConfigError(`memory must be at most 1 TiB, got ${memory}`);
  const guestPageSize = c.guestPageSize ?? DEFAULT_GUEST_PAGE_SIZE;
  if (!(guestPageSize in GUEST_PAGE_BYTES)) throw new ConfigError(`guestPageSize must be one of 4k, 2m, 1g, got ${String(guestPageSize)}`);
  if (c.cmdline !== undefined && typeof c.cmdline !== 'string') throw new ConfigError('cmdline must be a string');
  if (c.args !== undefined && !Array.isArray(c.args)) throw new ConfigError('args must be an array of integers');
  if (c.strict !== undefined && typeof c.strict !== 'boolean') throw new ConfigError('strict must be a boolean');
  if (c.tlb !== undefined && (typeof c.tlb !== 'object' || c.tlb === null)) throw new ConfigError('tlb must be an object (TlbGeometry)');
  for (const f of ['onConsole', 'onLog'] as const) {
    if (c[f] !== undefined && typeof c[f] !== 'function') throw new ConfigError(`${f} must be a function`);
  }
  return {
    memory,
    guestPageSize,
    cmdline: c.cmdline,
    args: c.args ?? [],
    strict: c.strict ?? false,
    maxInstructions: count('maxInstructions', c.maxInstructions, 0),
    timeoutMs: duration('timeoutMs', c.timeoutMs),
    chunkInstructions: Math.min(count('chunkInstructions', c.chunkInstructions, DEFAULT_CHUNK_INSTRUCTIONS, 1), 2 ** 31),
    costs: makeCostTable(c.costs ?? {}),
    tlb: c.tlb, // validated by configureMmu, which names the bad field
    onConsole: c.onConsole,
    onLog: c.onLog,
    ...resolveEptFields(c),
  };
}

/** ept: the EPT-mode fields (validated in src/kvm/ept-options.ts). */
function resolveEptFields(c: VmConfig): Pick<ResolvedVmConfig, 'ept' | 'host' | 'hostClock'> {
  if (c.ept !== undefined && typeof c.ept !== 'boolean') throw new ConfigError(`ept must be a boolean, got ${String(c.ept)}`);
  const ept = c.ept ?? EPT_DEFAULT;
  if (!ept && c.host !== undefined) throw new ConfigError('host options need ept: true (the host THP model backs guest RAM only in EPT mode)');
  const h = resolveHostOptions(c.host);
  return { ept, host: h.backend, hostClock: h.clock };
}
