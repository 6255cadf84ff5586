/**
 * Page reclaim (mm/vmscan.c, 2.6.38, anonymous memory only): pick cold anonymous pages
 * and swap them out (swap.ts). HostApi.reclaim(n) and direct reclaim on a failed
 * order-0 allocation call shrink_anon directly; kswapd (balance_pgdat) runs on
 * simulated time when free frames are below HostConfig.min_free_frames and reclaims up
 * to the high watermark (min × 3/2, as the kernel's high = min + min/2).
 *
 * Page order: a CLOCK over frames in PFN order — the second-chance approximation of LRU.
 * A page whose mappings were referenced (young PTE / huge PMD, or PG_referenced) since the
 * hand last passed gets its young bits cleared and is skipped (page_referenced; the
 * kernel would activate it); an old one is reclaimed. Deterministic: the hand persists
 * per host. (The kernel keeps real LRU lists fed by lru_cache_add; the model keeps none,
 * so the clock stands in for the inactive anon list.)
 *
 * THPs: an old THP is split first (split_huge_page, thp_split) and its 512 pages, old
 * since the PMD was, are then swapped one by one. Pages pinned by gup are not reclaimed.
 *
 * One Reclaim per Host (host.vmscan — HostApi.reclaim(n) already names the method), built
 * in the Host constructor; the clock hand and kswapd's back-off are its fields.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, PAGE_SIZE, hvaAdd, pfn, pfnAdd } from '../util/address.ts';
import { ConfigError } from '../util/errors.ts';
import type { Host } from './host.ts';
import type { MmStruct } from './mm.ts';
import { PG_anon, PG_head, PG_lru, PG_referenced, PG_reserved, PG_tail } from './page.ts';
import { _PAGE_ACCESSED, pmd_index, pte_index } from './pgtable.ts';
import { rmap_walk_folio } from './rmap.ts';

/**
 * Optional secondary-MMU young-bit callbacks (2.6.38 mmu_notifier_clear_flush_young and
 * mmu_notifier_test_young): a secondary MMU (KVM's EPT, whose accessed bits the host
 * PTEs never see) may add them to the MmuNotifierOps it registers. The contract in
 * types.ts does not list them yet, so they are looked up by name.
 */
export interface MmuNotifierYoungOps {
  clear_flush_young?(mm: MmStruct, addr: Hva): boolean;
  test_young?(mm: MmStruct, addr: Hva): boolean;
}

/** mmu_notifier_clear_flush_young: did any secondary MMU access it since? (and forget it) */
export function mmu_notifier_clear_flush_young(mm: MmStruct, addr: Hva): boolean {
  let young = false;
  for (const o of mm.notifiers.ops as Set<MmuNotifierYoungOps>) if (o.clear_flush_young?.(mm, addr)) young = true;
  return young;
}

/** mmu_notifier_test_young: did any secondary MMU access it? (khugepaged; bits kept) */
export function mmu_notifier_test_young(mm: MmStruct, addr: Hva): boolean {
  for (const o of mm.notifiers.ops as Set<MmuNotifierYoungOps>) if (o.test_young?.(mm, addr)) return true;
  return false;
}

/**
 * page_referenced: test and clear the young bit of every PTE / huge PMD mapping the page
 * (and PG_referenced, and secondary MMUs' accessed bits). True when any was set.
 */
export function page_referenced(host: Host, pfn: Pfn): boolean {
  const pages = host.pages;
  let referenced = (pages.flags[pfn] & PG_referenced) !== 0;
  pages.clearFlag(pfn, PG_referenced);
  const huge = (pages.flags[pfn] & PG_head) !== 0;
  // A 6.x large folio may be mapped by PTEs too (an mTHP, or after split_huge_pmd): every
  // page of it counts (folio_referenced walks each PTE of the folio's range).
  const nr = huge ? 1 << pages.private[pfn] : 1;
  for (const { vma, start, end, addr } of rmap_walk_folio(host.anon, pages, pfn, nr)) {
    const pmd = vma.mm.pgd.pmd_table(start);
    if (!pmd) continue;
    const i = pmd_index(start);
    if (huge && pmd.huge[i] === pfn) {
      if (pmd.hbits[i] & _PAGE_ACCESSED) {
        pmd.hbits[i] &= ~_PAGE_ACCESSED;
        referenced = true;
      }
      if (mmu_notifier_clear_flush_young(vma.mm, start)) referenced = true;
      continue;
    }
    const t = pmd.pte[i];
    if (!t) continue;
    for (let a = start; a < end; a = hvaAdd(a, PAGE_SIZE)) {
      const j = pte_index(a);
      if (!t.pte_present(j) || t.pfn[j] !== pfn + (a - addr) / PAGE_SIZE) continue;
      if (t.bits[j] & _PAGE_ACCESSED) {
        t.bits[j] &= ~_PAGE_ACCESSED;
        referenced = true;
      }
      if (mmu_notifier_clear_flush_young(vma.mm, a)) referenced = true;
    }
  }
  return referenced;
}

/** kswapd's back-off after a sweep that freed nothing (the kernel's congestion_wait(HZ/10)). */
export const KSWAPD_BACKOFF_MS = 100;

/** High watermark kswapd reclaims up to (the kernel's high = min + min/2). */
export function high_wmark(host: Host): number {
  return host.min_free_frames + (host.min_free_frames >> 1);
}

/** Page reclaim of one host: the clock hand, kswapd's back-off, pgscan/pgsteal. */
export class Reclaim {
  /** The clock hand: next frame to look at. */
  hand: Pfn = pfn(0);
  /** Frames reclaimed so far (pgsteal) and pages looked at (pgscan), for reports. */
  pgsteal = 0;
  pgscan = 0;
  /**
   * Memory state and time when kswapd last freed nothing (all_unreclaimable): it does not
   * sweep again until something changed or KSWAPD_BACKOFF_MS passed (pins are released
   * silently), so advanceTime stays cheap on a host full of pinned memory.
   */
  unreclaimable: { state: string; at: number } | null = null;

  constructor(private readonly host: Host) {}

  /**
   * shrink_anon: reclaim up to `nrToReclaim` frames, at most two turns of the clock.
   * Returns frames freed.
   */
  shrink_anon(nrToReclaim: number): number {
    const host = this.host;
    if (!host.swap.device || nrToReclaim <= 0) return 0;
    const pages = host.pages;
    const n = host.nrFrames;
    let freed = 0;
    for (let budget = 2 * n; budget > 0 && freed < nrToReclaim; budget--) {
      const p = this.hand;
      this.hand = p + 1 >= n ? pfn(0) : pfnAdd(p, 1);
      const f = pages.flags[p];
      if (f & PG_tail || f & PG_reserved || !(f & PG_anon) || !(f & PG_lru)) continue;
      if (!(f & PG_head) && pages._mapcount[p] < 0) continue;
      if (f & PG_head && !host.policy.thp_mapped(p)) continue;
      this.pgscan++;
      if (f & PG_head) {
        const nr = 1 << pages.private[p];
        const skip = () => (this.hand = p + nr >= n ? pfn(0) : pfnAdd(p, nr)); // past its tails
        if (page_referenced(host, p)) {
          skip();
          continue;
        }
        if (host.policy.kernel === '6.x') {
          // shrink_folio_list: swapped out whole, or split and its pages come next
          const r = host.swap.shrink_large_folio(p);
          if (r === 'freed') {
            freed += nr;
            this.pgsteal += nr;
            skip();
          } else if (r === 'split') this.hand = p;
          else skip();
          continue;
        }
        // add_to_swap on a THP: split it first (2.6.38 split_huge_page, 6.x split_folio);
        // its pages come next on the clock (a 6.x split refused for a pin leaves it whole).
        host.policy.reclaim_split(p);
        if (pages.PageHead(p)) this.hand = p + HPAGE_PMD_NR >= n ? pfn(0) : pfnAdd(p, HPAGE_PMD_NR);
        else this.hand = p;
        continue;
      }
      if (page_referenced(host, p)) continue;
      const r = host.swap.pageout_anon_page(p);
      if (r === 'freed') {
        freed++;
        this.pgsteal++;
      } else if (r === 'no_swap') break; // swap full
    }
    return freed;
  }

  /**
   * shrink_slab: the registered shrinkers — under 6.x the deferred split queue
   * (deferred_split_scan) and the huge zero folio; 2.6.38 has none. Returns frames freed.
   */
  shrink_slab(): number {
    return this.host.policy.shrink_slab();
  }

  /** shrink_node: the anonymous LRU, then the shrinkers (as vmscan's shrink_node does). */
  private shrink_node(nr: number): number {
    const freed = this.shrink_anon(nr);
    return freed + (freed < nr ? this.shrink_slab() : 0);
  }

  /** HostApi.reclaim: reclaim `nr` frames now. */
  reclaim(nr: number): number {
    if (!Number.isInteger(nr) || nr < 0) throw new ConfigError(`reclaim: nrFrames must be an integer ≥ 0, got ${nr}`);
    return nr === 0 ? 0 : this.shrink_node(nr);
  }

  /** try_to_free_pages: direct reclaim, when an order-0 allocation finds no free frame. */
  try_to_free_pages(nr: number): number {
    return this.shrink_node(nr);
  }

  /**
   * kswapd: when free frames are below min_free_frames, reclaim until the high watermark.
   * Called on simulated time (HostApi.advanceTime, before khugepaged). Returns frames freed.
   */
  wakeup_kswapd(): number {
    const host = this.host;
    const free = host.nr_free_pages();
    const si = host.swap.device;
    if (free >= host.min_free_frames) return 0;
    const state = `${free}:${host.stat.nr_anon_pages}:${host.stat.nr_anon_transparent_hugepages}:${si?.inuse_pages ?? 0}:${host.stat.events.pswpin}`;
    const u = this.unreclaimable;
    if (u && u.state === state && host.now - u.at < KSWAPD_BACKOFF_MS) return 0;
    const freed = this.shrink_node(high_wmark(host) - free);
    this.unreclaimable = freed === 0 ? { state, at: host.now } : null;
    return freed;
  }
}
