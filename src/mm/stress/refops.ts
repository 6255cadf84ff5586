/**
 * Binds the host model's real reference counting (src/mm/refcount.ts: get_page,
 * put_page, __split_huge_page_refcount, compound_lock) to one PageArray for the
 * compound_lock stress. The stress exercises exactly the code the host model runs;
 * only the compound_lock debug switch differs between the two demonstrations.
 *
 * The switch and the free callback are per thread (module state), so every thread of a
 * stress run binds its own RefOps.
 */
import type { Pfn } from '../../util/address.ts';
import type { PageArray } from '../page.ts';
import {
  __split_huge_page_refcount,
  get_page,
  put_page,
  registerFreePages,
  setCompoundLockEnabled,
} from '../refcount.ts';

export interface RefOps {
  get_page(pfn: Pfn): void;
  put_page(pfn: Pfn): void;
  /** The refcount pass of split_huge_page on a THP head (the caller pinned it). */
  __split_huge_page_refcount(head: Pfn): void;
}

/** Called when a put drops a page's last reference. */
export type FreeHook = (pfn: Pfn, order: number) => void;

/**
 * RefOps over `pages`, with compound_lock on or off for this thread. A page reaching
 * _count 0 goes to `onFree` instead of a buddy allocator.
 */
export function bindRefOps(pages: PageArray, compoundLock: boolean, onFree: FreeHook): RefOps {
  setCompoundLockEnabled(compoundLock);
  registerFreePages(pages, onFree);
  return {
    get_page: (pfn) => get_page(pages, pfn),
    put_page: (pfn) => put_page(pages, pfn),
    __split_huge_page_refcount: (head) => __split_huge_page_refcount(pages, head),
  };
}
