import test from 'ava';
import { createHash } from 'node:crypto';
import type { Hva, Pfn } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { createHost, type HostConfig } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import type { MmStruct } from '../src/mm/mm.ts';
import { pmd_index } from '../src/mm/pgtable.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;
const pf = (n: number) => n as Pfn;

/** A host with one process and `n` THPs faulted in from a 2 MiB aligned address. */
function withThps(n: number, extra: Partial<HostConfig> = {}) {
  const h = createHost({ memoryBytes: 64 * MiB, debugChecks: true, ...extra }) as Host;
  const mm = h.newProcess() as MmStruct;
  const a = mm.mmap(n * 2 * MiB, { alignHuge: true });
  for (let k = 0; k < n; k++) mm.handle_mm_fault(at(a + k * 2 * MiB), true);
  return { h, mm, a };
}

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const thps = (h: Host) => h.vmstat().nr_anon_transparent_hugepages;

test('partial munmap of one 4 KiB page splits exactly that huge page', (t) => {
  const { h, mm, a } = withThps(3);
  const free0 = h.nr_free_pages();
  mm.munmap(at(a + 2 * MiB + 5 * PAGE_SIZE), PAGE_SIZE);
  t.is(h.vmstat().thp_split, 1);
  t.is(thps(h), 2);
  t.is(h.vmstat().nr_anon_pages, 511);
  t.is(h.nr_free_pages(), free0 + 1, 'the deposited PTE table becomes the live one: only the page is freed');
  t.true(mm.follow_page(a)!.huge);
  t.false(mm.follow_page(at(a + 2 * MiB))!.huge);
  t.is(mm.follow_page(at(a + 2 * MiB + 5 * PAGE_SIZE)), null);
  t.true(mm.follow_page(at(a + 4 * MiB))!.huge);
  t.is(mm.vmas.length, 2);
  h.close();
});

test('munmap of a whole aligned 2 MiB zaps the huge PMD without splitting', (t) => {
  const { h, mm, a } = withThps(2);
  const free0 = h.nr_free_pages();
  mm.munmap(at(a + 2 * MiB), 2 * MiB);
  t.is(h.vmstat().thp_split, 0);
  t.is(thps(h), 1);
  t.is(h.nr_free_pages(), free0 + 512 + 1, 'the THP and its deposited PTE table');
  h.close();
});

test('partial mprotect splits exactly one huge page and write-protects only the range', (t) => {
  const { h, mm, a } = withThps(2);
  mm.mprotect(at(a + 8 * PAGE_SIZE), PAGE_SIZE, 1);
  t.is(h.vmstat().thp_split, 1);
  t.is(thps(h), 1);
  t.false(mm.follow_page(at(a + 8 * PAGE_SIZE))!.writable);
  t.true(mm.follow_page(at(a + 9 * PAGE_SIZE))!.writable, 'split PTEs keep the PMD write bit');
  t.true(mm.follow_page(at(a + 2 * MiB))!.huge);
  t.is(mm.vmas.length, 3);
  t.throws(() => mm.writeBytes(at(a + 8 * PAGE_SIZE), new Uint8Array(1)), { message: /SIGSEGV/ });
  h.close();
});

test('mprotect of a whole aligned 2 MiB keeps the huge PMD (change_huge_pmd)', (t) => {
  const { h, mm, a } = withThps(2);
  mm.mprotect(at(a + 2 * MiB), 2 * MiB, 1);
  const m = mm.follow_page(at(a + 2 * MiB))!;
  t.true(m.huge);
  t.false(m.writable);
  t.is(h.vmstat().thp_split, 0);
  // making it writable again merges the VMAs; the PMD stays read-only until a write fault reuses it
  mm.mprotect(at(a + 2 * MiB), 2 * MiB, 3);
  t.is(mm.vmas.length, 1);
  t.false(mm.follow_page(at(a + 2 * MiB))!.writable);
  const pfn = mm.follow_page(at(a + 2 * MiB))!.pfn;
  mm.writeBytes(at(a + 2 * MiB), new Uint8Array([1]));
  t.is(mm.follow_page(at(a + 2 * MiB))!.pfn, pfn, 'mapcount 1: do_huge_pmd_wp_page reuses it');
  t.true(mm.follow_page(at(a + 2 * MiB))!.writable);
  t.is(h.vmstat().thp_fault_alloc, 2);
  h.close();
});

test('partial madvise(DONTNEED) splits exactly one huge page and zaps only the range', (t) => {
  const { h, mm, a } = withThps(2);
  mm.writeBytes(at(a + 2 * MiB + 4 * PAGE_SIZE), new Uint8Array([5]));
  const free0 = h.nr_free_pages();
  mm.madvise(at(a + 2 * MiB), 4 * PAGE_SIZE, 'MADV_DONTNEED');
  t.is(h.vmstat().thp_split, 1);
  t.is(thps(h), 1);
  t.is(h.nr_free_pages(), free0 + 4);
  t.is(mm.vmas.length, 1, 'DONTNEED does not touch VMAs');
  t.is(mm.readBytes(at(a + 2 * MiB + 4 * PAGE_SIZE), 1)[0], 5);
  t.is(mm.readBytes(at(a + 2 * MiB), 1)[0], 0, 'zapped memory reads as zero again');
  h.close();
});

test('madvise(MADV_NOHUGEPAGE) on part of a THP splits it at the VMA edge (__vma_adjust_trans_huge)', (t) => {
  const { h, mm, a } = withThps(1);
  mm.madvise(at(a + MiB), MiB, 'MADV_NOHUGEPAGE');
  t.is(h.vmstat().thp_split, 1);
  t.is(mm.vmas.length, 2);
  h.close();
});

test('data written to a THP is intact, byte for byte, after split_huge_page', (t) => {
  const { h, mm, a } = withThps(1);
  const data = pattern(2 * MiB, 7);
  mm.writeBytes(a, data);
  const head = mm.follow_page(a)!.headPfn;
  h.split_huge_page(pf(head + 77));
  t.is(h.vmstat().thp_split, 1);
  t.false(mm.follow_page(a)!.huge);
  t.is(mm.follow_page(at(a + 77 * PAGE_SIZE))!.pfn, pf(head + 77), 'PTEs point at the former tails');
  t.is(sha(mm.readBytes(a, 2 * MiB)), sha(data));
  h.close();
});

test('gup pins on tails survive the split on exactly those tails', (t) => {
  const { h, mm, a } = withThps(1);
  const pins = mm.get_user_pages(at(a + 5 * PAGE_SIZE), 2, true);
  const head = mm.follow_page(a)!.headPfn;
  t.deepEqual(pins, [pf(head + 5), pf(head + 6)]);
  t.is(h.pages._count[head], 3, 'one for the PMD, one per tail pin');
  t.is(h.pages._count[head + 5], 1);
  h.split_huge_page(head);
  t.is(h.pages._count[head], 1);
  t.is(h.pages._count[head + 5], 2, 'pin + mapping');
  t.is(h.pages._count[head + 6], 2);
  t.is(h.pages._count[head + 7], 1);
  const free0 = h.nr_free_pages();
  mm.munmap(a, 2 * MiB);
  t.is(h.nr_free_pages(), free0 + 510 + 3, 'all but the two pinned pages, plus the PTE, PMD and PUD tables (the VMA is gone)');
  t.is(h.pages._count[head + 5], 1);
  for (const p of pins) h.put_page(p);
  t.is(h.nr_free_pages(), free0 + 512 + 3);
  h.close();
});

test('a split of a THP mapped by parent and child converts both mappings', (t) => {
  const { h, mm, a } = withThps(1);
  mm.writeBytes(a, pattern(8192, 3));
  const child = mm.fork() as MmStruct;
  const head = mm.follow_page(a)!.headPfn;
  t.is(h.pages.page_mapcount(head), 2);
  child.munmap(at(a + PAGE_SIZE), PAGE_SIZE); // split_huge_page_pmd in the child splits the page everywhere
  t.is(h.vmstat().thp_split, 1);
  t.false(mm.follow_page(a)!.huge);
  t.false(child.follow_page(a)!.huge);
  t.is(h.pages.page_mapcount(pf(head + 1)), 1);
  t.is(h.pages.page_mapcount(pf(head + 2)), 2);
  t.false(mm.follow_page(a)!.writable, 'the write-protected PMD gives write-protected PTEs');
  t.is(sha(child.readBytes(a, 4096)), sha(pattern(8192, 3).subarray(0, 4096)));
  h.close();
});

test('split_huge_page marks the PMD splitting and notifies secondary MMUs in pass 1', (t) => {
  const { h, mm, a } = withThps(1);
  const seen: string[] = [];
  const pmd = mm.pgd.pmd_table(a)!;
  const i = pmd_index(a);
  mm.mmu_notifier_register({
    invalidate_range_start: (_m, s, e) => seen.push(`start ${s - a} ${e - a} splitting=${pmd.pmd_trans_splitting(i)}`),
    invalidate_range_end: (_m, s, e) => seen.push(`end ${s - a} ${e - a} huge=${pmd.pmd_trans_huge(i)} splitting=${pmd.pmd_trans_splitting(i)}`),
  });
  h.split_huge_page(mm.follow_page(a)!.headPfn);
  t.deepEqual(seen, [`start 0 ${2 * MiB} splitting=false`, `end 0 ${2 * MiB} huge=true splitting=true`]);
  t.false(pmd.pmd_trans_huge(i));
  t.is(mm.mmu_notifier_seq, 1);
  t.is(mm.mmu_notifier_count, 0);
  h.close();
});

