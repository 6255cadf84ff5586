/**
 * THP swap-out under the 6.x kernel: the swap cluster allocator (src/mm/swap-cluster.ts),
 * large folios written whole to a block device or split first for a swap file
 * (shrink_folio_list: thp_swpout / thp_swpout_fallback and the per-size swpout /
 * swpout_fallback), and swap-in one 4 KiB page at a time.
 */
import test from 'ava';
import { smaps, stats } from './fixtures/smaps.ts';
import { SwapClusters, SWAPFILE_CLUSTER } from '../src/mm/swap-cluster.ts';
import { createHost, type HostConfig } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import type { MmStruct } from '../src/mm/mm.ts';
import { _PAGE_ACCESSED } from '../src/mm/pgtable.ts';
import type { Hva } from '../src/util/address.ts';

/** A cluster allocator over `max` slots whose used set is a plain Set (what the swap map would say). */
function clusters(max: number, blkdev: boolean) {
  const used = new Set<number>();
  const c = new SwapClusters(max, (s) => used.has(s), blkdev);
  const alloc = (order: number) => {
    const s = c.alloc(order);
    for (let k = 0; s !== 0 && k < 1 << order; k++) used.add(s + k);
    return s;
  };
  const free = (slot: number, n = 1) => {
    for (let k = 0; k < n; k++) {
      used.delete(slot + k);
      c.free(slot + k);
    }
  };
  return { c, alloc, free };
}

test('swap clusters: a swap file refuses every large request, order 0 still works', (t) => {
  const { c, alloc } = clusters(4 * SWAPFILE_CLUSTER, false);
  for (let order = 1; order <= 9; order++) t.is(alloc(order), 0, `order ${order}`);
  t.is(alloc(0), 1); // slot 0 is the header
  t.is(c.nrFree(), 3);
});

test('swap clusters: a PMD-order request takes a whole free cluster, never cluster 0 (the header is in it)', (t) => {
  const { c, alloc } = clusters(4 * SWAPFILE_CLUSTER, true);
  t.is(alloc(9), SWAPFILE_CLUSTER);
  t.is(alloc(9), 2 * SWAPFILE_CLUSTER);
  t.is(alloc(9), 3 * SWAPFILE_CLUSTER);
  t.is(alloc(9), 0);
  t.is(c.nrFree(), 0);
  t.is(alloc(0), 1);
});

test('swap clusters: mTHP requests are naturally aligned and share a cluster of their order', (t) => {
  const { c, alloc } = clusters(4 * SWAPFILE_CLUSTER, true);
  const a = alloc(4); // 16 slots
  t.is(a, SWAPFILE_CLUSTER);
  t.is(alloc(4), SWAPFILE_CLUSTER + 16);
  t.is(alloc(2), 2 * SWAPFILE_CLUSTER); // another order takes its own cluster
  t.is(alloc(4), SWAPFILE_CLUSTER + 32);
  t.is(c.order[1], 4);
  t.is(c.order[2], 2);
});

test('swap clusters: order 0 fills cluster 0 first, then free clusters, then steals from others', (t) => {
  const { c, alloc } = clusters(2 * SWAPFILE_CLUSTER, true);
  const got: number[] = [];
  for (let i = 0; i < SWAPFILE_CLUSTER - 1; i++) got.push(alloc(0));
  t.deepEqual(got.slice(0, 3), [1, 2, 3]);
  t.is(got.at(-1), SWAPFILE_CLUSTER - 1);
  t.is(alloc(0), SWAPFILE_CLUSTER);
  t.is(c.order[1], 0);
});

test('swap clusters: a cluster whose slots are all freed becomes free again and takes a PMD-order folio', (t) => {
  const { c, alloc, free } = clusters(3 * SWAPFILE_CLUSTER, true);
  const a = alloc(9);
  const b = alloc(9);
  t.is(alloc(9), 0);
  free(a, SWAPFILE_CLUSTER);
  t.is(c.nrFree(), 1);
  t.is(alloc(9), a);
  free(b + 7); // one slot of the other cluster: not a whole free cluster
  t.is(alloc(9), 0);
});

test('swap clusters: the slots past the end of the file in the last cluster are never handed out', (t) => {
  const { alloc } = clusters(SWAPFILE_CLUSTER + 100, true);
  t.is(alloc(9), 0); // the last cluster is partial
  t.is(alloc(2), 0); // and order 0 (setup_clusters), so no order-2 run there
  const got = new Set<number>();
  for (;;) {
    const s = alloc(0);
    if (s === 0) break;
    got.add(s);
  }
  t.is(got.size, SWAPFILE_CLUSTER + 100 - 1);
  t.false(got.has(0));
  t.false(got.has(SWAPFILE_CLUSTER + 100));
});

// --- swap-out of large folios ------------------------------------------------------------------

type Kernel = '2.6.38' | '6.x';
const MiB = 1024 * 1024;
const at = (a: number) => a as Hva;

function pattern(bytes: number, seed: number): Uint8Array {
  const d = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) d[i] = (i * 31 + seed + (i >> 12)) & 0xff;
  return d;
}

/** A host with one process that wrote `bytes` from a 2 MiB aligned address. */
function written(kernel: Kernel, bytes: number, extra: Partial<HostConfig> = {}, swap: HostConfig['swap'] = { bytes: 8 * MiB }) {
  const h = createHost({ memoryBytes: 16 * MiB, debugChecks: true, kernel, swap, ...extra }) as Host;
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  const data = pattern(bytes, 3);
  mm.writeBytes(a, data);
  return { h, mm, a, data };
}
/** Clear the young bits of every mapping (as the clock's first pass would) so reclaim takes the pages. */
function age(h: Host) {
  for (const mm of h.processes) {
    mm.pgd.forEachPmd((_a, pmd, i) => {
      if (pmd.pmd_trans_huge(i)) pmd.hbits[i] &= ~_PAGE_ACCESSED;
      else for (let j = 0; j < 512; j++) pmd.pte[i]!.bits[j] &= ~_PAGE_ACCESSED;
    });
  }
}
const ev = (h: Host) => h.vmstat();
const closeClean = (t: { is(a: unknown, b: unknown, m?: string): void }, h: Host) => {
  h.close();
  t.is(h.nr_free_pages(), h.nrFrames, 'every frame free at close');
};

test('a PMD-mapped THP goes to a partition whole (6.x): thp_split_pmd, thp_swpout, pswpout 512, one free cluster used; 2.6.38 splits it', (t) => {
  const six = written('6.x', 2 * MiB, {}, { bytes: 8 * MiB, type: 'partition' });
  const old = written('2.6.38', 2 * MiB, {}, { bytes: 8 * MiB, type: 'partition' });
  for (const { h, mm, a } of [six, old]) {
    t.true(mm.follow_page(a)!.huge);
    age(h);
    const free0 = h.nr_free_pages();
    t.is(h.reclaim(512), 512);
    t.is(h.nr_free_pages(), free0 + 512);
    t.is(ev(h).pswpout, 512);
    t.deepEqual(smaps(mm), { Rss: 0, AnonHugePages: 0 });
    t.is(h.meminfo().SwapFree, h.meminfo().SwapTotal - 2048);
  }
  t.like(ev(six.h), { thp_swpout: 1, thp_swpout_fallback: 0, thp_split_pmd: 1, thp_split_page: 0, nr_anon_pages: 0, nr_anon_transparent_hugepages: 0 });
  t.like(stats(six.h, '2048kB'), { swpout: 1, swpout_fallback: 0, split: 0, nr_anon: 0 });
  t.is(six.h.swap.device!.clusters!.nrFree(), 4 - 2, '8 MiB = 4 clusters: the folio took a whole one, cluster 0 holds the header');
  t.is(ev(old.h).thp_split, 1);
  t.false('thp_swpout' in ev(old.h), '2.6.38 has no thp_swpout');
  for (const x of [six, old]) closeClean(t, x.h);
});

test('a THP on a swap file (6.x): no large slots, so split_folio first — thp_swpout_fallback, swpout_fallback, split — and 512 single pages', (t) => {
  const { h, mm, a } = written('6.x', 2 * MiB); // type 'file' by default
  age(h);
  t.is(h.reclaim(512), 512);
  // A PMD-mapped THP is unmapped by the frozen PMD split at once: never partially mapped.
  t.like(ev(h), { thp_swpout: 0, thp_swpout_fallback: 1, thp_split_pmd: 1, thp_split_page: 1, thp_deferred_split_page: 0, pswpout: 512 });
  t.like(stats(h, '2048kB'), { swpout: 0, swpout_fallback: 1, split: 1, split_deferred: 0, nr_anon: 0 });
  t.is(mm.follow_page(a), null);
  closeClean(t, h);
});

test('a partition with no free cluster: a THP falls back to 4 KiB swap-out as on a swap file', (t) => {
  const { h } = written('6.x', 2 * MiB, {}, { bytes: 1 * MiB, type: 'partition' }); // 256 slots: not one whole cluster
  age(h);
  t.is(h.reclaim(255), 255);
  t.like(ev(h), { thp_swpout: 0, thp_swpout_fallback: 1, pswpout: 255 });
  closeClean(t, h);
});

test('swap-in after a whole-folio swap-out is 4 KiB at a time: pgmajfault and pswpin per page, the bytes intact, no THP comes back', (t) => {
  const { h, mm, a, data } = written('6.x', 2 * MiB, {}, { bytes: 8 * MiB, type: 'partition' });
  age(h);
  h.reclaim(512);
  t.deepEqual(mm.readBytes(at(a + 5 * 4096), 4096), data.subarray(5 * 4096, 6 * 4096));
  t.like(ev(h), { pgmajfault: 1, pswpin: 1, nr_anon_pages: 1 });
  t.deepEqual(mm.readBytes(a, 2 * MiB), data);
  t.like(ev(h), { pgmajfault: 512, pswpin: 512, nr_anon_pages: 512, nr_anon_transparent_hugepages: 0 });
  t.deepEqual(smaps(mm), { Rss: 2048, AnonHugePages: 0 });
  t.is(h.meminfo().SwapFree, h.meminfo().SwapTotal, 'every slot freed as its page came back');
  closeClean(t, h);
});

test('a 64 KiB mTHP: whole to a partition (swpout, pswpout 16, no thp_* event), split on a swap file (swpout_fallback, split)', (t) => {
  const sizes = { thp: { sizes: { '64kB': 'always' as const, '2048kB': 'never' as const } } };
  const part = written('6.x', 64 * 1024, sizes, { bytes: 8 * MiB, type: 'partition' });
  const file = written('6.x', 64 * 1024, sizes);
  for (const { h } of [part, file]) {
    t.is(stats(h, '64kB').nr_anon, 1);
    age(h);
    t.is(h.reclaim(16), 16);
    t.is(ev(h).pswpout, 16);
    t.like(ev(h), { thp_swpout: 0, thp_swpout_fallback: 0, thp_split_pmd: 0, thp_split_page: 0 });
    t.is(stats(h, '64kB').nr_anon, 0);
  }
  // The split's unmap_folio removes the 16 PTEs one at a time: partially mapped after the
  // first, so it is queued (split_deferred) on the way — Linux 6.18 counts it too. Whole to
  // the partition: the folio is in the swap cache when unmapped, so it is not queued.
  t.like(stats(part.h, '64kB'), { swpout: 1, swpout_fallback: 0, split: 0, split_deferred: 0 });
  t.like(stats(file.h, '64kB'), { swpout: 0, swpout_fallback: 1, split: 1, split_deferred: 1, nr_anon_partially_mapped: 0 });
  t.deepEqual(part.mm.readBytes(part.a, 64 * 1024), part.data);
  t.deepEqual(file.mm.readBytes(file.a, 64 * 1024), file.data);
  t.is(ev(part.h).pswpin, 16);
  for (const x of [part, file]) closeClean(t, x.h);
});

test('a partially mapped mTHP is split before swap-out: its unmapped page freed without I/O, the rest swapped as 4 KiB pages', (t) => {
  const { h, mm, a } = written('6.x', 64 * 1024, { thp: { sizes: { '64kB': 'always', '2048kB': 'never' } } }, { bytes: 8 * MiB, type: 'partition' });
  mm.madvise(at(a + 4096), 4096, 'MADV_DONTNEED');
  t.like(stats(h, '64kB'), { split_deferred: 1, nr_anon_partially_mapped: 1 });
  age(h);
  const free0 = h.nr_free_pages();
  t.is(h.reclaim(15), 15);
  t.is(h.nr_free_pages(), free0 + 16, '15 swapped + the unmapped page freed by the split');
  t.like(stats(h, '64kB'), { split: 1, swpout: 0, swpout_fallback: 0, nr_anon: 0, nr_anon_partially_mapped: 0 });
  t.is(ev(h).pswpout, 15);
  closeClean(t, h);
});

test('a pinned large folio is not swapped: gup holds a reference besides the mappings', (t) => {
  const { h, mm, a } = written('6.x', 2 * MiB, {}, { bytes: 8 * MiB, type: 'partition' });
  const [pin] = mm.get_user_pages(at(a + 4096), 1, false);
  age(h);
  t.is(h.reclaim(512), 0);
  t.like(ev(h), { pswpout: 0, thp_swpout: 0, thp_split_pmd: 0 });
  t.true(mm.follow_page(a)!.huge);
  h.put_page(pin);
  t.is(h.reclaim(512), 512);
  t.is(ev(h).thp_swpout, 1);
  closeClean(t, h);
});

test('a 64 KiB mTHP shared by fork, the child having unmapped its first page: still swapped whole, both mms get their swap entries', (t) => {
  const { h, mm, a, data } = written('6.x', 64 * 1024, { thp: { sizes: { '64kB': 'always', '2048kB': 'never' } } }, { bytes: 8 * MiB, type: 'partition' });
  const child = mm.fork() as MmStruct;
  child.munmap(a, 4096); // the child's VMA now starts at a tail page of the folio
  t.like(stats(h, '64kB'), { split_deferred: 0 }, 'every page is still mapped by the parent: not partially mapped');
  age(h);
  t.is(h.reclaim(16), 16);
  t.like(stats(h, '64kB'), { swpout: 1, split: 0, nr_anon: 0 });
  t.is(ev(h).pswpout, 16);
  t.deepEqual(smaps(mm), { Rss: 0, AnonHugePages: 0 });
  t.deepEqual(smaps(child), { Rss: 0, AnonHugePages: 0 });
  t.deepEqual(child.readBytes(at(a + 4096), 60 * 1024), data.subarray(4096));
  t.deepEqual(mm.readBytes(a, 64 * 1024), data);
  t.is(ev(h).pswpin, 16, 'the parent reads each page once; the child finds its 15 in the swap cache (no second read)');
  closeClean(t, h);
});
