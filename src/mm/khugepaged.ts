/**
 * khugepaged (mm/huge_memory.c, 2.6.38): collapses 512 small pages of an eligible 2 MiB
 * range back into a THP, on simulated time.
 *
 * The thread (khugepaged_loop) runs a pass (khugepaged_do_scan) of `pages_to_scan` pages
 * of progress, then sleeps scan_sleep_millisecs — plus alloc_sleep_millisecs before the
 * next pass when the pass failed to allocate a huge page. With no registered mm it waits
 * until khugepaged_enter registers one, and runs a pass at that moment. Passes due are run
 * by HostApi.advanceTime (the thread's wake-ups at simulated times ≤ now, in order);
 * HostApi.khugepaged_scan runs one pass at once without touching the schedule.
 *
 * Progress accounting is the kernel's: +1 per mm visited, +1 per VMA skipped, +512 per
 * PMD scanned; a pass stops after passing the list head twice. full_scans counts turns of
 * the whole mm list; pages_collapsed counts huge pages made (once per collapse, as
 * 2.6.38's khugepaged_pages_collapsed++ does, despite the name).
 *
 * Huge pages are allocated at collapse time (the CONFIG_NUMA variant of 2.6.38): a failed
 * allocation counts thp_collapse_alloc_failed and ends the pass.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE, alignDown, alignUp } from '../util/address.ts';
import { registerMmExtensions } from './extensions.ts';
import type { Host } from './host.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import { PG_anon, PG_locked, PG_lru, PG_referenced } from './page.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, _PAGE_SPECIAL, pmd_index, type PteTable } from './pgtable.ts';
import { put_page } from './refcount.ts';
import { mmu_notifier_test_young } from './reclaim.ts';
import { page_add_new_anon_rmap, page_remove_rmap } from './rmap.ts';
import { VM_HUGEPAGE, VM_NOHUGEPAGE, VM_WRITE, type Vma } from './vma.ts';

interface KhugepagedState {
  /** khugepaged_scan.mm_head: registered mms in registration order. */
  mm_head: MmStruct[];
  /** khugepaged_scan.mm_slot: the mm being scanned, null between turns of the list. */
  mm_slot: MmStruct | null;
  /** khugepaged_scan.address: where the scan of mm_slot resumes. */
  address: number;
  /** Simulated ms of the thread's next pass; null while it waits for work. */
  nextWake: number | null;
  /** The last pass failed to allocate a huge page (hpage = ERR_PTR(-ENOMEM)). */
  allocFailed: boolean;
  /** Passes run (for reports and tests). */
  passes: number;
}

const states = new WeakMap<Host, KhugepagedState>();
export function khugepagedState(host: Host): KhugepagedState {
  let s = states.get(host);
  if (!s) {
    s = { mm_head: [], mm_slot: null, address: 0, nextWake: null, allocFailed: false, passes: 0 };
    states.set(host, s);
  }
  return s;
}

const khugepaged_enabled = (host: Host) => host.knobs.enabled !== 'never';
const khugepaged_always = (host: Host) => host.knobs.enabled === 'always';
const khugepaged_test_exit = (host: Host, mm: MmStruct) => mm.dead || !host.processes.has(mm);
const khugepaged_has_work = (host: Host, s: KhugepagedState) => s.mm_head.length > 0 && khugepaged_enabled(host);

/** VMA flags allow collapse (the checks khugepaged_scan_mm_slot and collapse_huge_page share). */
function vma_eligible(host: Host, vma: Vma): boolean {
  if ((!(vma.flags & VM_HUGEPAGE) && !khugepaged_always(host)) || vma.flags & VM_NOHUGEPAGE) return false;
  return vma.anon_vma !== null;
}

/** __khugepaged_enter: register the mm; wake the thread if it was waiting for work. */
function __khugepaged_enter(host: Host, mm: MmStruct): void {
  const s = khugepagedState(host);
  if (s.mm_head.includes(mm)) return;
  const wakeup = s.mm_head.length === 0;
  s.mm_head.push(mm);
  if (wakeup && s.nextWake === null) s.nextWake = host.now;
}

/** khugepaged_enter(vma): on a huge fault or madvise(MADV_HUGEPAGE). */
function khugepaged_enter(mm: MmStruct, vma: Vma): void {
  const host = mm.host;
  if (!khugepaged_enabled(host)) return;
  if ((khugepaged_always(host) || vma.flags & VM_HUGEPAGE) && !(vma.flags & VM_NOHUGEPAGE)) __khugepaged_enter(host, mm);
}

/** khugepaged_exit: drop the mm, unless the scan is on it (then the scan collects it). */
function khugepaged_exit(mm: MmStruct): void {
  const s = khugepagedState(mm.host);
  if (s.mm_slot === mm) return;
  const i = s.mm_head.indexOf(mm);
  if (i >= 0) s.mm_head.splice(i, 1);
}

/**
 * khugepaged_scan_pmd: may the 2 MiB range at `address` be collapsed? Empty PTEs at most
 * max_ptes_none; every other PTE present and writable, mapping an anonymous page that is
 * on the LRU, unlocked, with _count 1 (no gup pin, no swap cache, not shared); at least
 * one young. Collapses it when so; returns whether a collapse was attempted.
 */
function khugepaged_scan_pmd(host: Host, mm: MmStruct, vma: Vma, address: number): boolean {
  const pmd = mm.pgd.pmd_table(address);
  if (!pmd) return false;
  const i = pmd_index(address);
  const t = pmd.pte[i];
  if (!t || pmd.pmd_trans_huge(i)) return false;
  if (!collapse_allowed(host, t, (j) => mmu_notifier_test_young(mm, (address + j * PAGE_SIZE) as Hva))) return false;
  collapse_huge_page(host, mm, address, vma);
  return true;
}

/**
 * The PTE rules of khugepaged_scan_pmd / __collapse_huge_page_isolate. `young` (the scan)
 * also asks secondary MMUs (mmu_notifier_test_young) about a PTE that is not young
 * itself; null (isolation) skips the young rule the scan already applied.
 */
function collapse_allowed(host: Host, t: PteTable, young: ((j: number) => boolean) | null): boolean {
  const pages = host.pages;
  const max_ptes_none = host.knobs.khugepaged.max_ptes_none;
  let none = 0;
  let referenced = false;
  for (let j = 0; j < HPAGE_PMD_NR; j++) {
    const bits = t.bits[j];
    if (bits === 0) {
      if (++none <= max_ptes_none) continue;
      return false;
    }
    if (!(bits & _PAGE_PRESENT) || !(bits & _PAGE_RW)) return false;
    if (bits & _PAGE_SPECIAL) return false; // vm_normal_page: the zero page is no candidate
    const page = t.pfn[j] as Pfn;
    const f = pages.flags[page];
    if (!(f & PG_lru) || f & PG_locked || !(f & PG_anon)) return false;
    // cannot use mapcount: can't collapse if there's a gup pin
    if (pages.page_count(page) !== 1) return false;
    if (!referenced && young && (bits & _PAGE_ACCESSED || f & PG_referenced || young(j))) referenced = true;
  }
  return referenced || young === null;
}

/**
 * collapse_huge_page: allocate the huge page, revalidate the VMA, clear the PMD (secondary
 * MMUs told), isolate the small pages (rules re-checked), copy them — zero-filling holes —
 * into the huge page, map it with a huge PMD (the old PTE table becomes its deposit), and
 * free the small pages.
 */
function collapse_huge_page(host: Host, mm: MmStruct, address: number, vma: Vma): void {
  const s = khugepagedState(host);
  const pages = host.pages;
  const new_page = host.alloc_hugepage(host.knobs.khugepaged.defrag);
  if (new_page === null) {
    host.stat.count_vm_event('thp_collapse_alloc_failed');
    s.allocFailed = true;
    return;
  }
  host.stat.count_vm_event('thp_collapse_alloc');
  // down_write(mmap_sem): revalidate what the scan saw under the read lock.
  const v = khugepaged_test_exit(host, mm) ? null : mm.vmaAt(address);
  const pmd = mm.pgd.pmd_table(address);
  const i = pmd_index(address);
  if (
    v !== vma ||
    !vma_eligible(host, vma) ||
    address < alignUp(vma.start, HPAGE_PMD_SIZE) ||
    address + HPAGE_PMD_SIZE > alignDown(vma.end, HPAGE_PMD_SIZE) ||
    !pmd ||
    !pmd.pte[i] ||
    pmd.pmd_trans_huge(i)
  ) {
    put_page(pages, new_page);
    return;
  }
  const t = pmd.pte[i]!;
  const start = address as Hva;
  const end = (address + HPAGE_PMD_SIZE) as Hva;
  // pmdp_clear_flush_notify: after this neither the CPU nor gup_fast reach the PTEs.
  mmu_notifier_invalidate_range_start(mm, start, end);
  pmd.pmd_clear(i);
  mmu_notifier_invalidate_range_end(mm, start, end);
  if (!collapse_allowed(host, t, null)) {
    pmd.pmd_populate(i, t);
    put_page(pages, new_page);
    return;
  }
  // __collapse_huge_page_copy
  for (let j = 0; j < HPAGE_PMD_NR; j++) {
    const dst = (new_page + j) as Pfn;
    if (t.bits[j] === 0) {
      host.physmem.zeroFrames(dst);
      continue;
    }
    const src = t.pfn[j] as Pfn;
    host.physmem.copyFrames(dst, src);
    t.pte_clear(j);
    page_remove_rmap(pages, host.stat, src);
    put_page(pages, src); // free_page_and_swap_cache
  }
  page_add_new_anon_rmap(pages, host.stat, new_page, vma, start);
  pmd.set_pmd_huge(i, new_page, _PAGE_ACCESSED | _PAGE_DIRTY | (vma.flags & VM_WRITE ? _PAGE_RW : 0));
  mm.prepare_pmd_huge_pte(t);
  host.khugepaged.pages_collapsed++;
}

/** khugepaged_scan_mm_slot: scan the current mm from where it stopped; returns progress. */
function khugepaged_scan_mm_slot(host: Host, s: KhugepagedState, pages: number): number {
  if (!s.mm_slot) {
    s.mm_slot = s.mm_head[0];
    s.address = 0;
  }
  const mm = s.mm_slot;
  let progress = 1;
  let finished = true; // the VMA walk ran off the end (vma == NULL)
  if (!khugepaged_test_exit(host, mm)) {
    const first = mm.find_vma(s.address);
    const vmas = first ? mm.vmas.slice(mm.vmas.indexOf(first)) : [];
    outer: for (const vma of vmas) {
      if (!vma_eligible(host, vma)) {
        progress++;
        continue;
      }
      const hstart = alignUp(vma.start, HPAGE_PMD_SIZE);
      const hend = alignDown(vma.end, HPAGE_PMD_SIZE);
      if (hstart >= hend || s.address > hend) {
        progress++;
        continue;
      }
      if (s.address < hstart) s.address = hstart;
      while (s.address < hend) {
        const collapsed = khugepaged_scan_pmd(host, mm, vma, s.address);
        s.address += HPAGE_PMD_SIZE;
        progress += HPAGE_PMD_NR;
        if (collapsed || progress >= pages) {
          finished = false;
          break outer;
        }
      }
    }
  }
  if (khugepaged_test_exit(host, mm) || finished) {
    const i = s.mm_head.indexOf(mm);
    if (i + 1 < s.mm_head.length) {
      s.mm_slot = s.mm_head[i + 1];
      s.address = 0;
    } else {
      s.mm_slot = null;
      host.khugepaged.full_scans++;
    }
    if (khugepaged_test_exit(host, mm)) s.mm_head.splice(i, 1); // collect_mm_slot
  }
  return progress;
}

/** khugepaged_do_scan: one pass of pages_to_scan progress. */
export function khugepaged_do_scan(host: Host): void {
  const s = khugepagedState(host);
  const pages = host.knobs.khugepaged.pages_to_scan;
  let progress = 0;
  let pass_through_head = 0;
  s.allocFailed = false;
  s.passes++;
  while (progress < pages) {
    if (s.allocFailed) break;
    if (!s.mm_slot) pass_through_head++;
    if (khugepaged_has_work(host, s) && pass_through_head < 2) progress += khugepaged_scan_mm_slot(host, s, pages - progress);
    else progress = pages;
  }
}

/** advanceTime: run every pass due by host.now (khugepaged_loop's wake-ups). */
function khugepaged_tick(host: Host): void {
  const s = khugepagedState(host);
  while (s.nextWake !== null && s.nextWake <= host.now) {
    const at = s.nextWake;
    if (khugepaged_enabled(host)) khugepaged_do_scan(host);
    if (!khugepaged_has_work(host, s)) {
      s.nextWake = null; // wait_event until khugepaged_enter
      continue;
    }
    // A zero scan_sleep_millisecs means back-to-back passes; the model spaces them 1 ms
    // apart so that advanceTime always ends.
    const k = host.knobs.khugepaged;
    s.nextWake = at + Math.max(1, k.scan_sleep_millisecs) + (s.allocFailed ? k.alloc_sleep_millisecs : 0);
  }
}

registerMmExtensions({
  khugepaged_enter,
  khugepaged_exit,
  khugepaged_fork(child, parent) {
    if (khugepagedState(parent.host).mm_head.includes(parent)) __khugepaged_enter(child.host, child);
  },
  khugepaged_scan: (host) => khugepaged_do_scan(host),
  khugepaged_tick: (host) => khugepaged_tick(host),
});
