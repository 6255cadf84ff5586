/**
 * The contract between TS and the native addon (native/addon.cc). The addon is "the
 * hardware": it executes guest instructions until a VM exit and counts events; it never
 * decides policy. Hot state is shared through typed-array views over native memory, so
 * reading counters, registers or the exit record allocates nothing per instruction.
 *
 * The bench addon (native/bench/, loadBenchAddon()) holds test and benchmark entry points
 * that the production addon does not export.
 */
import type { Gpa, Gva } from '../util/address.ts';
import type { TlbGeometry, TlbStructureName } from './tlb.ts';

export type { TlbArrayGeometry, TlbGeometry, TlbStructureName } from './tlb.ts';

/**
 * Largest arena the addon reserves (native Arena::kMaxBytes): 1 TiB. The reservation is lazy
 * (MAP_NORESERVE), so this bounds address space, not memory; TS callers check sizes against
 * it first and turn a violation into a ConfigError.
 */
export const ARENA_MAX_BYTES = 2 ** 40;
/** Bytes per chunk ArrayBuffer of NativeArena.chunks (native Arena::kChunkSize): 1 GiB. */
export const ARENA_CHUNK_BYTES = 2 ** 30;
/** Largest arena that also has `buffer` (Node 20 refuses single ArrayBuffers above 2^32 bytes). */
export const ARENA_MAX_SINGLE_BUFFER = 2 ** 32;

/**
 * Host-physical arena: simulated host RAM. Host PFN n is at byte n*4096. Natively one
 * contiguous lazy mmap (2 MiB aligned, MADV_HUGEPAGE); JS sees it as `chunks`. Wrap it in
 * src/util/chunked-bytes.ts ChunkedBytes (which PhysMem, LinearGuestMemory and the EPT
 * code do) for offset-based access: frames and page tables never straddle a chunk; byte
 * ranges that do are split there.
 *
 * `new Arena(bytes)` throws (RangeError/Error naming the problem, never a crash) unless
 * bytes is a multiple of 4096 in (0, ARENA_MAX_BYTES] and the reservation succeeds.
 */
export interface NativeArena {
  /**
   * The arena as external ArrayBuffers of `chunkSize` bytes each (the last may be shorter):
   * byte b of the arena is byte b % chunkSize of chunks[floor(b / chunkSize)]. Frozen.
   */
  readonly chunks: readonly ArrayBuffer[];
  /** A power of two (ARENA_CHUNK_BYTES). */
  readonly chunkSize: number;
  /**
   * The whole arena as one ArrayBuffer — only for arenas of at most 4 GiB
   * (ARENA_MAX_SINGLE_BUFFER); throws a RangeError for larger ones. A convenience for small
   * test/bench arenas; library code uses `chunks`.
   */
  readonly buffer: ArrayBuffer;
  readonly byteLength: number;
  /** Give a page-aligned range back to the real kernel (reads as zero afterwards). */
  discard(offset: number, length: number): boolean;
}

export interface NativeArenaConstructor {
  new (bytes: number): NativeArena;
}

/**
 * Register-file indices of NativeVcpu.regs. The addon also exports `regNames` in this
 * order; a test checks the two agree. GPRs use the x86 encoding order.
 */
export const REG = {
  rax: 0, rcx: 1, rdx: 2, rbx: 3, rsp: 4, rbp: 5, rsi: 6, rdi: 7,
  r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15,
  rip: 16, rflags: 17, cr0: 18, cr2: 19, cr3: 20, cr4: 21, efer: 22,
  gdtr_base: 23, gdtr_limit: 24, idtr_base: 25, idtr_limit: 26,
  cs: 27, ds: 28, es: 29, ss: 30, fs: 31, gs: 32,
  /** RDTSC returns tsc_offset + instructions retired; TS adds simulated exit costs here. */
  tsc_offset: 33,
} as const;
export const REG_COUNT = 34;

/** Translation configuration of a vCPU (native MmuConfig). */
export interface NativeMmuConfig {
  /** Two-dimensional translation through the EPT rooted at `eptp`. */
  ept: boolean;
  /** EPT mode: HPA of the EPT PML4 table (a 4 KiB-aligned arena offset). */
  eptp?: number;
  /** No-EPT mode: HPA of guest-physical address 0 (guest RAM is one arena range). */
  guestBase?: number;
  /** No-EPT mode: bytes of guest-physical memory. */
  guestSize?: number;
  /**
   * Geometry of the modeled TLB hierarchy; fields left out keep their defaults
   * (NativeAddon.defaultTlbGeometry, native/mmu.h HV_TLB_STRUCTURES). `{ entries: 0, ways: 0 }`
   * disables a structure. An invalid geometry makes configureMmu throw, naming the field.
   */
  tlb?: TlbGeometry;
}

/**
 * One virtual CPU: registers, MMU and counters, executing in the arena it was created with.
 * run() executes until a VM exit; the exit record says why.
 *
 * Exit protocol (native/exit.h): on EXIT_IO with io_direction = 1 (IN), TS writes the value
 * read into exit[value] and the next run() completes the instruction. On EXIT_EPT_VIOLATION
 * and EXIT_MMIO the faulting instruction has not retired (RIP points at it): fix the
 * mapping and call run() again. EXIT_SHUTDOWN (triple fault) is final.
 */
export interface NativeVcpu {
  /** Register file (see REG). Writes from TS take effect at the next run(). */
  readonly regs: BigUint64Array;
  /** Event counters (index i named by NativeAddon.counterNames[i]). */
  readonly counters: BigUint64Array;
  /** Exit record (index i named by NativeAddon.exitFieldNames[i]). */
  readonly exit: BigUint64Array;
  /** Throws an Error naming the problem for an invalid configuration. */
  configureMmu(cfg: NativeMmuConfig): void;
  /**
   * Execute until a VM exit, or until `maxInstructions` budget units are used (EXIT_BUDGET):
   * one per instruction retired or exception delivered, a REP string instruction one per
   * iteration (native/cpu.cc). The exit record's `budget_used` says how many were.
   */
  run(maxInstructions: number): ExitReasonCode;
  /** INVEPT (all contexts): drop every cached translation that depended on the EPT. */
  invept(): void;
  /** Drop every cached guest translation (as MOV to CR3 does). */
  flushTlb(): void;
  /** Zero every counter. */
  resetCounters(): void;
  /**
   * After an MMIO exit (EXIT_MMIO, or an EPT violation outside every memslot): from now on
   * data accesses to `gpa`'s 4 KiB page that find no memory read all-ones and drop writes
   * (counted in loads/stores and mmio_accesses), so re-running completes the instruction.
   */
  completeMmio(gpa: number | bigint): void;
  /** Free the decode cache and the code-frame bitmap now (a closed VM); run() returns INTERNAL after. */
  release(): void;
}

export interface NativeVcpuConstructor {
  new (arena: NativeArena): NativeVcpu;
}

export interface NativeAddon {
  readonly Arena: NativeArenaConstructor;
  readonly Vcpu: NativeVcpuConstructor;
  /** Register names, index i names regs[i] (matches REG). */
  readonly regNames: readonly string[];
  /** Counter names, index i names counters[i] of every vCPU (native/counters.h). */
  readonly counterNames: readonly string[];
  /** Exit record field names, index i names exit[i] (native/exit.h). */
  readonly exitFieldNames: readonly string[];
  /** Exit reason names, index = ExitReason value (native/exit.h HV_EXIT_REASONS). */
  readonly exitReasonNames: readonly string[];
  /** Access kind names, index = Access value (native/exit.h HV_ACCESS_KINDS). */
  readonly accessNames: readonly string[];
  /**
   * The TLB structures in configuration order (native/mmu.h HV_TLB_STRUCTURES): the keys
   * of TlbGeometry. Use tlbStructureNames() (src/native/tlb.ts).
   */
  readonly tlbStructures: readonly TlbStructureName[];
  /** The default TLB geometry (native/mmu.h TlbGeometry, every field present). */
  readonly defaultTlbGeometry: Required<TlbGeometry>;
}

/** What BenchAddon.walkBench measured: elapsed ns for n translations and their counts. */
export interface WalkBenchResult {
  /** Wall time of the n translations. */
  ns: number;
  /** CPU time of the running thread meanwhile (excludes time the machine gave to others). */
  cpuNs: number;
  walks: number;
  refs: number;
  hits: number;
}

/** Kinds of BenchAddon.walkBench (native/bench/walk_bench.h WalkBenchKind). */
export const WalkBenchKind = {
  /** 4K guest × 4K EPT with every cache disabled: each translation is a 24-reference walk. */
  cold2d: 0,
  /** 4K guest pages without EPT, caches disabled: 4-reference walks. */
  coldNative: 1,
  /** Default hierarchy, the same page again and again (L1 hit, fast path). */
  l1HitSame: 2,
  /** Default hierarchy, 32 pages round robin (L1 hit, full set lookup). */
  l1HitRotate: 3,
  /** Default hierarchy, random 4K pages over 1 GiB (STLB misses, warm PWC/nested TLB). */
  miss2d: 4,
} as const;

/**
 * The bench addon (build/Release/hugevisor_bench.node, native/bench/bench_addon.cc): entry
 * points for benchmarks and tests only, kept out of the production addon.
 */
export interface BenchAddon {
  /** Run n translations of one WalkBenchKind inside C++ (bench/walk.ts). */
  walkBench(kind: number, n: number): WalkBenchResult;
}

/** Exit reasons (native/exit.h ExitReason). */
export const ExitReason = {
  NONE: 0,
  HLT: 1,
  IO: 2,
  EPT_VIOLATION: 3,
  MMIO: 4,
  SHUTDOWN: 5,
  BUDGET: 6,
  INTERNAL: 7,
  /** A malformed EPT entry (KVM's EXIT_REASON_EPT_MISCONFIG): a hypervisor bug. */
  EPT_MISCONFIG: 8,
} as const;
export type ExitReasonCode = (typeof ExitReason)[keyof typeof ExitReason];

/**
 * Access kinds of the exit record's `access` field (EPT violation, EPT misconfiguration,
 * MMIO): native/exit.h HV_ACCESS_KINDS. loadAddon() checks this table, and ExitReason,
 * against the names the addon exports.
 */
export const Access = {
  READ: 0,
  WRITE: 1,
  FETCH: 2,
} as const;
export type AccessKind = (typeof Access)[keyof typeof Access];

/**
 * The guest-address part of a decoded EPT-violation / EPT-misconfiguration / MMIO exit
 * record (native/exit.h fields gpa, gva, access, gva_valid, level), typed by address space
 * so callers pass `gpa` on as a Gpa without a cast.
 */
export interface ExitAddressFields {
  /** The guest-physical address that faulted (a guest table entry's when !gvaValid). */
  readonly gpa: Gpa;
  /**
   * The guest-virtual address being accessed. A number: exact below 2^53 (every lower-half
   * address); a canonical high-half GVA needs the raw u64 of exit[gva].
   */
  readonly gva: Gva;
  readonly access: AccessKind;
  /** True when gpa is the access's final GPA, false for a guest page-table access. */
  readonly gvaValid: boolean;
  /** EPT level (4..1) where the EPT walk stopped; 0 without EPT. */
  readonly level: number;
}
