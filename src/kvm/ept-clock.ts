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
import { simulate, type CostTable, type HostEvents } from './cost.ts';
import type { CounterSnapshot } from './vcpu.ts';
import type { Host } from '../mm/index.ts';

export interface HostClockReport {
  /** The host clock follows the guest's simulated time (VmConfig.host.clock, --host-clock). */
  follows_guest: boolean;
  /** The host's simulated time now, ms since its boot (HostApi.advanceTime's clock). */
  host_ms: number;
  /** Times the clock was advanced during runs. */
  syncs: number;
}

export class HostClock {
  private syncs = 0;

  constructor(
    private readonly host: Host,
    private readonly costs: CostTable,
    readonly followsGuest: boolean,
  ) {}

  /** Advance the host to the simulated time of these counters and host events (never back). */
  sync(counters: CounterSnapshot, events: HostEvents): void {
    if (!this.followsGuest) return;
    const ms = simulate(counters, events, this.costs).seconds * 1000;
    const delta = ms - this.host.now;
    if (delta <= 0) return;
    this.syncs++;
    this.host.advanceTime(delta);
  }

  report(): HostClockReport {
    return { follows_guest: this.followsGuest, host_ms: this.host.now, syncs: this.syncs };
  }
}
