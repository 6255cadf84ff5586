/**
 * The host model's invariants, checked after every public operation when
 * HostConfig.debugChecks is on (tests turn it on). Each failure names the invariant and
 * the frame. (The EPT invariant is checked by the EPT manager.)
 *
 *  1. Every frame is in exactly one state: inside exactly one free buddy block, or
 *     allocated (a single page or compound head with _count ≥ 1, or a tail of one).
 *  2. _mapcount + 1 = number of page-table entries mapping the page (PTEs for 4 KiB pages,
 *     huge PMDs for a THP head; tails of a THP are never mapped by PTEs). (2.6.38: here,
 *     check_2638; 6.x: the folio rules, policy-6x.ts checkFolioInvariants.)
 *  3. For every compound page: head _count ≥ Σ tail _count + mappings.
 *  4. Each mm holds exactly one deposited PTE table per huge PMD; rmap keys of mapped
 *     pages agree with where they are mapped.
 *  5. Zone counters: nr_anon_transparent_hugepages = mapped THPs, nr_anon_pages = mapped
 *     4 KiB anonymous pages.
 */

import { PAGE_SIZE } from '../util/address.ts';
import type { Host } from './host.ts';
import { PG_partially_mapped } from './folio.ts';
import { PG_anon, PG_buddy, PG_head, PG_reserved, PG_tail } from './page.ts';
import { SWAPFILE_CLUSTER } from './swap-cluster.ts';
import { _PAGE_SPECIAL, PTRS_PER_TABLE } from './pgtable.ts';

export class InvariantError extends Error {
  constructor(msg: string) {
    super(`invariant violated: ${msg}`);
    this.name = 'InvariantError';
  }
}

function fail(msg: string): never {
  throw new InvariantError(msg);
}

export function checkInvariants(host: Host): void {
  const pg = host.pages;
  const n = host.nrFrames;
  // 1. free blocks cover frames at most once; PG_buddy only on listed heads
  const free = new Uint8Array(n);
  let freeCount = 0;
  const listed = new Set<number>();
  for (const [pfn, order] of host.buddy.freeBlocks()) {
    if (pfn % (1 << order) !== 0) fail(`frame ${pfn}: free block of order ${order} misaligned`);
    if (pg.private[pfn] !== order || !(pg.flags[pfn] & PG_buddy)) fail(`frame ${pfn}: free-list head without PG_buddy/order ${order}`);
    listed.add(pfn);
    for (let k = 0; k < 1 << order; k++) {
      if (free[pfn + k]) fail(`frame ${pfn + k}: in two free blocks`);
      free[pfn + k] = 1;
      if (pg._count[pfn + k] !== 0) fail(`frame ${pfn + k}: free with _count ${pg._count[pfn + k]}`);
      if (pg._mapcount[pfn + k] !== -1) fail(`frame ${pfn + k}: free but mapped`);
    }
    freeCount += 1 << order;
  }
  if (freeCount !== host.buddy.nr_free_pages()) fail(`buddy counts ${host.buddy.nr_free_pages()} free frames, lists hold ${freeCount}`);

  // 2. count page-table mappings per frame: PTEs in `maps`, huge PMDs in `pmdMaps` (by head)
  const maps = new Int32Array(n);
  const pmdMaps = new Int32Array(n);
  for (const mm of host.processes) {
    let huge = 0;
    mm.pgd.forEachPmd((addr, pmd, i) => {
      if (pmd.pmd_trans_huge(i)) {
        huge++;
        if (host.policy.is_huge_zero_pmd(pmd, i)) return; // 6.x: checked by the policy
        const head = pmd.huge[i];
        if (!(pg.flags[head] & PG_head) || pg.private[head] !== 9) fail(`mm ${mm.id} 0x${addr.toString(16)}: huge PMD maps frame ${head}, not an order-9 head`);
        if (pg.index[head] !== addr / PAGE_SIZE) fail(`THP ${head}: index ${pg.index[head]} but mapped at 0x${addr.toString(16)}`);
        pmdMaps[head]++;
        return;
      }
      const t = pmd.pte[i]!;
      for (let j = 0; j < PTRS_PER_TABLE; j++) {
        const b = t.bits[j];
        if (b === 0 || t.is_swap_pte(j) || b & _PAGE_SPECIAL) continue;
        const pfn = t.pfn[j];
        if (free[pfn]) fail(`mm ${mm.id} 0x${(addr + j * PAGE_SIZE).toString(16)}: PTE maps free frame ${pfn}`);
        const head = pg.flags[pfn] & PG_tail ? pg.private[pfn] : pfn;
        const off = pfn - head;
        if (pg.index[head] + off !== addr / PAGE_SIZE + j) fail(`page ${pfn}: index ${pg.index[head] + off} but mapped at 0x${(addr + j * PAGE_SIZE).toString(16)}`);
        maps[pfn]++;
      }
    });
    if (mm.pmd_huge_pte.length !== huge) fail(`mm ${mm.id}: ${huge} huge PMDs but ${mm.pmd_huge_pte.length} deposited PTE tables`);
  }
  for (let p = 0; p < n; p++) if (!free[p] && pg.flags[p] & PG_buddy && !listed.has(p)) fail(`frame ${p}: PG_buddy but on no free list`);
  host.policy.checkInvariants(maps, pmdMaps, free);
  if (host.kernel === '6.x') checkMthpAndSwapClusters(host, free);
}

/**
 * 6.x: the per-size gauges agree with the folios that exist — nr_anon[order] = live
 * anonymous large folios of that order, nr_anon_partially_mapped[order] = those marked
 * partially mapped — and every swap cluster's count = its slots in use (swap map or swap
 * cache) plus the ones setup_clusters reserved (the header, the tail past the file).
 */
function checkMthpAndSwapClusters(host: Host, free: Uint8Array): void {
  const pg = host.pages;
  const nrAnon = new Int32Array(10);
  const partial = new Int32Array(10);
  for (let p = 0; p < host.nrFrames; p++) {
    if (free[p] || !(pg.flags[p] & PG_head)) continue;
    const order = pg.private[p];
    if (pg.flags[p] & PG_anon) nrAnon[order]++;
    if (pg.flags[p + 1] & PG_partially_mapped) partial[order]++;
    p += (1 << order) - 1;
  }
  const m = host.stat.mthp;
  for (let order = 2; order <= 9; order++) {
    if (m.get(order, 'nr_anon') !== nrAnon[order]) fail(`hugepages-${4 << order}kB nr_anon ${m.get(order, 'nr_anon')} but ${nrAnon[order]} anonymous folios of order ${order}`);
    if (m.get(order, 'nr_anon_partially_mapped') !== partial[order]) {
      fail(`hugepages-${4 << order}kB nr_anon_partially_mapped ${m.get(order, 'nr_anon_partially_mapped')} but ${partial[order]} folios marked partially mapped`);
    }
  }
  const si = host.swap.device;
  const c = si?.clusters;
  if (!si || !c) return;
  for (let ci = 0; ci < c.nr; ci++) {
    let used = 0;
    for (let s = ci * SWAPFILE_CLUSTER; s < (ci + 1) * SWAPFILE_CLUSTER; s++) {
      if (s === 0 || s >= si.max || si.swap_map[s] > 0 || si.cache.has(s)) used++;
    }
    if (c.count[ci] !== used) fail(`swap cluster ${ci}: count ${c.count[ci]} but ${used} slots in use or reserved`);
  }
}

/**
 * The 2.6.38 rules per allocated frame: a PTE never maps a compound page; head _mapcount
 * counts huge PMDs; head _count ≥ Σ tail _count + mappings; the zone counters.
 */
export function check_2638(host: Host, maps: Int32Array, pmdMaps: Int32Array, free: Uint8Array): void {
  const pg = host.pages;
  const n = host.nrFrames;
  let thpMapped = 0;
  let smallMapped = 0;
  for (let p = 0; p < n; p++) {
    if (maps[p] && pg.flags[p] & (PG_tail | PG_head)) fail(`PTE maps frame ${p} of a compound page`);
    maps[p] += pmdMaps[p];
  }
  // 1 (cont.), 2, 3 per allocated frame
  for (let p = 0; p < n; p++) {
    if (free[p]) continue;
    const f = pg.flags[p];
    const mc = pg._mapcount[p] + 1;
    if (mc !== maps[p]) fail(`page ${p}: _mapcount+1 = ${mc} but ${maps[p]} page-table entries map it`);
    if (f & PG_tail) {
      const head = pg.private[p];
      if (!(pg.flags[head] & PG_head) || p - head <= 0 || p - head >= 1 << pg.private[head]) fail(`tail ${p}: first_page ${head} is not its head`);
      continue;
    }
    if (pg._count[p] < 1) fail(`frame ${p}: neither free nor referenced (_count ${pg._count[p]})`);
    if (f & PG_reserved) continue;
    if (f & PG_head) {
      const nr = 1 << pg.private[p];
      let tails = 0;
      for (let k = 1; k < nr; k++) {
        if (!(pg.flags[p + k] & PG_tail) || pg.private[p + k] !== p) fail(`compound ${p}: frame ${p + k} is not its tail`);
        tails += pg._count[p + k];
      }
      if (pg._count[p] < tails + mc) fail(`compound ${p}: head _count ${pg._count[p]} < Σ tail _count ${tails} + mappings ${mc}`);
      if (mc > 0) thpMapped++;
      p += nr - 1;
    } else if (mc > 0) {
      smallMapped++;
      if (pg._count[p] < mc) fail(`page ${p}: _count ${pg._count[p]} < mappings ${mc}`);
    }
  }
  if (thpMapped !== host.stat.nr_anon_transparent_hugepages) fail(`nr_anon_transparent_hugepages ${host.stat.nr_anon_transparent_hugepages} but ${thpMapped} THPs mapped`);
  if (smallMapped !== host.stat.nr_anon_pages) fail(`nr_anon_pages ${host.stat.nr_anon_pages} but ${smallMapped} pages mapped`);
}

