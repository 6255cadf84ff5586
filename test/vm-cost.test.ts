// The cost model: Σ count × cost over vCPU counters and host events, overrides validated,
// rates per simulated second and per million instructions.
import test from 'ava';
import { DEFAULT_COSTS, makeCostTable, simulate } from '../src/kvm/cost.ts';
import { faultRates } from '../src/kvm/rates.ts';
import type { CounterSnapshot } from '../src/kvm/vcpu.ts';

const counters = {
  instructions: 2_000_000, exits: 10, exits_budget: 2, exits_io: 5, exits_hlt: 1, exits_ept_violation: 4, walk_refs: 1000, exc_pf: 50,
  dtlb_4k_hits: 900, itlb_4k_hits: 100, dtlb_2m_hits: 5, stlb_4k_hits: 30, stlb_2m_hits: 3,
  dtlb_4k_misses: 95, dtlb_2m_misses: 5, itlb_4k_misses: 2, stlb_4k_misses: 60, stlb_2m_misses: 4, walks: 64, walk_refs_guest: 250, walk_refs_ept: 750,
} as unknown as CounterSnapshot;
const host = { host_fault_4k: 3, host_fault_2m: 1, kib_zeroed: 2060, kib_copied: 4, swap_io_page: 0 };

test('simulated cycles charge every event class at its cost', (t) => {
  const s = simulate(counters, host);
  t.deepEqual(s.events, { instruction: 2_000_000, l1_tlb_hit: 1005, stlb_hit: 33, walk_ref: 1000, vm_exit: 10, ...host });
  t.deepEqual(s.breakdown, {
    instruction: 2_000_000, l1_tlb_hit: 0, stlb_hit: 33 * 7, walk_ref: 25_000, vm_exit: 15_000,
    host_fault_4k: 3 * 5900, host_fault_2m: 5900, kib_zeroed: 2060 * 1330, kib_copied: 4 * 2660, swap_io_page: 0,
  });
  const total = 2_000_000 + 231 + 25_000 + 15_000 + 4 * 5900 + 2060 * 1330 + 4 * 2660;
  t.is(s.cycles, total);
  t.is(s.seconds, total / 3e9);
});

test('fault rates are totals per simulated second and per million instructions; host events come from the vmstat change', (t) => {
  const s = simulate(counters, host, makeCostTable({ clock_hz: 1e9 }));
  const r = faultRates(counters, s, { thp_split: 2, thp_collapse_alloc: 1, pswpout: 8, pgmajfault: 3 });
  t.deepEqual(r.events.guest_pf, { total: 50, per_million_instructions: 25, per_sim_second: 50 / s.seconds });
  t.deepEqual(r.events.ept_violations, { total: 4, per_million_instructions: 2, per_sim_second: 4 / s.seconds });
  t.deepEqual(r.events.vm_exits, { total: 10, per_million_instructions: 5, per_sim_second: 10 / s.seconds });
  t.is(r.events.host_fault_4k.total, 3);
  t.is(r.events.host_fault_2m.total, 1);
  t.deepEqual(r.events.thp_split, { total: 2, per_million_instructions: 1, per_sim_second: 2 / s.seconds });
  t.is(r.events.pswpout.total, 8);
  t.is(r.events.pswpin.total, 0);
  t.is(r.events.thp_fault_fallback.total, 0);
});

test("a 6.x host's split is thp_split_page (its /proc/vmstat has no thp_split): the rated thp_split counts it", (t) => {
  const s = simulate(counters, host, makeCostTable({ clock_hz: 1e9 }));
  const r = faultRates(counters, s, { thp_split_pmd: 5, thp_split_page: 3, thp_deferred_split_page: 4 });
  t.deepEqual(r.events.thp_split, { total: 3, per_million_instructions: 1.5, per_sim_second: 3 / s.seconds });
});

test('TLB misses per level and page size as MPKI and miss ratios; walk references per walk, guest and EPT', (t) => {
  const r = faultRates(counters, simulate(counters, host), null);
  t.deepEqual(r.tlb.dtlb.misses, { '4k': 95, '2m': 5, '1g': 0, total: 100 });
  t.deepEqual(r.tlb.dtlb.mpki, { '4k': 0.0475, '2m': 0.0025, '1g': 0, total: 0.05 });
  t.is(r.tlb.dtlb.miss_ratio, 100 / 1005);
  t.is(r.tlb.itlb.miss_ratio, 2 / 102);
  t.is(r.tlb.stlb.miss_ratio, 64 / 97);
  t.deepEqual(r.walks, { walks: 64, refs_per_walk: 1000 / 64, guest_refs_per_walk: 250 / 64, ept_refs_per_walk: 750 / 64 });
  t.is(r.events.thp_split.total, 0, 'no host model: host events are 0');
});

test('empty counters give zero time and zero rates, not NaN', (t) => {
  const s = simulate({} as CounterSnapshot);
  t.is(s.cycles, 0);
  const r = faultRates({} as CounterSnapshot, s, null);
  const leaves = (v: unknown): unknown[] => (typeof v === 'object' && v !== null ? Object.values(v).flatMap(leaves) : [v]);
  t.true(leaves(r).every((n) => n === 0), JSON.stringify(r));
});

test('overrides replace single entries; unknown, negative or unrepresentable costs are refused', (t) => {
  const c = makeCostTable({ walk_ref: 40 });
  t.is(c.walk_ref, 40);
  t.is(c.vm_exit, DEFAULT_COSTS.vm_exit);
  t.throws(() => makeCostTable({ walk_refs: 1 } as never), { message: /^costs: unknown key "walk_refs" \(known: clock_hz, instruction, /, code: 'EINVAL_CONFIG' } as never);
  t.throws(() => makeCostTable({ stlb_hit: -1 }), { message: 'costs.stlb_hit: expected a number of cycles from 0 to 1e12, got -1' });
  t.throws(() => makeCostTable({ clock_hz: 0 }), { message: 'costs.clock_hz: expected a clock from 1e3 to 1e12 Hz, got 0' });
  t.throws(() => makeCostTable({ instruction: Number.NaN }), { message: 'costs.instruction: expected a number of cycles from 0 to 1e12, got NaN' });
  t.throws(() => makeCostTable({ instruction: 1e300 }), { message: 'costs.instruction: expected a number of cycles from 0 to 1e12, got 1e+300' });
  t.throws(() => makeCostTable({ clock_hz: 1e-7 }), { message: 'costs.clock_hz: expected a clock from 1e3 to 1e12 Hz, got 1e-7' });
  t.true(Object.isFrozen(DEFAULT_COSTS));
});
