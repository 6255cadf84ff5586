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

export interface NativeAddon {
  readonly Arena: NativeArenaConstructor;
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
