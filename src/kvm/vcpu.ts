/**
 * The TS side of one vCPU: a thin wrapper over NativeVcpu (src/native/types.ts) that sets
 * registers by name, decodes the exit record into a typed ExitInfo once per exit, and takes
 * counter snapshots by name. Field and counter indices are looked up once from the
 * addon's name lists, never hard-coded, so the native side can append fields freely.
 */
import { REG, ExitReason, type ExitReasonCode, type NativeVcpu } from '../native/types.ts';
import { NativeError } from '../util/errors.ts';

/** Counters every build has (native/counters.h); a snapshot also holds any newer ones. */
export type KnownCounterName =
  | 'instructions' | 'loads' | 'stores' | 'fetch_lookups'
  | 'exits' | 'exits_io' | 'exits_hlt' | 'exits_ept_violation' | 'exits_mmio' | 'exits_shutdown' | 'exits_budget'
  | 'exc_de' | 'exc_ud' | 'exc_df' | 'exc_gp' | 'exc_pf'
  | 'cr3_writes' | 'invlpg' | 'invept' | 'tlb_flushes'
  | 'tlb_lookups' | 'tlb_hits' | 'tlb_misses'
  | 'walks' | 'walk_refs' | 'walk_refs_guest' | 'walk_refs_ept' | 'ad_updates';

/** Counter values by name (exact counts; numbers because they stay far below 2^53). */
export type CounterSnapshot = Readonly<Record<KnownCounterName, number>> & Readonly<Record<string, number>>;

export type RegName = keyof typeof REG;

/** One VM exit, decoded. Fields not meaningful for the reason are 0. */
export interface ExitInfo {
  reason: ExitReasonCode;
  /** Kept as bigint: canonical high-half addresses exceed 2^53. */
  rip: bigint;
  ioPort: number;
  ioSize: number;
  /** 0 = OUT, 1 = IN */
  ioDirection: number;
  value: number;
  gpa: number;
  gva: bigint;
  access: number;
  gvaValid: boolean;
  level: number;
  /** Triple fault: the vector chain (0xFF entries dropped). */
  vectors: number[];
  cr2: bigint;
  errorCode: number;
  /** Triple fault: up to 16 instruction bytes at RIP. */
  insnBytes: number[];
}

const EXIT_FIELDS = ['reason', 'rip', 'io_port', 'io_size', 'io_direction', 'value', 'gpa', 'gva', 'access', 'gva_valid', 'level',
  'vector0', 'vector1', 'vector2', 'cr2', 'error_code', 'insn_lo', 'insn_hi', 'insn_len'] as const;
type ExitFieldName = (typeof EXIT_FIELDS)[number];

/** u64 → number; addresses above 2^53 lose low bits, which only matters for printing garbage. */
const num = (v: bigint): number => Number(v);

export class Vcpu {
  readonly native: NativeVcpu;
  readonly counterNames: readonly string[];
  private readonly exitIndex: Record<ExitFieldName, number>;
  private readonly instructionsIndex: number;

  constructor(native: NativeVcpu, counterNames: readonly string[], exitFieldNames: readonly string[]) {
    this.native = native;
    this.counterNames = counterNames;
    const idx = {} as Record<ExitFieldName, number>;
    for (const f of EXIT_FIELDS) {
      const i = exitFieldNames.indexOf(f);
      if (i < 0) throw new NativeError(`native addon exit record has no field '${f}'`);
      idx[f] = i;
    }
    this.exitIndex = idx;
    this.instructionsIndex = counterNames.indexOf('instructions');
    if (this.instructionsIndex < 0) throw new NativeError(`native addon has no 'instructions' counter`);
  }

  setRegisters(values: ReadonlyMap<number, bigint>): void {
    this.native.regs.fill(0n);
    for (const [i, v] of values) this.native.regs[i] = v;
  }

  reg(name: RegName): bigint {
    return this.native.regs[REG[name]];
  }

  /** Instructions retired so far (one typed-array read, no allocation). */
  instructions(): number {
    return num(this.native.counters[this.instructionsIndex]);
  }

  snapshot(): CounterSnapshot {
    const out: Record<string, number> = {};
    const c = this.native.counters;
    for (let i = 0; i < this.counterNames.length; i++) out[this.counterNames[i]] = num(c[i]);
    return out as CounterSnapshot;
  }

  /** Completes an IN: the next run() stores `value` in AL/AX/EAX. */
  setInValue(value: number): void {
    this.native.exit[this.exitIndex.value] = BigInt(value >>> 0);
  }

  readExit(): ExitInfo {
    const e = this.native.exit;
    const f = (n: ExitFieldName): bigint => e[this.exitIndex[n]];
    const vectors = [f('vector0'), f('vector1'), f('vector2')].map(num).filter((v) => v !== 0xff);
    const len = Math.min(16, num(f('insn_len')));
    const insnBytes: number[] = [];
    for (let i = 0; i < len; i++) {
      const word = i < 8 ? f('insn_lo') : f('insn_hi');
      insnBytes.push(Number((word >> BigInt((i % 8) * 8)) & 0xffn));
    }
    return {
      reason: num(f('reason')) as ExitReasonCode,
      rip: f('rip'),
      ioPort: num(f('io_port')),
      ioSize: num(f('io_size')),
      ioDirection: num(f('io_direction')),
      value: num(f('value')),
      gpa: num(f('gpa')),
      gva: f('gva'),
      access: num(f('access')),
      gvaValid: f('gva_valid') !== 0n,
      level: num(f('level')),
      vectors,
      cr2: f('cr2'),
      errorCode: num(f('error_code')),
      insnBytes,
    };
  }
}

/** Counter deltas `after - before` by name (ROI measurements). */
export function counterDelta(before: CounterSnapshot, after: CounterSnapshot): CounterSnapshot {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) out[k] = after[k] - (before[k] ?? 0);
  return out as CounterSnapshot;
}

export const EXIT_REASON_NAMES: Record<ExitReasonCode, string> = {
  [ExitReason.NONE]: 'none',
  [ExitReason.HLT]: 'hlt',
  [ExitReason.IO]: 'io',
  [ExitReason.EPT_VIOLATION]: 'ept_violation',
  [ExitReason.MMIO]: 'mmio',
  [ExitReason.SHUTDOWN]: 'shutdown',
  [ExitReason.BUDGET]: 'budget',
  [ExitReason.INTERNAL]: 'internal',
};
