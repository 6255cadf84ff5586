// The underused-THP shrinker of Linux 6.12+ on the 6.x host (src/mm/policy-6x.ts; docs/thp-model.md
// "The underused-THP shrinker"): a new PMD THP is queued at fault or collapse by
// deferred_split_folio(folio, false) while shrink_underused is 1; deferred_split_scan (run by
// shrink_slab under memory pressure) splits a fully mapped queued THP when thp_underused —
// more than khugepaged/max_ptes_none of its pages zero-filled, never with 511 — and the split
// maps the zero-filled pages to the shared zero page and frees them. Every host runs with
// debugChecks and must have every frame free at close.
import test from 'ava';
import type { Hva } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { createHost, type HostConfig } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import type { MmStruct } from '../src/mm/mm.ts';
import { folio_test_partially_mapped } from '../src/mm/folio.ts';
import type { FolioPolicy } from '../src/mm/policy-6x.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;
const ev = (h: Host, name: string) => h.vmstat()[name];
const queue = (h: Host) => [...(h.policy as FolioPolicy).split_queue];
const closeClean = (t: { is(a: unknown, b: unknown, m?: string): void }, h: Host) => {
  h.close(); // debugChecks: throws unless every frame is free
  t.is(h.nr_free_pages(), h.nrFrames, 'every frame free at close');
};

function host(thp: HostConfig['thp'] = {}): Host {
  return createHost({ memoryBytes: 64 * MiB, debugChecks: true, kernel: '6.x', thp }) as Host;
}

/** Store the byte `k + 1` at the start of page k, for each page k of [a, a + 2 MiB) in `pages`. */
function write(h: Host, mm: MmStruct, a: number, pages: Iterable<number>): void {
  for (const k of pages) h.physmem.frames(mm.follow_page(at(a + k * PAGE_SIZE))!.pfn)[0] = (k % 255) + 1;
}
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** One THP written by a write fault, with data in its first 512 - `zero` pages. */
function thpWithZeroPages(thp: HostConfig['thp'], zero: number) {
  const h = host(thp);
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a), true);
  write(h, mm, a, range(0, 512 - zero));
  return { h, mm, a, head: mm.follow_page(at(a))!.headPfn };
}

test('a write fault queues the new THP fully mapped: deferred_split_folio(folio, false), no PG_partially_mapped, no thp_deferred_split_page', (t) => {
  const { h, head } = thpWithZeroPages({}, 0);
  t.deepEqual(queue(h), [head]);
  t.false(folio_test_partially_mapped(h.pages, head));
  t.is(ev(h, 'thp_deferred_split_page'), 0);
  t.is(h.mthpStats()!['2048kB']!.split_deferred, 0);
  t.is(ev(h, 'thp_underused_split_page'), 0, 'the counter is in 6.x /proc/vmstat');
  closeClean(t, h);
});

test('memory pressure splits a THP with N > max_ptes_none zero-filled pages: thp_underused_split_page, the N pages go to the zero page and are freed', (t) => {
  const N = 100;
  const { h, mm, a, head } = thpWithZeroPages({ khugepaged: { max_ptes_none: 64 } }, N);
  const free0 = h.nr_free_pages();
  t.is(h.reclaim(1), N, 'reclaim → shrink_slab → deferred_split_scan: frames freed = N');
  t.is(h.nr_free_pages(), free0 + N);
  const v = h.vmstat();
  t.is(v.thp_underused_split_page, 1);
  t.is(v.thp_split_page, 1);
  t.is(v.thp_split_pmd, 1, 'the PMD is split first (unmap_folio)');
  t.is(v.thp_deferred_split_page, 0);
  t.is(v.nr_anon_transparent_hugepages, 0);
  t.is(v.nr_anon_pages, 512 - N);
  t.deepEqual(queue(h), []);
  // The zero-filled pages read back as zero through the shared zero page (read-only, special).
  for (const k of [512 - N, 511]) {
    const m = mm.follow_page(at(a + k * PAGE_SIZE))!;
    t.is(m.pfn, h.zero_pfn, `page ${k}`);
    t.false(m.writable);
    t.true(h.physmem.frames(m.pfn).every((b) => b === 0));
  }
  // The written pages keep their frames and data.
  for (const k of [0, 1, 511 - N]) {
    const m = mm.follow_page(at(a + k * PAGE_SIZE))!;
    t.is<number, number>(m.pfn, head + k);
    t.is(h.physmem.frames(m.pfn)[0], (k % 255) + 1);
  }
  // A write to a zero-page address is an ordinary COW fault: a new 4 KiB page.
  mm.handle_mm_fault(at(a + 511 * PAGE_SIZE), true);
  t.not(mm.follow_page(at(a + 511 * PAGE_SIZE))!.pfn, h.zero_pfn);
  t.is(h.vmstat().nr_anon_pages, 512 - N + 1);
  t.is(h.reclaim(1), 0, 'nothing left queued');
  closeClean(t, h);
});

test('thp_underused is "more than max_ptes_none" zero-filled pages: 64 of 64 stays whole, 65 is split', (t) => {
  for (const [zero, split] of [
    [64, 0],
    [65, 1],
  ] as const) {
    const { h, mm, a } = thpWithZeroPages({ khugepaged: { max_ptes_none: 64 } }, zero);
    t.is(h.reclaim(1), split ? zero : 0, `${zero} zero-filled pages`);
    t.is(ev(h, 'thp_underused_split_page'), split);
    t.is(mm.follow_page(at(a))!.huge, !split);
    t.deepEqual(queue(h), [], 'scanned once, an unsplit fully mapped THP leaves the queue for good');
    t.is(h.reclaim(1), 0);
    closeClean(t, h);
  }
});

test('with max_ptes_none 511 (the default) or shrink_underused 0 an all-zero THP is never split', (t) => {
  {
    const { h, mm, a, head } = thpWithZeroPages({}, 512);
    t.deepEqual(queue(h), [head], 'queued at fault (shrink_underused=1)');
    t.is(h.reclaim(1), 0, 'thp_underused is false with max_ptes_none 511');
    t.is(ev(h, 'thp_underused_split_page'), 0);
    t.is(ev(h, 'thp_split_page'), 0);
    t.true(mm.follow_page(at(a))!.huge);
    t.deepEqual(queue(h), [], 'it left the queue');
    // Lowering max_ptes_none later does not requeue it.
    h.setKnob('khugepaged/max_ptes_none', 0);
    t.is(h.reclaim(1), 0);
    closeClean(t, h);
  }
  {
    const { h, mm, a } = thpWithZeroPages({ shrink_underused: 0, khugepaged: { max_ptes_none: 0 } }, 512);
    t.deepEqual(queue(h), [], 'shrink_underused=0: not queued at fault (split_underused_thp)');
    t.is(h.reclaim(1), 0);
    t.is(ev(h, 'thp_underused_split_page'), 0);
    t.true(mm.follow_page(at(a))!.huge);
    closeClean(t, h);
  }
  {
    // The knob is read at queueing time: turned off after the fault, the queued THP is still split.
    const { h } = thpWithZeroPages({ khugepaged: { max_ptes_none: 0 } }, 1);
    h.setKnob('shrink_underused', '0');
    t.is(h.reclaim(1), 1);
    t.is(ev(h, 'thp_underused_split_page'), 1);
    closeClean(t, h);
  }
});

test('a partially mapped THP is still split as before (thp_deferred_split_page, no thp_underused_split_page); its zero-filled mapped pages go to the zero page too', (t) => {
  const { h, mm, a, head } = thpWithZeroPages({ khugepaged: { max_ptes_none: 64 } }, 10);
  const free0 = h.nr_free_pages();
  mm.munmap(at(a + 100 * PAGE_SIZE), 4 * PAGE_SIZE);
  t.deepEqual(queue(h), [head]);
  t.true(folio_test_partially_mapped(h.pages, head), 'the queued folio is now flagged');
  t.is(ev(h, 'thp_deferred_split_page'), 1);
  t.is(h.nr_free_pages(), free0);
  t.is(h.reclaim(1), 4 + 10, 'the 4 unmapped pages, and the 10 zero-filled mapped ones (RMP_USE_SHARED_ZEROPAGE)');
  t.is(ev(h, 'thp_split_page'), 1);
  t.is(ev(h, 'thp_underused_split_page'), 0, 'split as partially mapped, not as underused');
  t.is(mm.follow_page(at(a + 511 * PAGE_SIZE))!.pfn, h.zero_pfn);
  t.is(h.vmstat().nr_anon_pages, 512 - 4 - 10);
  closeClean(t, h);
});

test('khugepaged queues the THP it collapses (collapse_huge_page: deferred_split_folio(folio, false)); underused, the shrinker splits it again', (t) => {
  const h = host({ enabled: 'never', khugepaged: { max_ptes_none: 64 } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  for (let k = 0; k < 500; k++) mm.handle_mm_fault(at(a + k * PAGE_SIZE), true);
  write(h, mm, a, range(0, 430)); // 70 mapped pages zero-filled, 12 PTEs none
  h.setKnob('enabled', 'always');
  h.khugepaged.khugepaged_enter(mm, mm.vmas[0]!);
  h.khugepaged_scan();
  t.is(ev(h, 'thp_collapse_alloc'), 1);
  const m = mm.follow_page(at(a))!;
  t.true(m.huge);
  t.deepEqual(queue(h), [m.headPfn]);
  t.false(folio_test_partially_mapped(h.pages, m.headPfn));
  t.is(h.reclaim(1), 70 + 12, 'the 82 zero-filled pages of the collapsed THP');
  t.is(ev(h, 'thp_underused_split_page'), 1);
  t.is(h.physmem.frames(mm.follow_page(at(a + 429 * PAGE_SIZE))!.pfn)[0], (429 % 255) + 1, 'the data was copied');
  t.is(mm.follow_page(at(a + 430 * PAGE_SIZE))!.pfn, h.zero_pfn);
  closeClean(t, h);
});

test('a write on the huge zero page (do_huge_zero_wp_pmd) queues the new THP too', (t) => {
  const h = host({ khugepaged: { max_ptes_none: 0 } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a), false);
  t.deepEqual(queue(h), [], 'the huge zero folio is never queued');
  mm.handle_mm_fault(at(a), true);
  const head = mm.follow_page(at(a))!.headPfn;
  t.deepEqual(queue(h), [head]);
  write(h, mm, a, range(0, 511));
  t.is(h.reclaim(1), 1, 'one zero-filled page > max_ptes_none 0');
  t.is(ev(h, 'thp_underused_split_page'), 1);
  mm.exit_mmap();
  closeClean(t, h);
});

test('the head page zero-filled too: it goes to the zero page and its frame is freed with the others', (t) => {
  const h = host({ khugepaged: { max_ptes_none: 64 } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a), true);
  const head = mm.follow_page(at(a))!.headPfn;
  write(h, mm, a, [7, 300]);
  t.is(h.reclaim(1), 510);
  t.is(ev(h, 'thp_underused_split_page'), 1);
  t.is(mm.follow_page(at(a))!.pfn, h.zero_pfn);
  t.is<number, number>(mm.follow_page(at(a + 7 * PAGE_SIZE))!.pfn, head + 7);
  t.is(h.vmstat().nr_anon_pages, 2);
  closeClean(t, h);
});
