/**
 * The host clock follows the guest (EPT mode). Native code counts events and the cost model
 * (src/kvm/cost.ts) turns them into simulated seconds; this advances the simulated host's
 * clock (HostApi.advanceTime, simulated ms) to the run's simulated time at every return of
 * the native run loop (a VM exit or the end of a run chunk), so the host's timed work —
 * kswapd below the free watermark, khugepaged passes every scan_sleep_millisecs — happens
 * during a run as on a real host, between two guest instructions, never inside one.
 *
 * Deterministic: the instants depend only on the counters at those boundaries, which depend
 * only on the guest, its config (chunkInstructions included) and the cost table. Host work
 * feeds back into simulated time (a collapse copies 2 MiB: kib_copied), as it would steal
 * the CPU on a real host.
 */
import type { CostItem, CostTable, HostEvents } from './cost.ts';
import type { Host } from '../mm/index.ts';
import type { NativeVcpu } from '../native/types.ts';

/** Which vCPU counters feed each cost item (src/kvm/cost.ts simulate, the same lists). */
const FEEDS: Partial<Record<CostItem, readonly string[]>> = {
  instruction: ['instructions'],
  l1_tlb_hit: ['itlb_4k_hits', 'itlb_2m_hits', 'itlb_1g_hits', 'dtlb_4k_hits', 'dtlb_2m_hits', 'dtlb_1g_hits'],
  stlb_hit: ['stlb_4k_hits', 'stlb_2m_hits', 'stlb_1g_hits'],
  walk_ref: ['walk_refs'],
  vm_exit: ['exits_io', 'exits_hlt', 'exits_ept_violation', 'exits_mmio', 'exits_shutdown'],
};
const TWO32 = 4294967296;

export interface HostClockReport {
  /** The host clock follows the guest's simulated time (VmConfig.host.clock, --host-clock). */
  follows_guest: boolean;
  /** The host's simulated time now, ms since its boot (HostApi.advanceTime's clock). */
  host_ms: number;
  /** Times the clock was advanced during runs. */
  syncs: number;
}

/**
 * The run's simulated time, read from the vCPU's counters in place: simulate() over a
 * snapshot would allocate a record of every counter at every VM exit; this is the same
 * Σ count × cost without allocating. The host clock follows it, and the run loop's
 * simulated-time limits and samples read it.
 */
export class SimClock {
  /** The vCPU counters as u32 halves, and (word index, cycles) per counter the cost model reads. */
  private readonly words: Uint32Array;
  private readonly weights: Array<[number, number]> = [];

  constructor(
    vcpu: NativeVcpu,
    counterNames: readonly string[],
    private readonly costs: CostTable,
    /** The host's events so far (EPT mode), for their share of simulated time. */
    private readonly hostEvents: () => HostEvents,
  ) {
    const c = vcpu.counters;
    this.words = new Uint32Array(c.buffer, c.byteOffset, c.length * 2);
    for (const [item, names] of Object.entries(FEEDS) as [CostItem, readonly string[]][]) {
      for (const n of names) {
        const i = counterNames.indexOf(n);
        if (i >= 0 && costs[item] !== 0) this.weights.push([2 * i, costs[item]]);
      }
    }
  }

  /** Simulated cycles so far: the guest's counters and the host's events. */
  cycles(): number {
    const w = this.words;
    let cycles = 0;
    for (const [i, cost] of this.weights) cycles += (w[i]! + w[i + 1]! * TWO32) * cost;
    const c = this.costs;
    const e = this.hostEvents();
    const hostCycles =
      e.host_fault_4k * c.host_fault_4k + e.host_fault_2m * c.host_fault_2m + e.kib_zeroed * c.kib_zeroed +
      e.kib_copied * c.kib_copied + e.swap_io_page * c.swap_io_page;
    return cycles + hostCycles;
  }

  /** Simulated milliseconds so far (the host clock's unit). */
  ms(): number {
    return (this.cycles() / this.costs.clock_hz) * 1000;
  }

  /** Simulated nanoseconds so far. */
  ns(): number {
    return (this.cycles() / this.costs.clock_hz) * 1e9;
  }
}

export class HostClock {
  private syncs = 0;

  constructor(
    private readonly host: Host,
    private readonly clock: SimClock,
    readonly followsGuest: boolean,
  ) {}

  /**
   * Advance the host to the run's simulated time so far (never back). `interrupted`: the
   * run's deadline passed; the host stops catching up between khugepaged passes.
   */
  sync(interrupted?: () => boolean): void {
    if (!this.followsGuest) return;
    const delta = this.clock.ms() - this.host.now;
    if (delta <= 0) return;
    this.syncs++;
    this.host.advanceTime(delta, interrupted);
  }

  report(): HostClockReport {
    return { follows_guest: this.followsGuest, host_ms: this.host.now, syncs: this.syncs };
  }
}
