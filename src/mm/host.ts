/**
 * The simulated host machine (HostApi): RAM as buddy-managed frames with struct page,
 * the THP knobs, vmstat, the host-wide anon_vma registry, the zero page, the processes
 * (MmStruct), and the host's kernel threads and devices as owned parts: khugepaged
 * (khugepaged.ts), the swap device (swap.ts) and page reclaim with kswapd (reclaim.ts).
 */
import type { Pfn } from '../util/address.ts';
import { PAGE_SIZE } from '../util/address.ts';
import { ConfigError, HugevisorError, OutOfMemoryError } from '../util/errors.ts';
import { parseConfig } from '../util/schema.ts';
import { BuddyAllocator } from './buddy.ts';
import { hostConfigSchema } from './config.ts';
import { checkInvariants } from './invariants.ts';
import { Khugepaged } from './khugepaged.ts';
import { setKnob } from './knobs.ts';
import { MmStruct } from './mm.ts';
import { PageArray, PG_reserved } from './page.ts';
import { PhysMem } from './physmem.ts';
import { Reclaim } from './reclaim.ts';
import { FolioPolicy } from './policy-6x.ts';
import { Policy2638, type ThpPolicy } from './policy.ts';
import { registerFreePages } from './refcount.ts';
import { AnonVmaRegistry } from './rmap.ts';
import { Swap } from './swap.ts';
import type { HostApi, HostConfig, Kernel, MmStructApi, ThpKnobs } from './types.ts';
import { VmStat } from './vmstat.ts';

export const HPAGE_PMD_ORDER = 9;

export class Host implements HostApi {
  readonly config: HostConfig;
  /** HostConfig.kernel: the THP design this host follows. */
  readonly kernel: Kernel;
  readonly knobs: ThpKnobs;
  readonly nrFrames: number;
  readonly pages: PageArray;
  readonly buddy: BuddyAllocator;
  readonly physmem: PhysMem;
  /** vm_event_states + zone page states. */
  readonly stat: VmStat;
  readonly anon = new AnonVmaRegistry();
  readonly processes = new Set<MmStruct>();
  /** The shared zero page (ZERO_PAGE) mapped by read faults on 4 KiB anonymous memory. */
  readonly zero_pfn: Pfn;
  readonly min_free_frames: number;
  debugChecks: boolean;
  /** Simulated milliseconds since boot (advanceTime). */
  now = 0;
  /** The khugepaged thread: its scan state, schedule and sysfs counters. */
  readonly khugepaged: Khugepaged;
  /** The swap device and swap cache (device null without HostConfig.swap). */
  readonly swap: Swap;
  /** Page reclaim: direct reclaim, kswapd (named after mm/vmscan.c; HostApi.reclaim is a method). */
  readonly vmscan: Reclaim;
  /** The THP rules of HostConfig.kernel (policy.ts): Policy2638 or FolioPolicy (6.x). */
  readonly policy: ThpPolicy;
  private opDepth = 0;
  private closed = false;
  private nextMmId = 1;

  constructor(config: HostConfig) {
    const c = parseConfig(hostConfigSchema, config, 'host');
    this.config = config;
    this.kernel = c.kernel;
    this.stat = new VmStat(this.kernel === '6.x');
    this.knobs = c.thp;
    this.nrFrames = c.memoryBytes / PAGE_SIZE;
    this.pages = new PageArray(this.nrFrames);
    this.buddy = new BuddyAllocator(this.pages);
    registerFreePages(this.pages, (pfn, order) => this.buddy.free_pages(pfn, order));
    this.physmem = new PhysMem(c.physmem ?? new ArrayBuffer(c.memoryBytes), c.memoryBytes);
    this.min_free_frames = c.min_free_frames ?? Math.max(512, Math.floor(this.nrFrames / 100));
    this.debugChecks = c.debugChecks ?? false;
    this.policy = this.kernel === '6.x' ? new FolioPolicy(this) : new Policy2638(this);
    this.khugepaged = new Khugepaged(this);
    this.vmscan = new Reclaim(this);
    this.swap = new Swap(this, c.swap); // swapon: creates the swap file
    this.zero_pfn = this.alloc_kernel_page();
  }

  /** Run a public operation; check every invariant after the outermost one in debug mode. */
  op<T>(fn: () => T): T {
    if (this.closed) throw new HugevisorError('EINVAL_CONFIG', 'host: used after close()');
    this.opDepth++;
    try {
      return fn();
    } finally {
      this.opDepth--;
      if (this.opDepth === 0 && this.debugChecks) checkInvariants(this);
    }
  }

  setKnob(path: string, value: string | number): void {
    setKnob(this.knobs, path, value, this.kernel);
  }

  newProcess(): MmStructApi {
    return this.op(() => this.createMm());
  }
  /** mm_alloc */
  createMm(): MmStruct {
    const mm = new MmStruct(this, this.nextMmId++);
    this.processes.add(mm);
    return mm;
  }

  nr_free_pages(): number {
    return this.buddy.nr_free_pages();
  }

  // --- page allocation -----------------------------------------------------------

  /** alloc_page for user memory: an order-0 frame (not zeroed), direct reclaim once, else ENOMEM. */
  alloc_page(): Pfn {
    let pfn = this.buddy.alloc_pages(0);
    if (pfn === null) {
      this.vmscan.try_to_free_pages(32);
      pfn = this.buddy.alloc_pages(0);
    }
    if (pfn === null) throw new OutOfMemoryError(`host out of memory: no free frame (${this.nrFrames} frames, ${this.nr_free_pages()} free)`);
    return pfn;
  }

  /**
   * alloc_hugepage: an order-9 compound page (6.x: a large folio), or null (fragmentation /
   * no memory). With defrag the kernel would direct-compact and reclaim; the model has no
   * compaction, but direct reclaim runs the shrinkers (shrink_slab) — which under 6.x split
   * the deferred-split queue — and the allocation is tried once more.
   */
  alloc_hugepage(defrag: boolean, order: number = HPAGE_PMD_ORDER): Pfn | null {
    let head = this.buddy.alloc_pages(order);
    if (head === null && defrag && this.vmscan.shrink_slab() > 0) head = this.buddy.alloc_pages(order);
    if (head === null) return null;
    this.policy.prep_thp(head, order);
    return head;
  }

  alloc_kernel_page(): Pfn {
    const pfn = this.alloc_page();
    this.pages.setFlag(pfn, PG_reserved);
    return pfn;
  }

  free_kernel_page(pfn: Pfn): void {
    if (!this.pages.testFlag(pfn, PG_reserved) || this.pages._count[pfn] !== 1) {
      throw new ConfigError(`free_kernel_page: frame ${pfn} is not an allocated kernel page`);
    }
    this.pages._count[pfn] = 0;
    this.buddy.free_pages(pfn, 0);
  }

  // --- HostApi ----------------------------------------------------------------------

  put_page(pfn: Pfn): void {
    this.op(() => {
      if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrFrames) throw new ConfigError(`put_page: no frame ${pfn}`);
      if (this.policy.page_refs(pfn) <= 0) throw new ConfigError(`put_page: frame ${pfn} holds no reference`);
      this.policy.put_page(pfn);
    });
  }

  /**
   * Advance simulated time: kswapd, then every khugepaged pass due by the new time. A long
   * advance can mean many passes; `interrupted` (checked between passes) lets a caller with a
   * wall-clock deadline stop early: the passes not run stay due and run at the next advance.
   */
  advanceTime(ms: number, interrupted?: () => boolean): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new ConfigError(`advanceTime: ms must be a finite number ≥ 0, got ${ms}`);
    this.op(() => {
      this.now += ms;
      this.vmscan.wakeup_kswapd();
      this.khugepaged.khugepaged_tick(interrupted);
    });
  }

  khugepaged_scan(): void {
    this.op(() => this.khugepaged.khugepaged_do_scan());
  }

  reclaim(nrFrames: number): number {
    return this.op(() => this.vmscan.reclaim(nrFrames));
  }

  split_huge_page(pfn: Pfn): void {
    this.op(() => {
      if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.nrFrames) throw new ConfigError(`split_huge_page: no frame ${pfn}`);
      const head = this.pages.compound_head(pfn);
      if (!this.pages.PageHead(head) || this.pages._count[head] === 0) return;
      this.policy.split_huge_page(head);
    });
  }

  vmstat(): Record<string, number> {
    return this.stat.snapshot(this.nr_free_pages());
  }

  meminfo(): Record<string, number> {
    const sw = this.swap.meminfo();
    return this.stat.meminfo(this.nrFrames, this.nr_free_pages(), sw.totalPages, sw.freePages, this.policy.anonPages());
  }

  mthpStats(): Record<string, Record<string, number>> | null {
    return this.kernel === '6.x' ? this.stat.mthp.snapshot() : null;
  }

  khugepagedStats(): { pages_collapsed: number; full_scans: number } {
    return this.khugepaged.stats();
  }

  checkInvariants(): void {
    checkInvariants(this);
  }

  /** Tear down: exit every process, free the zero page, close swap; in debug mode every frame must then be free. */
  close(): void {
    if (this.closed) return;
    for (const mm of [...this.processes]) mm.exit_mmap();
    this.policy.close(); // 6.x: the huge zero folio
    this.free_kernel_page(this.zero_pfn);
    this.swap.close();
    this.closed = true;
    if (this.debugChecks && this.nr_free_pages() !== this.nrFrames) {
      throw new HugevisorError(
        'ENOMEM',
        `invariant violated: ${this.nrFrames - this.nr_free_pages()} frames still allocated after every process exited and the host closed`,
      );
    }
  }
}

