/**
 * Multi-size THP for anonymous memory under the 6.x kernel (src/mm/mthp.ts): which orders
 * the per-size knobs allow, the order a write fault picks, the fallback order by order,
 * PTE-mapped large folios, and the per-size stats files (src/mm/mthp-stats.ts) — beside
 * 2.6.38, which has none of it.
 */
import test from 'ava';
import { smaps, stats } from './fixtures/smaps.ts';
import { defaultKnobs } from '../src/mm/config.ts';
import { highest_order, thp_vma_allowable_orders, thp_vma_suitable_orders } from '../src/mm/mthp.ts';
import { MthpStats, mthpSizeName, MTHP_ANON_ORDERS } from '../src/mm/mthp-stats.ts';
import type { MmStruct } from '../src/mm/mm.ts';
import { Vma, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_WRITE } from '../src/mm/vma.ts';
import { hva, PAGE_SIZE, type Hva, type Pfn } from '../src/util/address.ts';
import { createHost, type HostConfig } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import { MMAP_BASE } from '../src/mm/mm.ts';

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

// --- faults -----------------------------------------------------------------------------------

type Kernel = '2.6.38' | '6.x';
const at = (a: number) => a as Hva;

function host(kernel: Kernel, extra: Partial<HostConfig> = {}): Host {
  return createHost({ memoryBytes: 16 * MiB, debugChecks: true, kernel, ...extra }) as Host;
}

/** smaps as fs/proc/task_mmu.c counts it over the whole mm: Rss (present normal pages, huge PMDs) and AnonHugePages, in kB. */
const closeClean = (t: { is(a: unknown, b: unknown, m?: string): void }, h: Host) => {
  h.close(); // debugChecks: throws unless every frame is free
  t.is(h.nr_free_pages(), h.nrFrames, 'every frame free at close');
};

test('a write fault maps a 64 KiB folio by 16 PTEs under 6.x (hugepages-64kB always), a 4 KiB page under 2.6.38', (t) => {
  const six = host('6.x', { thp: { sizes: { '64kB': 'always', '2048kB': 'never' } } });
  const old = host('2.6.38', { thp: { enabled: 'never' } });
  for (const h of [six, old]) {
    const mm = h.newProcess() as MmStruct;
    const a = mm.mmap(2 * MiB, { alignHuge: true });
    mm.handle_mm_fault(at(a + 0x5123), true);
    const m = mm.follow_page(at(a + 0x5123))!;
    t.false(m.huge, 'PTE-mapped either way');
    if (h === six) {
      const head = mm.follow_page(at(a))!.pfn;
      t.is<number, number>(m.pfn, head + 5, 'the page of the folio at its offset');
      t.is(mm.follow_page(at(a + 0x10000)), null, 'the next 64 KiB is not touched');
      t.is(h.vmstat().nr_anon_pages, 16);
      t.is(h.meminfo().AnonPages, 64);
      t.deepEqual(smaps(mm), { Rss: 64, AnonHugePages: 0 });
      t.deepEqual(stats(h, '64kB'), { ...stats(h, '16kB'), anon_fault_alloc: 1, nr_anon: 1 });
      t.is(h.vmstat().thp_fault_alloc, 0);
      // the other 15 pages are mapped already: no fault, no new folio
      mm.writeBytes(at(a + 0xf000), new Uint8Array([1]));
      t.is(h.vmstat().pgfault, 1);
    } else {
      t.is(mm.follow_page(at(a)), null);
      t.is(h.vmstat().nr_anon_pages, 1);
      t.deepEqual(smaps(mm), { Rss: 4, AnonHugePages: 0 });
      t.is(h.mthpStats(), null, '2.6.38 has no per-size stats');
    }
    closeClean(t, h);
  }
});

test('6.x: a read fault maps the 4 KiB zero page, never an mTHP; the write after it takes the folio', (t) => {
  const h = host('6.x', { thp: { sizes: { '16kB': 'always', '2048kB': 'never' } } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a + 0x2000), false);
  t.is<number, number>(mm.follow_page(at(a + 0x2000))!.pfn, h.zero_pfn);
  t.is(stats(h, '16kB').anon_fault_alloc, 0);
  // [a, a+16K) is not all pte_none now: the write falls back to one 4 KiB page (do_wp_page)
  mm.handle_mm_fault(at(a + 0x2000), true);
  t.is(h.vmstat().nr_anon_pages, 1);
  mm.handle_mm_fault(at(a + 0x4000), true); // [a+16K, a+32K) is all none
  t.is(stats(h, '16kB').anon_fault_alloc, 1);
  t.is(h.vmstat().nr_anon_pages, 1 + 4);
  t.deepEqual(smaps(mm), { Rss: 20, AnonHugePages: 0 });
  closeClean(t, h);
});

test('6.x: the highest order whose aligned range lies in the VMA is chosen', (t) => {
  const h = host('6.x', { thp: { sizes: { '16kB': 'always', '32kB': 'always', '64kB': 'always' } } });
  const mm = h.newProcess() as MmStruct;
  const b = mm.mmap(48 * 1024, { addr: at(MMAP_BASE) }); // [B, B+48K)
  mm.handle_mm_fault(at(b + 40 * 1024), true); // 64K and 32K ranges stick out; 16K [B+32K, B+48K) fits
  t.is(stats(h, '16kB').anon_fault_alloc, 1);
  t.is(stats(h, '32kB').anon_fault_alloc + stats(h, '64kB').anon_fault_alloc, 0);
  t.is(stats(h, '64kB').anon_fault_fallback, 0, 'an unsuitable order is no fallback');
  mm.handle_mm_fault(at(b + 4 * 1024), true); // [B, B+32K) fits
  t.is(stats(h, '32kB').anon_fault_alloc, 1);
  t.deepEqual(smaps(mm), { Rss: 48, AnonHugePages: 0 });
  t.is(h.vmstat().nr_anon_pages, 12);
  closeClean(t, h);
});

test('6.x: with hugepages-2048kB inherit, an aligned 2 MiB range still takes the PMD path; 2048kB never turns it off', (t) => {
  const h = host('6.x', { thp: { sizes: { '64kB': 'always' } } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a), true);
  t.true(mm.follow_page(at(a))!.huge);
  t.is(stats(h, '2048kB').anon_fault_alloc, 1);
  t.is(stats(h, '2048kB').nr_anon, 1);
  t.is(h.vmstat().thp_fault_alloc, 1);
  h.setKnob('hugepages-2048kB/enabled', 'never');
  mm.handle_mm_fault(at(a + 2 * MiB), true);
  t.false(mm.follow_page(at(a + 2 * MiB))!.huge);
  t.is(stats(h, '64kB').anon_fault_alloc, 1);
  t.deepEqual(smaps(mm), { Rss: 2048 + 64, AnonHugePages: 2048 });
  t.is(h.meminfo().AnonHugePages, 2048);
  closeClean(t, h);
});

test('6.x: a failed allocation falls back order by order (anon_fault_fallback per order) down to 4 KiB', (t) => {
  const h = host('6.x', { thp: { enabled: 'never' } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a + 1 * MiB), true); // page tables in place, a 4 KiB page (no size allowed yet)
  // Take every free frame, then give back one aligned order-2 block and one lone frame.
  const held: Pfn[] = [];
  while (h.nr_free_pages() > 0) held.push(h.alloc_kernel_page());
  const block = held.find((p) => p % 8 === 0)!;
  const lone = held.find((p) => p % 8 === 7 && p !== block + 7)!;
  for (const p of [block, block + 1, block + 2, block + 3, lone] as Pfn[]) h.free_kernel_page(p);
  const keep = held.filter((p) => !(p >= block && p < block + 4) && p !== lone);
  for (const s of ['16kB', '32kB', '64kB']) h.setKnob(`hugepages-${s}/enabled`, 'always');
  mm.handle_mm_fault(at(a), true); // 64K: no block, 32K: no block, 16K: the order-2 block
  t.is(stats(h, '64kB').anon_fault_fallback, 1);
  t.is(stats(h, '32kB').anon_fault_fallback, 1);
  t.is(stats(h, '16kB').anon_fault_alloc, 1);
  t.is<number, number>(mm.follow_page(at(a))!.pfn, block);
  // Next: the 64K and 32K ranges hold that folio; 16K [a+16K, a+32K) is none but no block is left.
  mm.handle_mm_fault(at(a + 0x4000), true);
  t.is(stats(h, '16kB').anon_fault_fallback, 1);
  t.is(stats(h, '32kB').anon_fault_fallback, 1, 'orders whose range is not all none are not tried');
  t.is<number, number>(mm.follow_page(at(a + 0x4000))!.pfn, lone, 'the 4 KiB fallback');
  t.deepEqual(smaps(mm), { Rss: 4 + 16 + 4, AnonHugePages: 0 });
  for (const p of keep) h.free_kernel_page(p);
  closeClean(t, h);
});

test('6.x: unmapping part of an mTHP queues it for deferred split (split_deferred, nr_anon_partially_mapped); the shrinker splits it', (t) => {
  const h = host('6.x', { thp: { sizes: { '64kB': 'always', '2048kB': 'never' } } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a), true);
  // every page holds data: the split would map a zero-filled one to the shared zero page
  for (let o = 0; o < 64 * KiB; o += PAGE_SIZE) h.physmem.frames(mm.follow_page(at(a + o))!.pfn)[0] = 1;
  const free0 = h.nr_free_pages();
  mm.madvise(at(a + 0x3000), PAGE_SIZE, 'MADV_DONTNEED');
  t.like(stats(h, '64kB'), { split_deferred: 1, nr_anon_partially_mapped: 1, nr_anon: 1, split: 0 });
  t.is(h.nr_free_pages(), free0, 'the folio keeps its unmapped page until split');
  t.is(h.vmstat().thp_deferred_split_page, 0, 'the vmstat event is for PMD-sized folios only');
  t.deepEqual(smaps(mm), { Rss: 60, AnonHugePages: 0 });
  // the write fault there: no order fits (the 16K..64K ranges hold mapped pages): 4 KiB
  mm.madvise(at(a + 0x4000), PAGE_SIZE, 'MADV_DONTNEED'); // already queued: no second count
  t.is(stats(h, '64kB').split_deferred, 1);
  t.is(h.vmscan.shrink_slab(), 2);
  t.like(stats(h, '64kB'), { split: 1, nr_anon: 0, nr_anon_partially_mapped: 0 });
  t.is(h.vmstat().thp_split_page, 0);
  t.is(h.vmstat().nr_anon_pages, 14);
  closeClean(t, h);
});

test('6.x: MADV_DONTNEED of a whole mTHP frees it at once, with no deferred split', (t) => {
  const h = host('6.x', { thp: { sizes: { '32kB': 'always', '2048kB': 'never' } } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a + 0x9000), true);
  const free0 = h.nr_free_pages();
  mm.madvise(at(a + 0x8000), 0x8000, 'MADV_DONTNEED');
  t.is(h.nr_free_pages(), free0 + 8);
  t.like(stats(h, '32kB'), { anon_fault_alloc: 1, split_deferred: 0, nr_anon: 0, nr_anon_partially_mapped: 0 });
  t.deepEqual(smaps(mm), { Rss: 0, AnonHugePages: 0 });
  closeClean(t, h);
});

test('6.x: fork shares an mTHP; the child writing one page copies that page only', (t) => {
  const h = host('6.x', { thp: { sizes: { '16kB': 'always', '2048kB': 'never' } } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.writeBytes(at(a), new Uint8Array([7, 7, 7]));
  const child = mm.fork() as MmStruct;
  t.is(h.vmstat().nr_anon_pages, 4, 'NR_ANON_MAPPED counts pages mapped at least once');
  child.writeBytes(at(a + 0x1000), new Uint8Array([9]));
  t.deepEqual([...child.readBytes(at(a), 3)], [7, 7, 7]);
  t.deepEqual([...mm.readBytes(at(a + 0x1000), 1)], [0]);
  t.like(stats(h, '16kB'), { anon_fault_alloc: 1, nr_anon: 1 });
  t.deepEqual(smaps(child), { Rss: 16, AnonHugePages: 0 });
  closeClean(t, h);
});

test('6.x: khugepaged follows hugepages-2048kB/enabled: never leaves mTHPs alone, inherit collapses them into one THP', (t) => {
  const h = host('6.x', { thp: { sizes: { '64kB': 'always', '2048kB': 'never' } } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  const data = new Uint8Array(2 * MiB).map((_, i) => (i * 7) & 0xff);
  mm.writeBytes(a, data);
  t.like(stats(h, '64kB'), { anon_fault_alloc: 32, nr_anon: 32 });
  h.khugepaged_scan();
  t.is(h.vmstat().thp_collapse_alloc, 0, 'no PMD order allowed: khugepaged has no work');
  h.setKnob('hugepages-2048kB/enabled', 'inherit');
  mm.madvise(a, 2 * MiB, 'MADV_HUGEPAGE'); // khugepaged_enter
  h.khugepaged_scan();
  t.is(h.vmstat().thp_collapse_alloc, 1);
  t.true(mm.follow_page(a)!.huge);
  t.like(stats(h, '64kB'), { nr_anon: 0, split: 0 });
  t.like(stats(h, '2048kB'), { nr_anon: 1, anon_fault_alloc: 0 });
  t.deepEqual(mm.readBytes(a, 2 * MiB), data);
  t.deepEqual(smaps(mm), { Rss: 2048, AnonHugePages: 2048 });
  closeClean(t, h);
});
