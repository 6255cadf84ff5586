/**
 * khugepaged (src/mm/khugepaged.ts): which ranges collapse (max_ptes_none, pins, young
 * bits, secondary MMUs), the bytes after a collapse, and the pass schedule on simulated
 * time, with exact counts.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { createHost, type HostConfig, type MmStructApi } from '../src/mm/index.ts';
import { page_referenced } from '../src/mm/reclaim.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE, type Hva } from '../src/util/address.ts';
import type { Host } from '../src/mm/host.ts';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A host in madvise mode: faults are 4 KiB until MADV_HUGEPAGE registers the mm with khugepaged. */
function setup(extra: Partial<HostConfig> = {}) {
  const host = createHost({ memoryBytes: 8 * MiB, debugChecks: true, thp: { enabled: 'madvise' }, ...extra });
  const mm = host.newProcess();
  const a = mm.mmap(HPAGE_PMD_SIZE, { alignHuge: true });
  return { host, mm, a };
}

/** Write a distinct byte pattern into pages [0, n) from `a` (others untouched), in one access. */
function populate(mm: MmStructApi, a: Hva, n: number): Uint8Array {
  const expect = new Uint8Array(HPAGE_PMD_SIZE);
  for (let i = 0; i < n * PAGE_SIZE; i++) expect[i] = ((i >> 12) * 31 + i * 7 + 1) & 0xff;
  mm.writeBytes(a, expect.subarray(0, n * PAGE_SIZE));
  return expect;
}

test('khugepaged collapses a fully populated range into a THP with the same bytes', (t) => {
  const { host, mm, a } = setup();
  const expect = populate(mm, a, 512);
  t.is(host.vmstat().nr_anon_pages, 512);
  t.false(mm.follow_page(a)!.huge);
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  host.khugepaged_scan();
  const m = mm.follow_page(a)!;
  t.true(m.huge);
  t.true(m.writable);
  const v = host.vmstat();
  t.is(v.thp_collapse_alloc, 1);
  t.is(v.nr_anon_transparent_hugepages, 1);
  t.is(v.nr_anon_pages, 0);
  t.is(host.khugepagedStats().pages_collapsed, 1);
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(expect));
  host.close();
});

test('collapse notifies secondary MMUs around clearing the PMD', (t) => {
  const { host, mm, a } = setup();
  populate(mm, a, 512);
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  const calls: string[] = [];
  mm.mmu_notifier_register({
    invalidate_range_start: (_m, s, e) => calls.push(`start ${s - a} ${e - a}`),
    invalidate_range_end: (_m, s, e) => calls.push(`end ${s - a} ${e - a}`),
  });
  const seq = mm.mmu_notifier_seq;
  host.khugepaged_scan();
  t.deepEqual(calls, [`start 0 ${HPAGE_PMD_SIZE}`, `end 0 ${HPAGE_PMD_SIZE}`]);
  t.is(mm.mmu_notifier_seq, seq + 1);
  host.close();
});

test('a gup pin blocks collapse until it is released', (t) => {
  const { host, mm, a } = setup();
  populate(mm, a, 512);
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  const [pinned] = mm.get_user_pages((a + 100 * PAGE_SIZE) as Hva, 1, true);
  host.khugepaged_scan();
  t.false(mm.follow_page(a)!.huge);
  t.is(host.vmstat().thp_collapse_alloc, 0);
  host.put_page(pinned);
  host.khugepaged_scan();
  t.true(mm.follow_page(a)!.huge);
  host.close();
});

test('max_ptes_none: 64 empty PTEs collapse with max_ptes_none 64, not with 63; holes read as zero', (t) => {
  const { host, mm, a } = setup();
  const expect = populate(mm, a, 512 - 64); // the last 64 PTEs stay none
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  host.setKnob('khugepaged/max_ptes_none', 63);
  host.khugepaged_scan();
  t.false(mm.follow_page(a)!.huge);
  host.setKnob('khugepaged/max_ptes_none', 64);
  host.khugepaged_scan();
  t.true(mm.follow_page(a)!.huge);
  t.is(host.vmstat().nr_anon_pages, 0);
  t.is(sha(mm.readBytes(a, HPAGE_PMD_SIZE)), sha(expect));
  host.close();
});

test('a range with no young PTE is not collapsed', (t) => {
  const { host, mm, a } = setup();
  populate(mm, a, 512);
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  const pfns = Array.from({ length: 512 }, (_, p) => mm.follow_page((a + p * PAGE_SIZE) as Hva)!.pfn);
  for (const pfn of pfns) page_referenced(host as Host, pfn);
  host.khugepaged_scan();
  t.false(mm.follow_page(a)!.huge);
  mm.readBytes((a + 5 * PAGE_SIZE) as Hva, 1); // one access makes its PTE young again
  host.khugepaged_scan();
  t.true(mm.follow_page(a)!.huge);
  host.close();
});

test('a read-only PTE (the zero page) blocks collapse', (t) => {
  const { host, mm, a } = setup();
  populate(mm, a, 511);
  mm.readBytes((a + 511 * PAGE_SIZE) as Hva, 1); // maps the zero page, read-only
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  host.khugepaged_scan();
  t.false(mm.follow_page(a)!.huge);
  host.close();
});

test('pages_to_scan pacing: 1024 pages per pass over a 4-PMD VMA gives exact full_scans over simulated time', (t) => {
  const host = createHost({ memoryBytes: 32 * MiB, debugChecks: true, thp: { enabled: 'madvise', khugepaged: { pages_to_scan: 1024 } } });
  const mm = host.newProcess();
  const a = mm.mmap(4 * HPAGE_PMD_SIZE, { alignHuge: true });
  mm.madvise(a, 4 * HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  mm.handle_mm_fault(a, true); // one THP; the other three ranges stay empty
  // Progress per pass: 1 (mm) + 512 per PMD, stopping at ≥ 1024: two PMDs a pass; the pass
  // after the last PMD finds no VMA left, ends the turn (full_scans++) and starts the next.
  // Passes at t = 0 (the wake-up by khugepaged_enter), 10000, 20000, ...
  host.advanceTime(0);
  t.is(host.khugepagedStats().full_scans, 0); // pass 1: PMDs 0, 1
  host.advanceTime(10000);
  t.is(host.khugepagedStats().full_scans, 0); // pass 2: PMDs 2, 3
  host.advanceTime(9999);
  t.is(host.khugepagedStats().full_scans, 0); // no pass due yet
  host.advanceTime(1);
  t.is(host.khugepagedStats().full_scans, 1); // pass 3: end of turn 1, PMDs 0, 1
  host.advanceTime(40000);
  t.is(host.khugepagedStats().full_scans, 3); // passes 4..7
  t.is(host.vmstat().thp_collapse_alloc, 0);
  host.close();
});

test('scan_sleep_millisecs spaces passes: 60 s at 1000 ms gives 61 passes', (t) => {
  const host = createHost({
    memoryBytes: 32 * MiB,
    debugChecks: true,
    thp: { khugepaged: { pages_to_scan: 4096, scan_sleep_millisecs: 1000 } },
  });
  const mm = host.newProcess();
  const a = mm.mmap(4 * HPAGE_PMD_SIZE, { alignHuge: true });
  mm.handle_mm_fault(a, true);
  // A pass covers the whole mm (1 + 4·512 = 2049 < 4096) and then meets the list head a
  // second time (pass_through_head), which ends it: one full scan per pass, at t = 0..60000.
  host.advanceTime(60000);
  t.is(host.khugepagedStats().full_scans, 61);
  host.close();
});

test('a failed huge allocation counts thp_collapse_alloc_failed and the next pass waits alloc_sleep_millisecs more', (t) => {
  const host = createHost({ memoryBytes: 4 * MiB, debugChecks: true, thp: { enabled: 'madvise' } });
  const mm = host.newProcess();
  const a = mm.mmap(HPAGE_PMD_SIZE, { alignHuge: true });
  populate(mm, a, 512); // 4 KiB pages: with tables and the zero page, no free order-9 block is left
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  host.advanceTime(0); // pass 1 at t=0
  t.is(host.vmstat().thp_collapse_alloc_failed, 1);
  host.advanceTime(10000 + 60000 - 1);
  t.is(host.vmstat().thp_collapse_alloc_failed, 1);
  host.advanceTime(1); // pass 2 at scan_sleep + alloc_sleep
  t.is(host.vmstat().thp_collapse_alloc_failed, 2);
  t.false(mm.follow_page(a)!.huge);
  host.close();
});

test('khugepaged forgets an exited mm; every frame is free after close', (t) => {
  const { host, mm, a } = setup();
  populate(mm, a, 512);
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  mm.exit_mmap();
  host.khugepaged_scan();
  t.is(host.vmstat().thp_collapse_alloc, 0);
  host.close(); // debugChecks: throws unless every frame is free
  t.pass();
});


test('a range young only in a secondary MMU (test_young) is collapsed', (t) => {
  const { host, mm, a } = setup();
  populate(mm, a, 512);
  mm.madvise(a, HPAGE_PMD_SIZE, 'MADV_HUGEPAGE');
  const pfns = Array.from({ length: 512 }, (_, p) => mm.follow_page((a + p * PAGE_SIZE) as Hva)!.pfn);
  for (const pfn of pfns) page_referenced(host as Host, pfn); // host PTEs all old
  mm.mmu_notifier_register(Object.assign(
    { invalidate_range_start: () => {}, invalidate_range_end: () => {} },
    { test_young: (_mm: unknown, addr: number) => addr === a + 9 * PAGE_SIZE },
  ));
  host.khugepaged_scan();
  t.true(mm.follow_page(a)!.huge);
  host.close();
});
