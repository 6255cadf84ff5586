// Types for run-guest.mjs (the real-KVM reference runner), so TS tests import it checked.
export declare const KVM_DEVICE: string;
export declare const KVM_RUN_BINARY: string;
export interface KvmRunOptions {
  /** guest memory in bytes (multiple of 4096); default 64 MiB */
  memory?: number;
  pageSize?: '4k' | '2m' | '1g';
  args?: Array<number | bigint>;
  cmdline?: string;
  timeoutSeconds?: number;
  /** back guest RAM with THPs (madvise MADV_HUGEPAGE); default: MADV_NOHUGEPAGE */
  hostThp?: boolean;
  /** unhandled port I/O and MMIO stop the VM (GUEST-ABI strict mode) */
  strict?: boolean;
}
/** Same strings as hugevisor's StopReason where the two overlap. */
export type KvmStopReason = 'exit' | 'hlt' | 'triple-fault' | 'unhandled-io' | 'mmio' | 'timeout' | 'internal-error';
/** KVM binary statistics by name (KVM_GET_STATS_FD): scalars, histograms as arrays. */
export type KvmStats = Record<string, number | number[]>;
export interface KvmRunResult {
  console: string;
  reason: KvmStopReason;
  /** value written to port 0xF4, 0 for HLT, null otherwise */
  status: number | null;
  /** KVM exits seen by the loader, by KVM_EXIT_* reason */
  exits: { io: number; hlt: number; mmio: number; shutdown: number; intr: number; other: number };
  vmm: { io_out: number; io_in: number; io_unhandled: number; roi_begin: number; roi_end: number };
  unhandledPorts: number[];
  /** final registers as hex strings (at a triple fault: the RIP KVM reports) */
  regs: Record<'rip' | 'rsp' | 'rflags' | 'rax' | 'rdi' | 'cr0' | 'cr2' | 'cr3' | 'cr4' | 'efer', string>;
  pendingException?: { injected: number; pending: number; nr: number; hasErrorCode: number; errorCode: number };
  /** KVM_GET_SUPPORTED_CPUID leaf 0x80000001 EDX as given to the guest */
  cpuid80000001Edx: string;
  /** per region of interest: the scalar stats that changed inside it */
  roi: Array<{ vm: Record<string, number> | null; vcpu: Record<string, number> | null }>;
  roiOpen: boolean;
  /** null when the kernel has no KVM_GET_STATS_FD */
  stats: { vm: KvmStats | null; vcpu: KvmStats | null };
  /** loader diagnostics, one line each */
  log: string;
  stderr: string;
  argv: string[];
  boot: { entry: number; pml4: number; bootInfo: number; freeStart: number };
}
export declare function kvmUnavailableReason(): string | null;
export declare function kvmAvailable(): boolean;
export declare function buildKvmRun(): string;
export declare function guestPath(guest: string): string;
export declare function runGuestKvm(guest: string, opts?: KvmRunOptions): Promise<KvmRunResult>;
/** Builds tools/kvm/guests/NAME.s into build/kvm/NAME.elf; returns its path. */
export declare function buildKvmGuest(name: string): string;
