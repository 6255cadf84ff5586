/**
 * Binds the host model's real reference counting (src/mm/refcount.ts: get_page,
 * put_page, __split_huge_page_refcount) to one PageArray for the compound_lock stress.
 * The stress exercises exactly the code the host model runs; the only difference between
 * its two demonstrations is the CompoundLock handed to refcountWithLock: the kernel's bit
 * spinlock, or NO_COMPOUND_LOCK below (a kernel without the lock, which only this harness
 * ever builds).
 *
 * Every thread of a stress run binds its own RefOps over its own view of the shared page
 * array (the free callback belongs to that view).
 */
import type { Pfn } from '../../util/address.ts';
import type { PageArray } from '../page.ts';
import { get_page, PG_COMPOUND_LOCK, refcountWithLock, registerFreePages, type CompoundLock } from '../refcount.ts';

export interface RefOps {
  get_page(pfn: Pfn): void;
  put_page(pfn: Pfn): void;
  /** The refcount pass of split_huge_page on a THP head (the caller pinned it). */
  __split_huge_page_refcount(head: Pfn): void;
}

/** Called when a put drops a page's last reference. */
export type FreeHook = (pfn: Pfn, order: number) => void;

/** compound_lock that serializes nothing: the race the real lock closes, made visible. */
export const NO_COMPOUND_LOCK: CompoundLock = {
  compound_lock() {},
  compound_unlock() {},
};

/**
 * RefOps over `pages`, with compound_lock taken or not. A page reaching _count 0 goes to
 * `onFree` instead of a buddy allocator.
 */
export function bindRefOps(pages: PageArray, compoundLock: boolean, onFree: FreeHook): RefOps {
  registerFreePages(pages, onFree);
  const ref = refcountWithLock(compoundLock ? PG_COMPOUND_LOCK : NO_COMPOUND_LOCK);
  return {
    get_page: (pfn) => get_page(pages, pfn),
    put_page: (pfn) => ref.put_page(pages, pfn),
    __split_huge_page_refcount: (head) => ref.__split_huge_page_refcount(pages, head),
  };
}
