/**
 * Folios as Linux 6.18 keeps them (include/linux/mm.h, mm_types.h, mm/rmap.c
 * __folio_add_rmap / __folio_remove_rmap, mm/swap.c __folio_put), for the '6.x' host
 * (docs/thp-model.md). A large folio is a compound block of 2^order frames (any order from
 * 2 to 9: THP_ORDERS_ALL_ANON) with:
 *
 *  - one reference count for the whole folio, on the head (folio_ref_count); tails keep
 *    _count 0. get_page on a tail is folio_get (no per-tail counts, no compound_lock);
 *    every page-table entry mapping a page of the folio holds one folio reference, as does
 *    every gup pin;
 *  - folio->_entire_mapcount: PMD mappings − 1, kept (like the kernel) in the first tail
 *    page, here its `mapping` field;
 *  - folio->_large_mapcount: all mappings − 1 (a PMD counts once, a PTE once), in the first
 *    tail's `index` field;
 *  - per-page _mapcount: PTE mappings of that page − 1 (CONFIG_PAGE_MAPCOUNT, the default);
 *  - folio->_nr_pages_mapped: pages mapped by a PTE, plus ENTIRELY_MAPPED while a PMD maps
 *    the folio, in the second tail's `mapping` field;
 *  - PG_partially_mapped on the first tail (the kernel's FOLIO_SECOND_PAGE flag).
 *
 * Zone counters as 6.18: NR_ANON_MAPPED (vmstat nr_anon_pages) counts every page mapped at
 * least once, PMD or PTE; NR_ANON_THPS (nr_anon_transparent_hugepages) PMD-mapped folios.
 *
 * Everything touching _count uses Atomics so the stress harness (src/mm/stress) can race
 * folio_get / folio_put on tails from worker threads.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { pageIndex, pfnAdd } from '../util/address.ts';
import { PG_anon, PG_head, PG_lru, PG_swapbacked, PG_tail, PG_uptodate, type PageArray } from './page.ts';
import { KernelBug } from './refcount.ts';
import type { VmStat } from './vmstat.ts';
import type { Vma } from './vma.ts';

/** PG_partially_mapped (set on the first tail page, as the kernel's second-page folio flag). */
export const PG_partially_mapped = 1 << 13;
/**
 * PG_anon_exclusive (PageAnonExclusive, 5.19+): this anonymous page is exclusive to the one
 * mapping that maps it, so a write may reuse it and mprotect may make it writable at once.
 * Per page, tails included.
 */
export const PG_anon_exclusive = 1 << 14;
/** ENTIRELY_MAPPED in folio->_nr_pages_mapped (mm/internal.h). */
export const ENTIRELY_MAPPED = 0x800000;
export const FOLIO_PAGES_MAPPED = ENTIRELY_MAPPED - 1;

const BUG_ON = (c: boolean, m: string) => {
  if (c) throw new KernelBug(m);
};

/** folio_order of the folio containing `pfn` (0 for a single page). */
export function folio_order(pages: PageArray, head: Pfn): number {
  return pages.PageHead(head) ? Atomics.load(pages.private, head) : 0;
}
export const folio_nr_pages = (pages: PageArray, head: Pfn) => 1 << folio_order(pages, head);
/** page_folio: the head of the folio holding `pfn`. */
export const page_folio = (pages: PageArray, pfn: Pfn): Pfn => pages.compound_head(pfn);
export const folio_test_large = (pages: PageArray, head: Pfn) => pages.PageHead(head);

// The folio fields in the tail pages (see the header).
const T1 = (head: Pfn) => pfnAdd(head, 1);
const T2 = (head: Pfn) => pfnAdd(head, 2);

export function folio_entire_mapcount(pages: PageArray, head: Pfn): number {
  return Atomics.load(pages.mapping, T1(head)) + 1;
}
export function folio_large_mapcount(pages: PageArray, head: Pfn): number {
  return Atomics.load(pages.index, T1(head)) + 1;
}
export function folio_nr_pages_mapped(pages: PageArray, head: Pfn): number {
  return Atomics.load(pages.mapping, T2(head));
}
/** folio_mapcount: every mapping of the folio (for a single page its _mapcount + 1). */
export function folio_mapcount(pages: PageArray, head: Pfn): number {
  return pages.PageHead(head) ? folio_large_mapcount(pages, head) : pages.page_mapcount(head);
}
export const folio_mapped = (pages: PageArray, head: Pfn) => folio_mapcount(pages, head) > 0;
export const folio_ref_count = (pages: PageArray, head: Pfn) => Atomics.load(pages._count, head);
export const folio_test_partially_mapped = (pages: PageArray, head: Pfn) =>
  pages.PageHead(head) && pages.testFlag(T1(head), PG_partially_mapped);

/** prep_compound_page + the folio fields (folio_set_large_mapcount(-1), ...): a fresh large folio. */
export function prep_large_folio(pages: PageArray, head: Pfn, order: number): void {
  BUG_ON(order < 2, `large anonymous folio of order ${order} (orders 2..9 only)`);
  Atomics.store(pages.mapping, T1(head), -1); // _entire_mapcount
  Atomics.store(pages.index, T1(head), -1); // _large_mapcount
  Atomics.store(pages.mapping, T2(head), 0); // _nr_pages_mapped
}

/** Reset the folio fields before the block returns to the buddy (free_tail_page_prepare). */
export function clear_large_folio(pages: PageArray, head: Pfn): void {
  BUG_ON(folio_large_mapcount(pages, head) !== 0, `freeing mapped folio ${head}`);
  Atomics.store(pages.mapping, T1(head), 0);
  Atomics.store(pages.index, T1(head), 0);
  Atomics.store(pages.mapping, T2(head), 0);
  pages.clearFlag(T1(head), PG_partially_mapped);
}

/** folio_get (get_page on any page of the folio): the caller already holds a reference. */
export function folio_get(pages: PageArray, pfn: Pfn): void {
  const head = page_folio(pages, pfn);
  const old = Atomics.add(pages._count, head, 1);
  BUG_ON(old <= 0, `folio_get on folio ${head} with refcount ${old}`);
}

/** folio_try_get: take a reference unless the folio is being freed (refcount 0). */
export function folio_try_get(pages: PageArray, head: Pfn): boolean {
  for (;;) {
    const old = Atomics.load(pages._count, head);
    if (old === 0) return false;
    if (Atomics.compareExchange(pages._count, head, old, old + 1) === old) return true;
  }
}

/**
 * folio_put (put_page on any page of the folio): drop one reference; at zero the folio is
 * freed whole (__folio_put → free_unref_folios; `freeFolio` does the unqueue + buddy free).
 * Race-free against concurrent splits by construction: a split only runs with the refcount
 * frozen at its expected value (folio_ref_freeze), so it never changes under a put.
 */
export function folio_put(pages: PageArray, pfn: Pfn, freeFolio: (head: Pfn, order: number) => void): void {
  const head = page_folio(pages, pfn);
  const old = Atomics.sub(pages._count, head, 1);
  BUG_ON(old <= 0, `folio_put on folio ${head} with refcount ${old}`);
  if (old === 1) freeFolio(head, folio_order(pages, head));
}

/**
 * folio_ref_freeze: atomically turn the refcount from exactly `count` into 0, or fail. A
 * split runs only on a frozen folio, so no folio_get / folio_put can run under it (a
 * folio_try_get sees 0 and retries) — the folio-era replacement of compound_lock.
 */
export function folio_ref_freeze(pages: PageArray, head: Pfn, count: number): boolean {
  return Atomics.compareExchange(pages._count, head, count, 0) === count;
}
export function folio_ref_unfreeze(pages: PageArray, head: Pfn, count: number): void {
  BUG_ON(Atomics.load(pages._count, head) !== 0, `folio_ref_unfreeze on folio ${head} not frozen`);
  Atomics.store(pages._count, head, count);
}

/**
 * try_grab_folio for gup of `pfn`: a reference on the folio holding it, retrying while a
 * split has the folio frozen (the page is then a folio of its own once the split is done).
 */
export function try_grab_folio(pages: PageArray, pfn: Pfn): void {
  for (;;) {
    const head = page_folio(pages, pfn);
    if (folio_try_get(pages, head)) {
      if (page_folio(pages, pfn) === head) return;
      folio_put(pages, head, () => {
        throw new KernelBug(`try_grab_folio: folio ${head} freed under a racing split`);
      });
    }
  }
}

/**
 * The reference half of a split to order 0 (__split_folio_to_order + remap): with the
 * refcount frozen at `expected`, every page becomes an order-0 folio holding `perPage(k)`
 * references; the head is unfrozen last. The stress harness runs exactly this.
 */
export function __split_folio_refcount(pages: PageArray, head: Pfn, perPage: (k: number) => number): void {
  const order = folio_order(pages, head);
  const nr = 1 << order;
  const keep = Atomics.load(pages.flags, head) & ~(PG_head | PG_tail | PG_anon_exclusive);
  Atomics.store(pages.mapping, T1(head), 0);
  Atomics.store(pages.index, T1(head), 0);
  if (nr > 2) Atomics.store(pages.mapping, T2(head), 0);
  pages.clearFlag(T1(head), PG_partially_mapped);
  for (let k = nr - 1; k >= 1; k--) {
    const p = pfnAdd(head, k);
    Atomics.store(pages._count, p, perPage(k));
    Atomics.store(pages.private, p, 0);
    // PG_tail cleared: compound_head(p) is p from now on; PageAnonExclusive is per page
    Atomics.store(pages.flags, p, keep | (Atomics.load(pages.flags, p) & PG_anon_exclusive));
  }
  Atomics.store(pages.private, head, 0);
  pages.clearFlag(head, PG_head);
  folio_ref_unfreeze(pages, head, perPage(0));
}

// --- rmap (mm/rmap.c __folio_add_rmap / __folio_remove_rmap, CONFIG_PAGE_MAPCOUNT) --------

/** Deferred-split hook: __folio_remove_rmap found the folio partially mapped. */
export type DeferredSplitFn = (head: Pfn) => void;

/**
 * folio_add_new_anon_rmap for a whole large folio mapped by one PMD (RMAP_EXCLUSIVE):
 * entire and large mapcounts 0, _nr_pages_mapped ENTIRELY_MAPPED, NR_ANON_THPS + 1,
 * NR_ANON_MAPPED + nr pages. Also folio_add_lru_vma.
 */
export function folio_add_new_anon_rmap_pmd(pages: PageArray, st: VmStat, head: Pfn, vma: Vma, haddr: Hva): void {
  const nr = folio_nr_pages(pages, head);
  Atomics.store(pages.mapping, T1(head), 0);
  Atomics.store(pages.index, T1(head), 0);
  Atomics.store(pages.mapping, T2(head), ENTIRELY_MAPPED);
  pages.mapping[head] = vma.anon_vma!.id;
  pages.index[head] = pageIndex(haddr);
  pages.setFlag(head, PG_anon | PG_swapbacked | PG_uptodate | PG_lru);
  st.nr_anon_transparent_hugepages++;
  st.nr_anon_pages += nr;
}

/**
 * folio_add_new_anon_rmap for a whole large folio mapped by PTEs (an mTHP at
 * do_anonymous_page, RMAP_EXCLUSIVE): every page's _mapcount 0, _large_mapcount nr − 1,
 * _nr_pages_mapped nr, NR_ANON_MAPPED + nr (no NR_ANON_THPS: no PMD maps it). The rmap key
 * is the head's (`addr` is where the head is mapped). Also folio_add_lru_vma.
 */
export function folio_add_new_anon_rmap_ptes(pages: PageArray, st: VmStat, head: Pfn, vma: Vma, addr: Hva): void {
  const nr = folio_nr_pages(pages, head);
  for (let k = 0; k < nr; k++) Atomics.store(pages._mapcount, pfnAdd(head, k), 0);
  Atomics.store(pages.index, T1(head), nr - 1);
  Atomics.store(pages.mapping, T2(head), nr);
  pages.mapping[head] = vma.anon_vma!.id;
  pages.index[head] = pageIndex(addr);
  pages.setFlag(head, PG_anon | PG_swapbacked | PG_uptodate | PG_lru);
  st.nr_anon_pages += nr;
}

/** folio_add_anon_rmap_pmd / folio_dup_file_rmap_pmd at fork: one more PMD mapping. */
export function folio_add_anon_rmap_pmd(pages: PageArray, st: VmStat, head: Pfn): void {
  Atomics.add(pages.index, T1(head), 1);
  if (Atomics.add(pages.mapping, T1(head), 1) !== -1) return;
  const before = Atomics.add(pages.mapping, T2(head), ENTIRELY_MAPPED);
  st.nr_anon_transparent_hugepages++;
  st.nr_anon_pages += folio_nr_pages(pages, head) - (before & FOLIO_PAGES_MAPPED);
}

/** folio_add_anon_rmap_ptes for one page (or folio_dup_file_rmap_pte at fork): one more PTE mapping. */
export function folio_add_anon_rmap_pte(pages: PageArray, st: VmStat, pfn: Pfn): void {
  const head = page_folio(pages, pfn);
  BUG_ON(!pages.PageHead(head), `folio_add_anon_rmap_pte on small page ${pfn}`);
  Atomics.add(pages.index, T1(head), 1);
  if (Atomics.add(pages._mapcount, pfn, 1) !== -1) return;
  const before = Atomics.add(pages.mapping, T2(head), 1);
  if (before < ENTIRELY_MAPPED) st.nr_anon_pages++;
}

/**
 * folio_remove_rmap_pmd: a PMD no longer maps the folio. When it was the last PMD, the
 * pages no PTE maps leave NR_ANON_MAPPED; if some pages stay PTE-mapped the folio is now
 * partially mapped and goes on the deferred split queue.
 */
export function folio_remove_rmap_pmd(pages: PageArray, st: VmStat, head: Pfn, deferred: DeferredSplitFn): void {
  const large = Atomics.sub(pages.index, T1(head), 1);
  BUG_ON(large < 0, `folio_remove_rmap_pmd on unmapped folio ${head}`);
  if (Atomics.sub(pages.mapping, T1(head), 1) !== 0) return;
  const after = Atomics.sub(pages.mapping, T2(head), ENTIRELY_MAPPED) - ENTIRELY_MAPPED;
  const nr_pmdmapped = folio_nr_pages(pages, head);
  const nr = nr_pmdmapped - (after & FOLIO_PAGES_MAPPED);
  st.nr_anon_transparent_hugepages--;
  st.nr_anon_pages -= nr;
  if (nr && nr < nr_pmdmapped && !folio_test_partially_mapped(pages, head)) deferred(head);
}

/**
 * folio_remove_rmap_pte: a PTE no longer maps `pfn`, a page of a large folio. When the
 * page is now unmapped and the folio not entirely mapped, it leaves NR_ANON_MAPPED; if
 * other pages of the folio are still mapped, the folio is partially mapped: deferred split.
 */
export function folio_remove_rmap_pte(pages: PageArray, st: VmStat, pfn: Pfn, deferred: DeferredSplitFn): void {
  folio_remove_rmap_ptes(pages, st, [pfn], deferred);
}

/**
 * folio_remove_rmap_ptes: PTEs no longer map `pfns` (pages of large folios), removed as the
 * kernel's PTE batches (zap_present_ptes / folio_pte_batch) remove them: per folio, the
 * partially-mapped test is made once, after the whole batch — so unmapping all of a
 * folio's pages at once never queues it for deferred split.
 */
export function folio_remove_rmap_ptes(pages: PageArray, st: VmStat, pfns: readonly Pfn[], deferred: DeferredSplitFn): void {
  const touched = new Map<Pfn, number>();
  for (const pfn of pfns) {
    const head = page_folio(pages, pfn);
    const large = Atomics.sub(pages.index, T1(head), 1);
    BUG_ON(large < 0, `folio_remove_rmap_ptes on unmapped folio ${head}`);
    const old = Atomics.sub(pages._mapcount, pfn, 1);
    BUG_ON(old < 0, `folio_remove_rmap_ptes on unmapped page ${pfn}`);
    if (old !== 0) continue;
    const after = Atomics.sub(pages.mapping, T2(head), 1) - 1;
    if (after >= ENTIRELY_MAPPED) continue; // still mapped by a PMD: nothing leaves NR_ANON_MAPPED
    st.nr_anon_pages--;
    touched.set(head, after);
  }
  for (const [head, after] of touched) {
    if (folio_nr_pages_mapped(pages, head) > 0 && !folio_test_partially_mapped(pages, head)) deferred(head);
    void after;
  }
}

/** A PTE-mapped page of a large folio? (what the 6.x rmap paths must treat per folio) */
export function page_in_large_folio(pages: PageArray, pfn: Pfn): boolean {
  return (Atomics.load(pages.flags, pfn) & (PG_head | PG_tail)) !== 0;
}
