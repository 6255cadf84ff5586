/**
 * What a run returns (RunResult), and the configuration a VM runs with, defaults filled in
 * (EffectiveConfig): the kvm layer's shapes of the public types in src/api/types.ts, which
 * src/api/index.ts checks them against.
 */
import type { GuestPageSize } from '../guest/boot.ts';
import type { ThpKnobs } from '../mm/types.ts';
import type { TlbGeometry } from '../native/types.ts';
import type { ErrorCode } from '../util/errors.ts';
import type { CostTable, FaultRates, SimulatedTime } from './cost.ts';
import type { StopReason } from './exits.ts';
import type { MemoryReport } from './report.ts';
import type { CounterSnapshot } from './vcpu.ts';

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
  /** Where the boot protocol put things (docs/guest-abi.md). */
  boot: BootSummary;
  /** EPT-layer and host THP counters, TLB misses and walk references per walk. */
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

export interface EffectiveConfig {
  memory: number;
  guestPageSize: GuestPageSize;
  cmdline: string | null;
  args: string[];
  strict: boolean;
  maxInstructions: number;
  timeoutMs: number;
  chunkInstructions: number;
  costs: CostTable;
  tlb: Required<TlbGeometry>;
  ept: boolean;
  host: {
    memory: number;
    thp: ThpKnobs;
    swap: { bytes: number; path: string | null };
    clock: boolean;
    debugChecks: boolean;
  } | null;
}
