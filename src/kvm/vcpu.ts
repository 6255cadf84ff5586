/**
 * The TS side of one vCPU: a thin wrapper over NativeVcpu (src/native/types.ts) that sets
 * registers by name, decodes the exit record into a typed ExitInfo once per exit, and takes
 * counter snapshots by name. Field and counter indices are looked up once from the
 * addon's name lists, never hard-coded, so the native side can append fields freely.
 */
import { REG, ExitReason, type AccessKind, type ExitReasonCode, type NativeVcpu } from '../native/types.ts';
import { gpa, type Gpa } from '../util/address.ts';
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
  gpa: Gpa;
  /** Kept as bigint: canonical high-half addresses exceed 2^53. */
  gva: bigint;
  access: AccessKind;
  gvaValid: boolean;
  level: number;
  /** Triple fault: the vector chain (every exception detected, #DF as its own entry). */
  vectors: number[];
  /** Triple fault: the chain with each entry's error code (null: the vector pushes none). */
  chain: { vector: number; errorCode: number | null }[];
  /**
   * EPT violation / misconfiguration / MMIO: the exception whose delivery the exit
   * interrupted (VMX IDT-vectoring information; the next run() re-delivers it), or null.
   */
  vectoring: { vector: number; errorCode: number | null } | null;
  cr2: bigint;
  errorCode: number;
  /** Triple fault: up to 16 instruction bytes at RIP. */
  insnBytes: number[];
}

const EXIT_FIELDS = ['reason', 'rip', 'io_port', 'io_size', 'io_direction', 'value', 'gpa', 'gva', 'access', 'gva_valid', 'level',
  'vector0', 'vector1', 'vector2', 'cr2', 'error_code', 'insn_lo', 'insn_hi', 'insn_len',
  // The whole exception chain and the IDT-vectoring information (native/exit.h)
  'chain_len', 'vector3', 'vector4', 'vector5', 'vector6', 'vector7',
  'error0', 'error1', 'error2', 'error3', 'error4', 'error5', 'error6', 'error7',
  'vectoring_vector', 'vectoring_error',
  // Units of the run() budget the last run() used (native/cpu.cc Cpu::run defines the unit)
  'budget_used'] as const;
const CHAIN_VECTORS = ['vector0', 'vector1', 'vector2', 'vector3', 'vector4', 'vector5', 'vector6', 'vector7'] as const;
const CHAIN_ERRORS = ['error0', 'error1', 'error2', 'error3', 'error4', 'error5', 'error6', 'error7'] as const;
type ExitFieldName = (typeof EXIT_FIELDS)[number];

const TWO32 = 4294967296;

/**
 * The exit record seen through 32-bit halves of the native BigUint64Array, so reading a
 * field allocates no BigInt. Fields are decoded on access (getters), so an I/O exit reads
 * five words and a triple fault builds its arrays only when reported. One instance per vCPU,
 * valid until the next run().
 */
class ExitView implements ExitInfo {
  private readonly w: Uint32Array;
  constructor(
    record: BigUint64Array,
    private readonly ix: Readonly<Record<ExitFieldName, number>>,
  ) {
    this.w = new Uint32Array(record.buffer, record.byteOffset, record.length * 2);
  }
  /** A field as a number (exact below 2^53). */
  private n(f: ExitFieldName): number {
    const i = this.ix[f] * 2;
    return this.w[i] + this.w[i + 1] * TWO32;
  }
  /** A field as an exact u64. */
  private b(f: ExitFieldName): bigint {
    const i = this.ix[f] * 2;
    return (BigInt(this.w[i + 1]) << 32n) | BigInt(this.w[i]);
  }
  get reason(): ExitReasonCode { return this.n('reason') as ExitReasonCode; }
  get rip(): bigint { return this.b('rip'); }
  get ioPort(): number { return this.n('io_port'); }
  get ioSize(): number { return this.n('io_size'); }
  get ioDirection(): number { return this.n('io_direction'); }
  get value(): number { return this.n('value'); }
  get gpa(): Gpa { return gpa(this.n('gpa')); }
  get gva(): bigint { return this.b('gva'); }
  // The addon writes only HV_ACCESS_KINDS values here (loadAddon checks the table).
  get access(): AccessKind { return this.n('access') as AccessKind; }
  get gvaValid(): boolean { return this.n('gva_valid') !== 0; }
  get level(): number { return this.n('level'); }
  get cr2(): bigint { return this.b('cr2'); }
  get errorCode(): number { return this.n('error_code'); }
  get vectors(): number[] {
    return this.chain.map((e) => e.vector);
  }
  get chain(): { vector: number; errorCode: number | null }[] {
    const len = Math.min(CHAIN_VECTORS.length, this.n('chain_len'));
    const out: { vector: number; errorCode: number | null }[] = [];
    for (let k = 0; k < len; k++) out.push({ vector: this.n(CHAIN_VECTORS[k]), errorCode: this.err(CHAIN_ERRORS[k]) });
    return out;
  }
  get vectoring(): { vector: number; errorCode: number | null } | null {
    const v = this.n('vectoring_vector');
    return v === 0xff ? null : { vector: v, errorCode: this.err('vectoring_error') };
  }
  /** An error-code field: all ones (native kNoErrorCode) means none. */
  private err(f: ExitFieldName): number | null {
    const i = this.ix[f] * 2;
    return this.w[i + 1] === 0xffffffff ? null : this.w[i];
  }
  get insnBytes(): number[] {
    const len = Math.min(16, this.n('insn_len'));
    const out: number[] = [];
    for (let i = 0; i < len; i++) {
      const word = this.ix[i < 8 ? 'insn_lo' : 'insn_hi'] * 2 + ((i % 8) >> 2);
      out.push((this.w[word] >>> ((i % 4) * 8)) & 0xff);
    }
    return out;
  }
}

export class Vcpu {
  readonly native: NativeVcpu;
  readonly counterNames: readonly string[];
  private readonly exitIndex: Record<ExitFieldName, number>;
  private readonly exitView: ExitView;
  private readonly exitWords: Uint32Array;
  /** The counters as 32-bit halves: reading one allocates nothing. */
  private readonly c32: Uint32Array;
  private readonly instructionsWord: number;

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
    this.exitView = new ExitView(native.exit, idx);
    this.exitWords = new Uint32Array(native.exit.buffer, native.exit.byteOffset, native.exit.length * 2);
    const c = native.counters;
    this.c32 = new Uint32Array(c.buffer, c.byteOffset, c.length * 2);
    const ins = counterNames.indexOf('instructions');
    if (ins < 0) throw new NativeError(`native addon has no 'instructions' counter`);
    this.instructionsWord = ins * 2;
  }

  /** Reset the register file: the named registers get their values, every other one 0. */
  setRegisters(values: ReadonlyMap<RegName, bigint>): void {
    this.native.regs.fill(0n);
    for (const [name, v] of values) this.native.regs[REG[name]] = v;
  }

  reg(name: RegName): bigint {
    return this.native.regs[REG[name]];
  }

  /** Instructions retired so far (two typed-array reads, no allocation). */
  instructions(): number {
    return this.c32[this.instructionsWord] + this.c32[this.instructionsWord + 1] * TWO32;
  }

  snapshot(): CounterSnapshot {
    const out: Record<string, number> = {};
    const w = this.c32;
    for (let i = 0; i < this.counterNames.length; i++) out[this.counterNames[i]] = w[2 * i] + w[2 * i + 1] * TWO32;
    return out as CounterSnapshot;
  }

  /**
   * Units of its budget the last native run() used: one per instruction retired and per
   * exception delivered, a REP string instruction one per iteration (native/cpu.cc).
   */
  budgetUsed(): number {
    const i = this.exitIndex.budget_used * 2;
    return this.exitWords[i] + this.exitWords[i + 1] * TWO32;
  }

  /** Completes an IN: the next run() stores `value` in AL/AX/EAX. */
  setInValue(value: number): void {
    const i = this.exitIndex.value * 2;
    this.exitWords[i] = value >>> 0;
    this.exitWords[i + 1] = 0;
  }

  /** The last exit, decoded lazily; valid until the next run(). */
  readExit(): ExitInfo {
    return this.exitView;
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
  [ExitReason.EPT_MISCONFIG]: 'ept_misconfig',
};
