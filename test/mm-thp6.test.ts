// The Linux 6.x THP policy (host.kernel '6.x', src/mm/policy-6x.ts), side by side with
// 2.6.38 where the two differ. Every host runs with debugChecks (invariants after every
// operation) and must have every frame free at close.
import test from 'ava';
import type { Hva, Pfn } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { createHost, type HostConfig } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import type { MmStruct } from '../src/mm/mm.ts';
import { folio_entire_mapcount, folio_large_mapcount, folio_ref_count } from '../src/mm/folio.ts';
import type { FolioPolicy } from '../src/mm/policy-6x.ts';
import { PROT_READ } from '../src/mm/types.ts';
import { _PAGE_ACCESSED } from '../src/mm/pgtable.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;
const pf = (n: number) => n as Pfn;
type Kernel = '2.6.38' | '6.x';

function host(kernel: Kernel, extra: Partial<HostConfig> = {}): Host {
  return createHost({ memoryBytes: 64 * MiB, debugChecks: true, kernel, ...extra }) as Host;
}

/**
 * Store the byte 1 in each 4 KiB page of [a, a + len), as a program writing its memory
 * would (the pages are mapped writable already): a split maps a zero-filled page to the
 * shared zero page (RMP_USE_SHARED_ZEROPAGE, 6.12+), a written one stays.
 */
function fill(h: Host, mm: MmStruct, a: number, len: number): void {
  for (let o = 0; o < len; o += PAGE_SIZE) h.physmem.frames(mm.follow_page(at(a + o))!.pfn)[0] = 1;
}

/** A host with one process and `n` THPs written from a 2 MiB aligned address (every page). */
function withThps(kernel: Kernel, n: number, extra: Partial<HostConfig> = {}) {
  const h = host(kernel, extra);
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(n * 2 * MiB, { alignHuge: true });
  for (let k = 0; k < n; k++) mm.handle_mm_fault(at(a + k * 2 * MiB), true);
  fill(h, mm, a, n * 2 * MiB);
  return { h, mm, a };
}
const ev = (h: Host, name: string) => h.vmstat()[name];
const closeClean = (t: { is(a: unknown, b: unknown, m?: string): void }, h: Host) => {
  h.close(); // debugChecks: throws unless every frame is free
  t.is(h.nr_free_pages(), h.nrFrames, 'every frame free at close');
};

test('partial munmap of a THP: 2.6.38 splits the page and frees the frame; 6.x splits the PMD, defers the split, frees at memory pressure', (t) => {
  // 2.6.38: split_huge_page at once.
  {
    const { h, mm, a } = withThps('2.6.38', 1);
    const free0 = h.nr_free_pages();
    mm.munmap(at(a + 5 * PAGE_SIZE), PAGE_SIZE);
    t.is(ev(h, 'thp_split'), 1);
    t.is(h.nr_free_pages(), free0 + 1, 'the unmapped frame is freed at once');
    t.is(h.vmstat().nr_anon_transparent_hugepages, 0);
    t.is(h.vmstat().nr_anon_pages, 511);
    closeClean(t, h);
  }
  // 6.x: split_huge_pmd, deferred_split_folio; the frame stays until the shrinker runs.
  {
    const { h, mm, a } = withThps('6.x', 1);
    const free0 = h.nr_free_pages();
    const head = mm.follow_page(a)!.headPfn;
    mm.munmap(at(a + 5 * PAGE_SIZE), PAGE_SIZE);
    const v = h.vmstat();
    t.is(v.thp_split_pmd, 1);
    t.is(v.thp_deferred_split_page, 1);
    t.is(v.thp_split_page, 0);
    t.false('thp_split' in v, "6.x's /proc/vmstat has no thp_split");
    t.is(h.nr_free_pages(), free0, 'the frame stays in the folio: the deposited table became the PTE table');
    t.is(v.nr_anon_transparent_hugepages, 0);
    t.is(v.nr_anon_pages, 511, 'NR_ANON_MAPPED: 511 pages still mapped');
    t.is(h.meminfo().AnonPages, 511 * 4);
    t.is(folio_ref_count(h.pages, head), 511, 'one folio reference per PTE');
    t.is(folio_large_mapcount(h.pages, head), 511);
    t.is(folio_entire_mapcount(h.pages, head), 0);
    t.is(h.pages._count[head + 1], 0, 'tails hold no references');
    t.deepEqual([...(h.policy as FolioPolicy).split_queue], [head]);
    t.false(mm.follow_page(a)!.huge);
    // Another partial unmap of the same folio is not counted again (PG_partially_mapped).
    mm.munmap(at(a + 9 * PAGE_SIZE), PAGE_SIZE);
    t.is(ev(h, 'thp_deferred_split_page'), 1);
    t.is(h.nr_free_pages(), free0);
    // Memory pressure: reclaim runs shrink_slab → deferred_split_scan (no swap needed).
    t.is(h.reclaim(1), 2);
    t.is(ev(h, 'thp_split_page'), 1);
    t.is(h.nr_free_pages(), free0 + 2, 'the two unmapped pages are freed by the split');
    t.is((h.policy as FolioPolicy).split_queue.size, 0);
    t.is(h.vmstat().nr_anon_pages, 510);
    t.is(h.pages._count[head], 1, 'the head is an order-0 page with its one mapping');
    t.is(h.reclaim(1), 0, 'nothing left to split');
    closeClean(t, h);
  }
});

test('6.x: an order-0 allocation that finds no free frame runs the deferred split shrinker (direct reclaim)', (t) => {
  const h = host('6.x', { memoryBytes: 8 * MiB });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(a, true);
  fill(h, mm, a, PAGE_SIZE); // the page kept holds data (a zero-filled one would go to the zero page)
  mm.munmap(at(a + PAGE_SIZE), 2 * MiB - PAGE_SIZE); // keep one page of the folio
  t.is(ev(h, 'thp_deferred_split_page'), 1);
  const taken: Pfn[] = [];
  while (h.nr_free_pages() > 0) taken.push(h.alloc_kernel_page());
  t.is(ev(h, 'thp_split_page'), 0);
  taken.push(h.alloc_kernel_page()); // try_to_free_pages → shrink_slab → deferred_split_scan
  t.is(ev(h, 'thp_split_page'), 1);
  t.is(h.nr_free_pages(), 511 - 1, 'the 511 unmapped pages freed, one of them taken');
  for (const p of taken) h.free_kernel_page(p);
  closeClean(t, h);
});

test('6.x: MADV_DONTNEED of a whole PMD frees the folio; of part of it, unmaps PTEs and defers the split', (t) => {
  const { h, mm, a } = withThps('6.x', 2);
  const free0 = h.nr_free_pages();
  mm.madvise(a, 2 * MiB, 'MADV_DONTNEED');
  t.is(h.nr_free_pages(), free0 + 512 + 1, 'the folio and its deposited table');
  t.is(ev(h, 'thp_split_pmd'), 0);
  mm.madvise(at(a + 2 * MiB), MiB, 'MADV_DONTNEED');
  t.is(ev(h, 'thp_split_pmd'), 1);
  t.is(ev(h, 'thp_deferred_split_page'), 1);
  t.is(h.nr_free_pages(), free0 + 513, 'the 256 unmapped pages wait for the shrinker');
  t.is(h.vmstat().nr_anon_pages, 256);
  t.is(h.reclaim(1), 256);
  closeClean(t, h);
});

test('6.x: a folio unmapped completely is freed on its last unmap, never queued', (t) => {
  const { h, mm, a } = withThps('6.x', 1);
  const free0 = h.nr_free_pages();
  mm.mprotect(a, MiB, PROT_READ); // partial mprotect: split_huge_pmd, nothing unmapped
  t.is(ev(h, 'thp_split_pmd'), 1);
  t.is(ev(h, 'thp_deferred_split_page'), 0);
  t.is(h.nr_free_pages(), free0);
  mm.munmap(a, 2 * MiB);
  t.is(ev(h, 'thp_deferred_split_page'), 0, 'one zap batch unmaps every page: not partially mapped');
  t.is(h.nr_free_pages(), free0 + 512 + 3, 'the folio and its PTE, PMD and PUD tables');
  t.is((h.policy as FolioPolicy).split_queue.size, 0);
  closeClean(t, h);
});

test('huge zero page: a read fault maps it under 6.x (thp_zero_page_alloc once), a THP under 2.6.38', (t) => {
  {
    const h = host('2.6.38');
    const mm = h.newProcess() as MmStruct;
    const a = mm.mmap(2 * MiB, { alignHuge: true });
    mm.handle_mm_fault(a, false);
    t.is(ev(h, 'thp_fault_alloc'), 1);
    t.false('thp_zero_page_alloc' in h.vmstat(), '2.6.38 has no such counter');
    t.true(mm.follow_page(a)!.writable);
    closeClean(t, h);
  }
  const h = host('6.x');
  const free0 = h.nr_free_pages();
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  const tables = free0 - h.nr_free_pages();
  mm.handle_mm_fault(a, false);
  mm.handle_mm_fault(at(a + 2 * MiB), false);
  const other = h.newProcess() as MmStruct;
  const b = other.mmap(2 * MiB, { alignHuge: true });
  other.handle_mm_fault(b, false);
  const v = h.vmstat();
  t.is(v.thp_zero_page_alloc, 1, 'allocated once, shared by every mapping');
  t.is(v.thp_fault_alloc, 0);
  t.is(v.nr_anon_transparent_hugepages, 0);
  t.is(v.nr_anon_pages, 0);
  const m = mm.follow_page(a)!;
  t.true(m.huge);
  t.false(m.writable);
  t.is(other.follow_page(b)!.headPfn, m.headPfn);
  t.deepEqual(mm.readBytes(at(a + 123), 4), new Uint8Array(4));
  t.is((h.policy as FolioPolicy).huge_zero_refcount, 3, 'two mms + the shrinker');
  // The write fault replaces it with a THP (do_huge_zero_wp_pmd).
  mm.handle_mm_fault(a, true);
  t.is(ev(h, 'thp_fault_alloc'), 1);
  t.true(mm.follow_page(a)!.writable);
  t.not(mm.follow_page(a)!.headPfn, m.headPfn);
  t.is(ev(h, 'thp_split_pmd'), 0);
  // The shrinker frees it only once no mm holds it.
  t.is(h.reclaim(1), 0);
  mm.exit_mmap();
  other.exit_mmap();
  t.is(h.reclaim(1), 512, 'the huge zero folio (512 frames)');
  t.is(h.nr_free_pages(), free0 - tables + tables, 'all back');
  closeClean(t, h);
});

test('6.x: a write on the huge zero page with no THP to be had splits the zero PMD and faults 4 KiB', (t) => {
  const h = host('6.x', { memoryBytes: 8 * MiB });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(a, false);
  t.is(ev(h, 'thp_zero_page_alloc'), 1);
  // Take kernel pages until fewer than 512 frames are free: no THP can be allocated.
  const taken: Pfn[] = [];
  while (h.nr_free_pages() >= 512) taken.push(h.alloc_kernel_page());
  mm.handle_mm_fault(at(a + 3 * PAGE_SIZE), true);
  const v = h.vmstat();
  t.is(v.thp_fault_fallback, 1);
  t.is(v.thp_split_pmd, 1, '__split_huge_zero_page_pmd');
  t.is(v.thp_fault_alloc, 0);
  t.is(v.nr_anon_pages, 1, 'one 4 KiB page written; the others map the 4 KiB zero page');
  t.true(mm.follow_page(at(a + 3 * PAGE_SIZE))!.writable);
  t.is(mm.follow_page(a)!.pfn, h.zero_pfn);
  for (const p of taken) h.free_kernel_page(p);
  mm.exit_mmap();
  t.is(h.reclaim(1), 512);
  closeClean(t, h);
});

test('use_zero_page=0: a 6.x read fault allocates a THP, as 2.6.38 does', (t) => {
  const h = host('6.x', { thp: { use_zero_page: 0 } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(a, false);
  t.is(ev(h, 'thp_fault_alloc'), 1);
  t.is(ev(h, 'thp_zero_page_alloc'), 0);
  closeClean(t, h);
});

test('references on a tail: 2.6.38 counts the tail and the head; 6.x takes one folio reference (no tail counts)', (t) => {
  for (const kernel of ['2.6.38', '6.x'] as const) {
    const { h, mm, a } = withThps(kernel, 1);
    const head = mm.follow_page(a)!.headPfn;
    const [pin] = mm.get_user_pages(at(a + 7 * PAGE_SIZE), 1, true);
    t.is(pin, pf(head + 7));
    t.is(h.pages._count[head + 7], kernel === '2.6.38' ? 1 : 0, kernel);
    t.is(h.pages._count[head], 2, kernel);
    h.put_page(pin!);
    t.is(h.pages._count[head], 1, kernel);
    closeClean(t, h);
  }
});

test('6.x: a gup pin makes the deferred split fail (thp_split_page_failed) until it is released', (t) => {
  const { h, mm, a } = withThps('6.x', 1);
  const [pin] = mm.get_user_pages(at(a + 100 * PAGE_SIZE), 1, false);
  mm.munmap(at(a + MiB), MiB);
  t.is(ev(h, 'thp_deferred_split_page'), 1);
  t.is(h.reclaim(1), 0);
  t.is(ev(h, 'thp_split_page_failed'), 1);
  t.is((h.policy as FolioPolicy).split_queue.size, 1, 'it stays queued');
  h.put_page(pin!);
  t.is(h.reclaim(1), 256);
  t.is(ev(h, 'thp_split_page'), 1);
  closeClean(t, h);
});

test('COW of a THP after fork: 2.6.38 copies the whole THP; 6.x splits the PMD and copies one 4 KiB page', (t) => {
  for (const kernel of ['2.6.38', '6.x'] as const) {
    const { h, mm, a } = withThps(kernel, 1);
    const child = mm.fork() as MmStruct;
    const free0 = h.nr_free_pages();
    child.handle_mm_fault(at(a + 3 * PAGE_SIZE), true);
    const v = h.vmstat();
    if (kernel === '2.6.38') {
      t.is(v.thp_fault_alloc, 2);
      t.is(v.thp_split, 0);
      t.true(child.follow_page(a)!.huge);
      t.is(h.nr_free_pages(), free0 - 512);
    } else {
      t.is(v.thp_fault_alloc, 1);
      t.is(v.thp_split_pmd, 1);
      t.is(v.thp_deferred_split_page, 0, 'the parent still maps the whole folio');
      t.false(child.follow_page(a)!.huge);
      t.true(mm.follow_page(a)!.huge);
      t.is(h.nr_free_pages(), free0 - 1, 'one 4 KiB copy');
      t.is(v.nr_anon_pages, 512 + 1);
      // The child writes again on another page: still a copy (the parent maps the folio).
      child.handle_mm_fault(at(a + 4 * PAGE_SIZE), true);
      t.is(h.nr_free_pages(), free0 - 2);
    }
    child.exit_mmap();
    // The parent is alone again: its write reuses the THP in place.
    mm.handle_mm_fault(a, true);
    t.is(h.vmstat().thp_fault_alloc, kernel === '2.6.38' ? 2 : 1);
    t.true(mm.follow_page(a)!.writable);
    closeClean(t, h);
  }
});

/** 512 small pages (THP off while faulting) in one aligned 2 MiB range, then THP on. */
function smallPages(kernel: Kernel, extra: Partial<HostConfig> = {}, touch = 512) {
  const h = host(kernel, { ...extra, thp: { ...extra.thp, enabled: 'never' } });
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  for (let k = 0; k < touch; k++) mm.handle_mm_fault(at(a + k * PAGE_SIZE), true);
  h.setKnob('enabled', 'always');
  h.khugepaged.khugepaged_enter(mm, mm.vmas[0]!);
  return { h, mm, a };
}

test('khugepaged 6.x: max_ptes_none counts thp_scan_exceed_none_pte; zero-page PTEs count as none and collapse', (t) => {
  {
    const { h, mm } = smallPages('6.x', { thp: { khugepaged: { max_ptes_none: 0 } } }, 500);
    h.khugepaged_scan();
    t.is(ev(h, 'thp_scan_exceed_none_pte'), 1);
    t.is(ev(h, 'thp_collapse_alloc'), 0);
    void mm;
    closeClean(t, h);
  }
  for (const kernel of ['2.6.38', '6.x'] as const) {
    const { h, mm, a } = smallPages(kernel, {}, 500);
    for (let k = 500; k < 512; k++) mm.handle_mm_fault(at(a + k * PAGE_SIZE), false); // the 4 KiB zero page
    h.khugepaged_scan();
    t.is(ev(h, 'thp_collapse_alloc'), kernel === '6.x' ? 1 : 0, `${kernel}: zero-page PTEs ${kernel === '6.x' ? 'count as none' : 'block the collapse'}`);
    closeClean(t, h);
  }
});

test('khugepaged 6.x: max_ptes_shared (default 256) counts thp_scan_exceed_share_pte; 2.6.38 refuses any shared page', (t) => {
  const { h, mm, a } = smallPages('6.x');
  const child = mm.fork() as MmStruct;
  mm.handle_mm_fault(a, true); // the parent's COW: one private writable page, 511 shared
  h.khugepaged_scan();
  t.is(ev(h, 'thp_scan_exceed_share_pte'), 2, 'parent and child (registered by khugepaged_fork) each have 511 shared > 256');
  t.is(ev(h, 'thp_collapse_alloc'), 0);
  h.setKnob('khugepaged/max_ptes_shared', 511);
  h.khugepaged_scan();
  t.is(ev(h, 'thp_collapse_alloc'), 1, 'the parent collapses; the child, all read-only (COW), does not (SCAN_PAGE_RO)');
  t.true(mm.follow_page(a)!.huge);
  t.false(child.follow_page(a)!.huge);
  t.deepEqual(child.readBytes(at(a + 5 * PAGE_SIZE), 4), new Uint8Array(4));
  closeClean(t, h);
  // 2.6.38 refuses a shared page (_count 1 rule) whatever the knobs.
  const old = smallPages('2.6.38');
  old.mm.fork();
  old.mm.handle_mm_fault(old.a, true);
  old.h.khugepaged_scan();
  t.is(ev(old.h, 'thp_collapse_alloc'), 0);
  closeClean(t, old.h);
});

test('khugepaged 6.x: max_ptes_swap (default 64) counts thp_scan_exceed_swap_pte; within it the pages are read back and collapsed', (t) => {
  const { h, mm, a } = smallPages('6.x', { swap: { bytes: 8 * MiB } });
  const t0 = mm.pgd.pte_offset(a)!;
  for (let j = 0; j < 512; j++) t0.bits[j] &= ~_PAGE_ACCESSED; // all old: reclaim may take any
  t.is(h.reclaim(65), 65);
  t.is(ev(h, 'pswpout'), 65);
  for (let j = 0; j < 512; j++) if (t0.pte_present(j)) t0.bits[j] |= _PAGE_ACCESSED; // the rest young again
  h.khugepaged_scan();
  t.is(ev(h, 'thp_scan_exceed_swap_pte'), 1);
  t.is(ev(h, 'thp_collapse_alloc'), 0);
  h.setKnob('khugepaged/max_ptes_swap', 65);
  h.khugepaged_scan();
  t.is(ev(h, 'pswpin'), 65, '__collapse_huge_page_swapin');
  t.is(ev(h, 'thp_collapse_alloc'), 1);
  t.true(mm.follow_page(a)!.huge);
  closeClean(t, h);
});

test('khugepaged 6.x: a PTE-mapped folio collapses into a new THP and the old folio is freed', (t) => {
  const { h, mm, a } = withThps('6.x', 1);
  mm.mprotect(a, MiB, PROT_READ);
  mm.mprotect(a, MiB, 3); // read+write again: the VMAs merge, the folio stays PTE-mapped
  t.is(mm.vmas.length, 1);
  t.false(mm.follow_page(a)!.huge);
  const free0 = h.nr_free_pages();
  h.khugepaged.khugepaged_enter(mm, mm.vmas[0]!);
  h.khugepaged_scan();
  t.is(ev(h, 'thp_collapse_alloc'), 1);
  t.true(mm.follow_page(a)!.huge);
  t.is(h.nr_free_pages(), free0, 'the new THP replaces the old folio frame for frame');
  t.is(ev(h, 'thp_deferred_split_page'), 0);
  closeClean(t, h);
});

test('6.x vmstat has the modern THP counters; 2.6.38 does not', (t) => {
  const six = host('6.x');
  const old = host('2.6.38');
  for (const k of ['thp_split_pmd', 'thp_deferred_split_page', 'thp_split_page', 'thp_split_page_failed', 'thp_zero_page_alloc', 'thp_zero_page_alloc_failed', 'thp_scan_exceed_none_pte', 'thp_scan_exceed_swap_pte', 'thp_scan_exceed_share_pte']) {
    t.is(six.vmstat()[k], 0, k);
    t.false(k in old.vmstat(), k);
  }
  closeClean(t, six);
  closeClean(t, old);
});

test('6.x: a gup pin on the huge zero page is a folio reference: the shrinker drops the folio, the frames go with the last put_page', (t) => {
  const h = host('6.x');
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  const [p] = mm.get_user_pages(at(a + 3 * PAGE_SIZE), 1, false); // a read: the huge zero page
  const head = mm.follow_page(a)!.headPfn;
  t.is(p, pf(head + 3));
  t.is(h.pages._count[head], 2, "the folio's own reference and the pin");
  mm.exit_mmap();
  t.is(h.reclaim(1), 0, 'the shrinker drops it, but the pin keeps the frames');
  t.is((h.policy as FolioPolicy).huge_zero_folio, null);
  const free0 = h.nr_free_pages();
  h.put_page(p!);
  t.is(h.nr_free_pages(), free0 + 512);
  closeClean(t, h);
});

test('6.x invariants catch a wrong per-page _mapcount, a wrong _large_mapcount and a tail holding a reference', (t) => {
  const { h, mm, a } = withThps('6.x', 1);
  mm.munmap(at(a + 5 * PAGE_SIZE), PAGE_SIZE); // PTE-mapped, partially
  const head = mm.follow_page(a)!.pfn;
  h.pages._mapcount[head + 1]++;
  t.throws(() => h.checkInvariants(), { message: `invariant violated: folio ${head}: page ${head + 1} _mapcount+1 = 2 but 1 PTEs map it` });
  h.pages._mapcount[head + 1]--;
  h.pages.index[head + 1]++;
  t.throws(() => h.checkInvariants(), { message: `invariant violated: folio ${head}: _large_mapcount+1 = 512 but 511 mappings` });
  h.pages.index[head + 1]--;
  h.pages._count[head + 2]++;
  t.throws(() => h.checkInvariants(), { message: `invariant violated: folio ${head}: tail ${head + 2} holds _count 1 (folios count on the head only)` });
  h.pages._count[head + 2]--;
  h.checkInvariants();
  closeClean(t, h);
});

test('mprotect RO then RW: 6.x makes exclusive anonymous PTEs and PMDs writable at once (no fault); 2.6.38 leaves them for write faults', (t) => {
  for (const kernel of ['2.6.38', '6.x'] as const) {
    const { h, mm, a } = withThps(kernel, 2);
    mm.mprotect(a, 4 * MiB, PROT_READ);
    mm.mprotect(a, 4 * MiB, 3);
    const faults0 = ev(h, 'pgfault');
    t.is(mm.follow_page(a)!.writable, kernel === '6.x', `${kernel}: the PMD`);
    mm.writeBytes(at(a + 2 * MiB + 10), new Uint8Array([1, 2, 3]));
    t.is(ev(h, 'pgfault') - faults0, kernel === '6.x' ? 0 : 1, `${kernel}: write faults`);
    closeClean(t, h);
  }
  // After fork the pages are shared (PageAnonExclusive cleared): still read-only after the
  // child exits; the first write reuses the page (its only reference) and makes it exclusive.
  const { h, mm, a } = withThps('6.x', 1);
  mm.fork().exit_mmap();
  mm.mprotect(a, 2 * MiB, PROT_READ);
  mm.mprotect(a, 2 * MiB, 3);
  t.false(mm.follow_page(a)!.writable);
  const f0 = ev(h, 'pgfault');
  mm.handle_mm_fault(a, true);
  t.true(mm.follow_page(a)!.writable);
  t.is(ev(h, 'thp_split_pmd'), 0, 'reused in place');
  mm.mprotect(a, 2 * MiB, PROT_READ);
  mm.mprotect(a, 2 * MiB, 3);
  t.true(mm.follow_page(a)!.writable, 'exclusive again');
  t.is(ev(h, 'pgfault') - f0, 1);
  closeClean(t, h);
});
