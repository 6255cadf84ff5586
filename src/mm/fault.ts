/**
 * The anonymous page-fault path (mm/memory.c handle_mm_fault, handle_pte_fault,
 * do_anonymous_page, do_wp_page; mm/huge_memory.c do_huge_pmd_anonymous_page,
 * do_huge_pmd_wp_page, do_huge_pmd_wp_page_fallback), Linux 2.6.38.
 *
 * THP at fault time: an empty PMD, a VMA for which transparent_hugepage_enabled() holds,
 * and the 2 MiB aligned range around the address wholly inside the VMA → allocate an
 * order-9 page, clear_huge_page, map it with a huge PMD (writable even on a read fault:
 * 2.6.38 has no huge zero page), deposit a PTE table for a later split. Allocation failure
 * → thp_fault_fallback and the 4 KiB path, where a read fault maps the zero page.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE, alignDown, hvaAdd, pfnAdd } from '../util/address.ts';
import { OutOfMemoryError } from '../util/errors.ts';
import { SegvError } from './errors.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_SPECIAL,
  pmd_index,
  pte_index,
  type PmdTable,
  type PteTable,
} from './pgtable.ts';
import { get_page, put_page } from './refcount.ts';
import { anon_vma_prepare, page_add_new_anon_rmap, page_remove_rmap } from './rmap.ts';
// The 2.6.38 huge wp path below (do_huge_pmd_wp_page) uses refcount.ts / rmap.ts directly: it is
// Policy2638's rule. Paths both kernels share go through host.policy.
import { alloc_anon_folio, thp_vma_allowable_orders } from './mthp.ts';
import type { ThpKnobs } from './types.ts';
import { VM_EXEC, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_WRITE, type Vma } from './vma.ts';

/** transparent_hugepage_enabled(vma) as in 2.6.38 include/linux/huge_mm.h. */
export function transparent_hugepage_enabled(k: ThpKnobs, vma: Vma): boolean {
  if (vma.flags & VM_NOHUGEPAGE) return false;
  return k.enabled === 'always' || (k.enabled === 'madvise' && (vma.flags & VM_HUGEPAGE) !== 0);
}

/**
 * May a fault on an empty PMD try a PMD-sized THP? 2.6.38: transparent_hugepage_enabled;
 * 6.x: thp_vma_allowable_order(PMD_ORDER), i.e. hugepages-2048kB/enabled (inherit by default).
 */
function pmd_thp_allowed(kernel: '2.6.38' | '6.x', k: ThpKnobs, vma: Vma): boolean {
  return kernel === '6.x' ? thp_vma_allowable_orders(k, vma, 1 << HPAGE_PMD_ORDER) !== 0 : transparent_hugepage_enabled(k, vma);
}

/** transparent_hugepage_defrag(vma): may the huge allocation stall to compact/reclaim? */
export function transparent_hugepage_defrag(k: ThpKnobs, vma: Vma): boolean {
  return k.defrag === 'always' || (k.defrag === 'madvise' && (vma.flags & VM_HUGEPAGE) !== 0);
}

const HPAGE_PMD_ORDER = 9;

/** maybe_mkwrite: the write bit only when the VMA allows writes. */
const maybe_mkwrite = (bits: number, vma: Vma) => (vma.flags & VM_WRITE ? bits | _PAGE_RW : bits);

/** handle_mm_fault: a user access at `addr` (write or read) that the page tables did not satisfy. */
export function handle_mm_fault(mm: MmStruct, addr: Hva, write: boolean): void {
  const host = mm.host;
  host.stat.count_vm_event('pgfault');
  const vma = mm.vmaAt(addr);
  if (!vma) throw new SegvError(addr, 'no VMA maps the address');
  if (write ? !(vma.flags & VM_WRITE) : !(vma.flags & (VM_READ | VM_WRITE | VM_EXEC))) {
    throw new SegvError(addr, `${write ? 'write' : 'read'} not permitted by the VMA's protection`);
  }
  const pmd = mm.pgd.pmd_alloc(addr);
  const i = pmd_index(addr);
  if (pmd.pmd_none(i) && pmd_thp_allowed(host.policy.kernel, host.knobs, vma)) {
    do_huge_pmd_anonymous_page(mm, vma, addr, pmd, i, write);
    return;
  }
  if (pmd.pmd_trans_huge(i)) {
    if (write && !pmd.pmd_write(i) && !pmd.pmd_trans_splitting(i)) {
      host.policy.huge_pmd_wp_fault(mm, vma, addr, pmd, i); // do_huge_pmd_wp_page
      return;
    }
    // Nothing to do (2.6.38 returns 0): the access retries and sets the A/D bits.
    pmd.hbits[i] |= _PAGE_ACCESSED | (write && pmd.pmd_write(i) ? _PAGE_DIRTY : 0);
    return;
  }
  handle_pte_fault(mm, vma, addr, pmd, i, write);
}

/** __pte_alloc + handle_pte_fault. */
export function handle_pte_fault(mm: MmStruct, vma: Vma, addr: Hva, pmd: PmdTable, i: number, write: boolean): void {
  let t = pmd.pte[i];
  if (!t) {
    t = mm.pgd.pte_alloc_one();
    pmd.pmd_populate(i, t);
  }
  const j = pte_index(addr);
  if (t.pte_none(j)) {
    do_anonymous_page(mm, vma, addr, t, j, write);
    return;
  }
  if (t.is_swap_pte(j)) {
    mm.host.swap.do_swap_page(mm, vma, addr, t, j, write); // swap.ts
    return;
  }
  if (write && !t.pte_write(j)) {
    do_wp_page(mm, vma, addr, t, j);
    return;
  }
  t.bits[j] |= _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
}

/** do_anonymous_page: first touch of a 4 KiB page; a read maps the shared zero page. */
function do_anonymous_page(mm: MmStruct, vma: Vma, addr: Hva, t: PteTable, j: number, write: boolean): void {
  const host = mm.host;
  if (!write) {
    t.set_pte(j, host.zero_pfn, _PAGE_PRESENT | _PAGE_SPECIAL | _PAGE_ACCESSED);
    return;
  }
  anon_vma_prepare(host.anon, vma);
  if (host.policy.kernel === '6.x') {
    // alloc_anon_folio: a PTE-mapped large folio of the highest allowed order (mthp.ts),
    // with vma_thp_gfp_mask's reclaim rule (defrag) as the PMD fault
    const defrag = transparent_hugepage_defrag(host.knobs, vma);
    const large = alloc_anon_folio(host, vma, addr, t, (order) => host.alloc_hugepage(defrag, order));
    if (large) {
      map_anon_folio_ptes(mm, vma, addr, t, large.folio, large.order);
      return;
    }
  }
  const page = host.alloc_page();
  host.physmem.zeroFrames(page); // alloc_zeroed_user_highpage_movable
  host.policy.add_new_anon_rmap_pte(page, vma, alignDown(addr, PAGE_SIZE));
  t.set_pte(j, page, maybe_mkwrite(_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY, vma));
}

/**
 * do_anonymous_page with a large folio (6.x mTHP): zero it (folio_zero_user), one folio
 * reference per PTE (folio_ref_add(nr − 1) beside the allocation's), anon_fault_alloc for
 * its order, folio_add_new_anon_rmap, then set_ptes over its naturally aligned range.
 */
function map_anon_folio_ptes(mm: MmStruct, vma: Vma, addr: Hva, t: PteTable, folio: Pfn, order: number): void {
  const host = mm.host;
  const nr = 1 << order;
  const start = alignDown(addr, PAGE_SIZE << order);
  host.physmem.zeroFrames(folio, nr);
  Atomics.add(host.pages._count, folio, nr - 1); // folio_ref_add
  host.stat.mthp.count_mthp_stat(order, 'anon_fault_alloc');
  host.policy.add_new_anon_rmap_ptes(folio, vma, start);
  const j0 = pte_index(start);
  const bits = maybe_mkwrite(_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY, vma);
  for (let k = 0; k < nr; k++) t.set_pte(j0 + k, pfnAdd(folio, k), bits);
}

/** do_huge_pmd_anonymous_page: try a THP; on an ineligible range or a failed allocation, the 4 KiB path. */
export function do_huge_pmd_anonymous_page(mm: MmStruct, vma: Vma, addr: Hva, pmd: PmdTable, i: number, write: boolean): void {
  const host = mm.host;
  const haddr = alignDown(addr, HPAGE_PMD_SIZE);
  if (haddr >= vma.start && haddr + HPAGE_PMD_SIZE <= vma.end) {
    anon_vma_prepare(host.anon, vma);
    host.khugepaged.khugepaged_enter(mm, vma);
    if (!write && host.policy.huge_pmd_read_fault(mm, vma, haddr, pmd, i)) return; // 6.x: the huge zero page
    const page = host.alloc_hugepage(transparent_hugepage_defrag(host.knobs, vma));
    if (page === null) {
      host.stat.count_vm_event('thp_fault_fallback');
      host.stat.mthp.count_mthp_stat(HPAGE_PMD_ORDER, 'anon_fault_fallback'); // 6.x: hugepages-2048kB/stats
    } else {
      host.stat.count_vm_event('thp_fault_alloc'); // counted at allocation, as the kernel does
      host.stat.mthp.count_mthp_stat(HPAGE_PMD_ORDER, 'anon_fault_alloc');
      // __do_huge_pmd_anonymous_page
      let pgtable: PteTable;
      try {
        pgtable = mm.pgd.pte_alloc_one();
      } catch (e) {
        host.policy.put_page(page);
        throw e;
      }
      host.physmem.zeroFrames(page, HPAGE_PMD_NR); // clear_huge_page
      host.policy.add_new_anon_rmap_pmd(page, vma, haddr);
      pmd.set_pmd_huge(i, page, maybe_mkwrite(_PAGE_ACCESSED | _PAGE_DIRTY, vma));
      mm.prepare_pmd_huge_pte(pgtable);
      return;
    }
  }
  handle_pte_fault(mm, vma, addr, pmd, i, write);
}

/**
 * do_huge_pmd_wp_page: write to a write-protected huge PMD (after fork). Reuse when this
 * is the only mapping; else copy into a new huge page (only if THP is still enabled for
 * the VMA); if that allocation fails, do_huge_pmd_wp_page_fallback copies into 512 small
 * pages. The original THP is never split here.
 */
export function do_huge_pmd_wp_page(mm: MmStruct, vma: Vma, addr: Hva, pmd: PmdTable, i: number): void {
  const host = mm.host;
  const pages = host.pages;
  const page = pmd.pmd_page(i);
  const haddr = alignDown(addr, HPAGE_PMD_SIZE);
  if (pages.page_mapcount(page) === 1) {
    pmd.hbits[i] = maybe_mkwrite(pmd.hbits[i] | _PAGE_ACCESSED | _PAGE_DIRTY, vma);
    return;
  }
  get_page(pages, page);
  const new_page = transparent_hugepage_enabled(host.knobs, vma)
    ? host.alloc_hugepage(transparent_hugepage_defrag(host.knobs, vma))
    : null;
  if (new_page === null) {
    host.stat.count_vm_event('thp_fault_fallback');
    try {
      do_huge_pmd_wp_page_fallback(mm, vma, haddr, pmd, i, page);
    } finally {
      put_page(pages, page);
    }
    return;
  }
  host.stat.count_vm_event('thp_fault_alloc');
  host.physmem.copyFrames(new_page, page, HPAGE_PMD_NR); // copy_user_huge_page
  // pmdp_clear_flush_notify
  mmu_notifier_invalidate_range_start(mm, haddr, hvaAdd(haddr, HPAGE_PMD_SIZE));
  pmd.pmd_clear(i);
  mmu_notifier_invalidate_range_end(mm, haddr, hvaAdd(haddr, HPAGE_PMD_SIZE));
  page_add_new_anon_rmap(pages, host.stat, new_page, vma, haddr);
  pmd.set_pmd_huge(i, new_page, maybe_mkwrite(_PAGE_ACCESSED | _PAGE_DIRTY, vma));
  page_remove_rmap(pages, host.stat, page);
  put_page(pages, page); // the old mapping's reference
  put_page(pages, page); // ours
}

/** do_huge_pmd_wp_page_fallback: copy the THP into 512 new 4 KiB pages mapped through the deposited PTE table. */
function do_huge_pmd_wp_page_fallback(mm: MmStruct, vma: Vma, haddr: Hva, pmd: PmdTable, i: number, page: Pfn): void {
  const host = mm.host;
  const pages = host.pages;
  const orig = pmd.hbits[i];
  const copies: Pfn[] = [];
  try {
    for (let k = 0; k < HPAGE_PMD_NR; k++) {
      const np = host.alloc_page();
      copies.push(np);
      host.physmem.copyFrames(np, pfnAdd(page, k)); // copy_user_highpage
    }
  } catch (e) {
    for (const np of copies) put_page(pages, np);
    if (e instanceof OutOfMemoryError) throw new OutOfMemoryError(`do_huge_pmd_wp_page_fallback: ${e.message}`);
    throw e;
  }
  // Direct reclaim inside alloc_page may have split or unmapped the THP: pmd_same.
  if (pmd.huge[i] !== page || pmd.hbits[i] !== orig) {
    for (const np of copies) put_page(pages, np);
    return;
  }
  mmu_notifier_invalidate_range_start(mm, haddr, hvaAdd(haddr, HPAGE_PMD_SIZE));
  pmd.pmd_clear(i);
  const pgtable = mm.get_pmd_huge_pte();
  for (let k = 0; k < HPAGE_PMD_NR; k++) {
    page_add_new_anon_rmap(pages, host.stat, copies[k], vma, hvaAdd(haddr, k * PAGE_SIZE));
    pgtable.set_pte(k, copies[k], maybe_mkwrite(_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY, vma));
  }
  pmd.pmd_populate(i, pgtable);
  page_remove_rmap(pages, host.stat, page);
  mmu_notifier_invalidate_range_end(mm, haddr, hvaAdd(haddr, HPAGE_PMD_SIZE));
  put_page(pages, page); // the old mapping's reference
}

/**
 * do_wp_page: write to a write-protected 4 KiB PTE. The zero page is replaced by a new
 * zeroed page; an anonymous page mapped once is reused (reuse_swap_page); otherwise it
 * is copied and the old mapping dropped.
 */
function do_wp_page(mm: MmStruct, vma: Vma, addr: Hva, t: PteTable, j: number): void {
  const host = mm.host;
  const pages = host.pages;
  const bits = t.bits[j];
  const old = t.pte_pfn(j);
  const special = (bits & _PAGE_SPECIAL) !== 0;
  if (!special) {
    if (host.policy.wp_can_reuse(mm, old)) {
      t.bits[j] = maybe_mkwrite(bits | _PAGE_ACCESSED | _PAGE_DIRTY, vma);
      return;
    }
  }
  anon_vma_prepare(host.anon, vma);
  // Pin the old page across the allocation: direct reclaim may run inside alloc_page
  // and unmap it; then the PTE changed and the fault is simply retried (pte_same).
  if (!special) host.policy.get_page(old);
  let page: Pfn;
  try {
    page = host.alloc_page();
  } catch (e) {
    if (!special) host.policy.put_page(old);
    throw e;
  }
  if (t.pfn[j] !== old || t.bits[j] !== bits) {
    host.policy.put_page(page);
    if (!special) host.policy.put_page(old);
    return;
  }
  if (special) host.physmem.zeroFrames(page);
  else host.physmem.copyFrames(page, old);
  const a = alignDown(addr, PAGE_SIZE);
  mmu_notifier_invalidate_range_start(mm, a, hvaAdd(a, PAGE_SIZE)); // ptep_clear_flush_notify
  t.pte_clear(j);
  mmu_notifier_invalidate_range_end(mm, a, hvaAdd(a, PAGE_SIZE));
  host.policy.add_new_anon_rmap_pte(page, vma, a);
  t.set_pte(j, page, maybe_mkwrite(_PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY, vma));
  if (!special) {
    host.policy.remove_rmap_pte(old);
    host.policy.put_page(old); // the old mapping's reference
    host.policy.put_page(old); // ours
  }
}
