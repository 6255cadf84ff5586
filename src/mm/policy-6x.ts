/**
 * The Linux 6.18 THP policy (HostConfig.kernel '6.x'; policy.ts has the interface and the
 * table of what differs from 2.6.38). Facts from mm/huge_memory.c, mm/memory.c, mm/rmap.c,
 * mm/khugepaged.c and mm/vmscan.c of Linux 6.18; docs/thp-model.md "Linux 6.x" has a
 * section per rule naming these functions.
 *
 *  1. Folios (folio.ts): folio_get / folio_put on the head, entire/large/per-page mapcounts.
 *  2. split_huge_pmd (__split_huge_pmd): a partly covered huge PMD becomes 512 PTEs mapping
 *     the same folio (thp_split_pmd; each PTE holds a folio reference, folio_ref_add). A
 *     folio left partly mapped is queued by deferred_split_folio (thp_deferred_split_page,
 *     once: PG_partially_mapped). The deferred split shrinker (deferred_split_scan, run by
 *     shrink_slab from reclaim and from a huge allocation with defrag) splits queued folios
 *     (split_folio → split_huge_page_to_list_to_order, thp_split_page) and frees their
 *     unmapped pages. A gup pin makes the split fail (can_split_folio; thp_split_page_failed).
 *     Every anon split maps the zero-filled mapped pages to the shared zero page and frees
 *     them (remap_page with RMP_USE_SHARED_ZEROPAGE: try_to_map_unused_to_zeropage).
 *  3. The huge zero folio: a read fault on an empty THP-eligible PMD with use_zero_page=1
 *     maps it read-only (mm_get_huge_zero_folio; thp_zero_page_alloc when it is allocated;
 *     one reference per mm holding it, MMF_HUGE_ZERO_FOLIO, dropped at exit). A write on it
 *     is do_huge_zero_wp_pmd: a new THP (thp_fault_alloc), or on failure
 *     (thp_fault_fallback) __split_huge_pmd into zero-page PTEs and a 4 KiB fault. Its
 *     shrinker frees it when no mm holds it.
 *  4. Write to a shared huge PMD (do_huge_pmd_wp_page): reuse when the folio's only
 *     reference is this mapping, else __split_huge_pmd and COW the 4 KiB page (6.x never
 *     copies a whole THP on COW).
 *  5. khugepaged (hpage_collapse_scan_pmd): max_ptes_none (zero-page PTEs count as none),
 *     max_ptes_swap, max_ptes_shared with thp_scan_exceed_{none,swap,share}_pte; at least
 *     one writable PTE; refcount == mapcount per folio, so PTE-mapped folios collapse too.
 *  6. The underused-THP shrinker (6.12+): every new PMD THP (fault, huge-zero-page write,
 *     collapse) is queued fully mapped by deferred_split_folio(folio, false) when
 *     shrink_underused is 1 (no PG_partially_mapped, no thp_deferred_split_page);
 *     deferred_split_scan splits such a folio when thp_underused (more than khugepaged
 *     max_ptes_none zero-filled pages; never with 511), thp_underused_split_page, and
 *     otherwise drops it from the queue.
 *
 * Not modelled: mlock (the shrinker and the zero-page remap skip mlocked folios), the
 * shrinker's batch sizes (the whole queue is scanned at once).
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE, alignDown, hvaAdd, pfn as pfnOf, pfnAdd } from '../util/address.ts';
import { handle_pte_fault, transparent_hugepage_defrag } from './fault.ts';
import {
  clear_large_folio,
  ENTIRELY_MAPPED,
  folio_add_anon_rmap_pmd,
  folio_add_anon_rmap_pte,
  folio_add_new_anon_rmap_pmd,
  folio_add_new_anon_rmap_ptes,
  folio_entire_mapcount,
  folio_get,
  folio_large_mapcount,
  folio_mapcount,
  folio_nr_pages,
  folio_nr_pages_mapped,
  folio_order,
  folio_put,
  folio_ref_freeze,
  __split_folio_refcount,
  folio_ref_count,
  folio_remove_rmap_pmd,
  folio_remove_rmap_pte,
  folio_remove_rmap_ptes,
  folio_test_partially_mapped,
  folio_try_get,
  page_folio,
  page_in_large_folio,
  PG_anon_exclusive,
  PG_partially_mapped,
  prep_large_folio,
} from './folio.ts';
import type { Host } from './host.ts';
import { InvariantError } from './invariants.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import { PG_anon, PG_dirty, PG_head, PG_locked, PG_lru, PG_referenced, PG_swapbacked, PG_tail, PG_uptodate } from './page.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_SPECIAL, pmd_index, pte_index, type PmdTable, type PteTable } from './pgtable.ts';
import type { ThpPolicy } from './policy.ts';
import { destroy_compound_page, get_page, KernelBug, prep_compound_page, put_page } from './refcount.ts';
import { page_add_anon_rmap, page_add_new_anon_rmap, page_dup_rmap, page_remove_rmap, rmap_walk } from './rmap.ts';
import { VM_WRITE, type Vma } from './vma.ts';

const HPAGE_PMD_ORDER = 9;
const maybe_pmd_mkwrite = (bits: number, vma: Vma) => (vma.flags & VM_WRITE ? bits | _PAGE_RW : bits);

export class FolioPolicy implements ThpPolicy {
  readonly kernel = '6.x' as const;
  /** The deferred split queue (ds_queue->split_queue): folio heads in queueing order. */
  readonly split_queue = new Set<Pfn>();
  /** huge_zero_folio, or null while none is allocated. */
  huge_zero_folio: Pfn | null = null;
  /** huge_zero_refcount: one per mm holding it, plus the shrinker's own. */
  huge_zero_refcount = 0;
  /** mms with MMF_HUGE_ZERO_FOLIO (each holds one huge_zero_refcount). */
  readonly huge_zero_mms = new Set<MmStruct>();

  constructor(private readonly host: Host) {}

  // --- references (folio.ts) ------------------------------------------------------------

  private readonly free_folio = (head: Pfn, order: number) => {
    const pages = this.host.pages;
    const mthp = this.host.stat.mthp;
    // folio_unqueue_deferred_split, then free_pages_prepare's nr_anon
    if (folio_test_partially_mapped(pages, head)) mthp.mod_mthp_stat(order, 'nr_anon_partially_mapped', -1);
    this.split_queue.delete(head);
    if (pages.PageAnon(head)) mthp.mod_mthp_stat(order, 'nr_anon', -1);
    clear_large_folio(pages, head);
    pages.clearFlag(head, PG_lru);
    destroy_compound_page(pages, head, order);
    this.host.buddy.free_pages(head, order);
  };

  get_page(pfn: Pfn): void {
    if (page_in_large_folio(this.host.pages, pfn)) folio_get(this.host.pages, pfn);
    else get_page(this.host.pages, pfn);
  }
  put_page(pfn: Pfn): void {
    if (page_in_large_folio(this.host.pages, pfn)) folio_put(this.host.pages, pfn, this.free_folio);
    else put_page(this.host.pages, pfn);
  }
  page_refs(pfn: Pfn): number {
    return folio_ref_count(this.host.pages, page_folio(this.host.pages, pfn));
  }
  prep_thp(head: Pfn, order: number): void {
    prep_compound_page(this.host.pages, head, order);
    prep_large_folio(this.host.pages, head, order);
  }

  // --- rmap -------------------------------------------------------------------------------

  /**
   * deferred_split_folio(folio, partially_mapped): queue the folio on the deferred split
   * queue. partially_mapped (from __folio_remove_rmap) sets PG_partially_mapped once and
   * counts thp_deferred_split_page; false (a new PMD THP: map_anon_folio_pmd,
   * collapse_huge_page) only queues it for the underused check, and not at all when
   * shrink_underused is 0 (split_underused_thp).
   */
  readonly deferred_split_folio = (head: Pfn, partially_mapped = true): void => {
    const pages = this.host.pages;
    if (folio_order(pages, head) <= 1) return;
    if (!partially_mapped && this.host.knobs.shrink_underused !== 1) return;
    if (pages.PageSwapCache(head)) return;
    if (partially_mapped && !folio_test_partially_mapped(pages, head)) {
      pages.setFlag(pfnAdd(head, 1), PG_partially_mapped);
      const order = folio_order(pages, head);
      if (order === HPAGE_PMD_ORDER) this.host.stat.count_vm_event('thp_deferred_split_page');
      this.host.stat.mthp.count_mthp_stat(order, 'split_deferred');
      this.host.stat.mthp.mod_mthp_stat(order, 'nr_anon_partially_mapped', 1);
    }
    this.split_queue.add(head);
  };

  /** Set or clear PageAnonExclusive on `nr` pages from `pfn`. */
  private anon_exclusive(pfn: Pfn, nr: number, on: boolean): void {
    for (let k = 0; k < nr; k++) {
      if (on) this.host.pages.setFlag(pfnAdd(pfn, k), PG_anon_exclusive);
      else this.host.pages.clearFlag(pfnAdd(pfn, k), PG_anon_exclusive);
    }
  }
  private PageAnonExclusive(pfn: Pfn): boolean {
    return this.host.pages.testFlag(pfn, PG_anon_exclusive);
  }

  /** folio_add_new_anon_rmap(RMAP_EXCLUSIVE): a new page is exclusive to its mapping. */
  add_new_anon_rmap_pte(pfn: Pfn, vma: Vma, addr: Hva): void {
    page_add_new_anon_rmap(this.host.pages, this.host.stat, pfn, vma, addr);
    this.anon_exclusive(pfn, 1, true);
  }
  /**
   * A new PMD THP (do_huge_pmd_anonymous_page, do_huge_zero_wp_pmd, khugepaged's
   * collapse_huge_page): folio_add_new_anon_rmap(RMAP_EXCLUSIVE), then (6.12+, with
   * shrink_underused) deferred_split_folio(folio, false) — fully mapped, queued for
   * thp_underused, without PG_partially_mapped or thp_deferred_split_page.
   */
  add_new_anon_rmap_pmd(head: Pfn, vma: Vma, haddr: Hva): void {
    folio_add_new_anon_rmap_pmd(this.host.pages, this.host.stat, head, vma, haddr);
    this.anon_exclusive(head, folio_nr_pages(this.host.pages, head), true);
    this.host.stat.mthp.count_mthp_stat(HPAGE_PMD_ORDER, 'nr_anon');
    this.deferred_split_folio(head, false);
  }
  /** folio_add_new_anon_rmap for a large folio mapped by PTEs (mTHP, do_anonymous_page; RMAP_EXCLUSIVE). */
  add_new_anon_rmap_ptes(head: Pfn, vma: Vma, addr: Hva): void {
    const pages = this.host.pages;
    folio_add_new_anon_rmap_ptes(pages, this.host.stat, head, vma, addr);
    this.anon_exclusive(head, folio_nr_pages(pages, head), true);
    this.host.stat.mthp.count_mthp_stat(folio_order(pages, head), 'nr_anon');
  }
  add_anon_rmap_pte(pfn: Pfn, vma?: Vma, addr?: Hva): void {
    if (page_in_large_folio(this.host.pages, pfn)) folio_add_anon_rmap_pte(this.host.pages, this.host.stat, pfn);
    else page_add_anon_rmap(this.host.pages, this.host.stat, pfn, vma, addr);
  }
  /** folio_try_dup_anon_rmap_pte at fork: the page is shared now (ClearPageAnonExclusive). */
  dup_rmap_pte(pfn: Pfn): void {
    if (page_in_large_folio(this.host.pages, pfn)) folio_add_anon_rmap_pte(this.host.pages, this.host.stat, pfn);
    else page_dup_rmap(this.host.pages, pfn);
    this.anon_exclusive(pfn, 1, false);
  }
  /** folio_try_dup_anon_rmap_pmd: every page of the folio loses PageAnonExclusive. */
  dup_rmap_pmd(head: Pfn): void {
    folio_add_anon_rmap_pmd(this.host.pages, this.host.stat, head);
    this.anon_exclusive(head, folio_nr_pages(this.host.pages, head), false);
  }
  remove_rmap_pte(pfn: Pfn): void {
    if (page_in_large_folio(this.host.pages, pfn)) folio_remove_rmap_pte(this.host.pages, this.host.stat, pfn, this.deferred_split_folio);
    else page_remove_rmap(this.host.pages, this.host.stat, pfn);
  }
  remove_rmap_ptes(pfns: readonly Pfn[]): void {
    const large = pfns.filter((p) => page_in_large_folio(this.host.pages, p));
    for (const p of pfns) if (!page_in_large_folio(this.host.pages, p)) page_remove_rmap(this.host.pages, this.host.stat, p);
    if (large.length) folio_remove_rmap_ptes(this.host.pages, this.host.stat, large, this.deferred_split_folio);
  }
  remove_rmap_pmd(head: Pfn): void {
    folio_remove_rmap_pmd(this.host.pages, this.host.stat, head, this.deferred_split_folio);
  }

  /** Does any mm other than `mm` map a page of the folio? (folio_maybe_mapped_shared) */
  private folio_mapped_by_other_mm(mm: MmStruct, head: Pfn): boolean {
    const pages = this.host.pages;
    const nr = folio_nr_pages(pages, head);
    for (const { vma, addr } of rmap_walk(this.host.anon, pages, head)) {
      if (vma.mm === mm) continue;
      const pmd = vma.mm.pgd.pmd_table(addr);
      if (!pmd) continue;
      const i = pmd_index(addr);
      if (pmd.huge[i] === head) return true;
      const t = pmd.pte[i];
      if (!t) continue;
      for (let j = 0; j < HPAGE_PMD_NR; j++) if (t.pte_present(j) && !(t.bits[j] & _PAGE_SPECIAL) && t.pfn[j] >= head && t.pfn[j] < head + nr) return true;
    }
    return false;
  }

  /**
   * wp_can_reuse_anon_folio: a small page as 2.6.38 (its only user, swap cache included);
   * a page of a large folio only when every reference is a mapping and all are this mm's
   * (__wp_can_reuse_large_anon_folio).
   */
  wp_can_reuse(mm: MmStruct, pfn: Pfn): boolean {
    const pages = this.host.pages;
    if (this.PageAnonExclusive(pfn)) return true; // do_wp_page: reuse at once
    let reuse: boolean;
    if (!page_in_large_folio(pages, pfn)) {
      // wp_can_reuse_anon_folio (small): the only reference, besides the swap cache's
      reuse = pages._count[pfn] - (pages.PageSwapCache(pfn) ? 1 : 0) === 1 && this.host.swap.reuse_swap_page(pfn);
    } else {
      const head = page_folio(pages, pfn);
      reuse = folio_large_mapcount(pages, head) === folio_ref_count(pages, head) && !this.folio_mapped_by_other_mm(mm, head);
    }
    if (reuse) this.anon_exclusive(pfn, 1, true); // folio_move_anon_rmap + SetPageAnonExclusive
    return reuse;
  }

  /**
   * can_change_pte_writable / can_change_pmd_writable (private anonymous memory): mprotect
   * adding PROT_WRITE makes the entry writable at once when the page is PageAnonExclusive
   * (MM_CP_TRY_CHANGE_WRITABLE, 6.0+); the zero pages never.
   */
  can_change_writable(pfn: Pfn): boolean {
    if (pfn === this.huge_zero_folio || pfn === this.host.zero_pfn) return false;
    // PageAnon is the folio's (a tail of a PTE-mapped THP has no PG_anon of its own).
    return this.host.pages.PageAnon(page_folio(this.host.pages, pfn)) && this.PageAnonExclusive(pfn);
  }

  // --- split_huge_pmd ----------------------------------------------------------------------

  split_huge_pmd(mm: MmStruct, addr: Hva): void {
    this.__split_huge_pmd(mm, alignDown(addr, HPAGE_PMD_SIZE));
  }

  /**
   * __split_huge_pmd / __split_huge_pmd_locked: the huge PMD at `haddr` becomes the PTE
   * table deposited for it, 512 PTEs mapping the same folio (write, young and dirty from the
   * PMD); every page gains a PTE mapping and the folio 511 references before the PMD's
   * mapping is removed, so nothing is unmapped and the folio is not split. A huge zero PMD
   * becomes 512 PTEs of the 4 KiB zero page (__split_huge_zero_page_pmd).
   */
  __split_huge_pmd(mm: MmStruct, haddr: Hva): void {
    const host = this.host;
    const pmd = mm.pgd.pmd_table(haddr);
    if (!pmd) return;
    const i = pmd_index(haddr);
    if (!pmd.pmd_trans_huge(i)) return;
    const end = hvaAdd(haddr, HPAGE_PMD_SIZE);
    mmu_notifier_invalidate_range_start(mm, haddr, end);
    host.stat.count_vm_event('thp_split_pmd');
    const hb = pmd.hbits[i];
    const pgtable = mm.get_pmd_huge_pte(); // pgtable_trans_huge_withdraw
    if (this.is_huge_zero_pmd(pmd, i)) {
      for (let k = 0; k < HPAGE_PMD_NR; k++) pgtable.set_pte(k, host.zero_pfn, _PAGE_PRESENT | _PAGE_SPECIAL | (hb & _PAGE_ACCESSED));
    } else {
      const pages = host.pages;
      const head = pmd.pmd_page(i);
      Atomics.add(pages._count, head, HPAGE_PMD_NR - 1); // folio_ref_add
      // folio_add_anon_rmap_ptes(RMAP_EXCLUSIVE when the PMD's page was exclusive)
      if (this.PageAnonExclusive(head)) this.anon_exclusive(head, HPAGE_PMD_NR, true);
      const bits = _PAGE_PRESENT | (hb & (_PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY));
      for (let k = 0; k < HPAGE_PMD_NR; k++) {
        folio_add_anon_rmap_pte(pages, host.stat, pfnAdd(head, k)); // folio_add_anon_rmap_ptes
        pgtable.set_pte(k, pfnAdd(head, k), bits);
      }
      if (hb & _PAGE_DIRTY) pages.setFlag(head, PG_dirty);
      folio_remove_rmap_pmd(pages, host.stat, head, this.deferred_split_folio);
    }
    pmd.pmd_populate(i, pgtable);
    mmu_notifier_invalidate_range_end(mm, haddr, end);
  }

  // --- split_folio --------------------------------------------------------------------------

  /**
   * split_folio (split_huge_page_to_list_to_order, new order 0): the caller holds a
   * reference. Every PMD mapping is split first (unmap_folio's TTU_SPLIT_HUGE_PMD); the
   * split needs every other reference to be a mapping (can_split_folio: a gup pin makes it
   * fail, thp_split_page_failed). Then each page becomes an order-0 folio with the
   * references of its own PTE mappings (the caller's stays on the head page), the folio
   * leaves the deferred split queue, and pages nothing maps are freed. Returns success.
   */
  split_folio(head: Pfn): boolean {
    const host = this.host;
    const pages = host.pages;
    if (!pages.PageHead(head) || !pages.PageAnon(head) || !host.anon.byId.has(pages.mapping[head])) return false;
    const order = folio_order(pages, head);
    const nr = 1 << order;
    // Pages mapped by PTEs while no PMD maps the folio, before unmap_folio (see below).
    const ptesMapped = folio_entire_mapcount(pages, head) === 0 ? folio_nr_pages_mapped(pages, head) : 0;
    for (const { vma, addr } of rmap_walk(host.anon, pages, head)) {
      const pmd = vma.mm.pgd.pmd_table(addr);
      if (pmd && pmd.huge[pmd_index(addr)] === head) this.__split_huge_pmd(vma.mm, alignDown(addr, HPAGE_PMD_SIZE));
    }
    // can_split_folio + folio_ref_freeze: every reference but the caller's is a mapping
    if (!folio_ref_freeze(pages, head, folio_mapcount(pages, head) + 1)) {
      if (order === HPAGE_PMD_ORDER) host.stat.count_vm_event('thp_split_page_failed');
      host.stat.mthp.count_mthp_stat(order, 'split_failed');
      return false;
    }
    // unmap_folio (try_to_migrate): a PMD mapping becomes migration entries at once (the
    // frozen PMD split), but PTE mappings one PTE at a time (try_to_migrate_one), so a folio
    // that two or more PTEs and no PMD map is partially mapped after the first and
    // __folio_remove_rmap queues it — deferred_split_folio(folio, true): split_deferred (and
    // thp_deferred_split_page at PMD order) unless already flagged or in the swap cache.
    // Seen on Linux 6.18: a 64 KiB folio split for a swap file counts split_deferred 1.
    if (ptesMapped >= 2) this.deferred_split_folio(head, true);
    // __split_folio_to_order; the folio leaves the queue and nr_anon of its order
    if (folio_test_partially_mapped(pages, head)) host.stat.mthp.mod_mthp_stat(order, 'nr_anon_partially_mapped', -1);
    this.split_queue.delete(head);
    host.stat.mthp.mod_mthp_stat(order, 'nr_anon', -1);
    const inherit = (pages.flags[head] & (PG_referenced | PG_swapbacked | PG_uptodate | PG_anon | PG_lru)) | PG_dirty;
    const mapping = pages.mapping[head];
    const index = pages.index[head];
    pages.flags[head] = (pages.flags[head] & (PG_head | PG_anon_exclusive)) | inherit;
    __split_folio_refcount(pages, head, (k) => pages.page_mapcount(pfnAdd(head, k)) + (k === 0 ? 1 : 0));
    for (let k = 0; k < nr; k++) {
      const p = pfnAdd(head, k);
      pages.mapping[p] = mapping;
      pages.index[p] = index + k;
    }
    if (order === HPAGE_PMD_ORDER) host.stat.count_vm_event('thp_split_page');
    host.stat.mthp.count_mthp_stat(order, 'split');
    // remap_page(RMP_USE_SHARED_ZEROPAGE): every successful anon split (6.12+)
    for (let k = 0; k < nr; k++) this.try_to_map_unused_to_zeropage(pfnAdd(head, k));
    // free_folio_and_swap_cache on the pages no one maps (the head keeps the caller's reference)
    for (let k = 1; k < nr; k++) {
      const p = pfnAdd(head, k);
      if (pages._count[p] === 0) {
        pages.clearFlag(p, PG_lru);
        host.buddy.free_pages(p, 0);
      }
    }
    return true;
  }

  /**
   * try_to_map_unused_to_zeropage (remove_migration_pte under RMP_USE_SHARED_ZEROPAGE): after
   * a split, each PTE mapping a page of the old folio whose 4 KiB are all zero maps the
   * shared zero page instead (special, read-only; the mm's anon RSS drops), so a page
   * nothing else maps is freed by the split. The KVM side sees the change through the
   * mmu notifier.
   */
  private try_to_map_unused_to_zeropage(page: Pfn): void {
    const host = this.host;
    const pages = host.pages;
    if (pages._mapcount[page] < 0 || !host.physmem.frameIsZero(page)) return;
    for (const { vma, addr } of rmap_walk(host.anon, pages, page)) {
      const pmd = vma.mm.pgd.pmd_table(addr);
      const t = pmd?.pte[pmd_index(addr)];
      const j = pte_index(addr);
      if (!t || !t.pte_present(j) || t.bits[j] & _PAGE_SPECIAL || t.pfn[j] !== page) continue;
      mmu_notifier_invalidate_range_start(vma.mm, addr, hvaAdd(addr, PAGE_SIZE));
      t.set_pte(j, host.zero_pfn, _PAGE_PRESENT | _PAGE_SPECIAL | _PAGE_ACCESSED);
      page_remove_rmap(pages, host.stat, page);
      Atomics.sub(pages._count, page, 1); // the mapping's reference: split_folio frees the page at 0
      mmu_notifier_invalidate_range_end(vma.mm, addr, hvaAdd(addr, PAGE_SIZE));
    }
  }

  /**
   * thp_underused: with khugepaged max_ptes_none below 511, a PMD THP is underused when more
   * than max_ptes_none of its 4 KiB pages are all zero (memchr_inv); with 511 never.
   */
  thp_underused(head: Pfn): boolean {
    const host = this.host;
    const max_ptes_none = host.knobs.khugepaged.max_ptes_none;
    if (max_ptes_none === HPAGE_PMD_NR - 1) return false;
    let zero = 0;
    let filled = 0;
    const nr = folio_nr_pages(host.pages, head);
    for (let k = 0; k < nr; k++) {
      if (!host.physmem.frameIsZero(pfnAdd(head, k))) {
        if (++filled >= HPAGE_PMD_NR - max_ptes_none) return false;
      } else if (++zero > max_ptes_none) return true;
    }
    return false;
  }

  /**
   * deferred_split_scan: every folio on the queue (the model scans it whole), pinned with
   * folio_try_get (one already being freed just leaves). A partially mapped folio is split
   * (a failed split stays queued); one not partially mapped (queued at fault) is split when
   * thp_underused (thp_underused_split_page), and otherwise — or when that split fails —
   * leaves the queue for good. Returns frames freed.
   */
  deferred_split_scan(): number {
    const host = this.host;
    const pages = host.pages;
    const before = host.nr_free_pages();
    for (const head of [...this.split_queue]) {
      if (!folio_try_get(pages, head)) {
        this.split_queue.delete(head);
        continue;
      }
      const partially = folio_test_partially_mapped(pages, head);
      const underused = !partially && this.thp_underused(head);
      let did_split = false;
      if (partially || underused) {
        did_split = this.split_folio(head);
        if (did_split && underused) host.stat.count_vm_event('thp_underused_split_page');
      }
      if (!did_split && !partially) this.split_queue.delete(head);
      this.put_page(head);
    }
    return host.nr_free_pages() - before;
  }

  // --- the huge zero folio ---------------------------------------------------------------------

  is_huge_zero_pmd(pmd: PmdTable, i: number): boolean {
    return this.huge_zero_folio !== null && pmd.huge[i] === this.huge_zero_folio;
  }

  /** get_huge_zero_folio: allocate it on first use (thp_zero_page_alloc), else take a reference. */
  private get_huge_zero_folio(): Pfn | null {
    const host = this.host;
    if (this.huge_zero_refcount > 0) {
      this.huge_zero_refcount++;
      return this.huge_zero_folio;
    }
    const head = host.buddy.alloc_pages(HPAGE_PMD_ORDER);
    if (head === null) {
      host.stat.count_vm_event('thp_zero_page_alloc_failed');
      return null;
    }
    this.prep_thp(head, HPAGE_PMD_ORDER); // a folio never mapped through the rmap: mapcounts stay 0
    Atomics.store(host.pages._count, head, 1);
    host.physmem.zeroFrames(head, HPAGE_PMD_NR); // __GFP_ZERO
    host.stat.count_vm_event('thp_zero_page_alloc');
    this.huge_zero_folio = head;
    this.huge_zero_refcount = 2; // the caller's and the shrinker's
    return head;
  }

  /** mm_get_huge_zero_folio: the mm takes one reference the first time (MMF_HUGE_ZERO_FOLIO). */
  mm_get_huge_zero_folio(mm: MmStruct): Pfn | null {
    if (this.huge_zero_mms.has(mm)) return this.huge_zero_folio;
    const z = this.get_huge_zero_folio();
    if (z !== null) this.huge_zero_mms.add(mm);
    return z;
  }

  /** mm_put_huge_zero_folio (__mmput) */
  exit_mm(mm: MmStruct): void {
    if (!this.huge_zero_mms.delete(mm)) return;
    if (--this.huge_zero_refcount <= 0) throw new KernelBug('put_huge_zero_folio dropped the last reference');
  }

  /**
   * shrink_huge_zero_folio_scan: when only the shrinker's huge_zero_refcount is left, drop
   * the folio (its page reference: a gup pin on it keeps the frames until put_page).
   */
  private shrink_huge_zero_folio(): number {
    if (this.huge_zero_refcount !== 1 || this.huge_zero_folio === null) return 0;
    const head = this.huge_zero_folio;
    this.huge_zero_refcount = 0;
    this.huge_zero_folio = null;
    const before = this.host.nr_free_pages();
    this.put_page(head);
    return this.host.nr_free_pages() - before;
  }

  /**
   * do_huge_pmd_anonymous_page's read branch: with use_zero_page, map the huge zero folio
   * read-only with a deposited PTE table (set_huge_zero_folio). If it cannot be allocated:
   * thp_fault_fallback and the 4 KiB path.
   */
  huge_pmd_read_fault(mm: MmStruct, vma: Vma, haddr: Hva, pmd: PmdTable, i: number): boolean {
    if (this.host.knobs.use_zero_page !== 1) return false;
    const pgtable = mm.pgd.pte_alloc_one();
    const zero = this.mm_get_huge_zero_folio(mm);
    if (zero === null) {
      mm.pgd.pte_free(pgtable);
      this.host.stat.count_vm_event('thp_fault_fallback');
      handle_pte_fault(mm, vma, haddr, pmd, i, false);
      return true;
    }
    pmd.set_pmd_huge(i, zero, _PAGE_ACCESSED);
    mm.prepare_pmd_huge_pte(pgtable);
    return true;
  }

  /**
   * do_huge_pmd_wp_page: on the huge zero PMD, do_huge_zero_wp_pmd (a new THP, or split and
   * fall back); on a folio whose only reference is this PMD, reuse it; otherwise
   * __split_huge_pmd and let the 4 KiB path copy the one page (VM_FAULT_FALLBACK).
   */
  huge_pmd_wp_fault(mm: MmStruct, vma: Vma, addr: Hva, pmd: PmdTable, i: number): void {
    const host = this.host;
    const haddr = alignDown(addr, HPAGE_PMD_SIZE);
    if (this.is_huge_zero_pmd(pmd, i)) {
      if (this.do_huge_zero_wp_pmd(mm, vma, haddr, pmd, i)) return;
    } else {
      const head = pmd.pmd_page(i);
      // PageAnonExclusive: reuse; else reuse when the PMD holds the only reference (and
      // make it exclusive), else fall back
      if (this.PageAnonExclusive(head) || folio_ref_count(host.pages, head) === 1) {
        this.anon_exclusive(head, 1, true);
        pmd.hbits[i] = maybe_pmd_mkwrite(pmd.hbits[i] | _PAGE_ACCESSED | _PAGE_DIRTY, vma);
        return;
      }
    }
    this.__split_huge_pmd(mm, haddr);
    handle_pte_fault(mm, vma, addr, pmd, i, true);
  }

  /** do_huge_zero_wp_pmd: replace the huge zero PMD by a new zeroed THP; false on VM_FAULT_FALLBACK. */
  private do_huge_zero_wp_pmd(mm: MmStruct, vma: Vma, haddr: Hva, pmd: PmdTable, i: number): boolean {
    const host = this.host;
    // vma_alloc_anon_folio_pmd
    const folio = host.alloc_hugepage(transparent_hugepage_defrag(host.knobs, vma));
    if (folio === null) {
      host.stat.count_vm_event('thp_fault_fallback');
      host.stat.mthp.count_mthp_stat(HPAGE_PMD_ORDER, 'anon_fault_fallback');
      return false;
    }
    host.physmem.zeroFrames(folio, HPAGE_PMD_NR); // folio_zero_user
    if (!this.is_huge_zero_pmd(pmd, i)) {
      this.put_page(folio); // pmd_same failed: reclaim changed it meanwhile
      return true;
    }
    const end = hvaAdd(haddr, HPAGE_PMD_SIZE);
    mmu_notifier_invalidate_range_start(mm, haddr, end);
    pmd.pmd_clear(i); // pmdp_huge_clear_flush
    // map_anon_folio_pmd_pf: the deposited table stays deposited for the new PMD
    this.add_new_anon_rmap_pmd(folio, vma, haddr);
    pmd.set_pmd_huge(i, folio, maybe_pmd_mkwrite(_PAGE_ACCESSED | _PAGE_DIRTY, vma));
    host.stat.count_vm_event('thp_fault_alloc'); // __thp_fault_success_stats
    host.stat.mthp.count_mthp_stat(HPAGE_PMD_ORDER, 'anon_fault_alloc');
    mmu_notifier_invalidate_range_end(mm, haddr, end);
    return true;
  }

  // --- zap, fork, reclaim ------------------------------------------------------------------------

  zap_huge_pmd(mm: MmStruct, pmd: PmdTable, i: number): void {
    mm.pgd.pte_free(mm.get_pmd_huge_pte()); // zap_deposited_table
    if (this.is_huge_zero_pmd(pmd, i)) {
      pmd.pmd_clear(i); // the mm keeps its huge zero reference until exit
      return;
    }
    const head = pmd.pmd_page(i);
    pmd.pmd_clear(i);
    this.remove_rmap_pmd(head); // folio_remove_rmap_pmd
    this.put_page(head); // tlb_remove_page_size
  }

  copy_huge_pmd(dst: MmStruct, spmd: PmdTable, dpmd: PmdTable, i: number, pgtable: PteTable): void {
    if (this.is_huge_zero_pmd(spmd, i)) {
      this.mm_get_huge_zero_folio(dst);
      dpmd.set_pmd_huge(i, spmd.pmd_page(i), spmd.hbits[i]);
      dst.prepare_pmd_huge_pte(pgtable);
      return;
    }
    const head = spmd.pmd_page(i);
    this.get_page(head); // folio_get
    this.dup_rmap_pmd(head); // folio_try_dup_anon_rmap_pmd
    spmd.hbits[i] &= ~_PAGE_RW; // pmdp_set_wrprotect
    dpmd.set_pmd_huge(i, head, spmd.hbits[i] & ~_PAGE_ACCESSED); // pmd_mkold(pmd_wrprotect)
    dst.prepare_pmd_huge_pte(pgtable);
  }

  thp_mapped(head: Pfn): boolean {
    return head !== this.huge_zero_folio && folio_mapcount(this.host.pages, head) > 0;
  }

  /** shrink_folio_list on a large anonymous folio without THP swap: split_folio_to_list. */
  reclaim_split(head: Pfn): void {
    this.split_huge_page(head);
  }

  split_huge_page(head: Pfn): void {
    if (head === this.huge_zero_folio) return;
    this.get_page(head);
    this.split_folio(head);
    this.put_page(head);
  }

  shrink_slab(): number {
    return this.deferred_split_scan() + this.shrink_huge_zero_folio();
  }

  // --- khugepaged ------------------------------------------------------------------------------

  /**
   * hpage_collapse_scan_pmd / __collapse_huge_page_isolate (6.18): swap PTEs at most
   * max_ptes_swap (thp_scan_exceed_swap_pte), none or zero-page PTEs at most max_ptes_none
   * (thp_scan_exceed_none_pte), pages of folios mapped by another mm at most
   * max_ptes_shared (thp_scan_exceed_share_pte); every mapped page anonymous, on the LRU,
   * unlocked, its folio's references all mappings (is_refcount_suitable: no gup pin); the
   * scan also wants a young page, and half of them young when swap PTEs are to be read
   * back. No PTE need be writable: 6.18 dropped the SCAN_PAGE_RO check (a read-only
   * anonymous range, e.g. wrprotected by fork, collapses; seen by tools/kdiff scenario
   * khugepaged-max-ptes-shared on Linux 6.18).
   */
  collapse_scan(mm: MmStruct, _addr: Hva, t: PteTable, young: ((j: number) => boolean) | null): boolean {
    const host = this.host;
    const pages = host.pages;
    const k = host.knobs.khugepaged;
    let none_or_zero = 0;
    let unmapped = 0;
    let shared = 0;
    let referenced = 0;
    for (let j = 0; j < HPAGE_PMD_NR; j++) {
      const bits = t.bits[j];
      if (t.is_swap_pte(j)) {
        if (young === null) return false; // isolation runs after swap-in: none may be left
        if (++unmapped <= k.max_ptes_swap!) continue;
        host.stat.count_vm_event('thp_scan_exceed_swap_pte');
        return false;
      }
      if (bits === 0 || bits & _PAGE_SPECIAL) {
        if (++none_or_zero <= k.max_ptes_none) continue;
        host.stat.count_vm_event('thp_scan_exceed_none_pte');
        return false;
      }
      const page = t.pte_pfn(j);
      const head = page_folio(pages, page);
      const f = pages.flags[head];
      if (!(f & PG_anon)) return false;
      const large = pages.PageHead(head);
      if (large ? this.folio_mapped_by_other_mm(mm, head) : pages.page_mapcount(page) > 1) {
        if (++shared > k.max_ptes_shared!) {
          host.stat.count_vm_event('thp_scan_exceed_share_pte');
          return false;
        }
      }
      if (!(f & PG_lru) || f & PG_locked) return false;
      // is_refcount_suitable: every reference a mapping (plus the swap cache's)
      if (folio_ref_count(pages, head) !== folio_mapcount(pages, head) + (pages.PageSwapCache(head) ? 1 : 0)) return false;
      if (young && (bits & _PAGE_ACCESSED || f & PG_referenced || young(j))) referenced++;
    }
    if (young && (!referenced || (unmapped && referenced < HPAGE_PMD_NR / 2))) return false; // SCAN_LACK_REFERENCED_PAGE
    return true;
  }

  /** __collapse_huge_page_swapin: read back the swap PTEs of the range before isolating it. */
  collapse_swapin(mm: MmStruct, vma: Vma, addr: Hva, t: PteTable): void {
    for (let j = 0; j < HPAGE_PMD_NR; j++) {
      if (t.is_swap_pte(j)) this.host.swap.do_swap_page(mm, vma, hvaAdd(addr, j * PAGE_SIZE), t, j, false);
    }
  }

  close(): void {
    if (this.huge_zero_mms.size) throw new KernelBug(`${this.huge_zero_mms.size} mms still hold the huge zero folio at close`);
    this.shrink_huge_zero_folio();
  }

  anonPages(): number {
    return this.host.stat.nr_anon_pages; // NR_ANON_MAPPED includes the pages of THPs
  }

  // --- invariants ------------------------------------------------------------------------------

  /**
   * The folio rules: tails hold no references; per-page _mapcount + 1 = PTEs mapping the
   * page; _entire_mapcount + 1 = PMDs mapping the folio; _large_mapcount + 1 = both;
   * _nr_pages_mapped = pages PTE-mapped (+ ENTIRELY_MAPPED while PMD-mapped); the refcount
   * covers every mapping; PG_partially_mapped ⇒ on the split queue, and a queued folio without
   * it is a PMD THP (queued at fault for thp_underused); the zone counters
   * (NR_ANON_MAPPED, NR_ANON_THPS); the huge zero folio's references = mms holding it + 1.
   */
  checkInvariants(maps: Int32Array, pmdMaps: Int32Array, free: Uint8Array): void {
    const host = this.host;
    const pg = host.pages;
    const fail = (m: string): never => {
      throw new InvariantError(m);
    };
    let anonMapped = 0;
    let thps = 0;
    for (let p = 0; p < host.nrFrames; p++) {
      if (free[p]) continue;
      const f = pg.flags[p];
      if (f & PG_tail) fail(`tail ${p} outside a live folio`);
      if (pg._count[p] < 1) fail(`frame ${p}: neither free nor referenced (_count ${pg._count[p]})`);
      if (!(f & PG_head)) {
        if (pg._mapcount[p] + 1 !== maps[p]) fail(`page ${p}: _mapcount+1 = ${pg._mapcount[p] + 1} but ${maps[p]} PTEs map it`);
        if (pg._count[p] < maps[p]) fail(`page ${p}: _count ${pg._count[p]} < mappings ${maps[p]}`);
        if (maps[p] > 0) anonMapped++;
        continue;
      }
      const nr = 1 << pg.private[p];
      if (p === this.huge_zero_folio) {
        if (this.huge_zero_refcount !== this.huge_zero_mms.size + 1) fail(`huge zero folio: refcount ${this.huge_zero_refcount} but ${this.huge_zero_mms.size} mms hold it`);
        p += nr - 1;
        continue;
      }
      const ph = pfnOf(p);
      let pte = 0;
      let pagesMapped = 0;
      for (let k = 0; k < nr; k++) {
        const q = p + k;
        if (k > 0 && (!(pg.flags[q] & PG_tail) || pg.private[q] !== p)) fail(`folio ${p}: frame ${q} is not its tail`);
        if (k > 0 && pg._count[q] !== 0) fail(`folio ${p}: tail ${q} holds _count ${pg._count[q]} (folios count on the head only)`);
        if (pg._mapcount[q] + 1 !== maps[q]) fail(`folio ${p}: page ${q} _mapcount+1 = ${pg._mapcount[q] + 1} but ${maps[q]} PTEs map it`);
        pte += maps[q];
        if (maps[q] > 0) pagesMapped++;
      }
      const entire = pmdMaps[p];
      if (folio_entire_mapcount(pg, ph) !== entire) fail(`folio ${p}: _entire_mapcount+1 = ${folio_entire_mapcount(pg, ph)} but ${entire} PMDs map it`);
      if (folio_large_mapcount(pg, ph) !== entire + pte) fail(`folio ${p}: _large_mapcount+1 = ${folio_large_mapcount(pg, ph)} but ${entire + pte} mappings`);
      const want = pagesMapped + (entire > 0 ? ENTIRELY_MAPPED : 0);
      if (folio_nr_pages_mapped(pg, ph) !== want) fail(`folio ${p}: _nr_pages_mapped ${folio_nr_pages_mapped(pg, ph)}, expected ${want}`);
      if (pg._count[p] < entire + pte) fail(`folio ${p}: refcount ${pg._count[p]} < mappings ${entire + pte}`);
      // PG_partially_mapped only on queued folios; an unflagged queued folio is a PMD THP
      // queued at fault or collapse (deferred_split_folio(folio, false)) for thp_underused
      if (folio_test_partially_mapped(pg, ph) && !this.split_queue.has(ph)) fail(`folio ${p}: PG_partially_mapped but not queued`);
      if (this.split_queue.has(ph) && !folio_test_partially_mapped(pg, ph) && nr !== HPAGE_PMD_NR) fail(`folio ${p}: queued, not PG_partially_mapped, but of order ${pg.private[p]} (only PMD THPs are queued fully mapped)`);
      if (entire > 0) thps++;
      anonMapped += entire > 0 ? nr : pagesMapped;
      p += nr - 1;
    }
    for (const head of this.split_queue) if (free[head] || !(pg.flags[head] & PG_head)) fail(`split queue holds ${head}, not a live folio`);
    if (thps !== host.stat.nr_anon_transparent_hugepages) fail(`nr_anon_transparent_hugepages ${host.stat.nr_anon_transparent_hugepages} but ${thps} folios PMD-mapped`);
    if (anonMapped !== host.stat.nr_anon_pages) fail(`nr_anon_pages ${host.stat.nr_anon_pages} but ${anonMapped} pages mapped`);
    for (const mm of host.processes) {
      mm.pgd.forEachPmd((addr, pmd, i) => {
        if (this.is_huge_zero_pmd(pmd, i) && !this.huge_zero_mms.has(mm)) fail(`mm ${mm.id} 0x${addr.toString(16)}: maps the huge zero folio without holding it`);
      });
    }
  }
}
