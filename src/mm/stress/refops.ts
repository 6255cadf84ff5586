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
 *
 * The folio variant (bindFolioRefOps) binds the 6.x host's code instead (src/mm/folio.ts):
 * gup takes a folio reference (try_grab_folio), put_page is folio_put on the head, and the
 * split freezes the refcount (folio_ref_freeze at the mapping's one reference — it waits
 * while pins are held, as split_folio would fail and be retried) and then runs
 * __split_folio_refcount. No compound_lock anywhere.
 */
import type { Pfn } from '../../util/address.ts';
import type { PageArray } from '../page.ts';
import { __split_folio_refcount, folio_put, folio_ref_freeze, try_grab_folio } from '../folio.ts';
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

/**
 * RefOps of the 6.x folio: a tail's reference is one on its folio; the split waits until
 * the refcount can be frozen at the PMD mapping's single reference, then gives every page
 * one reference (each page mapped once by a PTE after the split).
 */
export function bindFolioRefOps(pages: PageArray, onFree: FreeHook): RefOps {
  registerFreePages(pages, onFree);
  return {
    get_page: (pfn) => try_grab_folio(pages, pfn),
    put_page: (pfn) => folio_put(pages, pfn, onFree),
    __split_huge_page_refcount: (head) => {
      while (!folio_ref_freeze(pages, head, 1)) {
        /* split_folio: -EAGAIN while gup pins are held; the caller retries */
      }
      __split_folio_refcount(pages, head, () => 1);
    },
  };
}
