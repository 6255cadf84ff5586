/**
 * The EPT violation handler: KVM's tdp_page_fault (arch/x86/kvm/mmu.c, 2.6.38) over the
 * host THP model.
 *
 *   memslot lookup (none → MMIO) → gfn_to_hva → snapshot mmu_notifier_seq → gup (faults
 *   the host page in per the THP knobs) → mmu_notifier_retry? drop the page, let the
 *   guest re-fault → transparent_hugepage_adjust (2 MiB leaf if the host maps the HVA with
 *   a huge PMD, the slot allows a large page there and dirty logging is off) → install →
 *   put_page (drop the gup pin) → INVEPT if a present translation was replaced.
 *
 * One call handles one exit; a retry returns to the guest, which faults again, exactly as
 * KVM returns from tdp_page_fault with 0 and re-enters the guest.
 */
import { HPAGE_PMD_SIZE, PAGE_SIZE, alignDown, type Gpa, type Pfn } from '../../util/address.ts';
import { HugevisorError, OutOfMemoryError } from '../../util/errors.ts';
import { gpaToHva, slotAllowsLargePage, type Memslot } from './memslot.ts';
import { markPageDirty } from './dirty-log.ts';
import type { KvmMmu } from './kvm-mmu.ts';
import { Access, type AccessKind } from '../../native/types.ts';


export type EptFaultResult =
  /** A leaf was installed (level 1 = 4 KiB, 2 = 2 MiB): resume the guest. */
  | { kind: 'fixed'; level: 1 | 2 }
  /** An invalidation raced the fault: the page was dropped; resume and let it re-fault. */
  | { kind: 'retry' }
  /** No memslot covers the GPA: an MMIO access, for the Vm to report. */
  | { kind: 'mmio'; gpa: Gpa }
  /** The host could not supply a page or an EPT table frame (out of memory, no swap left). */
  | { kind: 'host-oom'; gpa: Gpa; message: string }
  /**
   * hva_to_pfn failed for another reason: the VMM unmapped or protected the memory behind
   * the slot. KVM's KVM_RUN returns -EFAULT to the VMM here.
   */
  | { kind: 'efault'; gpa: Gpa; message: string };

const hex = (n: number) => '0x' + n.toString(16);

function hostOomMessage(g: Gpa, e: OutOfMemoryError): string {
  return `EPT violation at GPA ${hex(g)}: ${e.message}`;
}

/**
 * mapping_level_dirty_bitmap: a slot with dirty logging must be tracked per 4 KiB page, so
 * it is only ever mapped at the page-table level.
 */
function forcePtLevel(slot: Memslot): boolean {
  return slot.dirtyBitmap !== null;
}

/** Handle one EPT violation at `g` (tdp_page_fault). */
export function tdpPageFault(k: KvmMmu, g: Gpa, access: AccessKind): EptFaultResult {
  k.stats.ept_violations++;
  const slot = k.slots.lookup(g);
  if (!slot) {
    k.stats.mmio_exits++;
    return { kind: 'mmio', gpa: g };
  }
  const write = access === Access.WRITE;
  const page = alignDown(g, PAGE_SIZE);
  const h = gpaToHva(slot, page);
  const forcePt = forcePtLevel(slot);

  const mmuSeq = k.mmu_notifier_seq;
  let pfn: Pfn;
  try {
    pfn = k.mm.get_user_pages(h, 1, write)[0]!;
  } catch (e) {
    // Only the host's own refusals become results; anything else is a bug and propagates.
    if (e instanceof OutOfMemoryError) return { kind: 'host-oom', gpa: g, message: hostOomMessage(g, e) };
    if (e instanceof HugevisorError) {
      return { kind: 'efault', gpa: g, message: `EPT violation at GPA ${hex(g)}: memslot ${slot.id} HVA ${hex(h)} cannot be faulted in (${e.message})` };
    }
    throw e;
  }

  // mmu_notifier_retry: an invalidation started or finished since the snapshot, so the
  // page gup returned may already be unmapped from the host. Never install it.
  if (k.mmu_notifier_count > 0 || k.mmu_notifier_seq !== mmuSeq) {
    k.host.put_page(pfn);
    k.stats.mmu_notifier_retry++;
    return { kind: 'retry' };
  }

  const m = k.mm.follow_page(h);
  if (!m || m.pfn !== pfn) {
    k.host.put_page(pfn);
    throw new Error(`EPT fault: gup returned pfn ${pfn} for hva ${hex(h)} but the host maps ${m ? m.pfn : 'nothing'}`);
  }

  // transparent_hugepage_adjust: a THP behind the HVA, the whole 2 MiB GPA range in the
  // slot with GPA ≡ HVA (mod 2 MiB) (KVM's lpage disallow rules) and no dirty logging.
  let level: 1 | 2 = 1;
  let mapGpa = page;
  let mapPfn = pfn;
  const base = alignDown(g, HPAGE_PMD_SIZE);
  if (!forcePt && m.huge && slotAllowsLargePage(slot, base)) {
    // VM_BUG_ON((gfn & mask) != (pfn & mask)) — the congruence the slot check guarantees.
    if ((page - base) / PAGE_SIZE !== pfn - m.headPfn) {
      k.host.put_page(pfn);
      throw new Error(`EPT fault: gpa ${hex(g)} and pfn ${pfn} not congruent inside the THP at ${m.headPfn}`);
    }
    level = 2;
    mapGpa = base;
    mapPfn = m.headPfn;
  }

  // Write access only when the host PTE is writable now (after gup(write) broke any COW):
  // a read fault on a COW-shared or zero page maps read-only, so the guest's first write
  // exits again and goes through the host's COW. Dirty logging maps read-only until the
  // first write so that write is seen.
  const writable = m.writable && (!forcePt || write);
  let replaced: boolean;
  try {
    replaced = k.ept.map(mapGpa, mapPfn, level, writable);
  } catch (e) {
    // A new EPT table needs a host frame (alloc_kernel_page) and there is none left.
    if (!(e instanceof OutOfMemoryError)) throw e;
    k.host.put_page(pfn);
    return { kind: 'host-oom', gpa: g, message: hostOomMessage(g, e) };
  }
  if (forcePt && writable) markPageDirty(slot, page);

  // The EPT entry does not hold a page reference (KVM relies on the MMU notifier instead).
  k.host.put_page(pfn);
  k.stats.pf_fixed++;
  // Like KVM's mmu_set_spte: INVEPT only when a present translation changed (a permission
  // upgrade, a 2M leaf split for a 4K one, a page table replaced by a 2M leaf). Filling a
  // non-present entry cannot leave anything stale: hardware caches no faulting walk.
  if (replaced) k.flushTlbs();
  if (k.debugChecks) k.checkInvariants(mapGpa, mapGpa + (level === 2 ? HPAGE_PMD_SIZE : PAGE_SIZE));
  return { kind: 'fixed', level };
}
