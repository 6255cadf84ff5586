/**
 * Tearing down and copying page-table ranges (mm/memory.c unmap_vmas/zap_pmd_range,
 * copy_page_range; mm/huge_memory.c zap_huge_pmd, copy_huge_pmd).
 *
 * zap: a huge PMD wholly inside the range is zapped as one (its deposited PTE table is
 * withdrawn and freed); one only partly inside is split first (split_huge_page_pmd),
 * then its PTEs in range are zapped. Secondary MMUs are told around the whole range.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE } from '../util/address.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import { _PAGE_ACCESSED, _PAGE_RW, _PAGE_SPECIAL, pmd_addr_end, pmd_index, pte_index, type PmdTable } from './pgtable.ts';
import type { Vma } from './vma.ts';

/** zap_huge_pmd: unmap a whole huge PMD; the mapping's page reference goes with it (the host's policy). */
export function zap_huge_pmd(mm: MmStruct, pmd: PmdTable, i: number): void {
  mm.host.policy.zap_huge_pmd(mm, pmd, i);
}

/** zap_page_range: unmap [start, end) of `mm` (VMAs are not touched). */
export function zap_page_range(mm: MmStruct, start: Hva, end: Hva): void {
  const host = mm.host;
  const policy = host.policy;
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
      if (next - a !== HPAGE_PMD_SIZE) policy.split_huge_pmd(mm, a); // 2.6.38: split_huge_page_pmd; 6.x: split_huge_pmd
      else {
        zap_huge_pmd(mm, pmd, i);
        a = next;
        continue;
      }
    }
    const t = pmd.pte[i];
    if (t) {
      // zap_pte_range: the rmap of the pages unmapped here goes as one batch, then their
      // references (the mmu_gather's free_pages_and_swap_cache).
      const unmapped: Pfn[] = [];
      for (let p: number = a; p < next; p += PAGE_SIZE) {
        const j = pte_index(p);
        const bits = t.bits[j];
        if (bits === 0) continue;
        if (t.is_swap_pte(j)) {
          host.swap.free_swap_and_cache(t.pfn[j]);
        } else if (!(bits & _PAGE_SPECIAL)) {
          unmapped.push(t.pte_pfn(j));
        }
        t.pte_clear(j);
      }
      policy.remove_rmap_ptes(unmapped);
      for (const pfn of unmapped) policy.put_page(pfn);
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
  const policy = host.policy;
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
        policy.copy_huge_pmd(dst, spmd, dpmd, i, pgtable);
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
          policy.get_page(pfn);
          policy.dup_rmap_pte(pfn);
        }
        st.bits[j] &= ~_PAGE_RW; // ptep_set_wrprotect (is_cow_mapping)
        dt.set_pte(j, st.pfn[j], st.bits[j] & ~_PAGE_ACCESSED); // pte_mkold
      }
    }
    a = next;
  }
}
