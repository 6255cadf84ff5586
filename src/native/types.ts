/**
 * The contract between TS and the native addon (native/addon.cc). The addon is "the
 * hardware": it executes guest instructions until a VM exit and counts events; it never
 * decides policy. Hot state is shared through typed-array views over native memory, so
 * reading counters, registers or the exit record allocates nothing per instruction.
 */

/** Host-physical arena: simulated host RAM. Host PFN n is at byte n*4096. */
export interface NativeArena {
  /** External ArrayBuffer over the whole arena (views are limited to 2^32 bytes each). */
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
  /** Execute until a VM exit, or until `maxInstructions` more retire (EXIT_BUDGET). */
  run(maxInstructions: number): ExitReasonCode;
  /** INVEPT (all contexts): drop every cached translation that depended on the EPT. */
  invept(): void;
  /** Drop every cached guest translation (as MOV to CR3 does). */
  flushTlb(): void;
  /** Zero every counter. */
  resetCounters(): void;
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
} as const;
export type ExitReasonCode = (typeof ExitReason)[keyof typeof ExitReason];
