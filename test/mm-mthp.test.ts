/**
 * Multi-size THP for anonymous memory under the 6.x kernel (src/mm/mthp.ts): which orders
 * the per-size knobs allow, the order a write fault picks, the fallback order by order,
 * PTE-mapped large folios, and the per-size stats files (src/mm/mthp-stats.ts) — beside
 * 2.6.38, which has none of it.
 */
import test from 'ava';
import { defaultKnobs } from '../src/mm/config.ts';
import { highest_order, thp_vma_allowable_orders, thp_vma_suitable_orders } from '../src/mm/mthp.ts';
import { MthpStats, mthpSizeName, MTHP_ANON_ORDERS } from '../src/mm/mthp-stats.ts';
import type { MmStruct } from '../src/mm/mm.ts';
import { Vma, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_WRITE } from '../src/mm/vma.ts';
import { hva } from '../src/util/address.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const ALL_BELOW_PMD = (1 << 9) - 1;
const bits = (...orders: number[]) => orders.reduce((m, o) => m | (1 << o), 0);
const vmaOf = (start: number, end: number, flags = 0) => new Vma(null as unknown as MmStruct, hva(start), hva(end), VM_READ | VM_WRITE | flags);

test('the anonymous sizes are orders 2..9: 16kB to 2048kB (no 8kB: THP_ORDERS_ALL_ANON drops order 1)', (t) => {
  t.deepEqual(MTHP_ANON_ORDERS, [2, 3, 4, 5, 6, 7, 8, 9]);
  t.deepEqual(MTHP_ANON_ORDERS.map(mthpSizeName), ['16kB', '32kB', '64kB', '128kB', '256kB', '512kB', '1024kB', '2048kB']);
});

test('mod_mthp_stat ignores order 0 and orders above PMD order, as the kernel does', (t) => {
  const s = new MthpStats();
  s.count_mthp_stat(0, 'split');
  s.count_mthp_stat(10, 'split');
  s.count_mthp_stat(4, 'split');
  s.mod_mthp_stat(4, 'nr_anon', 3);
  const snap = s.snapshot();
  t.deepEqual(Object.keys(snap), ['16kB', '32kB', '64kB', '128kB', '256kB', '512kB', '1024kB', '2048kB']);
  t.is(snap['64kB'].split, 1);
  t.is(snap['64kB'].nr_anon, 3);
  t.is(Object.values(snap).reduce((n, f) => n + f.split, 0), 1);
});

test('6.18 defaults: only 2048kB inherits, so no order below PMD is allowed', (t) => {
  const k = defaultKnobs('6.x');
  t.is(thp_vma_allowable_orders(k, vmaOf(0, 4 * MiB), ALL_BELOW_PMD), 0);
  t.is(thp_vma_allowable_orders(k, vmaOf(0, 4 * MiB), bits(9)), bits(9));
});

test('per-size enabled: always, madvise needs VM_HUGEPAGE, inherit follows the top-level mode, never', (t) => {
  const k = defaultKnobs('6.x');
  k.sizes!['16kB'] = 'always';
  k.sizes!['64kB'] = 'madvise';
  k.sizes!['256kB'] = 'inherit';
  const plain = vmaOf(0, 4 * MiB);
  const madvised = vmaOf(0, 4 * MiB, VM_HUGEPAGE);
  k.enabled = 'always';
  t.is(thp_vma_allowable_orders(k, plain, ALL_BELOW_PMD), bits(2, 6));
  t.is(thp_vma_allowable_orders(k, madvised, ALL_BELOW_PMD), bits(2, 4, 6));
  k.enabled = 'madvise';
  t.is(thp_vma_allowable_orders(k, plain, ALL_BELOW_PMD), bits(2));
  t.is(thp_vma_allowable_orders(k, madvised, ALL_BELOW_PMD), bits(2, 4, 6));
  k.enabled = 'never';
  t.is(thp_vma_allowable_orders(k, plain, ALL_BELOW_PMD), bits(2));
  t.is(thp_vma_allowable_orders(k, madvised, ALL_BELOW_PMD), bits(2, 4), 'inherit of never allows nothing, even madvised');
  t.is(thp_vma_allowable_orders(k, vmaOf(0, 4 * MiB, VM_NOHUGEPAGE), ALL_BELOW_PMD), 0, 'VM_NOHUGEPAGE allows no size');
});

test('2.6.38 knobs have no sizes: no mTHP order is ever allowed', (t) => {
  t.is(thp_vma_allowable_orders(defaultKnobs('2.6.38'), vmaOf(0, 4 * MiB), ALL_BELOW_PMD), 0);
});

test('thp_vma_suitable_orders: the naturally aligned range around the address must lie inside the VMA', (t) => {
  // A VMA [64K, 64K+96K): at 64K+20K the 16K range [80K,96K) fits, 32K [64K,96K) fits, 64K [64K,128K) fits,
  // 128K [0,128K) does not.
  const v = vmaOf(64 * KiB, 160 * KiB);
  t.is(thp_vma_suitable_orders(v, hva(84 * KiB), bits(2, 3, 4, 5)), bits(2, 3, 4));
  t.is(highest_order(bits(2, 3, 4)), 4);
  // At 150K: 16K [144K,160K) fits, 32K [128K,160K) fits, 64K [128K,192K) sticks out.
  t.is(thp_vma_suitable_orders(v, hva(150 * KiB), bits(2, 3, 4)), bits(2, 3));
});
