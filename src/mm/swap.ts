/**
 * Swap (mm/swapfile.c, mm/swap_state.c, mm/page_io.c, the swap half of mm/memory.c and
 * mm/rmap.c try_to_unmap, as in 2.6.38): one swap device of fixed size backed by a real
 * file, a slot allocator with per-slot use counts (swap_map), the swap cache (PG_swapcache
 * with the slot in page->private), swap-out of one 4 KiB anonymous page and swap-in as a
 * major fault. THPs never get here whole: reclaim.ts splits them first (2.6.38's swap
 * cache holds 4 KiB pages only).
 *
 * A swap PTE is a not-present PTE with _PAGE_SWP whose pfn field holds the slot (the
 * kernel's swp_entry_t offset; one device, so no type field). Slot 0 holds the swap
 * header ("SWAPSPACE2", as mkswap writes it), so SwapTotal is one page less than the file.
 *
 * Deviation (documented): after swap-in, or when a slot's last swap PTE goes away, the
 * page leaves the swap cache as soon as no other swap PTE needs the slot — the kernel
 * keeps it cached unless vm_swap_full(); keeping it would only save a rewrite of clean
 * pages, which this model does not track.
 *
 * One Swap per Host (host.swap), built in the Host constructor: its device (a SwapInfo,
 * or null when HostConfig.swap gives none) is a field; the fault, zap, fork and reclaim
 * paths call its methods where the kernel calls the functions of the same names.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, rmdirSync, unlinkSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hva, Pfn } from '../util/address.ts';
import { PAGE_SIZE, hvaAdd, pageIndex, pfnAdd } from '../util/address.ts';
import { HugevisorError } from '../util/errors.ts';
import type { Host } from './host.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import { PG_anon, PG_locked, PG_lru, PG_swapbacked, PG_swapcache, PG_uptodate } from './page.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_SPECIAL, _PAGE_SWP, pmd_index, pte_index, type PteTable } from './pgtable.ts';
import { get_page, KernelBug, put_page } from './refcount.ts';
import { page_add_anon_rmap, page_remove_rmap, rmap_walk, rmap_walk_folio } from './rmap.ts';
import { SwapClusters } from './swap-cluster.ts';
import { folio_mapcount, folio_mapped, folio_order, folio_ref_count, folio_test_partially_mapped } from './folio.ts';
import { VM_WRITE, type Vma } from './vma.ts';

const HPAGE_PMD_ORDER = 9;

/** One swap device (struct swap_info_struct). */
export class SwapInfo {
  readonly path: string;
  /** The fresh temp dir holding the file (removed on close), or null for a given path. */
  private readonly dir: string | null;
  private fd: number;
  /** Slots in the file, header included. */
  readonly max: number;
  /** Per slot: number of swap PTEs referencing it (the kernel's swap_map count). */
  readonly swap_map: Int32Array;
  /** The swap cache: slot → page holding its data (PG_swapcache, page->private = slot). */
  readonly cache = new Map<number, Pfn>();
  /** Slots allocated (counted or cached), header excluded. */
  inuse_pages = 0;
  /** Next-fit cursor (si->cluster_next) of the 2.6.38 allocator. */
  private cluster_next = 1;
  /** The 6.x cluster allocator (swap-cluster.ts), or null for 2.6.38's next-fit scan. */
  readonly clusters: SwapClusters | null;
  /** /proc/swaps Type: 'partition' is SWP_BLKDEV. */
  readonly type: 'file' | 'partition';

  /**
   * `bytes`, `path` and `type` as config.ts swapConfigSchema accepts them (bytes > 0 here);
   * `clustered`: allocate slots by clusters as the 6.x kernel does.
   */
  constructor(bytes: number, path?: string, type: 'file' | 'partition' = 'file', clustered = false) {
    this.dir = path === undefined ? mkdtempSync(join(tmpdir(), 'hugevisor-swap-')) : null;
    this.path = path ?? join(this.dir!, 'swapfile');
    try {
      // 'wx+': never clobber an existing file; it is removed again on close.
      this.fd = openSync(this.path, 'wx+', 0o600);
      ftruncateSync(this.fd, bytes);
    } catch (e) {
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
      const why = (e as NodeJS.ErrnoException).code === 'EEXIST' ? 'the file already exists' : (e as Error).message;
      throw new HugevisorError('EIO', `swap.path: cannot create swap file ${this.path}: ${why}`);
    }
    this.max = bytes / PAGE_SIZE;
    this.swap_map = new Int32Array(this.max);
    this.type = type;
    this.clusters = clustered ? new SwapClusters(this.max, (slot) => this.used(slot), type === 'partition') : null;
    // mkswap's header page: the signature in the last 10 bytes of page 0.
    const hdr = Buffer.alloc(PAGE_SIZE);
    hdr.write('SWAPSPACE2', PAGE_SIZE - 10, 'latin1');
    writeSync(this.fd, hdr, 0, PAGE_SIZE, 0);
  }

  /** si->pages: usable slots (SwapTotal). */
  get pages(): number {
    return this.max - 1;
  }

  private used(slot: number): boolean {
    return this.swap_map[slot] > 0 || this.cache.has(slot);
  }

  /** get_swap_page / scan_swap_map: a free slot (next-fit; by clusters under 6.x), or 0 when the device is full. */
  get_swap_page(): number {
    if (this.inuse_pages >= this.pages) return 0;
    if (this.clusters) return this.get_swap_pages(0);
    for (let n = 0; n < this.pages; n++) {
      const slot = this.cluster_next;
      this.cluster_next = slot + 1 >= this.max ? 1 : slot + 1;
      if (!this.used(slot)) {
        this.inuse_pages++;
        return slot;
      }
    }
    return 0;
  }

  /**
   * folio_alloc_swap's slot allocation (6.x): the first of 2^order contiguous, naturally
   * aligned free slots (cluster_alloc_swap_entry), or 0. The caller adds every slot to the
   * swap cache before anything else can look at them.
   */
  get_swap_pages(order: number): number {
    const c = this.clusters;
    if (!c) throw new KernelBug('get_swap_pages: large swap entries need the cluster allocator');
    if (this.inuse_pages + (1 << order) > this.pages) return 0;
    const slot = c.alloc(order);
    if (slot !== 0) this.inuse_pages += 1 << order;
    return slot;
  }

  /** The slot lost its last user (no swap PTE, not cached): give it back. */
  private maybe_free_slot(slot: number): void {
    if (this.used(slot)) return;
    this.inuse_pages--;
    this.clusters?.free(slot);
  }

  swap_writepage(slot: number, data: Uint8Array): void {
    if (writeSync(this.fd, data, 0, PAGE_SIZE, slot * PAGE_SIZE) !== PAGE_SIZE) {
      throw new HugevisorError('EIO', `swap: short write of slot ${slot} to ${this.path}`);
    }
  }

  swap_readpage(slot: number, into: Uint8Array): void {
    if (readSync(this.fd, into, 0, PAGE_SIZE, slot * PAGE_SIZE) !== PAGE_SIZE) {
      throw new HugevisorError('EIO', `swap: short read of slot ${slot} from ${this.path}`);
    }
  }

  /** swap_duplicate: one more swap PTE references the slot (fork). */
  swap_duplicate(slot: number): void {
    if (!this.used(slot)) throw new KernelBug(`swap_duplicate of free swap slot ${slot}`);
    this.swap_map[slot]++;
  }

  /** swap_free: one swap PTE referencing the slot is gone. Returns the remaining count. */
  swap_free(slot: number): number {
    if (this.swap_map[slot] <= 0) throw new KernelBug(`swap_free of unused swap slot ${slot}`);
    const left = --this.swap_map[slot];
    this.maybe_free_slot(slot);
    return left;
  }

  cache_add(slot: number, pfn: Pfn): void {
    this.cache.set(slot, pfn);
  }
  cache_del(slot: number): void {
    this.cache.delete(slot);
    this.maybe_free_slot(slot);
  }

  /** swapoff + unlink: close the file and remove it (and the temp dir we made). */
  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
    unlinkSync(this.path);
    if (this.dir) rmdirSync(this.dir);
  }
}

/**
 * Swap files still open in this process: removed at process exit, so a host that was
 * never closed (a failing test, a crashed script) leaves no file behind (exit handlers may
 * only do synchronous work, which close() is). Process-wide on purpose: the exit handler
 * is.
 */
const openDevices = new Set<SwapInfo>();
process.on('exit', () => {
  for (const si of openDevices) {
    try {
      si.close();
    } catch {
      /* best effort at exit */
    }
  }
});

export type PageoutResult = 'freed' | 'pinned' | 'no_swap';

/** The swap side of one host: its device and the swap cache operations on it. */
export class Swap {
  /** The swap device (swap_info[0]), or null when the host has none. */
  readonly device: SwapInfo | null;

  /** swapon: create the swap file (HostConfig.swap, as config.ts swapConfigSchema accepted it). */
  constructor(
    private readonly host: Host,
    cfg: { bytes: number; path?: string; type?: 'file' | 'partition' } | undefined,
  ) {
    this.device = cfg === undefined || cfg.bytes === 0 ? null : new SwapInfo(cfg.bytes, cfg.path, cfg.type, host.kernel === '6.x');
    if (this.device) openDevices.add(this.device);
  }

  /** swapoff: close and remove the swap file. */
  close(): void {
    if (!this.device) return;
    this.device.close();
    openDevices.delete(this.device);
  }

  /** meminfo's SwapTotal / SwapFree, in pages. */
  meminfo(): { totalPages: number; freePages: number } {
    const si = this.device;
    return si ? { totalPages: si.pages, freePages: si.pages - si.inuse_pages } : { totalPages: 0, freePages: 0 };
  }

  private si(): SwapInfo {
    if (!this.device) throw new KernelBug('swap entry without a swap device');
    return this.device;
  }

  /** add_to_swap_cache: the page now holds the data of `slot`; the cache holds a reference. */
  private add_to_swap_cache(si: SwapInfo, pfn: Pfn, slot: number): void {
    const pages = this.host.pages;
    get_page(pages, pfn);
    pages.setFlag(pfn, PG_swapcache);
    pages.private[pfn] = slot;
    si.cache_add(slot, pfn);
  }

  /** delete_from_swap_cache: drop the cache's reference (may free an unmapped page). */
  delete_from_swap_cache(pfn: Pfn): void {
    const pages = this.host.pages;
    const si = this.si();
    const slot = pages.private[pfn];
    pages.clearFlag(pfn, PG_swapcache);
    pages.private[pfn] = 0;
    si.cache_del(slot);
    put_page(pages, pfn);
  }

  /** page_swapcount: swap PTEs still referencing the page's slot. */
  private page_swapcount(pfn: Pfn): number {
    const pages = this.host.pages;
    return pages.PageSwapCache(pfn) ? this.si().swap_map[pages.private[pfn]] : 0;
  }

  /**
   * reuse_swap_page: may a write fault reuse this page instead of copying it? Only when it
   * has one user counting both PTE mappings and swap PTEs; then it also leaves the swap
   * cache (its copy on disk is about to be stale).
   */
  reuse_swap_page(pfn: Pfn): boolean {
    const pages = this.host.pages;
    let count = pages.page_mapcount(pfn);
    if (count <= 1 && pages.PageSwapCache(pfn)) {
      count += this.page_swapcount(pfn);
      if (count === 1) this.delete_from_swap_cache(pfn);
    }
    return count <= 1;
  }

  /**
   * try_to_unmap (anon): replace every PTE mapping the 4 KiB page with its swap entry,
   * telling secondary MMUs around each (ptep_clear_flush_notify). The page must be in the
   * swap cache. Returns the number of mappings removed.
   */
  try_to_unmap(pfn: Pfn): number {
    const host = this.host;
    const pages = host.pages;
    const si = this.si();
    const slot = pages.private[pfn];
    let n = 0;
    for (const { vma, addr } of rmap_walk(host.anon, pages, pfn)) {
      const mm = vma.mm;
      const t = mm.pgd.pte_offset(addr);
      const j = pte_index(addr);
      if (!t || !t.pte_present(j) || t.pfn[j] !== pfn || t.bits[j] & _PAGE_SPECIAL) continue;
      const end = hvaAdd(addr, PAGE_SIZE);
      mmu_notifier_invalidate_range_start(mm, addr, end);
      t.set_pte(j, slot, _PAGE_SWP);
      si.swap_duplicate(slot);
      page_remove_rmap(pages, host.stat, pfn);
      put_page(pages, pfn); // the mapping's reference
      mmu_notifier_invalidate_range_end(mm, addr, end);
      n++;
    }
    return n;
  }

  /**
   * shrink_page_list for one 4 KiB anonymous page: add_to_swap, try_to_unmap, pageout
   * (write the real bytes), __remove_mapping, free. Pinned pages (gup references) are left
   * alone. The caller checked the page is anonymous, not compound and on the LRU.
   */
  pageout_anon_page(pfn: Pfn): PageoutResult {
    const host = this.host;
    const pages = host.pages;
    const si = this.device;
    if (!si) return 'no_swap';
    if (page_pins(host, pfn) !== 0) return 'pinned';
    // isolate_lru_page + lock_page: our own reference keeps the frame until the end.
    get_page(pages, pfn);
    pages.clearFlag(pfn, PG_lru);
    pages.setFlag(pfn, PG_locked);
    if (!pages.PageSwapCache(pfn)) {
      const slot = si.get_swap_page();
      if (slot === 0) {
        pages.clearFlag(pfn, PG_locked);
        pages.setFlag(pfn, PG_lru);
        put_page(pages, pfn);
        return 'no_swap';
      }
      this.add_to_swap_cache(si, pfn, slot);
    }
    this.try_to_unmap(pfn);
    si.swap_writepage(pages.private[pfn], host.physmem.frames(pfn));
    host.stat.count_vm_event('pswpout');
    // __remove_mapping: only the swap cache and we still hold it.
    if (pages._count[pfn] !== 2) throw new KernelBug(`pageout: page ${pfn} has _count ${pages._count[pfn]} after unmap`);
    pages.clearFlag(pfn, PG_locked);
    this.delete_from_swap_cache(pfn);
    put_page(pages, pfn); // frees it
    return 'freed';
  }

  /**
   * shrink_folio_list for a large anonymous folio (6.x; the caller saw it mapped, on the
   * LRU and not referenced), as 6.18 orders the steps:
   *  1. a folio with references besides its mappings (a gup pin) cannot be split: kept;
   *  2. a partially mapped one (on the deferred split queue) is split right away, its
   *     unmapped pages freed without I/O ('split': its pages come next on the clock);
   *  3. folio_alloc_swap: 2^order contiguous slots (swap-cluster.ts). None (a swap file
   *     never has them; a full device neither) → split_folio, thp_swpout_fallback (PMD
   *     size) and the per-size swpout_fallback, and the pages go out one by one ('split');
   *  4. try_to_unmap with TTU_SPLIT_HUGE_PMD: a PMD mapping is split first
   *     (__split_huge_pmd: thp_split_pmd), then every PTE of the folio becomes the swap entry
   *     of its page's slot;
   *  5. the whole folio is written (count_swpout_vm_event: pswpout per page, thp_swpout for
   *     PMD size, the per-size swpout), leaves the swap cache and is freed ('freed').
   */
  shrink_large_folio(head: Pfn): 'freed' | 'split' | 'keep' | 'no_swap' {
    const host = this.host;
    const pages = host.pages;
    const policy = host.policy;
    const si = this.device;
    if (!si) return 'no_swap';
    const order = folio_order(pages, head);
    const nr = 1 << order;
    // 1. folio_expected_ref_count(folio) != folio_ref_count(folio) (before our reference)
    if (folio_ref_count(pages, head) !== folio_mapcount(pages, head)) return 'keep';
    // 2. split partially mapped folios right away
    if (folio_test_partially_mapped(pages, head)) {
      policy.split_huge_page(head);
      return pages.PageHead(head) ? 'keep' : 'split';
    }
    // 3. folio_alloc_swap
    const slot = si.get_swap_pages(order);
    if (slot === 0) {
      policy.split_huge_page(head);
      if (pages.PageHead(head)) return 'keep';
      if (order === HPAGE_PMD_ORDER) host.stat.count_vm_event('thp_swpout_fallback');
      host.stat.mthp.count_mthp_stat(order, 'swpout_fallback');
      return 'split';
    }
    // isolate + lock: our reference; add_to_swap_cache: the swap cache's, PG_swapcache on the
    // folio (so unmapping it does not queue a deferred split) and every slot taken.
    policy.get_page(head);
    pages.clearFlag(head, PG_lru);
    pages.setFlag(head, PG_locked | PG_swapcache);
    policy.get_page(head);
    for (let k = 0; k < nr; k++) si.cache_add(slot + k, pfnAdd(head, k));
    // 4. try_to_unmap(folio, TTU_SPLIT_HUGE_PMD)
    for (const { vma, start, end, addr } of rmap_walk_folio(host.anon, pages, head, nr)) {
      const mm = vma.mm;
      const pmd = mm.pgd.pmd_table(start);
      if (pmd && pmd.huge[pmd_index(start)] === head) policy.split_huge_pmd(mm, start);
      const t = mm.pgd.pte_offset(start);
      if (!t) continue;
      const unmapped: Pfn[] = [];
      mmu_notifier_invalidate_range_start(mm, start, end);
      for (let a = start; a < end; a = hvaAdd(a, PAGE_SIZE)) {
        const j = pte_index(a);
        const k = (a - addr) / PAGE_SIZE;
        if (!t.pte_present(j) || t.bits[j] & _PAGE_SPECIAL || t.pfn[j] !== head + k) continue;
        t.set_pte(j, slot + k, _PAGE_SWP);
        si.swap_duplicate(slot + k);
        unmapped.push(pfnAdd(head, k));
      }
      policy.remove_rmap_ptes(unmapped);
      for (const p of unmapped) policy.put_page(p); // the mappings' references
      mmu_notifier_invalidate_range_end(mm, start, end);
    }
    if (folio_mapped(pages, head)) throw new KernelBug(`shrink_large_folio: folio ${head} still mapped after try_to_unmap`);
    // 5. pageout: the folio in one write
    for (let k = 0; k < nr; k++) si.swap_writepage(slot + k, host.physmem.frames(pfnAdd(head, k)));
    host.stat.count_vm_event('pswpout', nr);
    if (order === HPAGE_PMD_ORDER) host.stat.count_vm_event('thp_swpout');
    host.stat.mthp.count_mthp_stat(order, 'swpout');
    // __remove_mapping: only the swap cache and we hold it; then it is freed
    if (folio_ref_count(pages, head) !== 2) throw new KernelBug(`shrink_large_folio: folio ${head} has refcount ${folio_ref_count(pages, head)} after unmap`);
    pages.clearFlag(head, PG_locked | PG_swapcache);
    for (let k = 0; k < nr; k++) si.cache_del(slot + k);
    policy.put_page(head); // the swap cache's
    policy.put_page(head); // ours: frees it
    return 'freed';
  }

  /**
   * do_swap_page: a fault on a swap PTE. Found in the swap cache: map that page (a minor
   * fault). Else read it back from the file into a new page (a major fault: pgmajfault,
   * pswpin). A write reuses the page when nobody else needs the slot.
   */
  do_swap_page(mm: MmStruct, vma: Vma, addr: Hva, t: PteTable, j: number, write: boolean): void {
    const host = this.host;
    const pages = host.pages;
    const si = this.si();
    const slot = t.pfn[j];
    let page = si.cache.get(slot);
    if (page === undefined) {
      const np = host.alloc_page(); // may reclaim other pages; never this PTE
      if (!t.is_swap_pte(j) || t.pfn[j] !== slot) throw new KernelBug('swap PTE changed under do_swap_page');
      host.stat.count_vm_event('pgmajfault');
      si.swap_readpage(slot, host.physmem.frames(np));
      host.stat.count_vm_event('pswpin');
      // read_swap_cache_async: the new page enters the swap cache (which takes its own
      // reference; the allocation's is ours), an anon page keyed to the oldest anon_vma of
      // the VMA (the root, which every forked VMA that may share the slot belongs to).
      pages.setFlag(np, PG_anon | PG_swapbacked | PG_uptodate | PG_lru);
      pages.mapping[np] = (vma.anon_vma_chain[0] ?? vma.anon_vma)!.id;
      pages.index[np] = pageIndex(addr);
      this.add_to_swap_cache(si, np, slot);
      page = np;
    } else {
      get_page(pages, page); // lookup_swap_cache's reference
    }
    // Our reference becomes the mapping's.
    let bits = _PAGE_PRESENT | _PAGE_ACCESSED;
    if (write && this.reuse_swap_page(page)) bits |= _PAGE_DIRTY | (vma.flags & VM_WRITE ? _PAGE_RW : 0);
    page_add_anon_rmap(pages, host.stat, page);
    t.set_pte(j, page, bits);
    si.swap_free(slot);
    // try_to_free_swap, eagerly (see the header): nobody else needs the slot.
    if (pages.PageSwapCache(page) && si.swap_map[slot] === 0) this.delete_from_swap_cache(page);
    // A write that could not reuse the page faults again and copies it (do_wp_page).
  }

  /** swap_duplicate: fork copies a swap PTE. */
  swap_duplicate(slot: number): void {
    this.si().swap_duplicate(slot);
  }

  /** free_swap_and_cache: zap met a swap PTE. */
  free_swap_and_cache(slot: number): void {
    const si = this.si();
    const left = si.swap_free(slot);
    const page = si.cache.get(slot);
    if (left === 0 && page !== undefined) this.delete_from_swap_cache(page);
  }
}

/** References the page has besides page tables and the swap cache: gup pins. */
export function page_pins(host: Host, pfn: Pfn): number {
  const pages = host.pages;
  return pages._count[pfn] - pages.page_mapcount(pfn) - (pages.PageSwapCache(pfn) ? 1 : 0);
}
