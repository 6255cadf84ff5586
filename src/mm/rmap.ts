/**
 * Anonymous reverse mapping (mm/rmap.c, 2.6.38 anon_vma chains, simplified): a page's
 * `mapping` is the id of the anon_vma it was born in, its `index` the virtual page number
 * it was first mapped at. An anon_vma knows every VMA (in any mm: fork shares them) that
 * may map its pages, so split_huge_page, swap-out and collapse can find every PTE/PMD
 * mapping a page. Addresses never move (no mremap), so vma_address is index << 12.
 *
 * Also keeps NR_ANON_PAGES / NR_ANON_TRANSPARENT_HUGEPAGES as page_add_*_rmap and
 * page_remove_rmap do.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { pageIndex, pageIndexToHva } from '../util/address.ts';
import { PG_anon, PG_lru, PG_swapbacked, PG_uptodate, type PageArray } from './page.ts';
import type { VmStat } from './vmstat.ts';
import type { Vma } from './vma.ts';

export class AnonVma {
  readonly vmas = new Set<Vma>();
  constructor(readonly id: number) {}
}

/** Host-wide anon_vma registry (page->mapping holds the id). */
export class AnonVmaRegistry {
  private next = 1;
  readonly byId = new Map<number, AnonVma>();

  create(): AnonVma {
    const av = new AnonVma(this.next++);
    this.byId.set(av.id, av);
    return av;
  }
  /** unlink_anon_vmas: drop `vma` from every anon_vma of its chain. */
  unlink(vma: Vma): void {
    for (const av of vma.anon_vma_chain) {
      av.vmas.delete(vma);
      if (av.vmas.size === 0) this.byId.delete(av.id);
    }
    vma.anon_vma_chain = [];
    vma.anon_vma = null;
  }
  /** anon_vma_clone: `dst` (a split-off piece or fork child) may map what `src` maps. */
  clone(dst: Vma, src: Vma): void {
    dst.anon_vma_chain = [...src.anon_vma_chain];
    for (const av of dst.anon_vma_chain) av.vmas.add(dst);
  }
}

/** anon_vma_prepare: give the VMA an anon_vma for its new pages. */
export function anon_vma_prepare(reg: AnonVmaRegistry, vma: Vma): AnonVma {
  if (vma.anon_vma) return vma.anon_vma;
  const av = reg.create();
  av.vmas.add(vma);
  vma.anon_vma = av;
  vma.anon_vma_chain.push(av);
  return av;
}

function statInc(pages: PageArray, st: VmStat, pfn: Pfn, d: number): void {
  if (pages.PageHead(pfn)) st.nr_anon_transparent_hugepages += d;
  else st.nr_anon_pages += d;
}

/**
 * page_add_new_anon_rmap: first mapping of a freshly allocated anonymous page (4 KiB, or
 * the head of a THP at its 2 MiB aligned address). Also lru_cache_add.
 */
export function page_add_new_anon_rmap(pages: PageArray, st: VmStat, pfn: Pfn, vma: Vma, addr: Hva): void {
  Atomics.store(pages._mapcount, pfn, 0);
  pages.mapping[pfn] = vma.anon_vma!.id;
  pages.index[pfn] = pageIndex(addr);
  pages.setFlag(pfn, PG_anon | PG_swapbacked | PG_uptodate | PG_lru);
  statInc(pages, st, pfn, 1);
}

/**
 * page_add_anon_rmap (do_page_add_anon_rmap): map an existing anonymous page once more,
 * e.g. a page read back from swap. On its first mapping the rmap key is set from
 * `vma`/`addr` (__page_set_anon_rmap) when given.
 */
export function page_add_anon_rmap(pages: PageArray, st: VmStat, pfn: Pfn, vma?: Vma, addr?: Hva): void {
  if (Atomics.add(pages._mapcount, pfn, 1) !== -1) return;
  statInc(pages, st, pfn, 1);
  if (vma && addr !== undefined) {
    if (!vma.anon_vma) throw new Error('kernel BUG: page_add_anon_rmap into a VMA without anon_vma');
    pages.mapping[pfn] = vma.anon_vma.id;
    pages.index[pfn] = pageIndex(addr);
    pages.setFlag(pfn, PG_anon | PG_swapbacked);
  }
}

/** page_dup_rmap: fork copies a mapping. */
export function page_dup_rmap(pages: PageArray, pfn: Pfn): void {
  Atomics.add(pages._mapcount, pfn, 1);
}

/** page_remove_rmap: one page-table entry no longer maps the page. */
export function page_remove_rmap(pages: PageArray, st: VmStat, pfn: Pfn): void {
  const old = Atomics.sub(pages._mapcount, pfn, 1);
  if (old < 0) throw new Error(`kernel BUG: page_remove_rmap on unmapped page ${pfn}`);
  if (old === 0) statInc(pages, st, pfn, -1);
}

/** vma_address: where `vma` would map the page with this index, or null outside the VMA (-EFAULT). */
export function vma_address(index: number, vma: Vma): Hva | null {
  const a = pageIndexToHva(index);
  return a >= vma.start && a < vma.end ? a : null;
}

/** Every (vma, address) that may map the anonymous page `pfn` (page_lock_anon_vma + walk). */
export function rmap_walk(reg: AnonVmaRegistry, pages: PageArray, pfn: Pfn): { vma: Vma; addr: Hva }[] {
  const av = reg.byId.get(pages.mapping[pfn]);
  if (!av) return [];
  const out: { vma: Vma; addr: Hva }[] = [];
  for (const vma of av.vmas) {
    const a = vma_address(pages.index[pfn], vma);
    if (a !== null) out.push({ vma, addr: a });
  }
  return out;
}

/**
 * rmap_walk over a whole folio of `nr` pages whose head is `head`: every VMA that may map
 * some page of it (vma_address over the folio's range, as the kernel's page_vma_mapped_walk
 * does), with the part of the folio's range inside that VMA. A VMA holding only a tail's
 * address (after a munmap or mprotect split inside a PTE-mapped folio) is found too.
 */
export function rmap_walk_folio(reg: AnonVmaRegistry, pages: PageArray, head: Pfn, nr: number): { vma: Vma; start: Hva; end: Hva; addr: Hva }[] {
  const av = reg.byId.get(pages.mapping[head]);
  if (!av) return [];
  const addr = pageIndexToHva(pages.index[head]);
  const last = addr + nr * 4096;
  const out: { vma: Vma; start: Hva; end: Hva; addr: Hva }[] = [];
  for (const vma of av.vmas) {
    const start = Math.max(addr, vma.start) as Hva;
    const end = Math.min(last, vma.end) as Hva;
    if (start < end) out.push({ vma, start, end, addr });
  }
  return out;
}
