/**
 * lookup_address_in_mm (arch/x86/mm/pat/set_memory.c): the level of the host page table
 * that maps a user address — a read-only walk that neither faults nor touches the
 * accessed bits. KVM of the folio era sizes its EPT leaves by it (host_pfn_mapping_level in
 * arch/x86/kvm/mmu/mmu.c walks the host page tables the same way): a huge PMD gives a
 * 2 MiB leaf, a PTE gives 4 KiB — even when the PTE maps a page of a large folio.
 */
import type { Hva } from '../util/address.ts';
import type { MmStruct } from './mm.ts';
import { pmd_index, pte_index } from './pgtable.ts';
import type { HostMappingLevel } from './types.ts';

/** PG_LEVEL_4K / PG_LEVEL_2M (arch/x86/include/asm/pgtable_types.h). */
export const PG_LEVEL_4K = 1;
export const PG_LEVEL_2M = 2;

/** The level and frame mapping `addr` now, or null when nothing present maps it. */
export function lookup_address_in_mm(mm: MmStruct, addr: Hva): HostMappingLevel | null {
  const pmd = mm.pgd.pmd_table(addr);
  if (!pmd) return null;
  const i = pmd_index(addr);
  if (pmd.pmd_trans_huge(i)) return { level: PG_LEVEL_2M, pfn: pmd.pmd_page(i) };
  const t = pmd.pte[i];
  if (!t) return null;
  const j = pte_index(addr);
  if (!t.pte_present(j)) return null;
  return { level: PG_LEVEL_4K, pfn: t.pte_pfn(j) };
}
