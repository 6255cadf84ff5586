/**
 * Tearing down and copying page-table ranges (mm/memory.c unmap_vmas/zap_pmd_range,
 * copy_page_range; mm/huge_memory.c zap_huge_pmd, copy_huge_pmd).
 *
 * zap: a huge PMD wholly inside the range is zapped as one (its deposited PTE table is
 * withdrawn and freed); one only partly inside is split first (split_huge_page_pmd),
 * then its PTEs in range are zapped. Secondary MMUs are told around the whole range.
 */
import type { Hva } from '../util/address.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE } from '../util/address.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import { _PAGE_ACCESSED, _PAGE_RW, _PAGE_SPECIAL, pmd_addr_end, pmd_index, pte_index, type PmdTable } from './pgtable.ts';
import { get_page, put_page } from './refcount.ts';
import { page_dup_rmap, page_remove_rmap } from './rmap.ts';
import { split_huge_page_pmd } from './split.ts';
import type { Vma } from './vma.ts';

/** zap_huge_pmd: unmap a whole huge PMD; the mapping's page reference goes with it. */
export function zap_huge_pmd(mm: MmStruct, pmd: PmdTable, i: number): void {
  const host = mm.host;
  const head = pmd.pmd_page(i);
  mm.pgd.pte_free(mm.get_pmd_huge_pte());
  pmd.pmd_clear(i);
  page_remove_rmap(host.pages, host.stat, head);
  put_page(host.pages, head);
}

/** zap_page_range: unmap [start, end) of `mm` (VMAs are not touched). */
export function zap_page_range(mm: MmStruct, start: Hva, end: Hva): void {
  const host = mm.host;
  const pages = host.pages;
  mmu_notifier_invalidate_range_start(mm, start, end);
  for (let a = start; a < end; ) {
    const next = pmd_addr_end(a, end);
    const pmd = mm.pgd.pmd_table(a);
    if (!pmd) {
      a = next;
      continue;
    }
    const i = pmd_index(a);
    if (pmd.pmd_trans_huge(i)) {
      if (next - a !== HPAGE_PMD_SIZE) split_huge_page_pmd(mm, a);
      else {
        zap_huge_pmd(mm, pmd, i);
        a = next;
        continue;
      }
    }
    const t = pmd.pte[i];
    if (t) {
      for (let p: number = a; p < next; p += PAGE_SIZE) {
        const j = pte_index(p);
        const bits = t.bits[j];
        if (bits === 0) continue;
        if (t.is_swap_pte(j)) {
          host.swap.free_swap_and_cache(t.pfn[j]);
        } else if (!(bits & _PAGE_SPECIAL)) {
          const pfn = t.pte_pfn(j);
          page_remove_rmap(pages, host.stat, pfn);
          put_page(pages, pfn);
        }
        t.pte_clear(j);
      }
    }
    a = next;
  }
  mmu_notifier_invalidate_range_end(mm, start, end);
}

/**
 * copy_page_range for one VMA at fork: every anonymous page becomes shared copy-on-write
 * (both sides write-protected, child entries old), huge PMDs included (copy_huge_pmd,
 * with a fresh PTE table deposited in the child).
 */
export function copy_page_range(dst: MmStruct, src: MmStruct, dvma: Vma, svma: Vma): void {
  const host = src.host;
  const pages = host.pages;
  for (let a = svma.start; a < svma.end; ) {
    const next = pmd_addr_end(a, svma.end);
    const spmd = src.pgd.pmd_table(a);
    if (!spmd) {
      a = next;
      continue;
    }
    const i = pmd_index(a);
    if (spmd.pmd_trans_huge(i)) {
      // copy_huge_pmd: allocate first (direct reclaim may split the THP meanwhile), then
      // re-check the source PMD; if it is no longer huge, copy its PTEs below instead.
      const pgtable = dst.pgd.pte_alloc_one();
      const dpmd = dst.pgd.pmd_alloc(a);
      if (spmd.pmd_trans_huge(i)) {
        const head = spmd.pmd_page(i);
        get_page(pages, head);
        page_dup_rmap(pages, head);
        spmd.hbits[i] &= ~_PAGE_RW; // pmdp_set_wrprotect
        dpmd.set_pmd_huge(i, head, spmd.hbits[i] & ~_PAGE_ACCESSED); // pmd_mkold(pmd_wrprotect)
        dst.prepare_pmd_huge_pte(pgtable);
        a = next;
        continue;
      }
      dst.pgd.pte_free(pgtable);
    }
    const st = spmd.pte[i];
    if (st) {
      let dt = null;
      for (let p: number = a; p < next; p += PAGE_SIZE) {
        const j = pte_index(p);
        const bits = st.bits[j];
        if (bits === 0) continue;
        if (!dt) {
          // Allocating may run direct reclaim, which may change this very source PTE:
          // re-read it after.
          const dpmd = dst.pgd.pmd_alloc(a);
          dt = dpmd.pte[i] ?? dst.pgd.pte_alloc_one();
          dpmd.pmd_populate(i, dt);
          if (st.bits[j] !== bits) {
            p -= PAGE_SIZE;
            continue;
          }
        }
        if (st.is_swap_pte(j)) {
          host.swap.swap_duplicate(st.pfn[j]);
          dt.set_pte(j, st.pfn[j], bits);
          continue;
        }
        if (!(bits & _PAGE_SPECIAL)) {
          const pfn = st.pte_pfn(j);
          get_page(pages, pfn);
          page_dup_rmap(pages, pfn);
        }
        st.bits[j] &= ~_PAGE_RW; // ptep_set_wrprotect (is_cow_mapping)
        dt.set_pte(j, st.pfn[j], st.bits[j] & ~_PAGE_ACCESSED); // pte_mkold
      }
    }
    a = next;
  }
}
