/**
 * Time series of a run: run({ sampleEvery, onSample }) stops the run loop at each sample
 * point (an artificial boundary: no VMM work, so sampling does not change the run) and
 * delivers one row — the time, the instructions, and every counter's change since the
 * previous row, and the interval's fault-rate block (the same block results and ROIs carry).
 * Rows cost one counter snapshot each; nothing is allocated per instruction.
 */
import { hostEventsDelta, simulate, type CostTable, type HostEvents } from './cost.ts';
import { faultRates } from './rates.ts';
import { counterDelta, type CounterSnapshot } from './vcpu.ts';

/** Where the run is: what a sample row is computed from. */
export interface SamplePoint {
  /** Budget units used (instructions, delivered exceptions, REP iterations). */
  units: number;
  /** Instructions retired. */
  instructions: number;
  simulatedNs: number;
  counters: CounterSnapshot;
  /** The host's /proc/vmstat and khugepaged counters (EPT mode), or null. */
  host: Readonly<Record<string, number>> | null;
  /** The host events the cost model charges (0 without a host model). */
  hostEvents: HostEvents;
}

/** Every this many budget units (instructions; a REP iteration or an exception delivery counts one), or simulated ns. */
export type SampleEvery = { instructions: number } | { simulatedNs: number };

function delta(now: Readonly<Record<string, number>>, before: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(now)) out[k] = now[k]! - (before[k] ?? 0);
  return out;
}

export class Sampler {
  private index = 0;
  private prev: SamplePoint;

  constructor(
    private readonly every: SampleEvery,
    private readonly onSample: (row: ReturnType<Sampler['row']>) => void,
    private readonly start: SamplePoint,
    private readonly costs: CostTable,
  ) {
    this.prev = start;
  }

  /** The next sample point, on a grid from the start (no drift when the run stops past one). */
  next(): { sampleAtUnits?: number; sampleAtNs?: number } {
    const k = this.index + 1;
    return 'instructions' in this.every
      ? { sampleAtUnits: this.start.units + k * this.every.instructions }
      : { sampleAtNs: this.start.simulatedNs + k * this.every.simulatedNs };
  }

  /** Deliver the row for `p`; `final`: the run stopped, deliver the partial interval if any. */
  take(p: SamplePoint, final = false): void {
    if (final && p.units === this.prev.units) return;
    this.onSample(this.row(p));
    this.prev = p;
    this.index++;
    // A long exit (a simulated-time grid step smaller than one boundary's advance) may pass
    // several grid points at once: the next one lies beyond where the run is.
    if ('simulatedNs' in this.every) {
      const step = this.every.simulatedNs;
      this.index = Math.max(this.index, Math.floor((p.simulatedNs - this.start.simulatedNs) / step));
    }
  }

  private row(p: SamplePoint) {
    const counters = counterDelta(this.prev.counters, p.counters);
    const host = p.host && this.prev.host ? delta(p.host, this.prev.host) : null;
    const simulated = simulate(counters, hostEventsDelta(p.hostEvents, this.prev.hostEvents), this.costs);
    return {
      index: this.index,
      /** Instructions retired, in all, at the end of this interval. */
      instructions: p.instructions,
      /** Simulated ns since the guest started, at the end of this interval. */
      simulatedNs: p.simulatedNs,
      /** Every vCPU counter's change over the interval. */
      counters,
      /** The host's counters' change over the interval (EPT mode), or null. */
      host,
      /** The interval's event totals and rates, TLB MPKI and miss ratios, walk references per walk. */
      rates: faultRates(counters, simulated, host),
    };
  }
}

export type Sample = ReturnType<Sampler['row']>;
