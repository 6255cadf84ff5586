/**
 * The host's THP policy: every rule where Linux 2.6.38 and Linux 6.18 differ, once per
 * kernel, behind one interface. The Host picks the implementation at construction from
 * HostConfig.kernel (host.policy); the fault, zap, fork, munmap/mprotect, gup, reclaim and
 * khugepaged paths call it where the kernels part ways and share everything else.
 *
 *   rule                         2.6.38 (Policy2638, this file)       6.x (FolioPolicy, policy-6x.ts)
 *   references                   get_page/put_page, tail counts,      folio_get/folio_put: one count
 *                                compound_lock (refcount.ts)          per folio (folio.ts)
 *   mapcounts                    head _mapcount = PMD maps            _entire/_large/per-page (folio.ts)
 *   a THP range partly unmapped  split_huge_page (split.ts)           split_huge_pmd + deferred split
 *   read fault on a THP range    a THP (no huge zero page)            the huge zero folio (use_zero_page)
 *   write to a shared huge PMD   copy the THP (do_huge_pmd_wp_page)   split the PMD, COW 4 KiB
 *   reclaim of a THP             split_huge_page                      split_folio
 *   memory pressure              —                                    deferred_split_scan shrinker
 *   khugepaged PTE rules         all present+writable, no zero page   max_ptes_none/swap/shared
 */
import type { Hva, Pfn } from '../util/address.ts';
import { do_huge_pmd_wp_page } from './fault.ts';
import type { Host } from './host.ts';
import type { MmStruct } from './mm.ts';
import { PG_anon, PG_locked, PG_lru, PG_referenced } from './page.ts';
import { _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW, _PAGE_SPECIAL, type PmdTable, type PteTable } from './pgtable.ts';
import { get_page, KernelBug, prep_compound_page, put_page } from './refcount.ts';
import { page_add_anon_rmap, page_add_new_anon_rmap, page_dup_rmap, page_remove_rmap } from './rmap.ts';
import { split_huge_page, split_huge_page_pmd } from './split.ts';
import type { Kernel } from './types.ts';
import type { Vma } from './vma.ts';
import { HPAGE_PMD_NR } from '../util/address.ts';
import { check_2638 } from './invariants.ts';

/** What khugepaged's PTE scan decided (hpage_collapse_scan_pmd / khugepaged_scan_pmd). */
export interface CollapseScan {
  ok: boolean;
}

export interface ThpPolicy {
  readonly kernel: Kernel;
  // references
  get_page(pfn: Pfn): void;
  put_page(pfn: Pfn): void;
  /** References held on `pfn` that put_page may drop (HostApi.put_page's check). */
  page_refs(pfn: Pfn): number;
  /** A fresh compound block from the buddy made a THP / large folio of `order`. */
  prep_thp(head: Pfn, order: number): void;
  // rmap
  add_new_anon_rmap_pte(pfn: Pfn, vma: Vma, addr: Hva): void;
  add_new_anon_rmap_pmd(head: Pfn, vma: Vma, haddr: Hva): void;
  /** A new large folio mapped whole by PTEs at `addr` (6.x mTHP; 2.6.38 has none). */
  add_new_anon_rmap_ptes(head: Pfn, vma: Vma, addr: Hva): void;
  /** Map an existing page once more by a PTE (swap-in; rmap key set on first mapping). */
  add_anon_rmap_pte(pfn: Pfn, vma?: Vma, addr?: Hva): void;
  dup_rmap_pte(pfn: Pfn): void;
  dup_rmap_pmd(head: Pfn): void;
  remove_rmap_pte(pfn: Pfn): void;
  /** A batch of PTEs of one range unmapped together (6.x: folio_remove_rmap_ptes per folio). */
  remove_rmap_ptes(pfns: readonly Pfn[]): void;
  remove_rmap_pmd(head: Pfn): void;
  /** May a write fault on this write-protected page reuse it instead of copying? */
  wp_can_reuse(mm: MmStruct, pfn: Pfn): boolean;
  /** mprotect adding PROT_WRITE: may the PTE/PMD mapping `pfn` be made writable at once? */
  can_change_writable(pfn: Pfn): boolean;
  // huge PMDs
  /** A range operation covers only part of the huge PMD at `addr`: make it PTEs. */
  split_huge_pmd(mm: MmStruct, addr: Hva): void;
  /** Read fault on an empty, THP-eligible PMD: true when handled without a THP (huge zero page). */
  huge_pmd_read_fault(mm: MmStruct, vma: Vma, haddr: Hva, pmd: PmdTable, i: number): boolean;
  /** Write fault on a write-protected huge PMD. */
  huge_pmd_wp_fault(mm: MmStruct, vma: Vma, addr: Hva, pmd: PmdTable, i: number): void;
  is_huge_zero_pmd(pmd: PmdTable, i: number): boolean;
  /** zap_huge_pmd: unmap one whole huge PMD. */
  zap_huge_pmd(mm: MmStruct, pmd: PmdTable, i: number): void;
  /** copy_huge_pmd: fork shares a huge PMD (the child's table `pgtable` deposited). */
  copy_huge_pmd(dst: MmStruct, spmd: PmdTable, dpmd: PmdTable, i: number, pgtable: PteTable): void;
  /** Is the THP / large folio with this head mapped anywhere? */
  thp_mapped(head: Pfn): boolean;
  /** Reclaim met a THP head: split it so its pages can be swapped. */
  reclaim_split(head: Pfn): void;
  /** HostApi.split_huge_page */
  split_huge_page(head: Pfn): void;
  /** shrink_slab: the THP shrinkers (deferred split, huge zero page); returns frames freed. */
  shrink_slab(): number;
  // khugepaged
  /** khugepaged's PTE rules for the 2 MiB range mapped by `t`; `young` null at isolation. */
  collapse_scan(mm: MmStruct, addr: Hva, t: PteTable, young: ((j: number) => boolean) | null): boolean;
  /** khugepaged: read back the swap PTEs of a range about to collapse (6.x; 2.6.38 refuses them). */
  collapse_swapin(mm: MmStruct, vma: Vma, addr: Hva, t: PteTable): void;
  /** exit_mmap: what the mm holds besides its page tables. */
  exit_mm(mm: MmStruct): void;
  close(): void;
  /** The policy's invariants (invariants.ts calls it). */
  checkInvariants(maps: Int32Array, pmdMaps: Int32Array, free: Uint8Array): void;
  /** /proc/meminfo AnonPages in pages. */
  anonPages(): number;
}

/**
 * Linux 2.6.38: the functions of refcount.ts, rmap.ts, split.ts and fault.ts as they are.
 */
export class Policy2638 implements ThpPolicy {
  readonly kernel = '2.6.38' as const;
  constructor(private readonly host: Host) {}

  get_page(pfn: Pfn): void {
    get_page(this.host.pages, pfn);
  }
  put_page(pfn: Pfn): void {
    put_page(this.host.pages, pfn);
  }
  page_refs(pfn: Pfn): number {
    const pages = this.host.pages;
    return pages.PageTail(pfn) ? pages._count[pfn] : pages.page_count(pfn);
  }
  prep_thp(head: Pfn, order: number): void {
    prep_compound_page(this.host.pages, head, order);
  }
  add_new_anon_rmap_pte(pfn: Pfn, vma: Vma, addr: Hva): void {
    page_add_new_anon_rmap(this.host.pages, this.host.stat, pfn, vma, addr);
  }
  add_new_anon_rmap_pmd(head: Pfn, vma: Vma, haddr: Hva): void {
    page_add_new_anon_rmap(this.host.pages, this.host.stat, head, vma, haddr);
  }
  add_new_anon_rmap_ptes(head: Pfn): void {
    throw new KernelBug(`PTE-mapped large folio ${head}: Linux 2.6.38 maps compound pages by PMD only`);
  }
  add_anon_rmap_pte(pfn: Pfn, vma?: Vma, addr?: Hva): void {
    page_add_anon_rmap(this.host.pages, this.host.stat, pfn, vma, addr);
  }
  dup_rmap_pte(pfn: Pfn): void {
    page_dup_rmap(this.host.pages, pfn);
  }
  dup_rmap_pmd(head: Pfn): void {
    page_dup_rmap(this.host.pages, head);
  }
  remove_rmap_pte(pfn: Pfn): void {
    page_remove_rmap(this.host.pages, this.host.stat, pfn);
  }
  remove_rmap_ptes(pfns: readonly Pfn[]): void {
    for (const pfn of pfns) this.remove_rmap_pte(pfn);
  }
  remove_rmap_pmd(head: Pfn): void {
    page_remove_rmap(this.host.pages, this.host.stat, head);
  }
  wp_can_reuse(_mm: MmStruct, pfn: Pfn): boolean {
    return this.host.swap.reuse_swap_page(pfn);
  }
  can_change_writable(): boolean {
    return false; // 2.6.38: vm_page_prot of a private mapping never has write (PAGE_COPY)
  }
  split_huge_pmd(mm: MmStruct, addr: Hva): void {
    split_huge_page_pmd(mm, addr);
  }
  huge_pmd_read_fault(): boolean {
    return false; // 2.6.38 has no huge zero page: a read fault allocates a THP
  }
  huge_pmd_wp_fault(mm: MmStruct, vma: Vma, addr: Hva, pmd: PmdTable, i: number): void {
    do_huge_pmd_wp_page(mm, vma, addr, pmd, i);
  }
  is_huge_zero_pmd(): boolean {
    return false;
  }
  zap_huge_pmd(mm: MmStruct, pmd: PmdTable, i: number): void {
    const head = pmd.pmd_page(i);
    mm.pgd.pte_free(mm.get_pmd_huge_pte());
    pmd.pmd_clear(i);
    this.remove_rmap_pmd(head);
    this.put_page(head);
  }
  copy_huge_pmd(dst: MmStruct, spmd: PmdTable, dpmd: PmdTable, i: number, pgtable: PteTable): void {
    const head = spmd.pmd_page(i);
    this.get_page(head);
    this.dup_rmap_pmd(head);
    spmd.hbits[i] &= ~_PAGE_RW; // pmdp_set_wrprotect
    dpmd.set_pmd_huge(i, head, spmd.hbits[i] & ~_PAGE_ACCESSED); // pmd_mkold(pmd_wrprotect)
    dst.prepare_pmd_huge_pte(pgtable);
  }
  thp_mapped(head: Pfn): boolean {
    return this.host.pages._mapcount[head] >= 0;
  }
  reclaim_split(head: Pfn): void {
    this.split_huge_page(head);
  }
  split_huge_page(head: Pfn): void {
    const pages = this.host.pages;
    get_page(pages, head);
    split_huge_page(this.host, head);
    put_page(pages, head);
  }
  shrink_slab(): number {
    return 0; // 2.6.38 registers no THP shrinker
  }
  /**
   * khugepaged_scan_pmd / __collapse_huge_page_isolate (2.6.38): empty PTEs at most
   * max_ptes_none; every other PTE present and writable, mapping an anonymous page (not the
   * zero page) that is on the LRU, unlocked, with _count 1 (no gup pin, no swap cache, not
   * shared); at least one young (the scan only).
   */
  collapse_scan(_mm: MmStruct, _addr: Hva, t: PteTable, young: ((j: number) => boolean) | null): boolean {
    const pages = this.host.pages;
    const max_ptes_none = this.host.knobs.khugepaged.max_ptes_none;
    let none = 0;
    let referenced = false;
    for (let j = 0; j < HPAGE_PMD_NR; j++) {
      const bits = t.bits[j];
      if (bits === 0) {
        if (++none <= max_ptes_none) continue;
        return false;
      }
      if (!(bits & _PAGE_PRESENT) || !(bits & _PAGE_RW)) return false;
      if (bits & _PAGE_SPECIAL) return false; // vm_normal_page: the zero page is no candidate
      const page = t.pte_pfn(j);
      const f = pages.flags[page];
      if (!(f & PG_lru) || f & PG_locked || !(f & PG_anon)) return false;
      // cannot use mapcount: can't collapse if there's a gup pin
      if (pages.page_count(page) !== 1) return false;
      if (!referenced && young && (bits & _PAGE_ACCESSED || f & PG_referenced || young(j))) referenced = true;
    }
    return referenced || young === null;
  }
  collapse_swapin(): void {}
  exit_mm(): void {}
  close(): void {}
  checkInvariants(maps: Int32Array, pmdMaps: Int32Array, free: Uint8Array): void {
    check_2638(this.host, maps, pmdMaps, free);
  }
  anonPages(): number {
    const st = this.host.stat;
    return st.nr_anon_pages + st.nr_anon_transparent_hugepages * HPAGE_PMD_NR; // 2.6.38 meminfo
  }
}
