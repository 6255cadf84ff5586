/**
 * The fault-rate block of every result and ROI: event totals with their rates per million
 * guest instructions and per simulated second; TLB misses per level and page size as MPKI
 * (misses per 1,000 instructions) and miss ratios; walk references per walk, split into
 * guest-table and EPT reads. Derived from the vCPU counters, the host's /proc/vmstat
 * change over the same interval and the simulated time; exact inputs, no sampling.
 */
import type { SimulatedTime } from './cost.ts';

/** The events rated, and where each comes from (vCPU counter, or host /proc/vmstat name). */
const EVENTS = {
  /** #PF delivered to the guest (a guest page fault). */
  guest_pf: { counter: 'exc_pf' },
  /** EPT violation exits (KVM's tdp_page_fault calls). */
  ept_violations: { counter: 'exits_ept_violation' },
  /** VM exits of every reason (a budget return is the VMM's chunking, not an exit). */
  vm_exits: { counter: 'exits' },
  /** Host 4 KiB faults (pgfault − thp_fault_alloc), as the cost model charges them. */
  host_fault_4k: { simulated: 'host_fault_4k' },
  /** Host THP faults (thp_fault_alloc). */
  host_fault_2m: { simulated: 'host_fault_2m' },
  /** A THP fault that fell back to 4 KiB pages. */
  thp_fault_fallback: { vmstat: 'thp_fault_fallback' },
  /** Host major faults (swap-ins by a fault). */
  pgmajfault: { vmstat: 'pgmajfault' },
  /** THPs split: split_huge_page (2.6.38 thp_split), split_folio of a PMD-size folio (6.x thp_split_page). */
  thp_split: { vmstat: ['thp_split', 'thp_split_page'] },
  /** THPs made by khugepaged (collapses). */
  thp_collapse_alloc: { vmstat: 'thp_collapse_alloc' },
  /** Pages swapped in / out. */
  pswpin: { vmstat: 'pswpin' },
  pswpout: { vmstat: 'pswpout' },
} as const;
export type RatedEvent = keyof typeof EVENTS;

/** A host event's change: one /proc/vmstat name, or the sum of the names one kernel or the other has. */
function vmstatTotal(host: Readonly<Record<string, number>> | null, names: string | readonly string[]): number {
  if (!host) return 0;
  if (typeof names === 'string') return host[names] ?? 0;
  return names.reduce((sum, k) => sum + (host[k] ?? 0), 0);
}

const SIZES = ['4k', '2m', '1g'] as const;
const LEVELS = ['itlb', 'dtlb', 'stlb'] as const;

/**
 * The rates of an interval: `c` the vCPU counters' change, `sim` its simulated time, `host`
 * the host's /proc/vmstat change (null without a host model: those events are 0).
 */
export function faultRates(c: Readonly<Record<string, number>>, sim: SimulatedTime, host: Readonly<Record<string, number>> | null) {
  const instructions = c.instructions ?? 0;
  const perMi = (n: number): number => (instructions > 0 ? n / (instructions / 1e6) : 0);
  const perSec = (n: number): number => (sim.seconds > 0 ? n / sim.seconds : 0);
  const events = {} as Record<RatedEvent, { total: number; per_million_instructions: number; per_sim_second: number }>;
  for (const [name, from] of Object.entries(EVENTS) as [RatedEvent, (typeof EVENTS)[RatedEvent]][]) {
    const total = 'counter' in from ? (c[from.counter] ?? 0) : 'simulated' in from ? sim.events[from.simulated] : vmstatTotal(host, from.vmstat);
    events[name] = { total, per_million_instructions: perMi(total), per_sim_second: perSec(total) };
  }
  const level = (l: (typeof LEVELS)[number]) => {
    const misses = { '4k': 0, '2m': 0, '1g': 0, total: 0 };
    const mpki = { '4k': 0, '2m': 0, '1g': 0, total: 0 };
    let lookups = 0;
    for (const z of SIZES) {
      const m = c[`${l}_${z}_misses`] ?? 0;
      misses[z] = m;
      misses.total += m;
      mpki[z] = instructions > 0 ? (m * 1000) / instructions : 0;
      lookups += m + (c[`${l}_${z}_hits`] ?? 0);
    }
    mpki.total = instructions > 0 ? (misses.total * 1000) / instructions : 0;
    return { misses, mpki, miss_ratio: lookups > 0 ? misses.total / lookups : 0 };
  };
  const walks = c.walks ?? 0;
  const per = (n: number) => (walks > 0 ? n / walks : 0);
  return {
    events,
    tlb: { itlb: level('itlb'), dtlb: level('dtlb'), stlb: level('stlb') },
    walks: {
      walks,
      refs_per_walk: per(c.walk_refs ?? 0),
      guest_refs_per_walk: per(c.walk_refs_guest ?? 0),
      ept_refs_per_walk: per(c.walk_refs_ept ?? 0),
    },
  };
}
export type FaultRates = ReturnType<typeof faultRates>;
