/**
 * Debug view and invariant of the EPT layer.
 *
 * eptDump prints each EPT leaf of a GPA range next to what the host page tables map at the
 * memslot's HVA, so a user can watch a THP split turn one 2M leaf into 4K leaves.
 *
 * The invariant (THP-MODEL.md): no EPT leaf maps a frame the host page tables do not map at
 * the memslot's HVA. A 2 MiB leaf needs a host huge PMD with the same head frame; a
 * writable leaf needs a writable host mapping (else the guest could write around the
 * host's copy-on-write).
 */
import { HPAGE_PMD_SIZE, gpa as asGpa, type Gpa } from '../../util/address.ts';
import { gpaToHva } from './memslot.ts';
import { ConfigError } from '../../util/errors.ts';
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

/** Anything that carries the EPT layer: a KvmMmu, an EPT memory backend, or a Vm in EPT mode. */
export type HasKvmMmu = KvmMmu | { kvmMmu?: KvmMmu | null } | { backend: object };

function resolve(t: HasKvmMmu): KvmMmu {
  if ('backend' in t) return resolve(t.backend as HasKvmMmu);
  if ('kvmMmu' in t) {
    if (!t.kvmMmu) throw new ConfigError('eptDump: this VM does not run with EPT');
    return t.kvmMmu;
  }
  if (!('ept' in t)) throw new ConfigError('eptDump: this VM does not run with EPT (start it with ept: true / --ept on)');
  return t as KvmMmu;
}

/**
 * The EPT leaves of [gpaStart, gpaEnd) beside the host mapping of their HVA, one line per
 * leaf (unmapped GPA ranges are skipped), as a string ready to print.
 */
export function eptDump(target: HasKvmMmu, gpaStart: number, gpaEnd: number): string {
  const k = resolve(target);
  const leaves = [...k.ept.leaves(asGpa(gpaStart), asGpa(gpaEnd))];
  const in2m = leaves.filter((l) => l.level === 2).length;
  const lines = [
    `EPT ${hex(gpaStart)}-${hex(gpaEnd)}: ${leaves.length - in2m} 4K + ${in2m} 2M leaves in range; ` +
      `VM: ${k.ept.pages_4k} 4K + ${k.ept.pages_2m} 2M leaves mapped, ${k.ept.tableCount} tables`,
    'GPA              size perm  PFN        | HVA              host PFN   host',
  ];
  for (const leaf of leaves) {
    const slot = k.slots.lookup(leaf.gpa);
    const h = slot ? gpaToHva(slot, leaf.gpa) : null;
    const m = h === null ? null : k.mm.follow_page(h);
    const host = m ? `${m.huge ? `huge(head ${m.headPfn})` : '4K'}${m.writable ? ' rw' : ' ro'}` : 'unmapped!';
    lines.push(
      `${hex(leaf.gpa).padEnd(16)} ${leaf.level === 2 ? '2M' : '4K'}   ${leaf.writable ? 'rwx' : 'r-x'}   ${String(leaf.pfn).padEnd(10)} | ` +
        `${(h === null ? 'no memslot' : hex(h)).padEnd(16)} ${String(m?.pfn ?? '-').padEnd(10)} ${host}`,
    );
  }
  return lines.join('\n');
}

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
