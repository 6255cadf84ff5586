/**
 * The memory side of a run's result: EPT-layer counters (KVM stat names), the host's THP
 * counters (/proc/vmstat and /proc/meminfo names, khugepaged's sysfs counters), the host
 * clock, and the TLB/walk figures from the vCPU counters; plus the summary lines the CLI
 * prints from them. Every figure a summary line prints is a field of MemoryReport (or a
 * ratio of two of its fields), so --json carries the inputs of everything shown.
 * Option plumbing lives in src/kvm/ept-options.ts.
 */
import type { EptMemoryBackend, EptRunStats } from './mmu/ept-memory.ts';
import type { HostClockReport } from './host-clock.ts';
import type { GuestMemoryBackend } from './memory.ts';

export type { HostOptions } from './ept-options.ts';

/**
 * Whether a Vm runs with EPT when its config does not say (VmConfig.ept, CLI --ept): on, as
 * on a KVM host. `ept: false` / `--ept off` is the native one-dimensional configuration.
 */
export const EPT_DEFAULT = true;

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
  /** walk_refs / walks: 24 for 4K guest over 4K EPT with cold caches (MMU-MODEL.md). */
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

const g = (n: number) => Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const per = (n: number, d: number) => (d > 0 ? n / d : 0).toFixed(2);
const sizes = (s: SizeSplit) => `${g(s.total)} (4K ${g(s['4k'])}, 2M ${g(s['2m'])}, 1G ${g(s['1g'])})`;

/** Lines for the CLI's run summary (aligned with its other lines), in both modes. */
export function memorySummaryLines(m: MemoryReport): string[] {
  const t = m.tlb;
  const lines: string[] = [];
  if (m.ept) {
    const e = m.ept;
    lines.push(
      `ept:          ept_violations ${g(e.ept_violations)}, pages_4k ${g(e.pages_4k)}, pages_2m ${g(e.pages_2m)}; ` +
        `mmu_notifier_invalidate ${g(e.mmu_notifier_invalidate)}, mmu_zapped_leaves ${g(e.mmu_zapped_leaves)}, mmu_notifier_retry ${g(e.mmu_notifier_retry)}`,
    );
  } else lines.push('ept:          off (native translation: one-dimensional walks)');
  if (m.host) {
    const h = (k: string) => g(m.host![k] ?? 0);
    lines.push(
      `host thp:     thp_fault_alloc ${h('thp_fault_alloc')}, thp_fault_fallback ${h('thp_fault_fallback')}, ` +
        `thp_collapse_alloc ${h('thp_collapse_alloc')}, thp_split ${h('thp_split')}, ` +
        `nr_anon_transparent_hugepages ${h('nr_anon_transparent_hugepages')} (AnonHugePages ${g(m.meminfo?.AnonHugePages ?? 0)} kB)`,
      `host mm:      pgfault ${h('pgfault')}, pgmajfault ${h('pgmajfault')}, pswpin ${h('pswpin')}, pswpout ${h('pswpout')}`,
    );
    const c = m.clock;
    const clock = c ? (c.follows_guest ? `host clock ${c.host_ms.toFixed(3)} ms, following the guest` : `host clock ${c.host_ms.toFixed(3)} ms, stopped`) : 'no host clock';
    lines.push(`khugepaged:   full_scans ${h('full_scans')}, pages_collapsed ${h('pages_collapsed')}; ${clock}`);
  }
  lines.push(
    `tlb misses:   L1 itlb ${sizes(t.misses.itlb)}, L1 dtlb ${sizes(t.misses.dtlb)}, stlb ${sizes(t.misses.stlb)}`,
    `page walks:   ${g(t.walks)} walks, ${per(t.walk_refs, t.walks)} refs/walk = ${per(t.walk_refs_guest, t.walks)} guest + ` +
      `${per(t.walk_refs_ept, t.walks)} ept (${g(t.walk_refs_guest)} + ${g(t.walk_refs_ept)} refs)`,
    `walk caches:  pwc hits pml4e ${g(t.pwc_hits.pml4e)}, pdpte ${g(t.pwc_hits.pdpte)}, pde ${g(t.pwc_hits.pde)}; nested tlb hits ${g(t.nested_tlb_hits)}`,
  );
  return lines;
}
