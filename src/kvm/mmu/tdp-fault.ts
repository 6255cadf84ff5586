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
 * With host.kernel '6.x' the level comes from kvm_mmu_hugepage_adjust instead: the host
 * page-table level at the HVA (a PTE-mapped large folio gives 4 KiB leaves) and the NX
 * huge pages mitigation.
 *
 * One call handles one exit; a retry returns to the guest, which faults again, exactly as
 * KVM returns from tdp_page_fault with 0 and re-enters the guest.
 */
import { HPAGE_PMD_SIZE, PAGE_SIZE, alignDown, type Gpa, type Hva, type Pfn } from '../../util/address.ts';
import type { PageMapping } from '../../mm/types.ts';
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

/** How one fault maps: the leaf, and what the NX huge pages mitigation asks for. */
type MappingPlan =
  | { level: 1 | 2; mapGpa: Gpa; mapPfn: Pfn; executable: boolean; nxSplit: boolean }
  | { bug: string };

/**
 * transparent_hugepage_adjust (2.6.38 arch/x86/kvm/mmu.c): a 2 MiB leaf when the page gup
 * returned is part of a compound page (PageTransCompound) — in the 2.6.38 host that is a
 * THP mapped by a huge PMD, follow_page's `huge` — the whole 2 MiB GPA range is in the slot
 * with GPA ≡ HVA (mod 2 MiB) (the lpage disallow rules) and dirty logging is off.
 */
function transparent_hugepage_adjust(slot: Memslot, page: Gpa, base: Gpa, pfn: Pfn, m: PageMapping, forcePt: boolean): MappingPlan {
  if (forcePt || !m.huge || !slotAllowsLargePage(slot, base)) return { level: 1, mapGpa: page, mapPfn: pfn, executable: true, nxSplit: false };
  // VM_BUG_ON((gfn & mask) != (pfn & mask)) — the congruence the slot check guarantees.
  if ((page - base) / PAGE_SIZE !== pfn - m.headPfn) return { bug: `EPT fault: gpa ${hex(page)} and pfn ${pfn} not congruent inside the THP at ${m.headPfn}` };
  return { level: 2, mapGpa: base, mapPfn: m.headPfn, executable: true, nxSplit: false };
}

/**
 * kvm_mmu_max_mapping_level (6.x arch/x86/kvm/mmu/mmu.c): the largest leaf the slot allows
 * at `base` (lpage_info: alignment, slot bounds, dirty logging), capped by
 * host_pfn_mapping_level — the level of the host page table that maps the HVA now
 * (lookup_address_in_mm). A PTE-mapped page of a large folio is PG_LEVEL_4K: the folio's
 * size does not matter, only how the host maps it.
 */
export function kvm_mmu_max_mapping_level(k: KvmMmu, slot: Memslot, base: Gpa, h: Hva, forcePt: boolean): { level: 1 | 2; headPfn: Pfn | null } {
  if (forcePt || !slotAllowsLargePage(slot, base)) return { level: 1, headPfn: null };
  const host = k.mm.lookup_address_in_mm(h);
  if (!host || host.level !== 2) return { level: 1, headPfn: null };
  return { level: 2, headPfn: host.pfn };
}

/**
 * kvm_mmu_hugepage_adjust (6.x): req_level from kvm_mmu_max_mapping_level; with the NX
 * huge pages mitigation an instruction fetch may not use a large leaf
 * (huge_page_disallowed: goal_level = PG_LEVEL_4K, and the region's large leaf is split),
 * large leaves are mapped non-executable, and a region already split for a fetch stays
 * 4 KiB for every access (disallowed_hugepage_adjust) until the recovery worker zaps it.
 */
function kvm_mmu_hugepage_adjust(k: KvmMmu, slot: Memslot, page: Gpa, base: Gpa, h: Hva, pfn: Pfn, forcePt: boolean, exec: boolean): MappingPlan {
  const req = kvm_mmu_max_mapping_level(k, slot, base, h, forcePt);
  if (req.level === 1) return { level: 1, mapGpa: page, mapPfn: pfn, executable: true, nxSplit: false };
  if ((page - base) / PAGE_SIZE !== pfn - req.headPfn!) return { bug: `EPT fault: gpa ${hex(page)} and pfn ${pfn} not congruent inside the huge PMD at ${req.headPfn}` };
  if (k.nx_huge_pages) {
    if (exec) return { level: 1, mapGpa: page, mapPfn: pfn, executable: true, nxSplit: true };
    if (k.isPossibleNxHugePage(base)) return { level: 1, mapGpa: page, mapPfn: pfn, executable: true, nxSplit: false };
    return { level: 2, mapGpa: base, mapPfn: req.headPfn!, executable: false, nxSplit: false };
  }
  return { level: 2, mapGpa: base, mapPfn: req.headPfn!, executable: true, nxSplit: false };
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

  const base = alignDown(g, HPAGE_PMD_SIZE);
  const plan = k.kernel === '6.x'
    ? kvm_mmu_hugepage_adjust(k, slot, page, base, h, pfn, forcePt, access === Access.FETCH)
    : transparent_hugepage_adjust(slot, page, base, pfn, m, forcePt);
  if ('bug' in plan) {
    k.host.put_page(pfn);
    throw new Error(plan.bug);
  }
  const { level, mapGpa, mapPfn } = plan;

  // Write access only when the host PTE is writable now (after gup(write) broke any COW):
  // a read fault on a COW-shared or zero page maps read-only, so the guest's first write
  // exits again and goes through the host's COW. Dirty logging maps read-only until the
  // first write so that write is seen.
  const writable = m.writable && (!forcePt || write);
  let replaced = false;
  try {
    if (plan.nxSplit) {
      // tdp_mmu_map met the non-executable large leaf where the page table must go: split it
      // in place (its 4 KiB pieces are executable: the mitigation is about large pages).
      replaced = k.ept.splitHugePage(base, true);
      if (replaced) k.stats.kvm_mmu_split_huge_page++;
    }
    replaced = k.ept.map(mapGpa, mapPfn, level, writable, plan.executable) || replaced;
    if (plan.nxSplit) k.track_possible_nx_huge_page(base);
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
