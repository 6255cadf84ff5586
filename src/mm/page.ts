/**
 * struct page for every host frame, as compact typed arrays in one SharedArrayBuffer
 * (24 bytes per frame: six 32-bit fields), so that worker threads can race on the same
 * metadata with Atomics exactly like CPUs race on struct page.
 *
 * Field use follows the 2.6.38 kernel:
 *  - flags:      PG_* bits below.
 *  - _count:     references (get_page/put_page). 0 = free.
 *  - _mapcount:  page-table mappings − 1 (−1 = unmapped). For a THP the head's _mapcount
 *                counts huge PMD mappings; tails keep −1 until split.
 *  - private:    tail: first_page (PFN of the head). Head: compound order. Free buddy head:
 *                buddy order. PG_swapcache: swap slot. (The kernel spreads these over
 *                page->first_page, page[1].lru.prev and page->private.)
 *  - mapping:    anon rmap key: id of the owning anon_vma (mm), 0 = none. Free: next PFN
 *                in the buddy free list (+1, 0 = end).
 *  - index:      virtual page number (address >> 12) in the owning mm. Free: prev PFN in
 *                the buddy free list (+1, 0 = none).
 */
import { pfn as pfnOf, type Pfn } from '../util/address.ts';

export const PG_locked = 1 << 0;
export const PG_referenced = 1 << 1; // "young": accessed since last scan
export const PG_uptodate = 1 << 2;
export const PG_dirty = 1 << 3;
export const PG_lru = 1 << 4;
export const PG_head = 1 << 5;
export const PG_tail = 1 << 6;
export const PG_compound_lock = 1 << 7;
export const PG_anon = 1 << 8; // the kernel encodes this as PAGE_MAPPING_ANON in mapping
export const PG_swapcache = 1 << 9;
export const PG_buddy = 1 << 10; // free, head of a block in a buddy free list
export const PG_reserved = 1 << 11; // kernel page (EPT tables, deposited PTE tables...)
export const PG_swapbacked = 1 << 12;

const FIELDS = 6;
/** Bytes of metadata per host frame (bench/footprint.ts reports it; kept ≤ 24). */
export const STRUCT_PAGE_BYTES = FIELDS * 4;

/** Called when a page (order 0) or a compound page (its head, order > 0) drops to _count 0. */
export type FreePagesFn = (pfn: Pfn, order: number) => void;

/** struct page metadata for `nrFrames` frames, shareable with worker threads. */
export class PageArray {
  readonly nrFrames: number;
  readonly sab: SharedArrayBuffer;
  readonly flags: Int32Array;
  readonly _count: Int32Array;
  readonly _mapcount: Int32Array;
  readonly private: Int32Array;
  readonly mapping: Int32Array;
  readonly index: Int32Array;
  /**
   * Who takes back a page whose last reference is dropped (refcount.ts registerFreePages):
   * the buddy allocator of the host owning these frames. Per thread: a worker viewing the
   * same buffer sets its own.
   */
  free_pages: FreePagesFn | null = null;

  /** New zeroed metadata, or a view of an existing buffer (from another thread). */
  constructor(nrFrames: number, sab?: SharedArrayBuffer) {
    if (!Number.isInteger(nrFrames) || nrFrames <= 0 || nrFrames >= 2 ** 31) {
      throw new RangeError(`PageArray: frame count must be an integer in [1, 2^31), got ${nrFrames}`);
    }
    this.nrFrames = nrFrames;
    this.sab = sab ?? new SharedArrayBuffer(nrFrames * STRUCT_PAGE_BYTES);
    if (this.sab.byteLength < nrFrames * STRUCT_PAGE_BYTES) {
      throw new RangeError('PageArray: shared buffer too small for the frame count');
    }
    const f = (i: number) => new Int32Array(this.sab, i * nrFrames * 4, nrFrames);
    this.flags = f(0);
    this._count = f(1);
    this._mapcount = f(2);
    this.private = f(3);
    this.mapping = f(4);
    this.index = f(5);
    if (!sab) this._mapcount.fill(-1);
  }

  // Flag tests with the kernel's names. Flags change with Atomics (other threads may hold
  // compound_lock), so reads are atomic too.
  testFlag(pfn: Pfn, bit: number): boolean {
    return (Atomics.load(this.flags, pfn) & bit) !== 0;
  }
  setFlag(pfn: Pfn, bit: number): void {
    Atomics.or(this.flags, pfn, bit);
  }
  clearFlag(pfn: Pfn, bit: number): void {
    Atomics.and(this.flags, pfn, ~bit);
  }
  PageHead(pfn: Pfn): boolean {
    return this.testFlag(pfn, PG_head);
  }
  PageTail(pfn: Pfn): boolean {
    return this.testFlag(pfn, PG_tail);
  }
  PageCompound(pfn: Pfn): boolean {
    return (Atomics.load(this.flags, pfn) & (PG_head | PG_tail)) !== 0;
  }
  PageAnon(pfn: Pfn): boolean {
    return this.testFlag(pfn, PG_anon);
  }
  PageLRU(pfn: Pfn): boolean {
    return this.testFlag(pfn, PG_lru);
  }
  PageSwapCache(pfn: Pfn): boolean {
    return this.testFlag(pfn, PG_swapcache);
  }
  PageLocked(pfn: Pfn): boolean {
    return this.testFlag(pfn, PG_locked);
  }
  PageBuddy(pfn: Pfn): boolean {
    return this.testFlag(pfn, PG_buddy);
  }

  /** page->first_page of a tail: its head (atomic: a split may be clearing it). */
  first_page(tail: Pfn): Pfn {
    return pfnOf(Atomics.load(this.private, tail));
  }
  /** compound_head(): the head of a tail page, else the page itself. */
  compound_head(pfn: Pfn): Pfn {
    return this.PageTail(pfn) ? this.first_page(pfn) : pfn;
  }
  /** compound_order() of a head page (0 for a single page). */
  compound_order(pfn: Pfn): number {
    return this.PageHead(pfn) ? this.private[pfn] : 0;
  }
  page_count(pfn: Pfn): number {
    return Atomics.load(this._count, this.compound_head(pfn));
  }
  page_mapcount(pfn: Pfn): number {
    return Atomics.load(this._mapcount, pfn) + 1;
  }
}
