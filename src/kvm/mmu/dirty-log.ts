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

/** mark_page_dirty: set the bit of the 4 KiB page at `g` in its slot's bitmap. */
export function markPageDirty(slot: Memslot, g: Gpa): void {
  if (!slot.dirtyBitmap) return;
  const i = Math.floor((g - slot.gpa) / PAGE_SIZE);
  slot.dirtyBitmap[i >> 3]! |= 1 << (i & 7);
}

/** Turn dirty logging on for a slot: drop its 2 MiB leaves, write-protect the rest. */
export function enableDirtyLog(k: KvmMmu, slotId: number): void {
  const slot = k.slots.byId(slotId);
  if (slot.dirtyBitmap) throw new ConfigError(`memslot ${slotId}: dirty logging is already enabled`);
  slot.flags |= KVM_MEM_LOG_DIRTY_PAGES;
  slot.dirtyBitmap = new Uint8Array(Math.ceil(slot.size / PAGE_SIZE / 8));
  const start = slot.gpa;
  const end = gpaAdd(slot.gpa, slot.size);
  for (const leaf of k.ept.leaves(start, end)) {
    if (leaf.level === 2) k.zapGpaRange(leaf.gpa, gpaAdd(leaf.gpa, HPAGE_PMD_SIZE));
  }
  k.ept.writeProtectRange(start, end);
  k.flushTlbs();
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

/** Turn dirty logging off; 4 KiB leaves that a 2 MiB leaf could replace are zapped. */
export function disableDirtyLog(k: KvmMmu, slotId: number): void {
  const slot = k.slots.byId(slotId);
  if (!slot.dirtyBitmap) throw new ConfigError(`memslot ${slotId}: dirty logging is not enabled`);
  slot.flags &= ~KVM_MEM_LOG_DIRTY_PAGES;
  slot.dirtyBitmap = null;
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
