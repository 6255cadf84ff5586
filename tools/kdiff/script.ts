/**
 * The scenario language shared by the two interpreters of the THP differential check:
 * kdiff.c (the real kernel) and model.ts (the 2.6.38 model). One step a line, offsets in
 * bytes from the scenario's slot base (2 MiB aligned on both sides), so VMA boundaries
 * and figures compare directly. `toScript` renders steps for kdiff.c's stdin.
 */
export type Action =
  | { op: 'region'; len: number; off: number }
  /** Another anonymous mapping (MAP_FIXED: replaces what it overlaps) inside the slot. */
  | { op: 'map'; off: number; len: number }
  | { op: 'madvise'; off: number; len: number; advice: 'hugepage' | 'nohugepage' | 'dontneed' }
  | { op: 'touch'; off: number; len: number; stride: number; write: boolean }
  | { op: 'munmap'; off: number; len: number }
  | { op: 'mprotect'; off: number; len: number; prot: 'none' | 'r' | 'rw' }
  /** No action: just report. */
  | { op: 'report' }
  /** fork a child that stays alive (sharing every page copy-on-write) until `exit`. */
  | { op: 'fork' }
  /** The child exits (exit_mmap); the parent waits for it. */
  | { op: 'exit' }
  /**
   * Reclaim everything that can be reclaimed (needs `setup.memcg`): the kernel writes 0
   * to the scenario cgroup's memory.force_empty (memcg reclaim: shrink_slab, so the
   * memcg-aware deferred split shrinker, and swap-out when there is swap); the model,
   * whose host holds only the scenario's pages, reclaims all its frames (HostApi.reclaim).
   */
  | { op: 'reclaim' }
  /**
   * Let khugepaged scan: the kernel waits until khugepaged/full_scans has risen by `scans`
   * (default 2, so one whole pass saw the state); the model runs khugepaged passes until
   * its full_scans has.
   */
  | { op: 'khugepaged'; scans?: number };

/**
 * What a scenario changes on the machine for its run (kdiff.c undoes it afterwards, under
 * its lock; each needs root): the model host gets the same knobs and swap.
 */
export interface Setup {
  /** transparent_hugepage/<path> → value, e.g. { 'hugepages-64kB/enabled': 'madvise' }. */
  sysfs?: Record<string, string>;
  /** Run in a fresh memory cgroup v1 child (no limit): exact per-cgroup figures, and the target of `reclaim`. */
  memcg?: boolean;
  /** A swap file of this many bytes, swapon'd for the run (the model: a swap device as big). */
  swapBytes?: number;
  /**
   * Swap on a block device (a loop device over the swap file; the model: swap.type
   * 'partition'): 6.x swaps a large folio out whole only to a block device (SWP_BLKDEV),
   * to a swap file it splits it first.
   */
  swapBlkdev?: boolean;
}

/** A step runs in the scenario's process, or (`in: 'child'`) in its forked child. */
export type Step = Action & { in?: 'child' };

/** One VMA inside the slot as /proc/self/smaps shows it (sizes in kB). */
export interface VmaFigures {
  start: number;
  end: number;
  perms: string;
  /** 'hg' (VM_HUGEPAGE), 'nh' (VM_NOHUGEPAGE) or '' from VmFlags. */
  thp: string;
  rss: number;
  anon: number;
  /** AnonHugePages: anonymous memory mapped by huge PMDs. */
  ahp: number;
  /** Swap: swapped-out pages of the VMA (swap PTEs). */
  swap: number;
  /** THPeligible */
  eligible: number;
}

/** What one interpreter reports after a step, from the process that ran it. */
export interface StepReport {
  step: number;
  who: 'self' | 'child';
  vmas: VmaFigures[];
  /** Page faults this process took during the step's action; −1 = not measured (the fork and exit steps). */
  faults: number;
  /** Deltas of /proc/vmstat thp_* counters across the step. */
  vm: Record<string, number>;
  /**
   * With setup.memcg, kB: the cgroup's anonymous memory (kernel: active_anon + inactive_anon
   * of memory.stat, so a partially unmapped THP on the deferred split queue counts whole
   * until split; model: every frame held by an anonymous page), its PMD-mapped THPs
   * (rss_huge) and its swap.
   */
  memcg?: { anon: number; anon_thp: number; swap: number };
  /** Model only: the simulated host's /proc/meminfo AnonPages and AnonHugePages (kB) after the step. */
  meminfo?: { AnonPages: number; AnonHugePages: number };
}

export function toScript(steps: readonly Step[], setup: Setup = {}): string {
  if (steps.filter((s) => s.op === 'region').length !== 1 || steps[0].op !== 'region') {
    throw new Error('kdiff: a scenario starts with exactly one region step');
  }
  const head = [
    ...(setup.swapBytes ? [`swap ${setup.swapBytes}${setup.swapBlkdev ? ' blkdev' : ''}`] : []),
    ...(setup.memcg ? ['memcg 0'] : []),
    ...Object.entries(setup.sysfs ?? {}).map(([p, v]) => {
      if (!/^[\w./-]+$/.test(p) || p.includes('..') || !/^\w+$/.test(v)) throw new Error(`kdiff: bad sysfs setup ${p}=${v}`);
      return `sysfs ${p} ${v}`;
    }),
  ];
  return [...head, ...steps.map((s) => (s.in === 'child' ? 'child ' : '') + line(s))].join('\n') + '\n';
}

function line(s: Action): string {
  switch (s.op) {
    case 'region':
      return `region ${s.len} ${s.off}`;
    case 'map':
      return `map ${s.off} ${s.len}`;
    case 'madvise':
      return `madvise ${s.off} ${s.len} ${s.advice}`;
    case 'touch':
      return `touch ${s.off} ${s.len} ${s.stride} ${s.write ? 'w' : 'r'}`;
    case 'munmap':
      return `munmap ${s.off} ${s.len}`;
    case 'mprotect':
      return `mprotect ${s.off} ${s.len} ${s.prot}`;
    case 'khugepaged':
      return s.scans ? `khugepaged ${s.scans}` : 'khugepaged';
    case 'report':
    case 'fork':
    case 'exit':
    case 'reclaim':
      return s.op;
  }
}

/** The totals of a report (the process-wide part of the slot). */
export function totals(vmas: readonly VmaFigures[]): { rss: number; anon: number; ahp: number; swap: number } {
  return vmas.reduce((t, v) => ({ rss: t.rss + v.rss, anon: t.anon + v.anon, ahp: t.ahp + v.ahp, swap: t.swap + v.swap }), {
    rss: 0,
    anon: 0,
    ahp: 0,
    swap: 0,
  });
}
