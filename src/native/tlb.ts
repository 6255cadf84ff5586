/**
 * The modeled TLB hierarchy's structures as TS sees them. The list of structure names and
 * their order is the addon's (native/mmu.h HV_TLB_STRUCTURES, exported as
 * `addon.tlbStructures`); this module is the one TS place that knows it. TlbGeometry names
 * the same structures as a type, so a geometry literal is checked at compile time;
 * test/mmu-addon.test.ts checks the type's keys against the addon's list.
 */
import type { NativeAddon } from './types.ts';

/**
 * One translation cache: `entries` in total (0 = disabled) in sets of `ways` (0 = fully
 * associative); entries/ways must be a power of two, at most 65536 entries and 64 ways.
 * Replacement is exact LRU per set (deterministic).
 */
export interface TlbArrayGeometry {
  entries: number;
  ways: number;
}

/**
 * The TLB hierarchy of native/mmu.h. L1 arrays are per page size; a translation is cached
 * in the largest enabled array not larger than min(guest page, EPT page) ("splintering").
 * Defaults: NativeAddon.defaultTlbGeometry (native/mmu.h HV_TLB_STRUCTURES).
 */
export interface TlbGeometry {
  /** L1 ITLB, 4 KiB / 2 MiB / 1 GiB entries (default 64×8-way, 8 fully assoc., none). */
  itlb4k?: TlbArrayGeometry;
  itlb2m?: TlbArrayGeometry;
  itlb1g?: TlbArrayGeometry;
  /** L1 DTLB, 4 KiB / 2 MiB / 1 GiB entries (default 64×4-way, 32×4-way, 4 fully assoc.). */
  dtlb4k?: TlbArrayGeometry;
  dtlb2m?: TlbArrayGeometry;
  dtlb1g?: TlbArrayGeometry;
  /** L2 STLB shared by 4 KiB and 2 MiB entries (default 1536×12-way), and its 1 GiB array (16×4-way). */
  stlb?: TlbArrayGeometry;
  stlb1g?: TlbArrayGeometry;
  /** Paging-structure caches: PML4E (4), PDPTE (4), PDE (32), fully associative. */
  pwcPml4e?: TlbArrayGeometry;
  pwcPdpte?: TlbArrayGeometry;
  pwcPde?: TlbArrayGeometry;
  /** Nested TLB: GPA→HPA of guest page-table pages (16, fully associative). */
  nested?: TlbArrayGeometry;
}

/** Name of one structure: a key of TlbGeometry and of NativeMmuConfig.tlb. */
export type TlbStructureName = keyof TlbGeometry;

/** The addon's TLB structure names, in its configuration order. */
export function tlbStructureNames(addon: Pick<NativeAddon, 'tlbStructures'>): readonly TlbStructureName[] {
  return addon.tlbStructures;
}

/** A geometry with every structure disabled: each access walks (the "caches disabled" model). */
export function disabledTlbGeometry(addon: Pick<NativeAddon, 'tlbStructures'>): Required<TlbGeometry> {
  return Object.fromEntries(tlbStructureNames(addon).map((k) => [k, { entries: 0, ways: 0 }])) as Required<TlbGeometry>;
}
