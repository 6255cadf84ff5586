/**
 * The memory side of a run's result: EPT-layer counters (KVM stat names), the host's THP
 * counters (/proc/vmstat and /proc/meminfo names, khugepaged's sysfs counters), the host
 * clock, and the TLB/walk figures from the vCPU counters. The CLI's summary prints only
 * fields of MemoryReport (or ratios of two of them), so --json carries the inputs of
 * everything shown (src/cli/format.ts).
 */
import type { EptMemoryBackend, EptRunStats } from './mmu/ept-memory.ts';
import type { HostClockReport } from './host-clock.ts';
import type { GuestMemoryBackend } from './memory.ts';


/** Misses of one TLB level split by the page size of the looked-up translation. */
export interface SizeSplit {
  '4k': number;
  '2m': number;
  '1g': number;
  total: number;
}

/** TLB misses per level and walk references per miss, from the vCPU counters. */
export interface TlbReport {
  l1_misses: { itlb: number; dtlb: number };
  stlb_misses: number;
  /** The same misses split by page size (counters itlb_4k_misses...). */
  misses: { itlb: SizeSplit; dtlb: SizeSplit; stlb: SizeSplit };
  walks: number;
  walk_refs: number;
  walk_refs_guest: number;
  walk_refs_ept: number;
  /** walk_refs / walks: 24 for 4K guest over 4K EPT with cold caches (docs/mmu-model.md). */
  refs_per_walk: number;
  /** Paging-structure cache hits by level, and nested-TLB hits (GPA→HPA of guest tables). */
  pwc_hits: { pml4e: number; pdpte: number; pde: number };
  nested_tlb_hits: number;
}

export interface MemoryReport {
  mode: 'ept' | 'native';
  /** EPT-layer counters (null in native mode). */
  ept: EptRunStats | null;
  /** Host /proc/vmstat + khugepaged counters (null in native mode). */
  host: Record<string, number> | null;
  /** Host /proc/meminfo in kB, as the kernel prints it (null in native mode). */
  meminfo: Record<string, number> | null;
  /** The host clock (null in native mode). */
  clock: HostClockReport | null;
  tlb: TlbReport;
}

const split = (c: Readonly<Record<string, number>>, level: string): SizeSplit => {
  const s = { '4k': c[`${level}_4k_misses`] ?? 0, '2m': c[`${level}_2m_misses`] ?? 0, '1g': c[`${level}_1g_misses`] ?? 0, total: 0 };
  s.total = s['4k'] + s['2m'] + s['1g'];
  return s;
};

export function tlbReport(c: Readonly<Record<string, number>>): TlbReport {
  const walks = c.walks ?? 0;
  const refs = c.walk_refs ?? 0;
  const misses = { itlb: split(c, 'itlb'), dtlb: split(c, 'dtlb'), stlb: split(c, 'stlb') };
  return {
    l1_misses: { itlb: misses.itlb.total, dtlb: misses.dtlb.total },
    stlb_misses: misses.stlb.total,
    misses,
    walks,
    walk_refs: refs,
    walk_refs_guest: c.walk_refs_guest ?? 0,
    walk_refs_ept: c.walk_refs_ept ?? 0,
    refs_per_walk: walks > 0 ? refs / walks : 0,
    pwc_hits: { pml4e: c.pwc_pml4e_hits ?? 0, pdpte: c.pwc_pdpte_hits ?? 0, pde: c.pwc_pde_hits ?? 0 },
    nested_tlb_hits: c.nested_tlb_hits ?? 0,
  };
}

function isEpt(b: GuestMemoryBackend): b is EptMemoryBackend {
  return b.kind === 'ept';
}

export function memoryReport(b: GuestMemoryBackend, counters: Readonly<Record<string, number>>, clock: HostClockReport | null = null): MemoryReport {
  const ept = isEpt(b);
  return {
    mode: ept ? 'ept' : 'native',
    ept: ept ? b.eptStats() : null,
    host: ept ? b.hostStats() : null,
    meminfo: ept ? b.host.meminfo() : null,
    clock: ept ? clock : null,
    tlb: tlbReport(counters),
  };
}
