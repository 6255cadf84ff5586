/**
 * The reference-counting primitives the compound_lock stress drives, bound to one
 * PageArray. TEMPORARY stand-in following 2.6.38 mm/swap.c put_compound_page and
 * mm/huge_memory.c __split_huge_page_refcount, until the mm engineer's src/mm/refcount.ts
 * lands; then this file becomes a thin adapter over it.
 */
import { HPAGE_PMD_NR, type Pfn } from '../../util/address.ts';
import { PG_compound_lock, PG_head, PG_tail, type PageArray } from '../page.ts';

export interface RefOps {
  get_page(pfn: Pfn): void;
  put_page(pfn: Pfn): void;
  /** The refcount pass of split_huge_page on a THP head (the caller pinned it). */
  __split_huge_page_refcount(head: Pfn): void;
}

/** Called when a put drops a page's last reference (__put_single_page / __put_compound_page). */
export type FreeHook = (pfn: Pfn) => void;

export function bindRefOps(pages: PageArray, compoundLock: boolean, onFree: FreeHook): RefOps {
  const flags = pages.flags;
  const count = pages._count;

  const lock = (head: Pfn) => {
    if (!compoundLock) return;
    while ((Atomics.or(flags, head, PG_compound_lock) & PG_compound_lock) !== 0) {
      while ((Atomics.load(flags, head) & PG_compound_lock) !== 0) {
        /* bit_spin_lock: spin reading until it looks free */
      }
    }
  };
  const unlock = (head: Pfn) => {
    if (compoundLock) Atomics.and(flags, head, ~PG_compound_lock);
  };
  const put_page_testzero = (p: Pfn) => Atomics.sub(count, p, 1) === 1;
  const get_page_unless_zero = (p: Pfn) => {
    for (;;) {
      const c = Atomics.load(count, p);
      if (c === 0) return false;
      if (Atomics.compareExchange(count, p, c, c + 1) === c) return true;
    }
  };
  const isTail = (p: Pfn) => (Atomics.load(flags, p) & PG_tail) !== 0;

  function get_page(p: Pfn): void {
    Atomics.add(count, p, 1);
    // Safe only because __split_huge_page_refcount cannot run while the caller pins it.
    if (isTail(p)) Atomics.add(count, Atomics.load(pages.private, p), 1);
  }

  function put_compound_page(p: Pfn): void {
    const head = Atomics.load(pages.private, p) as Pfn;
    if (isTail(p) && get_page_unless_zero(head)) {
      if ((Atomics.load(flags, head) & PG_head) === 0) {
        // the split finished before we looked at the head: both are single pages now
        if (put_page_testzero(head)) onFree(head);
        if (put_page_testzero(p)) onFree(p);
        return;
      }
      lock(head);
      if (!isTail(p)) {
        // __split_huge_page_refcount ran before us
        unlock(head);
        if (put_page_testzero(head)) onFree(head);
        if (put_page_testzero(p)) onFree(p);
        return;
      }
      // split is blocked on compound_lock: drop the get_page_unless_zero reference...
      Atomics.sub(count, head, 1);
      // ...and the gup pin, on the tail and the head.
      Atomics.sub(count, p, 1);
      unlock(head);
      if (put_page_testzero(head)) onFree(head);
      return;
    }
    // head was a dangling pointer: the split already made p a single page
    if (put_page_testzero(p)) onFree(p);
  }

  function put_page(p: Pfn): void {
    if (isTail(p)) put_compound_page(p);
    else if (put_page_testzero(p)) onFree(p);
  }

  function __split_huge_page_refcount(head: Pfn): void {
    lock(head);
    const mapcount = Atomics.load(pages._mapcount, head) + 1;
    for (let i = 1; i < HPAGE_PMD_NR; i++) {
      const t = (head + i) as Pfn;
      // tail _count cannot change under compound_lock: only gup pins live there
      Atomics.sub(count, head, Atomics.load(count, t));
      Atomics.add(count, t, mapcount + 1);
      Atomics.store(pages._mapcount, t, Atomics.load(pages._mapcount, head));
      Atomics.store(pages.mapping, t, Atomics.load(pages.mapping, head));
      Atomics.store(pages.index, t, Atomics.load(pages.index, head) + i);
      Atomics.and(flags, t, ~PG_tail);
    }
    Atomics.and(flags, head, ~PG_head);
    Atomics.store(pages.private, head, 0);
    unlock(head);
    for (let i = 1; i < HPAGE_PMD_NR; i++) put_page((head + i) as Pfn);
  }

  return { get_page, put_page, __split_huge_page_refcount };
}
