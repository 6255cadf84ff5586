// Types for bench.mjs (QEMU TCG rates of the bench guests).
export interface QemuBench { memory: number; args: (n: number) => number[]; perIteration: number; n: number }
export declare const QEMU_BENCHES: Record<'alu-loop' | 'mem-scan' | 'pointer-chase' | 'gups', QemuBench>;
export interface QemuRate { guest: string; instructions: number; seconds: number; cpuSeconds?: number; instructionsPerSecond: number; nsPerInstruction: number; console: string }
export declare function qemuGuestRate(guest: string, opts?: { repeats?: number; n?: number }): Promise<QemuRate>;
export interface QemuElfRateOptions {
  memory: number;
  args: number[];
  /** a tiny run of the same guest: start-up and fixed work, subtracted */
  baseArgs: number[];
  /** instructions the run with args retires (hugevisor's count for the same ELF and args) */
  instructions: number;
  baseInstructions: number;
  cmdline?: string;
  /** guest page size of the trampoline's tables (4k default) */
  pageSize?: '4k' | '2m' | '1g';
  repeats?: number;
}
/** CPU seconds (user + system) of this process's waited-for children so far (/proc/self/stat); NaN without /proc. */
export declare function childrenCpuSeconds(): number;
export declare function qemuElfRate(guest: string, opts: QemuElfRateOptions): Promise<QemuRate>;
