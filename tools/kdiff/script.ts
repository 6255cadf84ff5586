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
  | { op: 'exit' };

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
  /** Model only: the simulated host's /proc/meminfo AnonPages and AnonHugePages (kB) after the step. */
  meminfo?: { AnonPages: number; AnonHugePages: number };
}

export function toScript(steps: readonly Step[]): string {
  if (steps.filter((s) => s.op === 'region').length !== 1 || steps[0].op !== 'region') {
    throw new Error('kdiff: a scenario starts with exactly one region step');
  }
  return steps.map((s) => (s.in === 'child' ? 'child ' : '') + line(s)).join('\n') + '\n';
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
    case 'report':
    case 'fork':
    case 'exit':
      return s.op;
  }
}

/** The totals of a report (the process-wide part of the slot). */
export function totals(vmas: readonly VmaFigures[]): { rss: number; anon: number; ahp: number } {
  return vmas.reduce((t, v) => ({ rss: t.rss + v.rss, anon: t.anon + v.anon, ahp: t.ahp + v.ahp }), { rss: 0, anon: 0, ahp: 0 });
}
