/**
 * The cost model (docs/mmu-model.md "Cost model"; docs/architecture.md "Time"): native code counts
 * events, this table turns counts into simulated cycles and seconds. It is a plain object
 * users override field by field, and it can be re-applied to saved counters without
 * re-running the guest. Simulated cycles = Σ count × cost.
 *
 * Which counters feed each entry:
 *   instruction       ← instructions
 *   l1_tlb_hit        ← itlb_{4k,2m,1g}_hits + dtlb_{4k,2m,1g}_hits (0 when the build lacks them)
 *   stlb_hit          ← stlb_{4k,2m,1g}_hits
 *   walk_ref          ← walk_refs (guest-table and EPT reads of the walker)
 *   vm_exit           ← exits_io + exits_hlt + exits_ept_violation + exits_mmio + exits_shutdown
 *                       (a budget exit is the VMM's chunking, not a VM exit)
 *   host_fault_4k/2m, kib_zeroed, kib_copied, swap_io_page ← HostEvents from the memory
 *                       backend (EPT mode: the host THP model); 0 in no-EPT mode.
 */
import { z } from 'zod';
import { parseConfig, strictObject } from '../util/schema.ts';

/** The default cost of each event, with its source. */
export const DEFAULT_COSTS = Object.freeze({
  /** Simulated core clock, Hz. Nominal 3 GHz, a round figure for the class of core modeled. */
  clock_hz: 3e9,
  /** Cycles per retired instruction: 1 (docs/mmu-model.md: the model charges translation, not the pipeline). */
  instruction: 1,
  /** L1 TLB hit: 0, its latency hides in the load pipeline (docs/mmu-model.md). */
  l1_tlb_hit: 0,
  /** L2 STLB hit after an L1 miss: ~7 cycles (docs/mmu-model.md; the STLB-hit penalty of recent Intel cores). */
  stlb_hit: 7,
  /**
   * One page-walk memory reference: "tens of cycles, most hit the data caches" (docs/mmu-model.md).
   * 25 ≈ a mix of L1d (~5), L2 (~14) and LLC (~40) hits.
   */
  walk_ref: 25,
  /** VM exit + entry round trip: 1500 (docs/mmu-model.md: ~1–2 k cycles on VMX hardware). */
  vm_exit: 1500,
  /**
   * Host 4 KiB anonymous fault without the zeroing: ~5,900 cycles. Derived from docs/performance.md's
   * anchor on this host: first touch with MADV_NOHUGEPAGE ≈ 1.1 GB/s → 3.7 µs = 11.2 k cycles
   * per 4 KiB at 3 GHz, minus 4 KiB of zeroing at kib_zeroed.
   */
  host_fault_4k: 5900,
  /** Host 2 MiB (THP) fault without the zeroing: same trap/handler cost as a 4 KiB fault. */
  host_fault_2m: 5900,
  /**
   * Zeroing one KiB (clear_page / clear_huge_page): ~1,330 cycles. docs/performance.md: first touch of
   * 1 GiB with MADV_HUGEPAGE ≈ 2.2 GB/s ≈ 0.95 ms per 2 MiB fault, nearly all of it zeroing.
   */
  kib_zeroed: 1330,
  /** Copying one KiB (collapse, COW, swap-in): twice kib_zeroed, as every byte is read and written. */
  kib_copied: 2660,
  /** Swap I/O of one 4 KiB page: 300,000 cycles ≈ 100 µs, a typical SSD 4 KiB random-access latency. */
  swap_io_page: 300_000,
});

/** Cycles per event (and the clock), by cost item: DEFAULT_COSTS documents each entry. */
export type CostTable = { [K in keyof typeof DEFAULT_COSTS]: number };

/** Host-side events a memory backend reports (EPT mode: from the host mm's vmstat). */
export interface HostEvents {
  host_fault_4k: number;
  host_fault_2m: number;
  kib_zeroed: number;
  kib_copied: number;
  swap_io_page: number;
}

export const NO_HOST_EVENTS: Readonly<HostEvents> = Object.freeze({ host_fault_4k: 0, host_fault_2m: 0, kib_zeroed: 0, kib_copied: 0, swap_io_page: 0 });

/** Host events that happened between two readings (later − earlier). */
export function hostEventsDelta(later: HostEvents, earlier: HostEvents): HostEvents {
  return {
    host_fault_4k: later.host_fault_4k - earlier.host_fault_4k,
    host_fault_2m: later.host_fault_2m - earlier.host_fault_2m,
    kib_zeroed: later.kib_zeroed - earlier.kib_zeroed,
    kib_copied: later.kib_copied - earlier.kib_copied,
    swap_io_page: later.swap_io_page - earlier.swap_io_page,
  };
}

/**
 * The costs section of a VM config: overrides of DEFAULT_COSTS. Bounded to what the model
 * represents: a clock from 1 kHz to 1 THz, and at most 10^12 cycles per event, so simulated
 * time stays a finite number and the host clock advances in steps it can take.
 */
const CYCLES = 'a number of cycles from 0 to 1e12';
const cycles = z.number({ error: CYCLES }).min(0, { error: CYCLES }).max(1e12, { error: CYCLES });
const HZ = 'a clock from 1e3 to 1e12 Hz';
export const costTableSchema = strictObject({
    clock_hz: z.number({ error: HZ }).min(1e3, { error: HZ }).max(1e12, { error: HZ }),
    instruction: cycles,
    l1_tlb_hit: cycles,
    stlb_hit: cycles,
    walk_ref: cycles,
    vm_exit: cycles,
    host_fault_4k: cycles,
    host_fault_2m: cycles,
    kib_zeroed: cycles,
    kib_copied: cycles,
    swap_io_page: cycles,
  } satisfies Record<keyof CostTable, z.ZodNumber>).partial();

/** A cost table with overrides applied (validated by costTableSchema). */
export function makeCostTable(overrides: Partial<CostTable> = {}): CostTable {
  const given = Object.entries(parseConfig(costTableSchema, overrides, 'costs')).filter(([, v]) => v !== undefined);
  return { ...DEFAULT_COSTS, ...Object.fromEntries(given) };
}

export type CostItem = Exclude<keyof CostTable, 'clock_hz'>;

export interface SimulatedTime {
  cycles: number;
  seconds: number;
  /** Cycles charged to each cost item. */
  breakdown: Record<CostItem, number>;
  /** Events per item (what breakdown multiplied). */
  events: Record<CostItem, number>;
}

/** Counters by name; a counter the build lacks reads as 0. */
type Counters = Readonly<Record<string, number>>;

const sum = (c: Counters, names: readonly string[]): number => names.reduce((s, n) => s + (c[n] ?? 0), 0);
const L1_HITS = ['itlb_4k_hits', 'itlb_2m_hits', 'itlb_1g_hits', 'dtlb_4k_hits', 'dtlb_2m_hits', 'dtlb_1g_hits'];
const STLB_HITS = ['stlb_4k_hits', 'stlb_2m_hits', 'stlb_1g_hits'];
const VM_EXITS = ['exits_io', 'exits_hlt', 'exits_ept_violation', 'exits_mmio', 'exits_shutdown'];

/** Σ count × cost over the vCPU counters and the host events. */
export function simulate(c: Counters, host: HostEvents = NO_HOST_EVENTS, costs: CostTable = DEFAULT_COSTS): SimulatedTime {
  const events: Record<CostItem, number> = {
    instruction: c.instructions ?? 0,
    l1_tlb_hit: sum(c, L1_HITS),
    stlb_hit: sum(c, STLB_HITS),
    walk_ref: c.walk_refs ?? 0,
    vm_exit: sum(c, VM_EXITS),
    ...host,
  };
  const breakdown = {} as Record<CostItem, number>;
  let cycles = 0;
  for (const k of Object.keys(events) as CostItem[]) {
    breakdown[k] = events[k] * costs[k];
    cycles += breakdown[k];
  }
  return { cycles, seconds: cycles / costs.clock_hz, breakdown, events };
}
