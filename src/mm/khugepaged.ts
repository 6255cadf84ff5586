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
 *
 * One Khugepaged per Host (host.khugepaged), built in the Host constructor: the thread's
 * state (khugepaged_scan's cursor, the wake-up schedule) and its sysfs counters are fields.
 */
import type { Hva, Pfn } from '../util/address.ts';
import { HPAGE_PMD_NR, HPAGE_PMD_SIZE, PAGE_SIZE, alignDown, alignUp, hva, hvaAdd, pfnAdd } from '../util/address.ts';
import type { Host } from './host.ts';
import type { MmStruct } from './mm.ts';
import { mmu_notifier_invalidate_range_end, mmu_notifier_invalidate_range_start } from './mmu-notifier.ts';
import { _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW, _PAGE_SPECIAL, pmd_index } from './pgtable.ts';
import { mmu_notifier_test_young } from './reclaim.ts';
import { thp_vma_allowable_orders } from './mthp.ts';
import { VM_HUGEPAGE, VM_NOHUGEPAGE, VM_WRITE, type Vma } from './vma.ts';

const HPAGE_PMD_ORDER = 9;


/**
 * khugepaged has work: 2.6.38 khugepaged_enabled (enabled is not never); 6.x
 * hugepage_pmd_enabled for anonymous memory: hugepages-2048kB/enabled is always or
 * madvise, or inherit with the top-level enabled not never.
 */
function khugepaged_enabled(host: Host): boolean {
  const k = host.knobs;
  if (host.kernel !== '6.x') return k.enabled !== 'never';
  const pmd = k.sizes!['2048kB'];
  return pmd === 'always' || pmd === 'madvise' || (pmd === 'inherit' && k.enabled !== 'never');
}
const khugepaged_always = (host: Host) => host.knobs.enabled === 'always';
const khugepaged_test_exit = (host: Host, mm: MmStruct) => mm.dead || !host.processes.has(mm);

/**
 * The VMA may hold a PMD-sized THP: 2.6.38 VM_HUGEPAGE or enabled=always, not
 * VM_NOHUGEPAGE; 6.x thp_vma_allowable_order(PMD_ORDER), i.e. hugepages-2048kB/enabled.
 */
function vma_thp_allowed(host: Host, vma: Vma): boolean {
  if (host.kernel === '6.x') return thp_vma_allowable_orders(host.knobs, vma, 1 << HPAGE_PMD_ORDER) !== 0;
  return (khugepaged_always(host) || (vma.flags & VM_HUGEPAGE) !== 0) && !(vma.flags & VM_NOHUGEPAGE);
}

/** VMA flags allow collapse (the checks khugepaged_scan_mm_slot and collapse_huge_page share). */
function vma_eligible(host: Host, vma: Vma): boolean {
  return vma_thp_allowed(host, vma) && vma.anon_vma !== null;
}

/** The khugepaged thread of one host: its scan cursor, its schedule, its sysfs counters. */
export class Khugepaged {
  /** khugepaged_scan.mm_head: registered mms in registration order. */
  readonly mm_head: MmStruct[] = [];
  /** khugepaged_scan.mm_slot: the mm being scanned, null between turns of the list. */
  mm_slot: MmStruct | null = null;
  /** khugepaged_scan.address: where the scan of mm_slot resumes. */
  address: Hva = hva(0);
  /** Simulated ms of the thread's next pass; null while it waits for work. */
  nextWake: number | null = null;
  /** The last pass failed to allocate a huge page (hpage = ERR_PTR(-ENOMEM)). */
  allocFailed = false;
  /** Passes run (for reports and tests). */
  passes = 0;
  /** sysfs khugepaged/pages_collapsed: huge pages made (once per collapse, as 2.6.38 counts). */
  pages_collapsed = 0;
  /** sysfs khugepaged/full_scans: turns of the whole mm list. */
  full_scans = 0;

  constructor(private readonly host: Host) {}

  private khugepaged_has_work(): boolean {
    return this.mm_head.length > 0 && khugepaged_enabled(this.host);
  }

  /** __khugepaged_enter: register the mm; wake the thread if it was waiting for work. */
  private __khugepaged_enter(mm: MmStruct): void {
    if (this.mm_head.includes(mm)) return;
    const wakeup = this.mm_head.length === 0;
    this.mm_head.push(mm);
    if (wakeup && this.nextWake === null) this.nextWake = this.host.now;
  }

  /**
   * khugepaged_enter(vma): on a huge fault, madvise(MADV_HUGEPAGE), and a VMA merge that
   * leaves an anon_vma (khugepaged_enter_vma_merge).
   */
  khugepaged_enter(mm: MmStruct, vma: Vma): void {
    const host = this.host;
    if (!khugepaged_enabled(host)) return;
    if (vma_thp_allowed(host, vma)) this.__khugepaged_enter(mm);
  }

  /** khugepaged_fork: a child of a registered mm is registered too. */
  khugepaged_fork(child: MmStruct, parent: MmStruct): void {
    if (this.mm_head.includes(parent)) this.__khugepaged_enter(child);
  }

  /** khugepaged_exit: drop the mm, unless the scan is on it (then the scan collects it). */
  khugepaged_exit(mm: MmStruct): void {
    if (this.mm_slot === mm) return;
    const i = this.mm_head.indexOf(mm);
    if (i >= 0) this.mm_head.splice(i, 1);
  }

  /**
   * khugepaged_scan_pmd: may the 2 MiB range at `address` be collapsed? Empty PTEs at most
   * max_ptes_none; every other PTE present and writable, mapping an anonymous page that is
   * on the LRU, unlocked, with _count 1 (no gup pin, no swap cache, not shared); at least
   * one young. Collapses it when so; returns whether a collapse was attempted.
   */
  private khugepaged_scan_pmd(mm: MmStruct, vma: Vma, address: Hva): boolean {
    const pmd = mm.pgd.pmd_table(address);
    if (!pmd) return false;
    const i = pmd_index(address);
    const t = pmd.pte[i];
    if (!t || pmd.pmd_trans_huge(i)) return false;
    if (!this.host.policy.collapse_scan(mm, address, t, (j) => mmu_notifier_test_young(mm, hvaAdd(address, j * PAGE_SIZE)))) return false;
    this.collapse_huge_page(mm, address, vma);
    return true;
  }

  /**
   * collapse_huge_page: allocate the huge page, revalidate the VMA, clear the PMD (secondary
   * MMUs told), isolate the small pages (rules re-checked), copy them — zero-filling holes —
   * into the huge page, map it with a huge PMD (the old PTE table becomes its deposit), and
   * free the small pages.
   */
  private collapse_huge_page(mm: MmStruct, address: Hva, vma: Vma): void {
    const host = this.host;
    const pages = host.pages;
    const new_page = host.alloc_hugepage(host.knobs.khugepaged.defrag);
    if (new_page === null) {
      host.stat.count_vm_event('thp_collapse_alloc_failed');
      this.allocFailed = true;
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
      host.policy.put_page(new_page);
      return;
    }
    const t = pmd.pte[i]!;
    const start = address;
    const end = hvaAdd(address, HPAGE_PMD_SIZE);
    // pmdp_clear_flush_notify: after this neither the CPU nor gup_fast reach the PTEs.
    mmu_notifier_invalidate_range_start(mm, start, end);
    pmd.pmd_clear(i);
    mmu_notifier_invalidate_range_end(mm, start, end);
    host.policy.collapse_swapin(mm, vma, address, t); // __collapse_huge_page_swapin (6.x)
    if (!host.policy.collapse_scan(mm, address, t, null)) {
      pmd.pmd_populate(i, t);
      host.policy.put_page(new_page);
      return;
    }
    // __collapse_huge_page_copy, then __collapse_huge_page_copy_succeeded: the source pages'
    // rmap goes in one batch per folio (folio_pte_batch), then their references.
    const copied: Pfn[] = [];
    for (let j = 0; j < HPAGE_PMD_NR; j++) {
      const dst = pfnAdd(new_page, j);
      if (t.bits[j] === 0 || t.bits[j] & _PAGE_SPECIAL) {
        // pte_none, or (6.x only: 2.6.38's rules refuse it) the zero page
        host.physmem.zeroFrames(dst);
        t.pte_clear(j);
        continue;
      }
      const src = t.pte_pfn(j);
      host.physmem.copyFrames(dst, src);
      t.pte_clear(j);
      copied.push(src);
    }
    host.policy.remove_rmap_ptes(copied);
    for (const src of copied) host.policy.put_page(src); // free_page_and_swap_cache (6.x: folio_put_refs)
    host.policy.add_new_anon_rmap_pmd(new_page, vma, start);
    pmd.set_pmd_huge(i, new_page, _PAGE_ACCESSED | _PAGE_DIRTY | (vma.flags & VM_WRITE ? _PAGE_RW : 0));
    mm.prepare_pmd_huge_pte(t);
    this.pages_collapsed++;
  }

  /** khugepaged_scan_mm_slot: scan the current mm from where it stopped; returns progress. */
  private khugepaged_scan_mm_slot(pages: number): number {
    const host = this.host;
    if (!this.mm_slot) {
      this.mm_slot = this.mm_head[0];
      this.address = hva(0);
    }
    const mm = this.mm_slot;
    let progress = 1;
    let finished = true; // the VMA walk ran off the end (vma == NULL)
    if (!khugepaged_test_exit(host, mm)) {
      const first = mm.find_vma(this.address);
      const vmas = first ? mm.vmas.slice(mm.vmas.indexOf(first)) : [];
      outer: for (const vma of vmas) {
        if (!vma_eligible(host, vma)) {
          progress++;
          continue;
        }
        const hstart = alignUp(vma.start, HPAGE_PMD_SIZE);
        const hend = alignDown(vma.end, HPAGE_PMD_SIZE);
        if (hstart >= hend || this.address > hend) {
          progress++;
          continue;
        }
        if (this.address < hstart) this.address = hstart;
        while (this.address < hend) {
          const collapsed = this.khugepaged_scan_pmd(mm, vma, this.address);
          this.address = hvaAdd(this.address, HPAGE_PMD_SIZE);
          progress += HPAGE_PMD_NR;
          if (collapsed || progress >= pages) {
            finished = false;
            break outer;
          }
        }
      }
    }
    if (khugepaged_test_exit(host, mm) || finished) {
      const i = this.mm_head.indexOf(mm);
      if (i + 1 < this.mm_head.length) {
        this.mm_slot = this.mm_head[i + 1];
        this.address = hva(0);
      } else {
        this.mm_slot = null;
        this.full_scans++;
      }
      if (khugepaged_test_exit(host, mm)) this.mm_head.splice(i, 1); // collect_mm_slot
    }
    return progress;
  }

  /** khugepaged_do_scan: one pass of pages_to_scan progress (HostApi.khugepaged_scan). */
  khugepaged_do_scan(): void {
    const pages = this.host.knobs.khugepaged.pages_to_scan;
    let progress = 0;
    let pass_through_head = 0;
    this.allocFailed = false;
    this.passes++;
    while (progress < pages) {
      if (this.allocFailed) break;
      if (!this.mm_slot) pass_through_head++;
      if (this.khugepaged_has_work() && pass_through_head < 2) progress += this.khugepaged_scan_mm_slot(pages - progress);
      else progress = pages;
    }
  }

  /** khugepaged_loop's wake-ups: run every pass due by host.now (HostApi.advanceTime). */
  khugepaged_tick(interrupted?: () => boolean): void {
    const host = this.host;
    while (this.nextWake !== null && this.nextWake <= host.now) {
      if (interrupted?.()) return; // the passes still due run at the next tick
      const at = this.nextWake;
      if (khugepaged_enabled(host)) this.khugepaged_do_scan();
      if (!this.khugepaged_has_work()) {
        this.nextWake = null; // wait_event until khugepaged_enter
        continue;
      }
      // A zero scan_sleep_millisecs means back-to-back passes; the model spaces them 1 ms
      // apart so that advanceTime always ends.
      const k = host.knobs.khugepaged;
      this.nextWake = at + Math.max(1, k.scan_sleep_millisecs) + (this.allocFailed ? k.alloc_sleep_millisecs : 0);
    }
  }

  /** /sys/kernel/mm/transparent_hugepage/khugepaged/{pages_collapsed,full_scans}. */
  stats(): { pages_collapsed: number; full_scans: number } {
    return { pages_collapsed: this.pages_collapsed, full_scans: this.full_scans };
  }
}
