/**
 * The public contract of the hypervisor API: what a script or the CLI passes to create a
 * VM and what a run returns. The implementation (src/kvm/vm*.ts) is typed against these
 * types; docs/cli.md documents the JSON form of RunResult, which is this shape.
 */
import type { GuestPageSize } from '../guest/boot.ts';
import type { CostTable, FaultRates, SimulatedTime } from '../kvm/cost.ts';
import type { StopReason } from '../kvm/exits.ts';
import type { CounterSnapshot } from '../kvm/vcpu.ts';
import type { ErrorCode } from '../util/errors.ts';
// ept: EPT-mode options and the memory report (src/kvm/report.ts)
import type { MemoryReport } from '../kvm/report.ts';
import type { HostOptions } from '../kvm/ept-options.ts';
import type { TlbGeometry } from '../native/types.ts';

export type { GuestPageSize, CostTable, FaultRates, SimulatedTime, StopReason, CounterSnapshot, TlbGeometry };

export interface VmConfig {
  /** Guest-physical memory in bytes, a positive multiple of 4 KiB. Default 64 MiB. */
  memory?: number;
  /** Page size of the boot identity map. Default '4k'. */
  guestPageSize?: GuestPageSize;
  /** Guest command line (boot info, ≤ 3000 bytes). */
  cmdline?: string;
  /** Up to 16 u64 parameters for the guest (boot info args). */
  args?: readonly (number | bigint)[];
  /** Unhandled port I/O stops the VM with an error instead of being logged and ignored. */
  strict?: boolean;
  /** Stop (stopReason 'max-instructions') once this many instructions retired. 0 = no limit. */
  maxInstructions?: number;
  /** Stop (stopReason 'timeout') after this many wall-clock milliseconds of running. 0 = no limit. */
  timeoutMs?: number;
  /** Instructions per native run() call: the granularity of limits and console flushes. Default 4 Mi. */
  chunkInstructions?: number;
  /** Geometry of the modeled TLB hierarchy (src/native/types.ts TlbGeometry); omitted fields keep the defaults. */
  tlb?: TlbGeometry;
  /** Cost-model overrides (src/kvm/cost.ts documents each entry and its default). */
  costs?: Partial<CostTable>;
  /** Console text as the guest prints it (at newlines and at least once per run chunk). */
  onConsole?: (text: string) => void;
  /** VMM diagnostics (unhandled ports...), one line each. */
  onLog?: (message: string) => void;
  // ept: ---
  /** KVM-like EPT over the host THP model (true), or native no-EPT translation (false). Default: EPT_DEFAULT (true) in src/kvm/report.ts. */
  ept?: boolean;
  /** The simulated host in EPT mode: RAM size, THP knobs, host clock (src/kvm/ept-options.ts HostOptions). */
  host?: HostOptions;
}

/** Counters of one region of interest (ROI port 0xF6: 1 = begin, 2 = end). */
export interface RoiResult {
  /** Counter deltas between the begin and end markers. */
  counters: CounterSnapshot;
  simulated: SimulatedTime;
  rates: FaultRates;
}

export interface RunResult {
  /** The guest's exit status (debug-exit value; 0 for HLT); null when the guest did not finish. */
  exitStatus: number | null;
  stopReason: StopReason;
  /** Abnormal stops (triple fault, strict I/O, MMIO, internal error): the report. */
  error: { code: ErrorCode; message: string } | null;
  /** Everything the guest printed on COM1. */
  console: string;
  /** Every vCPU counter, by name, at the stop. */
  counters: CounterSnapshot;
  /** VM exits by reason (io, hlt, ept_violation, mmio, shutdown), from the counters. */
  exits: Record<string, number>;
  /** Regions of interest, in guest order. */
  roi: RoiResult[];
  /** A ROI begun and not ended when the VM stopped. */
  roiOpen: boolean;
  /** Ports reported as unhandled (non-strict mode), ascending. */
  unhandledPorts: number[];
  /** Page-aligned GPAs of MMIO pages reported as unhandled (non-strict mode), ascending. */
  unhandledMmio: number[];
  /** VMM statistics (port accesses, ROI markers). */
  vmm: Record<string, number>;
  instructions: number;
  /** Wall-clock seconds spent in the run loop. */
  wallSeconds: number;
  /** Guest instructions per wall-clock microsecond (millions per second). */
  mips: number;
  simulated: SimulatedTime;
  rates: FaultRates;
  /** Where the boot protocol put things (GUEST-ABI.md). */
  boot: BootSummary;
  /** ept: EPT-layer and host THP counters, TLB misses and walk references per walk. */
  memory: MemoryReport;
}

export interface BootSummary {
  memory: number;
  guestPageSize: GuestPageSize;
  entry: number;
  imageEnd: number;
  pml4: number;
  pageTables: number;
  bootInfo: number;
  freeStart: number;
}
