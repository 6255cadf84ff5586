/**
 * `--trace FILE`: a run as Chrome trace-event JSON (the JSON Object Format that Perfetto and
 * chrome://tracing open), on the simulated-time axis (`ts` in µs of simulated time since the
 * guest started). Built from what the API shows a script: the time series of
 * `run({ sampleEvery, onSample })` (per-interval counter and host vmstat deltas) and
 * `vm.result()` between intervals (EPT leaves by size, the ROI list). Per interval:
 *
 * - counter tracks: VM exits by reason, guest #PF, EPT violations, EPT leaves 4K/2M, host
 *   THP events (faults, fallbacks, splits, collapses), khugepaged passes, swap in/out;
 * - instant events: EPT violations with the mapping sizes the interval's new leaves have,
 *   each host event kind that happened (thp_split, thp_collapse_alloc, khugepaged full_scans,
 *   pswpin/pswpout), ROI begin/end markers, the stop.
 *
 * Events are placed at the start of the interval they count (a counter holds its value until
 * the next one), so their resolution is the interval; a counter is written only when its
 * values change. The size is bounded: at most `maxEvents` events are kept, in a ring buffer
 * (the latest ones), and `otherData.dropped` says how many older ones were left out.
 * docs/cli.md "Traces".
 */
import type { RunResult, Sample } from '../api/index.ts';

export const DEFAULT_TRACE_MAX_EVENTS = 200_000;
/** The interval when neither --trace-interval nor stat's -I gives one: 100 µs of simulated time. */
export const DEFAULT_TRACE_INTERVAL = { simulatedNs: 100_000 } as const;

export interface TraceEvent {
  name: string;
  ph: 'C' | 'i' | 'M';
  ts?: number;
  pid: number;
  tid: number;
  cat?: string;
  s?: 't' | 'p' | 'g';
  args: Record<string, unknown>;
}

const PID = 1;
const TID_VCPU = 1;
const TID_HOST = 2;

const EXIT_REASONS = ['io', 'hlt', 'ept_violation', 'mmio', 'shutdown', 'ept_misconfig'] as const;
/** Host vmstat deltas that become instant events when they happen, and the track they belong to. */
const HOST_EVENTS: readonly [key: string, cat: string][] = [
  ['thp_split', 'thp'],
  ['thp_split_pmd', 'thp'],
  ['thp_split_page', 'thp'],
  ['thp_deferred_split_page', 'thp'],
  ['thp_zero_page_alloc', 'thp'],
  ['thp_swpout', 'swap'],
  ['thp_swpout_fallback', 'swap'],
  ['thp_collapse_alloc', 'khugepaged'],
  ['thp_collapse_alloc_failed', 'khugepaged'],
  ['full_scans', 'khugepaged'],
  ['pswpin', 'swap'],
  ['pswpout', 'swap'],
];
const HOST_COUNTERS: readonly [track: string, keys: readonly string[]][] = [
  // thp_split on a 2.6.38 host; thp_split_pmd and thp_split_page on a 6.x one (a track shows the keys its host has).
  ['host THP', ['thp_fault_alloc', 'thp_fault_fallback', 'thp_split', 'thp_split_pmd', 'thp_split_page', 'thp_collapse_alloc']],
  ['khugepaged', ['full_scans', 'pages_collapsed']],
  ['swap', ['pswpin', 'pswpout']],
];

/** What the recorder reads from the VM between intervals (a `Vm` has it). */
export interface TraceSource {
  result(): RunResult;
}

export class TraceRecorder {
  private readonly ring: TraceEvent[] = [];
  /** Index in `ring` of the oldest event once it is full. */
  private head = 0;
  private total = 0;
  private prevNs = 0;
  private lastCounter = new Map<string, string>();
  private leaves: { '4k': number; '2m': number } | null = null;
  private roiOpen = false;
  private roiClosed = 0;
  private samples = 0;

  constructor(
    readonly maxEvents: number,
    private readonly meta: { guest: string; interval: { simulatedNs: number } | { instructions: number } },
  ) {
    if (!(Number.isSafeInteger(maxEvents) && maxEvents >= 1)) throw new RangeError(`maxEvents: ${maxEvents}`);
  }

  private push(e: TraceEvent): void {
    this.total++;
    if (this.ring.length < this.maxEvents) this.ring.push(e);
    else {
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.maxEvents;
    }
  }

  /** A counter event, only when its values differ from the track's last ones. */
  private counter(name: string, tid: number, ts: number, args: Record<string, number>): void {
    const key = JSON.stringify(args);
    if (this.lastCounter.get(name) === key) return;
    this.lastCounter.set(name, key);
    this.push({ name, ph: 'C', ts, pid: PID, tid, args });
  }

  private instant(name: string, cat: string, tid: number, ts: number, args: Record<string, unknown>, scope: 't' | 'g' = 't'): void {
    this.push({ name, ph: 'i', ts, pid: PID, tid, cat, s: scope, args });
  }

  /** One row of the time series, with the VM to read EPT leaves and ROIs from at its end. */
  sample(s: Sample, vm: TraceSource): void {
    this.samples++;
    const start = this.prevNs / 1e3;
    const end = s.simulatedNs / 1e3;
    this.prevNs = s.simulatedNs;
    const c = s.counters as unknown as Record<string, number>;
    this.counter('VM exits', TID_VCPU, start, Object.fromEntries(EXIT_REASONS.map((r) => [r, c[`exits_${r}`] ?? 0])));
    this.counter('guest #PF', TID_VCPU, start, { exc_pf: c.exc_pf ?? 0 });
    const violations = c.exits_ept_violation ?? 0;
    const r = vm.result();
    const ept = r.memory.ept;
    if (ept) {
      this.counter('EPT violations', TID_VCPU, start, { ept_violations: violations });
      const now = { '4k': ept.pages_4k, '2m': ept.pages_2m };
      const before = this.leaves ?? { '4k': 0, '2m': 0 };
      this.leaves = now;
      this.counter('EPT leaves', TID_VCPU, start, now);
      if (violations > 0) {
        // The leaves the interval added, by size: the mapping sizes its violations chose (net of zaps).
        this.instant('EPT violations', 'ept', TID_VCPU, start, {
          count: violations,
          new_4k_leaves: Math.max(0, now['4k'] - before['4k']),
          new_2m_leaves: Math.max(0, now['2m'] - before['2m']),
          interval_us: end - start,
        });
      }
    }
    if (s.host) {
      for (const [track, keys] of HOST_COUNTERS) this.counter(track, TID_HOST, start, Object.fromEntries(keys.filter((k) => k in s.host!).map((k) => [k, s.host![k]])));
      for (const [key, cat] of HOST_EVENTS) {
        const n = s.host[key] ?? 0;
        if (n > 0) this.instant(key, cat, TID_HOST, start, { count: n, interval_us: end - start });
      }
    }
    // ROI markers, seen at the end of the interval they happened in.
    if (r.roi.length > this.roiClosed) {
      for (let i = this.roiClosed; i < r.roi.length; i++) {
        // A region that began and ended within one interval: its begin is placed at the interval's start.
        if (!(i === this.roiClosed && this.roiOpen)) this.instant(`ROI begin #${i}`, 'roi', TID_VCPU, start, { roi: i }, 'g');
        const roi = r.roi[i]!;
        this.instant(`ROI end #${i}`, 'roi', TID_VCPU, end, { roi: i, instructions: roi.counters.instructions, simulated_us: roi.simulated.seconds * 1e6 }, 'g');
      }
      this.roiClosed = r.roi.length;
      this.roiOpen = false;
    }
    if (r.roiOpen && !this.roiOpen) this.instant(`ROI begin #${r.roi.length}`, 'roi', TID_VCPU, end, { roi: r.roi.length }, 'g');
    this.roiOpen = r.roiOpen;
  }

  /** The trace as JSON text, given the run's result (the stop, and zeroed counters at the end). */
  finish(r: RunResult): string {
    const end = r.simulated.seconds * 1e6;
    this.instant(`stop: ${r.stopReason}`, 'vm', TID_VCPU, end, { stopReason: r.stopReason, exitStatus: r.exitStatus, instructions: r.instructions }, 'g');
    const events = this.ring.length < this.maxEvents ? this.ring : [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
    const metadata: TraceEvent[] = [
      { name: 'process_name', ph: 'M', pid: PID, tid: TID_VCPU, args: { name: `hugevisor ${this.meta.guest} (simulated time)` } },
      { name: 'thread_name', ph: 'M', pid: PID, tid: TID_VCPU, args: { name: 'vCPU 0' } },
      { name: 'thread_name', ph: 'M', pid: PID, tid: TID_HOST, args: { name: 'host mm' } },
    ];
    return JSON.stringify({
      traceEvents: [...metadata, ...events],
      displayTimeUnit: 'ns',
      otherData: {
        guest: this.meta.guest,
        clock: 'simulated',
        interval: this.meta.interval,
        samples: this.samples,
        maxEvents: this.maxEvents,
        events: this.total,
        kept: events.length,
        dropped: this.total - events.length,
      },
    });
  }
}
