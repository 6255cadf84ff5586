/**
 * The EPT as a secondary MMU of the VMM process (virt/kvm/kvm_main.c's
 * kvm_mmu_notifier_invalidate_range_start/end of 2.6.38).
 *
 * Whenever the host mm removes or downgrades a mapping of the VMM (munmap, mprotect,
 * MADV_DONTNEED, split_huge_page pass 1, khugepaged collapse, swap-out, COW), it calls
 * invalidate_range_start before and invalidate_range_end after. Start zaps every EPT leaf
 * covering the HVA range (through the memslots' HVA → GPA) and flushes the modeled TLBs;
 * mmu_notifier_count stays raised until end, which bumps mmu_notifier_seq, so an EPT
 * fault that ran gup across either edge sees the change in mmu_notifier_retry and does not
 * install a stale frame.
 *
 * Accessed bits (kvm_mmu_notifier_clear_flush_young / test_young, called by reclaim's
 * page_referenced and khugepaged): the 2.6.38 EPT has no accessed bits
 * (shadow_accessed_mask == 0), so KVM emulates them — clear_flush_young zaps the EPT
 * mapping of the page and answers "young" if there was one (the next guest access faults
 * it back in), and test_young answers "not young", leaving it to gup's FOLL_TOUCH to
 * mark the host PTE (kvm_age_rmapp / kvm_test_age_rmapp).
 */
import { PAGE_SIZE, alignDown, gpa as asGpa, hvaAdd, type Hva, gpaAdd } from '../../util/address.ts';
import type { MmStructApi, MmuNotifierOps } from '../../mm/types.ts';
import type { KvmMmu } from './kvm-mmu.ts';

export class KvmMmuNotifier implements MmuNotifierOps {
  constructor(private readonly k: KvmMmu) {}

  invalidate_range_start(_mm: MmStructApi, start: Hva, end: Hva): void {
    const k = this.k;
    k.mmu_notifier_count++;
    k.stats.mmu_notifier_invalidate++;
    let zapped = 0;
    for (const r of k.slots.hvaRangeToGpaRanges(start, end)) zapped += k.zapGpaRange(r.start, r.end);
    // kvm_flush_remote_tlbs only when something was really unmapped.
    if (zapped > 0) k.flushTlbs();
  }

  /** kvm_age_hva for an EPT without accessed bits: zap the leaf mapping `addr`, if any. */
  clear_flush_young(_mm: MmStructApi, addr: Hva): boolean {
    const k = this.k;
    const a = alignDown(addr, PAGE_SIZE);
    let zapped = 0;
    for (const r of k.slots.hvaRangeToGpaRanges(a, hvaAdd(a, PAGE_SIZE))) {
      if (k.ept.lookup(r.start)) zapped += k.zapGpaRange(r.start, gpaAdd(r.start, PAGE_SIZE));
    }
    if (zapped === 0) return false;
    k.stats.mmu_notifier_age_zapped++;
    k.flushTlbs();
    return true;
  }

  /** kvm_test_age_hva: no EPT accessed bits to report. */
  test_young(_mm: MmStructApi, _addr: Hva): boolean {
    return false;
  }

  invalidate_range_end(_mm: MmStructApi, _start: Hva, _end: Hva): void {
    const k = this.k;
    // Order matters: seq first, then count (KVM's smp_wmb between them), so a fault that
    // sees count == 0 also sees the new seq.
    k.mmu_notifier_seq++;
    k.mmu_notifier_count--;
  }
}
