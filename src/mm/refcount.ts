/**
 * Page reference counting across compound heads and tails, as in Linux 2.6.38
 * (include/linux/mm.h get_page, mm/swap.c put_page/put_compound_page,
 * mm/huge_memory.c __split_huge_page_refcount).
 *
 * Everything here works on a PageArray whose fields live in a SharedArrayBuffer and uses
 * Atomics only, so worker threads may race on the same struct pages exactly as CPUs do
 * (the compound_lock stress, src/mm/stress/). compound_lock is a bit spinlock on
 * PG_compound_lock in the head's flags. The exported put_page and
 * __split_huge_page_refcount always take it; refcountWithLock(lock) builds the same two
 * functions over another CompoundLock, which is how the stress harness runs them without
 * the lock to show the race it closes.
 *
 * Freeing: a page whose _count reaches zero is handed to its PageArray's free callback
 * (registerFreePages: the buddy allocator's free on the main thread; anything a stress
 * test likes in a worker).
 */
import type { Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, pfnAdd } from '../util/address.ts';
import {
  type FreePagesFn,
  PageArray,
  PG_anon,
  PG_compound_lock,
  PG_dirty,
  PG_head,
  PG_lru,
  PG_referenced,
  PG_swapbacked,
  PG_tail,
  PG_uptodate,
} from './page.ts';

export type { FreePagesFn } from './page.ts';

/** Register who frees pages of `pages` (the buddy allocator's __free_pages). */
export function registerFreePages(pages: PageArray, fn: FreePagesFn): void {
  pages.free_pages = fn;
}

function freePages(pages: PageArray, pfn: Pfn, order: number): void {
  const fn = pages.free_pages;
  if (!fn) throw new Error(`put_page: page ${pfn} reached _count 0 but no free callback is registered`);
  fn(pfn, order);
}

/** BUG_ON / VM_BUG_ON: a broken kernel invariant (never a user error). */
export class KernelBug extends Error {
  constructor(msg: string) {
    super(`kernel BUG: ${msg}`);
    this.name = 'KernelBug';
  }
}
function BUG_ON(cond: boolean, msg: string): void {
  if (cond) throw new KernelBug(msg);
}

/** compound_lock(head): bit_spin_lock(PG_compound_lock, &head->flags). */
export function compound_lock(pages: PageArray, head: Pfn): void {
  const flags = pages.flags;
  // Test-and-set with Atomics.or; spin while another thread holds the bit.
  while (Atomics.or(flags, head, PG_compound_lock) & PG_compound_lock) {
    while (Atomics.load(flags, head) & PG_compound_lock) {
      /* cpu_relax() */
    }
  }
}

/** compound_unlock(head): bit_spin_unlock. */
export function compound_unlock(pages: PageArray, head: Pfn): void {
  Atomics.and(pages.flags, head, ~PG_compound_lock);
}

/** What put_compound_page and __split_huge_page_refcount serialize on. */
export interface CompoundLock {
  compound_lock(pages: PageArray, head: Pfn): void;
  compound_unlock(pages: PageArray, head: Pfn): void;
}

/** The kernel's compound_lock: the PG_compound_lock bit spinlock above. */
export const PG_COMPOUND_LOCK: CompoundLock = { compound_lock, compound_unlock };

/** get_page_unless_zero (atomic_inc_not_zero): take a reference unless the page is free. */
export function get_page_unless_zero(pages: PageArray, pfn: Pfn): boolean {
  const c = pages._count;
  for (;;) {
    const old = Atomics.load(c, pfn);
    if (old === 0) return false;
    if (Atomics.compareExchange(c, pfn, old, old + 1) === old) return true;
  }
}

/** put_page_testzero: drop one reference; true when it was the last. */
export function put_page_testzero(pages: PageArray, pfn: Pfn): boolean {
  const old = Atomics.sub(pages._count, pfn, 1);
  BUG_ON(old <= 0, `put_page_testzero on page ${pfn} with _count ${old}`);
  return old === 1;
}

/**
 * get_page: the caller already holds a reference that pins the page (for a tail: a
 * reference pinning the compound, so __split_huge_page_refcount cannot run under us).
 * A tail's reference is taken on both the tail and the head.
 */
export function get_page(pages: PageArray, pfn: Pfn): void {
  const tail = pages.PageTail(pfn);
  BUG_ON(Atomics.load(pages._count, pfn) < (tail ? 0 : 1), `get_page on page ${pfn} without a reference`);
  Atomics.add(pages._count, pfn, 1);
  if (tail) {
    const head = pages.first_page(pfn);
    BUG_ON(Atomics.load(pages._count, head) <= 0, `get_page on tail ${pfn} of a free head ${head}`);
    Atomics.add(pages._count, head, 1);
  }
}

/** __put_single_page: the last reference of an order-0 page is gone. */
function __put_single_page(pages: PageArray, pfn: Pfn): void {
  pages.clearFlag(pfn, PG_lru); // __page_cache_release
  freePages(pages, pfn, 0);
}

/** __put_compound_page: destroy_compound_page, then free the whole block. */
function __put_compound_page(pages: PageArray, head: Pfn): void {
  const order = Atomics.load(pages.private, head);
  pages.clearFlag(head, PG_lru);
  destroy_compound_page(pages, head, order);
  freePages(pages, head, order);
}

/** put_compound_page: put_page on a head or tail (mm/swap.c, 2.6.38). */
function put_compound_page(pages: PageArray, page: Pfn, lock: CompoundLock): void {
  if (pages.PageTail(page)) {
    // __split_huge_page_refcount can run under us: first_page may be stale.
    const head = pages.first_page(page);
    if (pages.PageTail(page) && get_page_unless_zero(pages, head)) {
      if (!pages.PageHead(head)) {
        // The head was split into a regular page before we pinned it (PageHead is
        // cleared after PageTail), so `page` is a regular page now too.
        BUG_ON(pages.PageTail(page), `tail ${page} of non-head ${head}`);
        if (put_page_testzero(pages, head)) __put_single_page(pages, head);
        if (put_page_testzero(pages, page)) __put_single_page(pages, page);
        return;
      }
      // Only lock a valid head that we pinned above.
      lock.compound_lock(pages, head);
      if (!pages.PageTail(page)) {
        // __split_huge_page_refcount ran before we got the lock.
        lock.compound_unlock(pages, head);
        BUG_ON(pages.PageHead(head), `split left head ${head} compound`);
        if (put_page_testzero(pages, head)) __put_single_page(pages, head);
        if (put_page_testzero(pages, page)) __put_single_page(pages, page);
        return;
      }
      // The split now waits on compound_lock: drop the pin from get_page_unless_zero
      // (it cannot be the last) and the tail's reference.
      BUG_ON(put_page_testzero(pages, head), `head ${head} freed under compound_lock`);
      BUG_ON(Atomics.load(pages._count, page) <= 0, `put_page on tail ${page} with _count 0`);
      Atomics.sub(pages._count, page, 1);
      lock.compound_unlock(pages, head);
      if (put_page_testzero(pages, head)) {
        if (pages.PageHead(head)) __put_compound_page(pages, head);
        else __put_single_page(pages, head);
      }
    } else {
      // The head is gone (freed after a split): the page is a regular page now.
      BUG_ON(pages.PageTail(page), `tail ${page} with a free head ${head}`);
      if (put_page_testzero(pages, page)) __put_single_page(pages, page);
    }
  } else if (put_page_testzero(pages, page)) {
    if (pages.PageHead(page)) __put_compound_page(pages, page);
    else __put_single_page(pages, page);
  }
}

/** put_page: drop a reference; frees the page (or compound page) at zero. */
export function put_page(pages: PageArray, pfn: Pfn): void {
  put_page_locking(pages, pfn, PG_COMPOUND_LOCK);
}

function put_page_locking(pages: PageArray, pfn: Pfn, lock: CompoundLock): void {
  if (pages.PageCompound(pfn)) put_compound_page(pages, pfn, lock);
  else if (put_page_testzero(pages, pfn)) __put_single_page(pages, pfn);
}

/** prep_compound_page: make a freshly allocated block of 2^order frames a compound page. */
export function prep_compound_page(pages: PageArray, head: Pfn, order: number): void {
  const nr = 1 << order;
  Atomics.store(pages.private, head, order);
  pages.setFlag(head, PG_head);
  for (let i = 1; i < nr; i++) {
    const t = pfnAdd(head, i);
    Atomics.store(pages._count, t, 0);
    Atomics.store(pages._mapcount, t, -1);
    Atomics.store(pages.private, t, head); // first_page
    Atomics.store(pages.flags, t, PG_tail);
  }
}

/** destroy_compound_page: back to plain frames before the block returns to the buddy. */
export function destroy_compound_page(pages: PageArray, head: Pfn, order: number): void {
  const nr = 1 << order;
  for (let i = 1; i < nr; i++) {
    const t = pfnAdd(head, i);
    BUG_ON(Atomics.load(pages._count, t) !== 0, `freeing compound ${head} with tail ${t} pinned`);
    Atomics.store(pages.flags, t, 0);
    Atomics.store(pages.private, t, 0);
  }
  pages.clearFlag(head, PG_head);
  Atomics.store(pages.private, head, 0);
}

/**
 * __split_huge_page_refcount: turn a THP into HPAGE_PMD_NR regular pages under
 * compound_lock(head). Caller holds a reference on the head and has marked every PMD
 * mapping it splitting (so no new gup can find a tail). Exact 2.6.38 arithmetic:
 *   head _count −= tail _count     (the tail keeps its own gup pins)
 *   tail _count += head mapcount + 1  (one per mapping, plus one dropped below)
 * then flags, _mapcount and the rmap key (mapping, index) are copied to every tail, the
 * compound state is cleared, and each tail is put_page'd once after the unlock (which
 * frees a tail nobody maps or pins).
 *
 * Returns nothing; `nr` lets tests use smaller compounds (default HPAGE_PMD_NR).
 */
export function __split_huge_page_refcount(pages: PageArray, head: Pfn, nr: number = HPAGE_PMD_NR): void {
  split_refcount_locking(pages, head, nr, PG_COMPOUND_LOCK);
}

function split_refcount_locking(pages: PageArray, head: Pfn, nr: number, lock: CompoundLock): void {
  BUG_ON(!pages.PageHead(head), `__split_huge_page_refcount on non-head ${head}`);
  lock.compound_lock(pages, head);
  const headMapcount = Atomics.load(pages._mapcount, head) + 1; // page_mapcount(head)
  const headMapping = Atomics.load(pages.mapping, head);
  let index = Atomics.load(pages.index, head);
  // Flags that the tails inherit (the kernel copies referenced/swapbacked/mlocked/
  // uptodate, sets dirty; PageAnon travels in page->mapping, a flag here; LRU via
  // lru_add_page_tail).
  const inherit = Atomics.load(pages.flags, head) & (PG_referenced | PG_swapbacked | PG_uptodate | PG_anon | PG_lru);
  for (let i = 1; i < nr; i++) {
    const t = pfnAdd(head, i);
    // tail _count cannot change here: put_page on a tail waits on compound_lock.
    const tc = Atomics.load(pages._count, t);
    const hc = Atomics.sub(pages._count, head, tc) - tc;
    BUG_ON(hc <= 0, `split: head ${head} _count ${hc} after removing tail ${t} pins`);
    Atomics.add(pages._count, t, headMapcount + 1);
    // Clearing PG_tail (the whole flags word) before touching first_page lets a racing
    // put_compound_page see a regular page.
    Atomics.store(pages.flags, t, inherit | PG_dirty);
    BUG_ON(Atomics.load(pages._mapcount, t) !== -1, `split: tail ${t} already mapped`);
    Atomics.store(pages._mapcount, t, headMapcount - 1);
    Atomics.store(pages.private, t, 0);
    Atomics.store(pages.mapping, t, headMapping);
    Atomics.store(pages.index, t, ++index);
  }
  // ClearPageCompound(head)
  Atomics.store(pages.private, head, 0);
  pages.clearFlag(head, PG_head);
  lock.compound_unlock(pages, head);
  for (let i = 1; i < nr; i++) {
    const t = pfnAdd(head, i);
    BUG_ON(Atomics.load(pages._count, t) <= 0, `split: tail ${t} with _count 0`);
    put_page_locking(pages, t, lock);
  }
}

/** put_page and __split_huge_page_refcount serialized by `lock` instead of PG_COMPOUND_LOCK. */
export interface LockedRefcount {
  put_page(pages: PageArray, pfn: Pfn): void;
  __split_huge_page_refcount(pages: PageArray, head: Pfn, nr?: number): void;
}

/**
 * The same reference counting over another CompoundLock: for the compound_lock stress,
 * which races it with and without a real lock. The host model never calls this.
 */
export function refcountWithLock(lock: CompoundLock): LockedRefcount {
  return {
    put_page: (pages, pfn) => put_page_locking(pages, pfn, lock),
    __split_huge_page_refcount: (pages, head, nr = HPAGE_PMD_NR) => split_refcount_locking(pages, head, nr, lock),
  };
}
