/**
 * Dirty page logging (KVM_MEM_LOG_DIRTY_PAGES + KVM_GET_DIRTY_LOG), as live migration uses
 * it: while a slot logs, it is mapped only with 4 KiB EPT leaves, read-only until the
 * first write, so each first write to a page is an EPT violation that sets the page's bit.
 * Get-and-clear hands the bitmap back and write-protects the slot again.
 *
 * Deviation from 2.6.38, on purpose: enabling zaps the slot's 2 MiB leaves (2.6.38 only
 * write-protected them and dropped each on its next write), and disabling zaps the 4 KiB
 * leaves that could be one 2 MiB leaf again (kvm_mmu_zap_collapsible_sptes, Linux 4.2),
 * so the slot returns to 2 MiB mappings on the next faults instead of staying split.
 */
import { HPAGE_PMD_SIZE, PAGE_SIZE, gpa as asGpa, type Gpa, gpaAdd } from '../../util/address.ts';
import { ConfigError } from '../../util/errors.ts';
import { KVM_MEM_LOG_DIRTY_PAGES, gpaToHva, slotAllowsLargePage, type Memslot } from './memslot.ts';
import type { KvmMmu } from './kvm-mmu.ts';
import { kvm_mmu_max_mapping_level } from './tdp-fault.ts';

/** mark_page_dirty: set the bit of the 4 KiB page at `g` in its slot's bitmap. */
export function markPageDirty(slot: Memslot, g: Gpa): void {
  if (!slot.dirtyBitmap) return;
  const i = Math.floor((g - slot.gpa) / PAGE_SIZE);
  slot.dirtyBitmap[i >> 3]! |= 1 << (i & 7);
}

/**
 * Turn dirty logging on for a slot, then write-protect its 4 KiB leaves. Its 2 MiB leaves:
 * the 2.6.38 model zaps them (each range refaults 4 KiB at a time); KVM 6.x with
 * eager_page_split splits each in place into 512 4 KiB leaves (kvm_mmu_slot_apply_flags →
 * kvm_mmu_slot_try_split_huge_pages), so the guest takes no fault for reads and one per
 * first write, as for any logged page.
 */
export function enableDirtyLog(k: KvmMmu, slotId: number): void {
  const slot = k.slots.byId(slotId);
  if (slot.dirtyBitmap) throw new ConfigError(`memslot ${slotId}: dirty logging is already enabled`);
  slot.flags |= KVM_MEM_LOG_DIRTY_PAGES;
  slot.dirtyBitmap = new Uint8Array(Math.ceil(slot.size / PAGE_SIZE / 8));
  const start = slot.gpa;
  const end = gpaAdd(slot.gpa, slot.size);
  if (k.kernel === '6.x' && k.eager_page_split) kvm_mmu_slot_try_split_huge_pages(k, start, end);
  else {
    for (const leaf of k.ept.leaves(start, end)) {
      if (leaf.level === 2) k.zapGpaRange(leaf.gpa, gpaAdd(leaf.gpa, HPAGE_PMD_SIZE));
    }
  }
  k.ept.writeProtectRange(start, end);
  k.flushTlbs();
}

/**
 * kvm_mmu_slot_try_split_huge_pages: every 2 MiB leaf of [start, end) becomes a page table
 * of 512 4 KiB leaves on the same frames (executable: the NX mitigation only concerns large
 * leaves). Counted in kvm_mmu_split_huge_page; pages_2m/pages_4k move by 1/512 each.
 */
export function kvm_mmu_slot_try_split_huge_pages(k: KvmMmu, start: Gpa, end: Gpa): number {
  let n = 0;
  for (const leaf of k.ept.leaves(start, end)) {
    if (leaf.level !== 2) continue;
    if (k.ept.splitHugePage(leaf.gpa, leaf.executable || k.nx_huge_pages)) n++;
  }
  k.stats.kvm_mmu_split_huge_page += n;
  return n;
}

/**
 * KVM_GET_DIRTY_LOG: return the slot's bitmap (bit i = page i written since the last call)
 * and start a new round: clear it and write-protect the slot so the next writes exit again.
 */
export function getDirtyLog(k: KvmMmu, slotId: number): Uint8Array {
  const slot = k.slots.byId(slotId);
  if (!slot.dirtyBitmap) throw new ConfigError(`memslot ${slotId}: dirty logging is not enabled`);
  const out = slot.dirtyBitmap.slice();
  if (out.some((b) => b !== 0)) {
    slot.dirtyBitmap.fill(0);
    k.ept.writeProtectRange(slot.gpa, gpaAdd(slot.gpa, slot.size));
    k.flushTlbs();
  }
  return out;
}

/**
 * Turn dirty logging off. 4 KiB leaves that a 2 MiB leaf could replace: the 2.6.38 model
 * zaps them (kvm_mmu_zap_collapsible_sptes) and the guest refaults each range once; KVM
 * 6.x replaces each such page table by the 2 MiB leaf in place (kvm_mmu_recover_huge_pages,
 * 6.13+), with the permissions of its first 4 KiB leaf, and the guest takes no fault.
 */
export function disableDirtyLog(k: KvmMmu, slotId: number): void {
  const slot = k.slots.byId(slotId);
  if (!slot.dirtyBitmap) throw new ConfigError(`memslot ${slotId}: dirty logging is not enabled`);
  slot.flags &= ~KVM_MEM_LOG_DIRTY_PAGES;
  slot.dirtyBitmap = null;
  if (k.kernel === '6.x') {
    if (kvm_mmu_recover_huge_pages(k, slot) > 0) k.flushTlbs();
    return;
  }
  // kvm_mmu_zap_collapsible_sptes: a 2 MiB GPA range the slot allows and the host backs
  // with a huge PMD is worth one large leaf again.
  let zapped = 0;
  const first = Math.ceil(slot.gpa / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE;
  for (let base = first; base + HPAGE_PMD_SIZE <= slot.gpa + slot.size; base += HPAGE_PMD_SIZE) {
    const b = asGpa(base);
    if (!slotAllowsLargePage(slot, b)) continue;
    const m = k.mm.follow_page(gpaToHva(slot, b));
    if (!m || !m.huge) continue;
    zapped += k.zapGpaRange(b, gpaAdd(b, HPAGE_PMD_SIZE));
  }
  if (zapped > 0) k.flushTlbs();
}

/** Number of set bits (dirty pages) in a bitmap. */
export function countDirty(bitmap: Uint8Array): number {
  let n = 0;
  for (const b of bitmap) {
    let x = b;
    while (x) {
      n += x & 1;
      x >>= 1;
    }
  }
  return n;
}

/**
 * kvm_mmu_recover_huge_pages (6.x): for every 2 MiB range of the slot that the slot allows
 * large and the host maps with a huge PMD (kvm_mmu_max_mapping_level), a page table holding
 * at least one 4 KiB leaf becomes one 2 MiB leaf (the table is freed). Returns how many.
 */
export function kvm_mmu_recover_huge_pages(k: KvmMmu, slot: Memslot): number {
  let n = 0;
  const first = Math.ceil(slot.gpa / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE;
  for (let base = first; base + HPAGE_PMD_SIZE <= slot.gpa + slot.size; base += HPAGE_PMD_SIZE) {
    const b = asGpa(base);
    if (!k.ept.hasPageTable(b) || k.isPossibleNxHugePage(b)) continue;
    const max = kvm_mmu_max_mapping_level(k, slot, b, gpaToHva(slot, b), false);
    if (max.level !== 2) continue;
    const child = k.ept.leaves(b, gpaAdd(b, HPAGE_PMD_SIZE))[0]!;
    k.ept.map(b, max.headPfn!, 2, child.writable, !k.nx_huge_pages);
    n++;
  }
  return n;
}
