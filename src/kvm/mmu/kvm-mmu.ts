/**
 * KvmMmu: the KVM-like EPT layer of one VM — memslots, EPT tables, the EPT violation
 * handler, the MMU notifier and dirty logging — over the VMM process of the host THP model.
 *
 * This is the facade the Vm talks to (attach_ept): it owns the EPT root (eptp for
 * configureMmu), gets every vCPU's INVEPT hook, and hands EXIT_EPT_VIOLATION here. The
 * policy lives in the files it delegates to: tdp-fault.ts (tdp_page_fault),
 * mmu-notifier.ts, dirty-log.ts, debug.ts.
 */
import { HPAGE_PMD_SIZE, PAGE_SIZE, alignUp, gpaAdd, type Gpa } from '../../util/address.ts';
import { ConfigError } from '../../util/errors.ts';
import type { HostApi, Kernel, MmStructApi } from '../../mm/types.ts';
import type { ByteSource } from '../../util/chunked-bytes.ts';
import { Ept } from './ept.ts';
import { EptGuestMemory, MemslotTable, type Memslot, type UserMemoryRegion } from './memslot.ts';
import { tdpPageFault, type EptFaultResult } from './tdp-fault.ts';
import type { AccessKind } from '../../native/types.ts';
import { KvmMmuNotifier } from './mmu-notifier.ts';
import { disableDirtyLog, enableDirtyLog, getDirtyLog } from './dirty-log.ts';
import { checkEptInvariants } from './debug.ts';

/** Anything that caches EPT translations: a vCPU's modeled TLBs. */
export interface EptTlbHolder {
  invept(): void;
}

/** Counters of the EPT layer, with KVM stat names (kvm_vcpu_stat / kvm_vm_stat). */
export interface KvmMmuStats {
  /** EPT violation exits handled (tdp_page_fault calls). */
  ept_violations: number;
  /** Faults that installed a leaf. */
  pf_fixed: number;
  /** EPT violations on GPAs outside every memslot. */
  mmio_exits: number;
  /** Faults dropped because an invalidation raced them (mmu_notifier_retry). */
  mmu_notifier_retry: number;
  /** invalidate_range_start calls received. */
  mmu_notifier_invalidate: number;
  /** EPT leaves zapped (by notifiers, dirty logging, slot deletion). */
  mmu_zapped_leaves: number;
  /** EPT table frames freed by zaps (KVM: mmu_shadow_zapped). */
  mmu_shadow_zapped: number;
  /** INVEPTs issued to the vCPUs (KVM: remote_tlb_flush). */
  remote_tlb_flush: number;
  /** clear_flush_young calls that found (and zapped) a mapping: accessed-bit emulation. */
  mmu_notifier_age_zapped: number;
  /**
   * 2 MiB regions mapped with 4 KiB leaves because the guest executed from them (the NX
   * huge pages mitigation; a gauge: the recovery worker and zaps lower it). KVM VM stat.
   */
  nx_lpage_splits: number;
  /**
   * Large leaves split in place into 512 small ones (eager page split when dirty logging
   * starts, an NX split of a mapped large leaf). KVM has no stat for it: the count of its
   * tracepoint kvm_mmu_split_huge_page.
   */
  kvm_mmu_split_huge_page: number;
}

/** Which KVM: the 2.6.38 one, or the folio era's (6.x) TDP MMU. A VM's follows host.kernel. */
export type KvmKernel = Kernel;

/** nx_huge_pages_recovery_ratio's default (arch/x86/kvm/mmu/mmu.c): 1/60 of the split regions per period. */
export const NX_HUGE_PAGES_RECOVERY_RATIO = 60;
/**
 * The recovery worker's period with nx_huge_pages_recovery_period_ms at its default 0:
 * one hour / ratio (calc_nx_huge_pages_recovery_period), 60 s at ratio 60.
 */
export const NX_HUGE_PAGES_RECOVERY_PERIOD_MS = (60 * 60 * 1000) / NX_HUGE_PAGES_RECOVERY_RATIO;

export interface KvmMmuOptions {
  host: HostApi;
  /** The VMM process whose anonymous memory backs guest RAM. */
  mm: MmStructApi;
  /** The host's physical memory (the arena, or one ArrayBuffer): EPT tables are written there. */
  physmem: ByteSource;
  /** Check the EPT invariant after every EPT change (tests turn it on). */
  debugChecks?: boolean;
  /** The KVM of which kernel (default '2.6.38'); the VM passes host.kernel. */
  kernel?: KvmKernel;
  /** Module param nx_huge_pages (6.x only; default false): no executable large leaves. */
  nx_huge_pages?: boolean;
  /** Module param eager_page_split (6.x only; default true, as in KVM): split large leaves when dirty logging starts. */
  eager_page_split?: boolean;
}

export class KvmMmu {
  readonly host: HostApi;
  readonly mm: MmStructApi;
  readonly slots = new MemslotTable();
  readonly ept: Ept;
  readonly debugChecks: boolean;
  readonly kernel: KvmKernel;
  readonly nx_huge_pages: boolean;
  readonly eager_page_split: boolean;
  /** kvm->arch.possible_nx_huge_pages: the 2 MiB bases split for a fetch, oldest first. */
  private readonly possibleNxHugePages = new Set<number>();
  /** Host time (ms) of the recovery worker's next pass. */
  private nxRecoveryDueMs = NX_HUGE_PAGES_RECOVERY_PERIOD_MS;
  readonly stats: KvmMmuStats = {
    ept_violations: 0,
    pf_fixed: 0,
    mmio_exits: 0,
    mmu_notifier_retry: 0,
    mmu_notifier_invalidate: 0,
    mmu_zapped_leaves: 0,
    mmu_shadow_zapped: 0,
    remote_tlb_flush: 0,
    mmu_notifier_age_zapped: 0,
    nx_lpage_splits: 0,
    kvm_mmu_split_huge_page: 0,
  };
  /** kvm->mmu_notifier_seq / mmu_notifier_count, driven by KvmMmuNotifier. */
  mmu_notifier_seq = 0;
  mmu_notifier_count = 0;
  private readonly notifier: KvmMmuNotifier;
  private readonly tlbs: EptTlbHolder[] = [];
  private destroyed = false;

  constructor(opts: KvmMmuOptions) {
    this.host = opts.host;
    this.mm = opts.mm;
    this.debugChecks = opts.debugChecks ?? false;
    this.kernel = opts.kernel ?? '2.6.38';
    this.nx_huge_pages = opts.nx_huge_pages ?? false;
    this.eager_page_split = opts.eager_page_split ?? true;
    if (this.kernel === '2.6.38' && this.nx_huge_pages) {
      throw new ConfigError('kvm.nx_huge_pages: on needs host.kernel 6.x (the mitigation came with Linux 5.4)', { path: 'kvm.nx_huge_pages', detail: 'needs 6.x' });
    }
    this.ept = new Ept(opts.host, opts.physmem);
    this.notifier = new KvmMmuNotifier(this);
    this.mm.mmu_notifier_register(this.notifier);
  }

  /** HPA of the EPT PML4, for configureMmu({ept: true, eptp}). */
  get eptp(): number {
    return this.ept.eptp;
  }

  /** Leaves currently mapped (KVM's pages_4k / pages_2m). */
  get pages_4k(): number {
    return this.ept.pages_4k;
  }
  get pages_2m(): number {
    return this.ept.pages_2m;
  }

  /** Register a vCPU whose TLBs must be flushed (INVEPT) after every EPT change. */
  attachVcpu(v: EptTlbHolder): void {
    this.tlbs.push(v);
  }

  /** KVM_SET_USER_MEMORY_REGION (create): the HVA range must already be mapped by the VMM. */
  setUserMemoryRegion(r: UserMemoryRegion): Memslot {
    return this.slots.add(r);
  }

  /**
   * Allocate guest RAM the way QEMU does: an anonymous mapping of the VMM, 2 MiB aligned
   * (qemu_ram_mmap), registered as a memslot. `madvise` adds MADV_HUGEPAGE (QEMU does so
   * for guest RAM), which matters when transparent_hugepage/enabled is madvise.
   */
  addRamSlot(slot: number, g: Gpa, size: number, opts: { madvise?: boolean } = {}): Memslot {
    if (!Number.isInteger(size) || size <= 0) throw new ConfigError(`memslot ${slot}: size must be a positive integer, got ${size}`);
    const h = this.mm.mmap(alignUp(size, PAGE_SIZE), { alignHuge: true });
    if (opts.madvise ?? true) this.mm.madvise(h, alignUp(size, PAGE_SIZE), 'MADV_HUGEPAGE');
    try {
      return this.slots.add({ slot, gpa: g, size, hva: h });
    } catch (e) {
      this.mm.munmap(h, alignUp(size, PAGE_SIZE));
      throw e;
    }
  }

  /** KVM_SET_USER_MEMORY_REGION with size 0: remove the slot and zap its mappings. */
  deleteMemslot(id: number): void {
    const s = this.slots.byId(id);
    const zapped = this.zapGpaRange(s.gpa, gpaAdd(s.gpa, s.size));
    this.slots.remove(id);
    if (zapped > 0) this.flushTlbs();
  }

  /** Handle one EXIT_EPT_VIOLATION (tdp_page_fault). */
  handleEptViolation(g: Gpa, access: AccessKind): EptFaultResult {
    return tdpPageFault(this, g, access);
  }

  /** Zap the leaves overlapping [start, end); returns how many. Callers flush. */
  zapGpaRange(start: Gpa, end: Gpa): number {
    const r = this.ept.zapRange(start, end);
    const n = r.zapped4k + r.zapped2m;
    this.stats.mmu_zapped_leaves += n;
    this.stats.mmu_shadow_zapped += r.tablesFreed;
    if (r.tablesFreed > 0) this.untrackFreedNxHugePages();
    return n;
  }

  /** track_possible_nx_huge_page: the region at `base` got a page table because of a fetch. */
  track_possible_nx_huge_page(base: Gpa): void {
    if (this.possibleNxHugePages.has(base)) return;
    this.possibleNxHugePages.add(base);
    this.stats.nx_lpage_splits++;
  }

  /** Whether the region at `base` is split for the NX mitigation (disallowed_hugepage_adjust keeps it 4 KiB). */
  isPossibleNxHugePage(base: Gpa): boolean {
    return this.possibleNxHugePages.has(base);
  }

  /** untrack_possible_nx_huge_page for every tracked region whose page table is gone. */
  private untrackFreedNxHugePages(): void {
    for (const b of this.possibleNxHugePages) {
      if (!this.ept.hasPageTable(b as Gpa)) {
        this.possibleNxHugePages.delete(b);
        this.stats.nx_lpage_splits--;
      }
    }
  }

  /**
   * kvm_nx_huge_page_recovery_worker on the host's clock: one kvm_recover_nx_huge_pages pass
   * every NX_HUGE_PAGES_RECOVERY_PERIOD_MS of host time (the VM calls this as the host clock
   * advances). Returns the passes run.
   */
  nx_huge_page_recovery_worker(nowMs: number): number {
    if (!this.nx_huge_pages) return 0;
    let passes = 0;
    while (nowMs >= this.nxRecoveryDueMs) {
      this.kvm_recover_nx_huge_pages();
      this.nxRecoveryDueMs += NX_HUGE_PAGES_RECOVERY_PERIOD_MS;
      passes++;
    }
    return passes;
  }

  /**
   * One pass of the NX recovery worker (kvm_recover_nx_huge_pages): zap
   * DIV_ROUND_UP(nx_lpage_splits, ratio) split regions, oldest first, so their next
   * data access may map a large leaf again. Returns the regions zapped.
   */
  kvm_recover_nx_huge_pages(ratio = NX_HUGE_PAGES_RECOVERY_RATIO): number {
    if (ratio <= 0) return 0;
    let toZap = Math.ceil(this.possibleNxHugePages.size / ratio);
    let done = 0;
    for (const b of [...this.possibleNxHugePages]) {
      if (toZap-- <= 0) break;
      this.zapGpaRange(b as Gpa, gpaAdd(b as Gpa, HPAGE_PMD_SIZE));
      if (this.possibleNxHugePages.delete(b)) this.stats.nx_lpage_splits--;
      done++;
    }
    if (done > 0) this.flushTlbs();
    return done;
  }

  /** kvm_flush_remote_tlbs: INVEPT on every vCPU. */
  flushTlbs(): void {
    this.stats.remote_tlb_flush++;
    for (const v of this.tlbs) v.invept();
  }

  /** Guest memory for the loader in EPT mode (writes go through the host mm). */
  guestMemory(): EptGuestMemory {
    return new EptGuestMemory(this.mm, this.slots);
  }

  enableDirtyLog(slotId: number): void {
    enableDirtyLog(this, slotId);
    if (this.debugChecks) this.checkInvariants();
  }
  getDirtyLog(slotId: number): Uint8Array {
    return getDirtyLog(this, slotId);
  }
  disableDirtyLog(slotId: number): void {
    disableDirtyLog(this, slotId);
    if (this.debugChecks) this.checkInvariants();
  }

  /** Check the EPT invariant over [start, end) (default: every leaf); throws EptInvariantError. */
  checkInvariants(start?: number, end?: number): void {
    checkEptInvariants(this, start, end);
  }

  /** Unregister from the host mm and free every EPT table (VM teardown). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.mm.mmu_notifier_unregister(this.notifier);
    this.ept.destroy();
  }
}
