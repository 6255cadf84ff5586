/**
 * Debug view and invariant of the EPT layer.
 *
 * eptView lists each EPT leaf of a GPA range next to what the host page tables map at the
 * memslot's HVA, so a user can watch a THP split turn one 2M leaf into 4K leaves (the CLI's
 * ept-dump prints it: src/cli/ept-dump.ts).
 *
 * The invariant (docs/thp-model.md): no EPT leaf maps a frame the host page tables do not map at
 * the memslot's HVA. A 2 MiB leaf needs a host huge PMD with the same head frame; a
 * writable leaf needs a writable host mapping (else the guest could write around the
 * host's copy-on-write).
 */
import { HPAGE_PMD_SIZE, gpa as asGpa, type Gpa } from '../../util/address.ts';
import { gpaToHva } from './memslot.ts';
import type { KvmMmu } from './kvm-mmu.ts';

export class EptInvariantError extends Error {
  constructor(message: string) {
    super(`EPT invariant violated: ${message}`);
    this.name = 'EptInvariantError';
  }
}

const hex = (n: number) => '0x' + n.toString(16);

/** Check the invariant for every leaf overlapping [start, end) (default: everything). */
export function checkEptInvariants(k: KvmMmu, start = 0, end = 2 ** 48): void {
  let n4k = 0;
  let n2m = 0;
  for (const leaf of k.ept.leaves(asGpa(start), asGpa(end))) {
    const where = `${leaf.level === 2 ? '2M' : '4K'} leaf gpa ${hex(leaf.gpa)} → pfn ${leaf.pfn}`;
    const slot = k.slots.lookup(leaf.gpa);
    if (!slot) throw new EptInvariantError(`${where} lies outside every memslot`);
    const h = gpaToHva(slot, leaf.gpa);
    const m = k.mm.follow_page(h);
    if (!m) throw new EptInvariantError(`${where}: host maps nothing at hva ${hex(h)}`);
    if (leaf.level === 2) {
      n2m++;
      if (leaf.gpa + HPAGE_PMD_SIZE > slot.gpa + slot.size) throw new EptInvariantError(`${where} extends past memslot ${slot.id}`);
      if (!m.huge) throw new EptInvariantError(`${where}: host maps hva ${hex(h)} with 4 KiB pages, not a huge PMD`);
      if (m.headPfn !== leaf.pfn || m.pfn !== leaf.pfn) {
        throw new EptInvariantError(`${where}: host huge PMD at hva ${hex(h)} has head pfn ${m.headPfn}`);
      }
    } else {
      n4k++;
      if (m.pfn !== leaf.pfn) throw new EptInvariantError(`${where}: host maps pfn ${m.pfn} at hva ${hex(h)}`);
    }
    if (leaf.writable && !m.writable) throw new EptInvariantError(`${where} is writable but the host mapping at hva ${hex(h)} is not`);
  }
  if (start === 0 && end >= 2 ** 48 && (n4k !== k.ept.pages_4k || n2m !== k.ept.pages_2m)) {
    throw new EptInvariantError(`counters say ${k.ept.pages_4k} 4K / ${k.ept.pages_2m} 2M leaves, the tables hold ${n4k} / ${n2m}`);
  }
}

/**
 * The EPT leaves of [gpaStart, gpaEnd) beside the host mapping of their HVA (unmapped GPA
 * ranges are skipped), and the VM-wide leaf and table counts: the data of the CLI's ept-dump
 * view. A leaf with no memslot (hva null) or no host mapping (host null) breaks the invariant.
 */
export function eptView(k: KvmMmu, gpaStart: Gpa, gpaEnd: Gpa) {
  const leaves = [...k.ept.leaves(gpaStart, gpaEnd)].map((leaf) => {
    const slot = k.slots.lookup(leaf.gpa);
    const h = slot ? gpaToHva(slot, leaf.gpa) : null;
    const m = h === null ? null : k.mm.follow_page(h);
    return {
      gpa: leaf.gpa,
      size: leaf.level === 2 ? ('2m' as const) : ('4k' as const),
      writable: leaf.writable,
      pfn: leaf.pfn,
      hva: h,
      host: m && { pfn: m.pfn, huge: m.huge, headPfn: m.headPfn, writable: m.writable },
    };
  });
  return { start: gpaStart, end: gpaEnd, leaves, pages_4k: k.ept.pages_4k, pages_2m: k.ept.pages_2m, tables: k.ept.tableCount };
}
export type EptView = ReturnType<typeof eptView>;

/** Summary counts of the leaves in a range (for reports and tests). */
export function eptLeafCounts(k: KvmMmu, start: Gpa, end: Gpa): { pages_4k: number; pages_2m: number } {
  let pages_4k = 0;
  let pages_2m = 0;
  for (const l of k.ept.leaves(start, end)) {
    if (l.level === 2) pages_2m++;
    else pages_4k++;
  }
  return { pages_4k, pages_2m };
}
