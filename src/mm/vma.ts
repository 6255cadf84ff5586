/**
 * vm_area_struct: one anonymous mapping of a host process. Flags use the 2.6.38 values.
 */
import type { Hva } from '../util/address.ts';
import type { AnonVma } from './rmap.ts';
import type { MmStruct } from './mm.ts';

export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_HUGEPAGE = 0x01000000;
export const VM_NOHUGEPAGE = 0x40000000;

export class Vma {
  /** The anon_vma new pages of this VMA are born in (anon_vma_prepare). */
  anon_vma: AnonVma | null = null;
  /** Every anon_vma whose pages this VMA may map (its own and its ancestors' after fork). */
  anon_vma_chain: AnonVma[] = [];
  constructor(
    readonly mm: MmStruct,
    public start: Hva,
    public end: Hva,
    public flags: number,
  ) {}
  get length(): number {
    return this.end - this.start;
  }
}
