/**
 * The buddy allocator over host frames (mm/page_alloc.c in miniature): orders 0..MAX_ORDER-1
 * (0..10), one free list per order threaded through struct page (page.ts: a free block's
 * head has PG_buddy, private = order, mapping = next PFN + 1, index = prev PFN + 1),
 * split on allocation, merge with the buddy on free. Fragmentation is real: an order-9
 * request fails when no order ≥ 9 block is free, whatever the total free count.
 *
 * Deterministic: an allocation always takes the lowest-addressed free block of the
 * smallest order that fits (a per-order bitmap finds it; the lists stay the kernel's
 * structure and give O(1) unlinking when merging).
 *
 * Main thread only: the free lists are not protected against concurrent frees.
 */
import { pfn as pfnOf, type Pfn } from '../util/address.ts';
import { PageArray, PG_buddy } from './page.ts';
import { KernelBug } from './refcount.ts';

export const MAX_ORDER = 11;

export class BuddyAllocator {
  readonly pages: PageArray;
  /** Free block heads per order: PFN + 1 of the list head, 0 = empty. */
  private readonly freeHead = new Int32Array(MAX_ORDER);
  /** free_area[order].nr_free */
  readonly nr_free = new Int32Array(MAX_ORDER);
  /** One bit per order-aligned block index: set when that block is free at that order. */
  private readonly bits: Uint32Array[] = [];
  /** Lowest word index that may hold a set bit, per order. */
  private readonly hint = new Int32Array(MAX_ORDER);
  private freeFrames = 0;

  /** A buddy over `pages`, with every frame free (blocks as large as alignment allows). */
  constructor(pages: PageArray) {
    this.pages = pages;
    for (let o = 0; o < MAX_ORDER; o++) {
      this.bits.push(new Uint32Array(Math.ceil((pages.nrFrames >>> o) / 32) + 1));
    }
    // Hand every frame to the free lists in maximal aligned blocks, lowest first.
    let p = 0;
    while (p < pages.nrFrames) {
      let o = MAX_ORDER - 1;
      while (o > 0 && (p % (1 << o) !== 0 || p + (1 << o) > pages.nrFrames)) o--;
      this.addFree(p, o);
      p += 1 << o;
    }
  }

  /** Number of free frames (all orders). */
  nr_free_pages(): number {
    return this.freeFrames;
  }

  /** Internal frame numbers are plain indexes into the struct page arrays. */
  private addFree(pfn: number, order: number): void {
    const pg = this.pages;
    pg.flags[pfn] = PG_buddy;
    pg._count[pfn] = 0;
    pg._mapcount[pfn] = -1;
    pg.private[pfn] = order;
    const next = this.freeHead[order];
    pg.mapping[pfn] = next;
    pg.index[pfn] = 0;
    if (next !== 0) pg.index[next - 1] = pfn + 1;
    this.freeHead[order] = pfn + 1;
    this.nr_free[order]++;
    const bi = pfn >>> order;
    this.bits[order][bi >>> 5] |= 1 << (bi & 31);
    if (bi >>> 5 < this.hint[order]) this.hint[order] = bi >>> 5;
    this.freeFrames += 1 << order;
  }

  private delFree(pfn: number, order: number): void {
    const pg = this.pages;
    const next = pg.mapping[pfn];
    const prev = pg.index[pfn];
    if (prev !== 0) pg.mapping[prev - 1] = next;
    else this.freeHead[order] = next;
    if (next !== 0) pg.index[next - 1] = prev;
    pg.flags[pfn] = 0;
    pg.private[pfn] = 0;
    pg.mapping[pfn] = 0;
    pg.index[pfn] = 0;
    this.nr_free[order]--;
    const bi = pfn >>> order;
    this.bits[order][bi >>> 5] &= ~(1 << (bi & 31));
    this.freeFrames -= 1 << order;
  }

  /** The lowest free block at exactly `order`, or −1. */
  private lowestFree(order: number): number {
    const b = this.bits[order];
    for (let w = this.hint[order]; w < b.length; w++) {
      const v = b[w];
      if (v !== 0) {
        this.hint[order] = w;
        return ((w << 5) + (31 - Math.clz32(v & -v))) << order;
      }
    }
    this.hint[order] = b.length;
    return -1;
  }

  /**
   * __alloc_pages: a block of 2^order frames, or null when no block that large is free.
   * The head comes back with _count 1 (set_page_refcounted); other frames _count 0.
   */
  alloc_pages(order: number): Pfn | null {
    if (!(order >= 0 && order < MAX_ORDER)) throw new RangeError(`alloc_pages: bad order ${order}`);
    let o = order;
    let pfn = -1;
    for (; o < MAX_ORDER; o++) {
      if (this.nr_free[o] === 0) continue;
      pfn = this.lowestFree(o);
      if (pfn >= 0) break;
    }
    if (pfn < 0) return null;
    this.delFree(pfn, o);
    // expand(): give the upper halves back, keep the lowest piece.
    while (o > order) {
      o--;
      this.addFree(pfn + (1 << o), o);
    }
    this.pages._count[pfn] = 1;
    this.pages._mapcount[pfn] = -1;
    return pfnOf(pfn);
  }

  /** __free_pages_ok: return a block (every frame _count 0, plain flags) and merge buddies. */
  free_pages(pfn: Pfn, order: number): void {
    const pg = this.pages;
    if (pfn % (1 << order) !== 0 || pfn + (1 << order) > pg.nrFrames) {
      throw new KernelBug(`free_pages: block ${pfn} order ${order} misaligned or out of range`);
    }
    for (let i = 0; i < 1 << order; i++) {
      const p = pfn + i;
      if (pg.flags[p] & PG_buddy) throw new KernelBug(`free_pages: double free of frame ${p}`);
      if (Atomics.load(pg._count, p) !== 0) throw new KernelBug(`free_pages: frame ${p} still has _count ${pg._count[p]}`);
      pg.flags[p] = 0;
      pg._mapcount[p] = -1;
      pg.private[p] = 0;
      pg.mapping[p] = 0;
      pg.index[p] = 0;
    }
    let p = pfn as number;
    let o = order;
    while (o < MAX_ORDER - 1) {
      const buddy = p ^ (1 << o);
      if (buddy + (1 << o) > pg.nrFrames) break;
      if (!(pg.flags[buddy] & PG_buddy) || pg.private[buddy] !== o) break;
      this.delFree(buddy, o);
      p = Math.min(p, buddy);
      o++;
    }
    this.addFree(p, o);
  }

  /** Is `pfn` the head of a free block? Its order, else −1. */
  freeOrder(pfn: Pfn): number {
    return this.pages.flags[pfn] & PG_buddy ? this.pages.private[pfn] : -1;
  }

  /** Every free block as [pfn, order], walking the lists (for invariants and reports). */
  *freeBlocks(): Generator<[Pfn, number]> {
    for (let o = 0; o < MAX_ORDER; o++) {
      for (let q = this.freeHead[o]; q !== 0; q = this.pages.mapping[q - 1]) yield [pfnOf(q - 1), o];
    }
  }

  /** Free-list heads per order as listed (for invariant cross-checks). */
  listCount(order: number): number {
    let n = 0;
    for (let q = this.freeHead[order]; q !== 0; q = this.pages.mapping[q - 1]) n++;
    return n;
  }
}
