/**
 * The contract between TS and the native addon (native/addon.cc). The addon is "the
 * hardware": it executes guest instructions until a VM exit and counts events; it never
 * decides policy. Hot state is shared through typed-array views over native memory, so
 * reading counters, registers or the exit record allocates nothing per instruction.
 */

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
   * (NativeAddon.defaultTlbGeometry, the table in MMU-MODEL.md). `{ entries: 0, ways: 0 }`
   * disables a structure. An invalid geometry makes configureMmu throw, naming the field.
   */
  tlb?: TlbGeometry;
}

/**
 * One translation cache: `entries` in total (0 = disabled) in sets of `ways` (0 = fully
 * associative); entries/ways must be a power of two, at most 65536 entries and 64 ways.
 * Replacement is exact LRU per set (deterministic).
 */
export interface TlbArrayGeometry {
  entries: number;
  ways: number;
}

/**
 * The TLB hierarchy of native/mmu.h. L1 arrays are per page size; a translation is cached
 * in the largest enabled array not larger than min(guest page, EPT page) ("splintering").
 */
export interface TlbGeometry {
  /** L1 ITLB, 4 KiB / 2 MiB / 1 GiB entries (default 64×8-way, 8 fully assoc., none). */
  itlb4k?: TlbArrayGeometry;
  itlb2m?: TlbArrayGeometry;
  itlb1g?: TlbArrayGeometry;
  /** L1 DTLB, 4 KiB / 2 MiB / 1 GiB entries (default 64×4-way, 32×4-way, 4 fully assoc.). */
  dtlb4k?: TlbArrayGeometry;
  dtlb2m?: TlbArrayGeometry;
  dtlb1g?: TlbArrayGeometry;
  /** L2 STLB shared by 4 KiB and 2 MiB entries (default 1536×12-way), and its 1 GiB array (16×4-way). */
  stlb?: TlbArrayGeometry;
  stlb1g?: TlbArrayGeometry;
  /** Paging-structure caches: PML4E (4), PDPTE (4), PDE (32), fully associative. */
  pwcPml4e?: TlbArrayGeometry;
  pwcPdpte?: TlbArrayGeometry;
  pwcPde?: TlbArrayGeometry;
  /** Nested TLB: GPA→HPA of guest page-table pages (16, fully associative). */
  nested?: TlbArrayGeometry;
}

/** What NativeAddon.walkBench measured: elapsed ns for n translations and their counts. */
export interface WalkBenchResult {
  /** Wall time of the n translations. */
  ns: number;
  /** CPU time of the running thread meanwhile (excludes time the machine gave to others). */
  cpuNs: number;
  walks: number;
  refs: number;
  hits: number;
}

/** Kinds of NativeAddon.walkBench (native/walk_bench.h WalkBenchKind). */
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
  /** Execute until a VM exit, or until `maxInstructions` more retire (EXIT_BUDGET). */
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
  /** The default TLB geometry (native/mmu.h TlbGeometry, every field present). */
  readonly defaultTlbGeometry: Required<TlbGeometry>;
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
  /** cpufix: a malformed EPT entry (KVM's EXIT_REASON_EPT_MISCONFIG): a hypervisor bug. */
  EPT_MISCONFIG: 8,
} as const;
export type ExitReasonCode = (typeof ExitReason)[keyof typeof ExitReason];
