/**
 * split_huge_page (mm/huge_memory.c, 2.6.38): turn a THP into 512 regular pages while
 * every mapping of it stays valid, under the anon_vma lock, in three rmap passes:
 *   1. __split_huge_page_splitting: mark every huge PMD mapping it splitting and notify
 *      secondary MMUs (pmdp_splitting_flush_notify); the PMD stays huge, so gup and
 *      faults wait instead of seeing a half-split page;
 *   2. __split_huge_page_refcount (refcount.ts) under compound_lock;
 *   3. __split_huge_page_map: fill the PTE table deposited for that PMD with 512 PTEs
 *      carrying the PMD's write and young bits (all dirty), then install it.
 * Never fails for a mapped THP. split_huge_page_pmd is what code that cannot handle a
 * huge PMD calls (it splits the page, hence every mapping of it in every mm).
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE, alignDown, hvaAdd } from '../util/address.ts';
import type { Host } from './host.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_SPLITTING, pmd_index, type PmdTable } from './pgtable.ts';
import { __split_huge_page_refcount, get_page, KernelBug, put_page } from './refcount.ts';
import { rmap_walk } from './rmap.ts';

interface HugeMapping {
  mm: MmStruct;
  haddr: Hva;
  pmd: PmdTable;
  i: number;
}

/** page_check_address_pmd: the huge PMD of `mm` at `haddr` if it maps `head`. */
function page_check_address_pmd(mm: MmStruct, head: Pfn, haddr: Hva): HugeMapping | null {
  const pmd = mm.pgd.pmd_table(haddr);
  if (!pmd) return null;
  const i = pmd_index(haddr);
  return pmd.huge[i] === head ? { mm, haddr, pmd, i } : null;
}

/**
 * split_huge_page: split the THP whose head is `head`. The caller holds a reference on it.
 * Returns false (as the kernel's non-zero return) only when the page is not mapped
 * anywhere, so no anon_vma can be locked.
 */
export function split_huge_page(host: Host, head: Pfn): boolean {
  const pages = host.pages;
  if (!pages.PageHead(head)) throw new KernelBug(`split_huge_page on non-head ${head}`);
  if (pages.page_mapcount(head) === 0) return false; // page_lock_anon_vma fails: !page_mapped
  const found: HugeMapping[] = [];
  for (const { vma, addr } of rmap_walk(host.anon, pages, head)) {
    const m = page_check_address_pmd(vma.mm, head, alignDown(addr, HPAGE_PMD_SIZE));
    if (m && !found.some((f) => f.mm === m.mm && f.haddr === m.haddr)) found.push(m);
  }
  // Pass 1: __split_huge_page_splitting
  for (const m of found) {
    const s = m.haddr;
    const e = hvaAdd(m.haddr, HPAGE_PMD_SIZE);
    mmu_notifier_invalidate_range_start(m.mm, s, e);
    m.pmd.hbits[m.i] |= _PAGE_SPLITTING;
    mmu_notifier_invalidate_range_end(m.mm, s, e);
  }
  if (found.length !== pages.page_mapcount(head)) {
    throw new KernelBug(`split_huge_page: found ${found.length} huge PMDs but mapcount is ${pages.page_mapcount(head)}`);
  }
  // Pass 2: the zone counters move with the refcounts (NR_ANON_TRANSPARENT_HUGEPAGES → NR_ANON_PAGES).
  host.stat.nr_anon_transparent_hugepages--;
  host.stat.nr_anon_pages += HPAGE_PMD_NR;
  __split_huge_page_refcount(pages, head);
  // Pass 3: __split_huge_page_map
  for (const m of found) __split_huge_page_map(m, head);
  host.stat.count_vm_event('thp_split');
  return true;
}

function __split_huge_page_map(m: HugeMapping, head: Pfn): void {
  const hb = m.pmd.hbits[m.i];
  const pgtable = m.mm.get_pmd_huge_pte();
  const bits = _PAGE_PRESENT | _PAGE_DIRTY | (hb & _PAGE_RW) | (hb & _PAGE_ACCESSED);
  for (let k = 0; k < HPAGE_PMD_NR; k++) pgtable.set_pte(k, head + k, bits);
  m.pmd.pmd_populate(m.i, pgtable);
}

/** split_huge_page_pmd: if `addr`'s PMD in `mm` is huge, split the page it maps. */
export function split_huge_page_pmd(mm: MmStruct, addr: Hva): void {
  const pmd = mm.pgd.pmd_table(addr);
  if (!pmd) return;
  const i = pmd_index(addr);
  if (!pmd.pmd_trans_huge(i)) return;
  const host = mm.host;
  const head = pmd.pmd_page(i);
  get_page(host.pages, head);
  split_huge_page(host, head);
  put_page(host.pages, head);
  if (pmd.pmd_trans_huge(i)) throw new KernelBug(`split_huge_page_pmd left 0x${addr.toString(16)} huge`);
}

/** split_huge_page_address (__vma_adjust_trans_huge): a VMA edge lands inside this PMD. */
export function split_huge_page_address(mm: MmStruct, addr: Hva): void {
  split_huge_page_pmd(mm, alignDown(addr, HPAGE_PMD_SIZE));
}

