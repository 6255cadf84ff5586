/**
 * Where the mm2 engineer's modules (khugepaged.ts, swap.ts, reclaim.ts) plug into the core
 * model without the core importing files it does not own. Each module calls
 * registerMmExtensions({...}) when imported (src/mm/index.ts imports them); the core
 * calls the hooks at the kernel's call sites:
 *
 *  - khugepaged_enter(mm, vma): do_huge_pmd_anonymous_page and madvise(MADV_HUGEPAGE), as
 *    2.6.38 (khugepaged_enter / khugepaged_enter_vma_merge).
 *  - khugepaged_fork / khugepaged_exit: fork() and exit_mmap().
 *  - khugepaged_scan(host), khugepaged_tick(host, ms): HostApi.khugepaged_scan and
 *    HostApi.advanceTime; khugepaged_enter is also called after a VMA merge that leaves
 *    an anon_vma (khugepaged_enter_vma_merge).
 *  - wakeup_kswapd(host): HostApi.advanceTime, before khugepaged_tick (kswapd runs on
 *    simulated time, between operations).
 *  - do_swap_page(...): handle_pte_fault on a swap PTE (a major fault).
 *  - swap_duplicate / free_swap_and_cache: fork and zap meeting a swap PTE.
 *  - reuse_swap_page(host, pfn): do_wp_page deciding whether to reuse a page (2.6.38
 *    counts swap references too); default: page_mapcount == 1.
 *  - reclaim(host, n): HostApi.reclaim; try_to_free_pages(host, n): direct reclaim when an
 *    order-0 allocation finds no free frame (the allocation is retried once after it).
 *  - host_init(host) / host_close(host) / swapInfo(host): per-host state (keep it in a
 *    WeakMap<Host, ...>) and meminfo's SwapTotal/SwapFree in pages.
 */
import type { Hva, Pfn } from '../util/address.ts';
import type { Host } from './host.ts';
import type { MmStruct } from './mm.ts';
import type { PteTable } from './pgtable.ts';
import type { Vma } from './vma.ts';

export interface MmExtensions {
  khugepaged_enter(mm: MmStruct, vma: Vma): void;
  khugepaged_fork(child: MmStruct, parent: MmStruct): void;
  khugepaged_exit(mm: MmStruct): void;
  khugepaged_scan(host: Host): void;
  khugepaged_tick(host: Host, ms: number): void;
  do_swap_page(mm: MmStruct, vma: Vma, addr: Hva, pte: PteTable, idx: number, write: boolean): void;
  swap_duplicate(host: Host, entry: number): void;
  free_swap_and_cache(host: Host, entry: number): void;
  reuse_swap_page(host: Host, pfn: Pfn): boolean;
  reclaim(host: Host, nrFrames: number): number;
  wakeup_kswapd(host: Host): number;
  try_to_free_pages(host: Host, nrFrames: number): number;
  host_init(host: Host): void;
  host_close(host: Host): void;
  swapInfo(host: Host): { totalPages: number; freePages: number };
}

export const mmExtensions: Partial<MmExtensions> = {};

export function registerMmExtensions(ext: Partial<MmExtensions>): void {
  Object.assign(mmExtensions, ext);
}
