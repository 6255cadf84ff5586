/**
 * Per-size THP counters: /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats/*
 * of the 6.x kernel (mm/huge_memory.c mthp_stats, count_mthp_stat / mod_mthp_stat), one
 * set per folio order an anonymous folio can have (orders 2..9: THP_ORDERS_ALL_ANON
 * excludes orders 0 and 1, so there is no hugepages-8kB/enabled for anon memory).
 *
 * Which size's file an event lands in is the folio's order at the event:
 *  - anon_fault_alloc / anon_fault_fallback: the order tried at an anonymous fault
 *    (do_huge_pmd_anonymous_page for order 9, alloc_anon_folio for orders below);
 *    anon_fault_fallback_charge: a memcg charge failure (never here: no memcg);
 *  - swpout: a large folio written to swap whole (count_swpout_vm_event);
 *    swpout_fallback: folio_alloc_swap failed for it and it was split (shrink_folio_list);
 *  - split / split_failed: the order of the folio split (__folio_split);
 *  - split_deferred: queued on the deferred split list (deferred_split_folio);
 *  - nr_anon: anonymous large folios of the order that exist (+1 at
 *    folio_add_new_anon_rmap, −1 when freed or split); nr_anon_partially_mapped: those
 *    marked partially mapped on the deferred split queue.
 *
 * mod_mthp_stat ignores order 0 (and any order above PMD order), as the kernel's does, so
 * callers pass the folio's order unconditionally.
 */
import { HPAGE_PMD_NR } from '../util/address.ts';

/** The stats files modelled, by their sysfs names. */
export const MTHP_STAT_ITEMS = [
  'anon_fault_alloc',
  'anon_fault_fallback',
  'anon_fault_fallback_charge',
  'swpout',
  'swpout_fallback',
  'split',
  'split_failed',
  'split_deferred',
  'nr_anon',
  'nr_anon_partially_mapped',
] as const;
export type MthpStatItem = (typeof MTHP_STAT_ITEMS)[number];

/** PMD_ORDER on x86-64. */
const PMD_ORDER = Math.log2(HPAGE_PMD_NR);
/** The lowest anonymous mTHP order (THP_ORDERS_ALL_ANON excludes 0 and 1). */
export const MTHP_MIN_ANON_ORDER = 2;

/** The sysfs name of an order's size: 2 → '16kB', 9 → '2048kB'. */
export function mthpSizeName(order: number): string {
  return `${4 << order}kB`;
}

/** The anonymous orders with a hugepages-<size>kB/enabled file, lowest first (2..9). */
export const MTHP_ANON_ORDERS: readonly number[] = Array.from({ length: PMD_ORDER - MTHP_MIN_ANON_ORDER + 1 }, (_, i) => MTHP_MIN_ANON_ORDER + i);

/** Per-order counters (the kernel's per-cpu mthp_stats summed). */
export class MthpStats {
  /** stats[order][item]; orders 0..PMD_ORDER, order 0 and 1 never written. */
  private readonly stats: Record<MthpStatItem, number>[];

  constructor() {
    this.stats = Array.from({ length: PMD_ORDER + 1 }, () => Object.fromEntries(MTHP_STAT_ITEMS.map((k) => [k, 0])) as Record<MthpStatItem, number>);
  }

  /** mod_mthp_stat: add `delta` to `item` of `order` (no-op for order 0 or above PMD order). */
  mod_mthp_stat(order: number, item: MthpStatItem, delta: number): void {
    if (order <= 0 || order > PMD_ORDER) return;
    this.stats[order][item] += delta;
  }

  /** count_mthp_stat: one event of `item` for a folio of `order`. */
  count_mthp_stat(order: number, item: MthpStatItem): void {
    this.mod_mthp_stat(order, item, 1);
  }

  /** One counter now. */
  get(order: number, item: MthpStatItem): number {
    return this.stats[order]?.[item] ?? 0;
  }

  /** Every anonymous size's stats files: { '16kB': { anon_fault_alloc, … }, …, '2048kB': … }. */
  snapshot(): Record<string, Record<MthpStatItem, number>> {
    return Object.fromEntries(MTHP_ANON_ORDERS.map((o) => [mthpSizeName(o), { ...this.stats[o] }]));
  }
}
