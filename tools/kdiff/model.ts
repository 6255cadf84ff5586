/**
 * The model side of the THP differential check: runs a kdiff scenario on a fresh
 * simulated host (createHost, THP enabled as the real kernel's effective PMD policy,
 * madvise on this machine) and reports, after every step, the figures kdiff.c reads
 * from /proc/self/smaps — computed from the model's page tables the way the kernel's
 * smaps walker (fs/proc/task_mmu.c) counts them:
 *   Rss / Anonymous: present PTEs of normal pages (the zero page is pte_special, not
 *     counted) + HPAGE_PMD_SIZE per huge PMD; every model page is anonymous.
 *   AnonHugePages: HPAGE_PMD_SIZE per huge PMD.
 *   THPeligible: THP enabled for the VMA and the VMA holds a whole aligned 2 MiB range.
 * faults: pgfault across the step's action (the kernel side: getrusage minflt+majflt);
 * touches fault only where the page tables do not allow the access, as a CPU would.
 * vm: deltas of the model's thp_* counters (thp_fault_alloc, thp_fault_fallback,
 * thp_split) across the step.
 */
import type { Hva } from '../../src/util/address.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE } from '../../src/util/address.ts';
import { createHost, PROT_NONE, PROT_READ, PROT_WRITE } from '../../src/mm/index.ts';
import { MMAP_BASE, type MmStruct } from '../../src/mm/mm.ts';
import { transparent_hugepage_enabled } from '../../src/mm/fault.ts';
import { _PAGE_SPECIAL, pmd_index } from '../../src/mm/pgtable.ts';
import { VM_EXEC, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_WRITE, type Vma } from '../../src/mm/vma.ts';
import type { ThpEnabled } from '../../src/mm/types.ts';
import type { Step, StepReport, VmaFigures } from './script.ts';

const MODEL_COUNTERS = ['thp_fault_alloc', 'thp_fault_fallback', 'thp_split'] as const;

/** The slot base in the model: the first 2 MiB aligned address mmap would use. */
const BASE = MMAP_BASE;

function vmaFigures(mm: MmStruct, v: Vma, enabled: (v: Vma) => boolean): VmaFigures {
  let rss = 0;
  let ahp = 0;
  for (let a: number = v.start; a < v.end; ) {
    const next = Math.min(v.end, (Math.floor(a / HPAGE_PMD_SIZE) + 1) * HPAGE_PMD_SIZE);
    const pmd = mm.pgd.pmd_table(a);
    const i = pmd_index(a);
    if (pmd && pmd.pmd_trans_huge(i)) {
      // The model never lets a huge PMD straddle a VMA edge (split at VMA split), so the
      // whole 2 MiB lies in this VMA.
      rss += HPAGE_PMD_SIZE;
      ahp += HPAGE_PMD_SIZE;
    } else if (pmd && pmd.pte[i]) {
      const t = pmd.pte[i]!;
      for (let p = a; p < next; p += PAGE_SIZE) {
        const j = Math.floor(p / PAGE_SIZE) % 512;
        if (t.pte_present(j) && !(t.bits[j] & _PAGE_SPECIAL)) rss += PAGE_SIZE;
      }
    }
    a = next;
  }
  const firstHuge = Math.ceil(v.start / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE;
  const holdsHuge = firstHuge + HPAGE_PMD_SIZE <= v.end;
  const f = v.flags;
  return {
    start: v.start - BASE,
    end: v.end - BASE,
    perms: `${f & VM_READ ? 'r' : '-'}${f & VM_WRITE ? 'w' : '-'}${f & VM_EXEC ? 'x' : '-'}p`,
    thp: f & VM_HUGEPAGE ? 'hg' : f & VM_NOHUGEPAGE ? 'nh' : '',
    rss: rss / 1024,
    anon: rss / 1024,
    ahp: ahp / 1024,
    eligible: enabled(v) && holdsHuge ? 1 : 0,
  };
}

/**
 * Touch like a CPU: fault only where the page tables do not already allow the access,
 * so the model's pgfault count is comparable with the kernel's per-process faults.
 */
function touch(mm: MmStruct, s: { off: number; len: number; stride: number }, write: boolean): void {
  for (let a = s.off; a < s.off + s.len; a += s.stride) {
    const m = mm.follow_page((BASE + a) as Hva);
    if (m && (!write || m.writable)) continue;
    mm.handle_mm_fault((BASE + a) as Hva, write);
  }
}

/** Run `steps` on a fresh model host of `memoryBytes` with transparent_hugepage/enabled = `enabled`. */
export function runModel(steps: readonly Step[], enabled: ThpEnabled = 'madvise', memoryBytes = 96 << 20): StepReport[] {
  // Invariants are checked after every step (not every fault: that would cost seconds).
  const host = createHost({ memoryBytes, thp: { enabled }, debugChecks: false });
  const en = (v: Vma) => transparent_hugepage_enabled(host.knobs, v);
  const out: StepReport[] = [];
  try {
    const mm = host.newProcess() as MmStruct;
    let slotEnd = BASE;
    const report = (step: number, who: StepReport['who'], m: MmStruct, before: Record<string, number>, faults: number | null) => {
      const vmas = m.vmas.filter((v) => v.start < slotEnd && v.end > BASE).map((v) => vmaFigures(m, v, en));
      const vm: Record<string, number> = {};
      const now = host.vmstat();
      for (const c of MODEL_COUNTERS) vm[c] = now[c] - before[c];
      host.checkInvariants();
      const mi = host.meminfo();
      out.push({ step, who, vmas, faults: faults ?? -1, vm, meminfo: { AnonPages: mi.AnonPages, AnonHugePages: mi.AnonHugePages } });
    };
    let child: MmStruct | null = null;
    steps.forEach((s, step) => {
      const before = host.vmstat();
      const at = (off: number) => (BASE + off) as Hva;
      const who = s.in === 'child' ? 'child' : 'self';
      const m = s.in === 'child' ? child : mm;
      if (!m) throw new Error(`kdiff model: step ${step} runs in the child, but no child was forked`);
      switch (s.op) {
        case 'region':
          slotEnd = BASE + Math.ceil((s.off + s.len) / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE;
          m.mmap(s.len, { addr: at(s.off) });
          break;
        case 'map':
          if (s.off + s.len > slotEnd - BASE) throw new Error(`kdiff model: map outside the slot at step ${step}`);
          m.mmap(s.len, { addr: at(s.off) });
          break;
        case 'madvise':
          m.madvise(at(s.off), s.len, s.advice === 'hugepage' ? 'MADV_HUGEPAGE' : s.advice === 'nohugepage' ? 'MADV_NOHUGEPAGE' : 'MADV_DONTNEED');
          break;
        case 'touch':
          touch(m, s, s.write);
          break;
        case 'munmap':
          m.munmap(at(s.off), s.len);
          break;
        case 'mprotect':
          m.mprotect(at(s.off), s.len, s.prot === 'none' ? PROT_NONE : s.prot === 'r' ? PROT_READ : PROT_READ | PROT_WRITE);
          break;
        case 'report':
          break;
        case 'fork':
          if (child || s.in === 'child') throw new Error('kdiff model: one child at a time, forked by the parent');
          child = mm.fork() as MmStruct;
          break;
        case 'exit':
          if (!child || s.in === 'child') throw new Error('kdiff model: exit needs a child (and is run by the parent)');
          child.exit_mmap();
          child = null;
          break;
      }
      report(step, who, m, before, s.op === 'fork' || s.op === 'exit' ? null : host.vmstat().pgfault - before.pgfault);
    });
  } finally {
    host.close();
  }
  return out;
}
