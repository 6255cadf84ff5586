/**
 * The public contract of the host memory model, which the EPT manager
 * (src/kvm/) and experiments are written against. The implementation in src/mm/ is typed
 * against these interfaces so the two cannot drift. Names are the kernel's.
 */
import type { ByteSource } from '../util/chunked-bytes.ts';
import type { Hva, Pfn } from '../util/address.ts';
import type { Kernel, ThpConfig, ThpKnobs, ThpMode } from './config.ts';

export type { Kernel, MthpMode, MthpSize, ThpConfig, ThpKnobs } from './config.ts';
/** transparent_hugepage/enabled (config.ts THP_MODES) */
export type ThpEnabled = ThpMode;
/** transparent_hugepage/defrag (config.ts THP_MODES) */
export type ThpDefrag = ThpMode;

export interface SwapConfig {
  /** Size of the swap device in bytes (0 = no swap). */
  bytes: number;
  /** Backing file; default: a new file in a fresh temp dir, removed on close(). */
  path?: string;
  /**
   * What the kernel sees (/proc/swaps Type): 'file' (default), a swap file on a filesystem,
   * or 'partition', a block device (SWP_BLKDEV). The 6.x kernel swaps a large folio out whole
   * only to a block device; to a swap file it splits it first (swap-cluster.ts).
   */
  type?: 'file' | 'partition';
}

/** The host section; validated by config.ts hostConfigSchema (unknown keys refused). */
export interface HostConfig {
  /** Simulated host RAM in bytes (a multiple of 2 MiB). */
  memoryBytes: number;
  /**
   * The bytes of host RAM: host PFN n at byte n*4096. Normally the native arena (its 1 GiB
   * chunk ArrayBuffers, src/util/chunked-bytes.ts); a plain ArrayBuffer works too; defaults
   * to a fresh ArrayBuffer for pure-model use.
   */
  physmem?: ByteSource;
  /**
   * Which kernel's THP design the host follows: '2.6.38' (compound pages, split_huge_page;
   * the default) or '6.x' (Linux 6.18: folios, split_huge_pmd, deferred split, huge zero page).
   */
  kernel?: Kernel;
  /** THP knobs by sysfs name; those left out keep the kernel's defaults (config.ts). */
  thp?: ThpConfig;
  swap?: SwapConfig;
  /** Reclaim starts when free frames drop below this many (default: 1% of RAM, ≥ 512). */
  min_free_frames?: number;
  /** Check every invariant (invariants.ts) after every operation (tests turn it on). */
  debugChecks?: boolean;
}

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

export type Madvice = 'MADV_HUGEPAGE' | 'MADV_NOHUGEPAGE' | 'MADV_DONTNEED';

export interface MmapOptions {
  prot?: number;
  /** Align the start to 2 MiB, as QEMU does for guest RAM (qemu_ram_mmap). */
  alignHuge?: boolean;
  /** Fixed address (MAP_FIXED); otherwise the mm picks one. */
  addr?: Hva;
}

/** What maps an address right now (follow_page), without faulting. */
export interface PageMapping {
  /** The 4 KiB frame that backs the address (a tail frame inside a THP). */
  pfn: Pfn;
  /** Mapped by a huge PMD (pmd_trans_huge) — the 2 MiB frame block starts at headPfn. */
  huge: boolean;
  headPfn: Pfn;
  writable: boolean;
}

/** What lookup_address_in_mm reports: the page-table level that maps an address and its frame. */
export interface HostMappingLevel {
  /** PG_LEVEL_4K (1, a PTE) or PG_LEVEL_2M (2, a huge PMD). */
  level: 1 | 2;
  /** The frame the entry points at: the 4 KiB page, or the first frame of the 2 MiB block. */
  pfn: Pfn;
}

/** A secondary MMU (KVM's EPT) listening to a host mm. */
export interface MmuNotifierOps {
  invalidate_range_start(mm: MmStructApi, start: Hva, end: Hva): void;
  invalidate_range_end(mm: MmStructApi, start: Hva, end: Hva): void;
}

/** A host process address space (struct mm_struct). */
export interface MmStructApi {
  readonly id: number;
  mmap(length: number, opts?: MmapOptions): Hva;
  munmap(addr: Hva, length: number): void;
  mprotect(addr: Hva, length: number, prot: number): void;
  madvise(addr: Hva, length: number, advice: Madvice): void;
  /** fork(): a child sharing every anonymous page copy-on-write. */
  fork(): MmStructApi;
  /** Destroy the address space (exit_mmap): unmaps and frees everything. */
  exit_mmap(): void;

  /** handle_mm_fault as a user access would; throws on SIGSEGV (no VMA / protection). */
  handle_mm_fault(addr: Hva, write: boolean): void;
  /**
   * get_user_pages: fault in and take one reference on each of `n` pages from `addr`
   * (the head of a THP, or the tail that maps the address). Release with put_page.
   */
  get_user_pages(addr: Hva, n: number, write: boolean): Pfn[];
  /** follow_page: the current mapping of `addr`, or null when nothing maps it. */
  follow_page(addr: Hva): PageMapping | null;
  /** lookup_address_in_mm: the host page-table level mapping `addr` (read-only, no fault), or null. */
  lookup_address_in_mm(addr: Hva): HostMappingLevel | null;

  /** Read/write bytes as the process would (faulting pages in). */
  readBytes(addr: Hva, length: number): Uint8Array;
  writeBytes(addr: Hva, data: Uint8Array): void;

  mmu_notifier_register(ops: MmuNotifierOps): void;
  mmu_notifier_unregister(ops: MmuNotifierOps): void;
  /** Bumped at every invalidate_range_end (KVM's mmu_notifier_seq). */
  readonly mmu_notifier_seq: number;
  /** >0 while an invalidation is in progress (KVM's mmu_notifier_count). */
  readonly mmu_notifier_count: number;
}

/** The simulated host machine: frames, struct page, processes, khugepaged, swap. */
export interface HostApi {
  /** HostConfig.kernel: the THP design this host follows. */
  readonly kernel: Kernel;
  readonly knobs: Readonly<ThpKnobs>;
  /** Change a sysfs knob by its path below transparent_hugepage/, e.g. 'enabled' or 'khugepaged/pages_to_scan'. Validated. */
  setKnob(path: string, value: string | number): void;
  newProcess(): MmStructApi;
  /** put_page on a frame returned by get_user_pages. */
  put_page(pfn: Pfn): void;
  /** Allocate / free a kernel page (PG_reserved; EPT tables, deposited PTE tables). */
  alloc_kernel_page(): Pfn;
  free_kernel_page(pfn: Pfn): void;
  /** Advance simulated time by `ms` (khugepaged wakes on its schedule). */
  advanceTime(ms: number, interrupted?: () => boolean): void;
  /** Run one khugepaged pass now (khugepaged_do_scan), regardless of the clock. */
  khugepaged_scan(): void;
  /** Try to reclaim `nrFrames` frames now (swap-out, splitting THPs first). Returns frames freed. */
  reclaim(nrFrames: number): number;
  /** split_huge_page on the THP containing `pfn` (a debug/experiment hook). */
  split_huge_page(pfn: Pfn): void;
  /** /proc/vmstat counters by kernel name. */
  vmstat(): Record<string, number>;
  /** /proc/meminfo in kB, kernel names. */
  meminfo(): Record<string, number>;
  /**
   * /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/stats/* by size ('16kB' … '2048kB')
   * and file name (mthp-stats.ts); null under kernel '2.6.38', which has no per-size THP.
   */
  mthpStats(): Record<string, Record<string, number>> | null;
  /** /sys/kernel/mm/transparent_hugepage/khugepaged/{pages_collapsed,full_scans}. */
  khugepagedStats(): { pages_collapsed: number; full_scans: number };
  /** Check every invariant now; throws naming the first violated one. */
  checkInvariants(): void;
  /** Remove the swap file and release everything. */
  close(): void;
}
