/**
 * The memory side of a run's result: EPT-layer counters (KVM stat names), the host's THP
 * counters (/proc/vmstat and /proc/meminfo names, khugepaged's sysfs counters), the host
 * clock, and the TLB/walk figures from the vCPU counters. The CLI's summary prints only
 * fields of MemoryReport (or ratios of two of them), so --json carries the inputs of
 * everything shown (src/cli/format.ts).
 */
import type { EptMemoryBackend } from './mmu/ept-memory.ts';
import type { HostClockReport } from './host-clock.ts';
import type { GuestMemoryBackend } from './memory.ts';


/** Misses of one TLB level split by the page size of the looked-up translation. */
function split(c: Readonly<Record<string, number>>, level: string) {
  const s = { '4k': c[`${level}_4k_misses`] ?? 0, '2m': c[`${level}_2m_misses`] ?? 0, '1g': c[`${level}_1g_misses`] ?? 0, total: 0 };
  s.total = s['4k'] + s['2m'] + s['1g'];
  return s;
}

/**
 * TLB misses per level (and split by page size), walk references per miss (24 for 4K guest
 * over 4K EPT with cold caches: docs/mmu-model.md), paging-structure cache hits by level and
 * nested-TLB hits, from the vCPU counters.
 */
export function tlbReport(c: Readonly<Record<string, number>>) {
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

/**
 * The EPT layer's counters, the host's /proc/vmstat (+ khugepaged's counters),
 * /proc/meminfo (kB), the per-size THP counters (6.x hosts; null under 2.6.38) and the
 * host clock — each null in native mode — and the TLB figures.
 */
export function memoryReport(b: GuestMemoryBackend, counters: Readonly<Record<string, number>>, clock: HostClockReport | null = null) {
  const ept = isEpt(b) ? b : null;
  return {
    mode: ept ? ('ept' as const) : ('native' as const),
    ept: ept && ept.eptStats(),
    host: ept && ept.hostStats(),
    meminfo: ept && ept.host.meminfo(),
    mthp: ept && ept.host.mthpStats(),
    clock: ept && clock,
    tlb: tlbReport(counters),
  };
}
export type MemoryReport = ReturnType<typeof memoryReport>;
