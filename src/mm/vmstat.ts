/**
 * /proc/vmstat event counters and zone page states with the kernel's names, and
 * /proc/meminfo in kB as 2.6.38 computes it (AnonPages includes THPs:
 * NR_ANON_PAGES + NR_ANON_TRANSPARENT_HUGEPAGES * HPAGE_PMD_NR).
 *
 * Note: the thp_* events were added in 2.6.39 (Andi Kleen's "add THP stats"); 2.6.38 only
 * had nr_anon_transparent_hugepages. The model counts them with 2.6.39's placement.
 */
import { HPAGE_PMD_NR } from '../util/address.ts';
import { MthpStats } from './mthp-stats.ts';

export const VM_EVENTS = [
  'pgfault',
  'pgmajfault',
  'pswpin',
  'pswpout',
  'thp_fault_alloc',
  'thp_fault_fallback',
  'thp_collapse_alloc',
  'thp_collapse_alloc_failed',
] as const;
/** split_huge_page's event, which Linux 6.x renamed thp_split_page (kept only on a 2.6.38 host). */
export const VM_EVENTS_2638 = ['thp_split'] as const;
/** The THP events a Linux 6.x /proc/vmstat has besides VM_EVENTS (kept only on a 6.x host). */
export const VM_EVENTS_6X = [
  'thp_split_pmd',
  'thp_deferred_split_page',
  'thp_underused_split_page',
  'thp_split_page',
  'thp_split_page_failed',
  'thp_zero_page_alloc',
  'thp_zero_page_alloc_failed',
  'thp_scan_exceed_none_pte',
  'thp_scan_exceed_swap_pte',
  'thp_scan_exceed_share_pte',
  'thp_swpout',
  'thp_swpout_fallback',
] as const;
export type VmEvent = (typeof VM_EVENTS)[number] | (typeof VM_EVENTS_2638)[number] | (typeof VM_EVENTS_6X)[number];

export class VmStat {
  readonly events: Record<VmEvent, number>;
  /** NR_ANON_PAGES: 4 KiB anonymous pages mapped (not counting THPs). */
  nr_anon_pages = 0;
  /** NR_ANON_TRANSPARENT_HUGEPAGES */
  nr_anon_transparent_hugepages = 0;
  /** The per-size counters of hugepages-<size>kB/stats (6.x; mthp-stats.ts). */
  readonly mthp = new MthpStats();

  /** `modern`: a 6.x host, whose /proc/vmstat has VM_EVENTS_6X instead of VM_EVENTS_2638. */
  constructor(modern: boolean = false) {
    this.events = Object.fromEntries([...VM_EVENTS, ...(modern ? VM_EVENTS_6X : VM_EVENTS_2638)].map((e) => [e, 0])) as Record<VmEvent, number>;
  }

  /** count_vm_event / count_vm_events */
  count_vm_event(e: VmEvent, n: number = 1): void {
    this.events[e] += n;
  }

  /** /proc/vmstat */
  snapshot(nrFree: number): Record<string, number> {
    return {
      nr_free_pages: nrFree,
      nr_anon_pages: this.nr_anon_pages,
      nr_anon_transparent_hugepages: this.nr_anon_transparent_hugepages,
      ...this.events,
    };
  }

  /** /proc/meminfo, kB */
  meminfo(totalFrames: number, freeFrames: number, swapTotalPages: number, swapFreePages: number, anonPages: number): Record<string, number> {
    const K = (pages: number) => pages * 4;
    return {
      MemTotal: K(totalFrames),
      MemFree: K(freeFrames),
      AnonPages: K(anonPages), // the policy's: 2.6.38 adds THPs to NR_ANON_PAGES; 6.x's NR_ANON_MAPPED has them
      AnonHugePages: K(this.nr_anon_transparent_hugepages * HPAGE_PMD_NR),
      SwapTotal: K(swapTotalPages),
      SwapFree: K(swapFreePages),
    };
  }
}
