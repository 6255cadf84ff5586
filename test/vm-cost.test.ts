// The cost model: Σ count × cost over vCPU counters and host events, overrides validated,
// rates per simulated second and per million instructions.
import test from 'ava';
import { DEFAULT_COSTS, faultRates, makeCostTable, simulate } from '../src/kvm/cost.ts';
import type { CounterSnapshot } from '../src/kvm/vcpu.ts';

const counters = {
  instructions: 2_000_000, exits: 10, exits_budget: 2, exits_io: 5, exits_hlt: 1, exits_ept_violation: 4, walk_refs: 1000, exc_pf: 50,
  dtlb_4k_hits: 900, itlb_4k_hits: 100, dtlb_2m_hits: 5, stlb_4k_hits: 30, stlb_2m_hits: 3,
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

test('fault rates are per simulated second and per million instructions', (t) => {
  const s = simulate(counters, host, makeCostTable({ clock_hz: 1e9 }));
  const r = faultRates(counters, s);
  t.is(r.guest_pf_per_million_instructions, 25);
  t.is(r.guest_pf_per_sim_second, 50 / s.seconds);
  t.is(r.ept_violations_per_million_instructions, 2);
  t.is(r.host_faults_per_million_instructions, 2);
  t.is(r.host_faults_per_sim_second, 4 / s.seconds);
});

test('empty counters give zero time and zero rates, not NaN', (t) => {
  const s = simulate({} as CounterSnapshot);
  t.is(s.cycles, 0);
  t.deepEqual(Object.values(faultRates({} as CounterSnapshot, s)), [0, 0, 0, 0, 0, 0]);
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
