/**
 * Multi-size THP for anonymous memory (Linux 6.8+, the 6.x policy): which folio orders a
 * fault may use (include/linux/huge_mm.h thp_vma_allowable_orders,
 * thp_vma_suitable_order(s)) and the choice of order at a fault (mm/memory.c
 * alloc_anon_folio). The PMD order keeps its own path (do_huge_pmd_anonymous_page); the
 * orders below it (16 KiB … 1 MiB) are PTE-mapped large folios.
 *
 * The rules, as 6.18 has them:
 *  - each size has hugepages-<size>kB/enabled: always, madvise (the VMA has VM_HUGEPAGE),
 *    inherit (follow the top-level enabled: always, or madvise with VM_HUGEPAGE) or never;
 *    VM_NOHUGEPAGE allows nothing. Default: 2048kB inherit, every other size never.
 *  - only a write fault allocates (a read fault maps the zero page: do_anonymous_page);
 *  - an order is suitable when its naturally aligned range around the address lies inside
 *    the VMA; among the allowed, suitable orders, the highest whose range is all pte_none
 *    is chosen, and lower orders are tried only if its allocation fails;
 *  - each failed allocation counts anon_fault_fallback for its order and tries the next
 *    lower allowed order; after the lowest, a single 4 KiB page (which counts nothing);
 *  - anon_fault_alloc is counted for the order mapped (do_anonymous_page).
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, alignDown } from '../util/address.ts';
import { mthpOrder, MTHP_SIZES, type ThpKnobs } from './config.ts';
import type { Host } from './host.ts';
import { pte_index, type PteTable } from './pgtable.ts';
import { VM_HUGEPAGE, VM_NOHUGEPAGE, type Vma } from './vma.ts';

const PMD_ORDER = Math.log2(HPAGE_PMD_NR);
/** BIT(order) as a mask; orders stay ≤ 9, so plain numbers are exact. */
const BIT = (order: number) => 1 << order;

/**
 * thp_vma_allowable_orders(vma, vm_flags, TVA_PAGEFAULT, orders) for an anonymous VMA:
 * the subset of `orders` (a bit mask) the per-size knobs allow for this VMA.
 */
export function thp_vma_allowable_orders(k: ThpKnobs, vma: Vma, orders: number): number {
  if (vma.flags & VM_NOHUGEPAGE) return 0;
  const sizes = k.sizes;
  if (!sizes) return 0; // 2.6.38 has no per-size knobs
  const madvised = (vma.flags & VM_HUGEPAGE) !== 0;
  const globalAlways = k.enabled === 'always';
  const globalEnabled = k.enabled !== 'never';
  let mask = 0;
  for (const s of MTHP_SIZES) {
    const m = sizes[s];
    const o = mthpOrder(s);
    // huge_anon_orders_always | _madvise (VM_HUGEPAGE) | _inherit (hugepage_global_always, or VM_HUGEPAGE and hugepage_global_enabled)
    if (m === 'always' || (m === 'madvise' && madvised) || (m === 'inherit' && (globalAlways || (madvised && globalEnabled)))) mask |= BIT(o);
  }
  return orders & mask;
}

/** thp_vma_suitable_order: the naturally aligned 2^order-page range around `addr` lies inside the VMA. */
export function thp_vma_suitable_order(vma: Vma, addr: Hva, order: number): boolean {
  const size = PAGE_SIZE << order;
  const haddr = alignDown(addr, size);
  return haddr >= vma.start && haddr + size <= vma.end;
}

/** thp_vma_suitable_orders: the orders of `orders` that are suitable at `addr`. */
export function thp_vma_suitable_orders(vma: Vma, addr: Hva, orders: number): number {
  let out = 0;
  for (let o = 1; o <= PMD_ORDER; o++) if (orders & BIT(o) && thp_vma_suitable_order(vma, addr, o)) out |= BIT(o);
  return out;
}

/** highest_order: the highest set bit of a non-empty mask. */
export function highest_order(orders: number): number {
  return 31 - Math.clz32(orders);
}

/** next_order: drop `prev` from the mask, return the next highest (or 0 when none is left). */
function next_order(orders: { mask: number }, prev: number): number {
  orders.mask &= ~BIT(prev);
  return orders.mask ? highest_order(orders.mask) : 0;
}

/** pte_range_none: every one of `nr` PTEs from index `j` is none. */
export function pte_range_none(t: PteTable, j: number, nr: number): boolean {
  for (let k = 0; k < nr; k++) if (!t.pte_none(j + k)) return false;
  return true;
}

/**
 * alloc_anon_folio's choice of order at a write fault at `addr` whose PTE table is `t`:
 * allocates through `alloc(order)` (a large folio's head, or null when the buddy has no
 * block of that order) from the highest allowed, suitable order whose range is all
 * pte_none, falling back order by order (anon_fault_fallback per failed order). Returns
 * the folio's head and order, or null when the 4 KiB path should allocate one page.
 */
export function alloc_anon_folio(host: Host, vma: Vma, addr: Hva, t: PteTable, alloc: (order: number) => Pfn | null): { folio: Pfn; order: number } | null {
  const orders = { mask: thp_vma_suitable_orders(vma, addr, thp_vma_allowable_orders(host.knobs, vma, BIT(PMD_ORDER) - 1)) };
  if (!orders.mask) return null;
  // The highest order whose aligned range is all pte_none; every lower one then is too.
  let order = highest_order(orders.mask);
  while (orders.mask) {
    const start = alignDown(addr, PAGE_SIZE << order);
    if (pte_range_none(t, pte_index(start), 1 << order)) break;
    order = next_order(orders, order);
  }
  while (orders.mask) {
    const folio = alloc(order);
    if (folio !== null) return { folio, order };
    host.stat.mthp.count_mthp_stat(order, 'anon_fault_fallback');
    order = next_order(orders, order);
  }
  return null;
}
