/**
 * The model side of the THP differential check: runs a kdiff scenario on a fresh
 * simulated host (createHost, THP enabled as the real kernel's effective PMD policy,
 * madvise on this machine) and reports, after every step, the figures kdiff.c reads
 * from /proc/self/smaps — computed from the model's page tables the way the kernel's
 * smaps walker (fs/proc/task_mmu.c) counts them:
 *   Rss / Anonymous: present PTEs of normal pages (the zero page is pte_special, not
 *     counted) + HPAGE_PMD_SIZE per huge PMD; every model page is anonymous.
 *   AnonHugePages: HPAGE_PMD_SIZE per huge PMD (the huge zero page counts in neither).
 *   THPeligible: THP enabled for the VMA and the VMA holds a whole aligned 2 MiB range.
 * faults: pgfault across the step's action (the kernel side: getrusage minflt+majflt);
 * touches fault only where the page tables do not allow the access, as a CPU would.
 *   Swap: swap PTEs.
 * vm: deltas of the model's counters across the step: every /proc/vmstat one (the
 * comparison picks by hostKernel: compare.ts comparedCounters), and the per-size stats
 * as `hugepages-<N>kB/<item>` when the host keeps them (6.x).
 * memcg (setup.memcg): the host holds only the scenario's pages, so the cgroup's figures
 * are the host's: anon = every allocated frame that is not a kernel page (PG_reserved),
 * anon_thp = meminfo AnonHugePages, swap = SwapTotal − SwapFree.
 * The host follows `kernel` ('2.6.38' or '6.x'); under 6.x its knobs are the machine's
 * (enabled, use_zero_page, the per-size knobs that are on) plus the scenario's setup.sysfs.
 */
import type { Hva, Pfn } from '../../src/util/address.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE } from '../../src/util/address.ts';
import { createHost, PROT_NONE, PROT_READ, PROT_WRITE } from '../../src/mm/index.ts';
import { MMAP_BASE, type MmStruct } from '../../src/mm/mm.ts';
import { transparent_hugepage_enabled } from '../../src/mm/fault.ts';
import { _PAGE_SPECIAL, pmd_index } from '../../src/mm/pgtable.ts';
import { PG_reserved } from '../../src/mm/page.ts';
import type { Host } from '../../src/mm/host.ts';
import { VM_EXEC, VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_WRITE, type Vma } from '../../src/mm/vma.ts';
import type { ThpEnabled } from '../../src/mm/types.ts';
import type { ModelKernel } from './scenarios.ts';
import type { Setup, Step, StepReport, VmaFigures } from './script.ts';

/** The slot base in the model: the first 2 MiB aligned address mmap would use. */
const BASE = MMAP_BASE;

/**
 * THPeligible of a 6.x VMA (smaps: thp_vma_allowable_orders over every anonymous order):
 * some size whose hugepages-<N>kB/enabled allows the VMA (always; madvise with
 * VM_HUGEPAGE; inherit: the top-level knob) and an aligned block of which the VMA holds.
 */
function eligible6(host: Host, v: Vma): boolean {
  if (v.flags & VM_NOHUGEPAGE) return false;
  const k = host.knobs as { enabled: string; sizes?: Record<string, string> };
  for (const [size, mode] of Object.entries(k.sizes ?? { '2048kB': 'inherit' })) {
    const eff = mode === 'inherit' ? k.enabled : mode;
    if (eff === 'never' || (eff === 'madvise' && !(v.flags & VM_HUGEPAGE))) continue;
    const bytes = Number.parseInt(size, 10) * 1024;
    if (Math.ceil(v.start / bytes) * bytes + bytes <= v.end) return true;
  }
  return false;
}

/** THPeligible of a 2.6.38 VMA: THP enabled for it and it holds a whole aligned 2 MiB range. */
function eligible2638(host: Host, v: Vma): boolean {
  const firstHuge = Math.ceil(v.start / HPAGE_PMD_SIZE) * HPAGE_PMD_SIZE;
  return transparent_hugepage_enabled(host.knobs, v) && firstHuge + HPAGE_PMD_SIZE <= v.end;
}

function vmaFigures(host: Host, mm: MmStruct, v: Vma, eligible: (v: Vma) => boolean): VmaFigures {
  let rss = 0;
  let ahp = 0;
  let swap = 0;
  for (let a: number = v.start; a < v.end; ) {
    const next = Math.min(v.end, (Math.floor(a / HPAGE_PMD_SIZE) + 1) * HPAGE_PMD_SIZE);
    const pmd = mm.pgd.pmd_table(a);
    const i = pmd_index(a);
    if (pmd && pmd.pmd_trans_huge(i)) {
      // The model never lets a huge PMD straddle a VMA edge (split at VMA split), so the
      // whole 2 MiB lies in this VMA. The huge zero page is not counted (smaps_pmd_entry
      // finds no normal folio there).
      if (!host.policy.is_huge_zero_pmd(pmd, i)) {
        rss += HPAGE_PMD_SIZE;
        ahp += HPAGE_PMD_SIZE;
      }
    } else if (pmd && pmd.pte[i]) {
      const t = pmd.pte[i]!;
      for (let p = a; p < next; p += PAGE_SIZE) {
        const j = Math.floor(p / PAGE_SIZE) % 512;
        if (t.pte_present(j) && !(t.bits[j] & _PAGE_SPECIAL)) rss += PAGE_SIZE;
        else if (t.is_swap_pte(j)) swap += PAGE_SIZE;
      }
    }
    a = next;
  }
  const f = v.flags;
  return {
    start: v.start - BASE,
    end: v.end - BASE,
    perms: `${f & VM_READ ? 'r' : '-'}${f & VM_WRITE ? 'w' : '-'}${f & VM_EXEC ? 'x' : '-'}p`,
    thp: f & VM_HUGEPAGE ? 'hg' : f & VM_NOHUGEPAGE ? 'nh' : '',
    rss: rss / 1024,
    anon: rss / 1024,
    ahp: ahp / 1024,
    swap: swap / 1024,
    eligible: eligible(v) ? 1 : 0,
  };
}

/**
 * Touch like a CPU: fault only where the page tables do not already allow the access,
 * so the model's pgfault count is comparable with the kernel's per-process faults. A
 * write stores the byte 1, as kdiff.c does (the page is no longer zero-filled: what
 * thp_underused and the split's zero-page remap look at).
 */
function touch(host: Host, mm: MmStruct, s: { off: number; len: number; stride: number }, write: boolean): void {
  for (let a = s.off; a < s.off + s.len; a += s.stride) {
    const addr = (BASE + a) as Hva;
    const m = mm.follow_page(addr);
    if (!m || (write && !m.writable)) mm.handle_mm_fault(addr, write);
    if (!write) continue;
    const w = mm.follow_page(addr);
    if (!w?.writable) throw new Error(`kdiff model: 0x${addr.toString(16)} not writable after a write fault`);
    host.physmem.frames(w.pfn)[addr % 4096] = 1;
  }
}

export interface ModelOptions {
  /** The THP design of the model host (default 2.6.38). */
  kernel?: ModelKernel;
  /** 6.x: use_zero_page (the machine's; default 1). */
  useZeroPage?: boolean;
  /** 6.x: per-size knobs of the machine that are on, e.g. { '64kB': 'madvise' }. */
  sizes?: Record<string, string>;
  setup?: Setup;
  memoryBytes?: number;
}

/** Counter snapshot: /proc/vmstat, and the per-size stats as `hugepages-<N>kB/<item>` (6.x hosts). */
function counters(host: Host): Record<string, number> {
  const out: Record<string, number> = { ...host.vmstat() };
  const perSize = (host as { mthpStats?: () => Record<string, Record<string, number>> | null }).mthpStats?.();
  for (const [size, items] of Object.entries(perSize ?? {})) for (const [i, v] of Object.entries(items)) out[`hugepages-${size}/${i}`] = v;
  return out;
}

/** The memory cgroup figures of a host that holds only the scenario's pages (kB). */
function memcgFigures(host: Host): NonNullable<StepReport['memcg']> {
  let reserved = 0;
  for (let pfn = 0; pfn < host.nrFrames; pfn++) if (host.pages.testFlag(pfn as Pfn, PG_reserved)) reserved++;
  // The huge zero folio (6.x) is not charged to any cgroup.
  const zero = (host.policy as { huge_zero_folio?: number | null }).huge_zero_folio != null ? HPAGE_PMD_SIZE / PAGE_SIZE : 0;
  const mi = host.meminfo();
  return { anon: (host.nrFrames - host.nr_free_pages() - reserved - zero) * 4, anon_thp: mi.AnonHugePages, swap: mi.SwapTotal - mi.SwapFree };
}

/** Run `steps` on a fresh model host with transparent_hugepage/enabled = `enabled`. */
export function runModel(steps: readonly Step[], enabled: ThpEnabled = 'madvise', opts: ModelOptions = {}): StepReport[] {
  const kernel = opts.kernel ?? '2.6.38';
  const setup = opts.setup ?? {};
  // Invariants are checked after every step (not every fault: that would cost seconds).
  const host = createHost({
    memoryBytes: opts.memoryBytes ?? 96 << 20,
    kernel,
    thp: kernel === '6.x' ? { enabled, use_zero_page: opts.useZeroPage === false ? 0 : 1 } : { enabled },
    ...(setup.swapBytes ? { swap: { bytes: setup.swapBytes, type: setup.swapBlkdev ? ('partition' as const) : ('file' as const) } } : {}),
    debugChecks: false,
  }) as unknown as Host;
  if (kernel === '6.x') {
    for (const [size, mode] of Object.entries(opts.sizes ?? {})) host.setKnob(`hugepages-${size}/enabled`, mode);
    for (const [p, v] of Object.entries(setup.sysfs ?? {})) host.setKnob(p, v);
  } else if (Object.keys(setup.sysfs ?? {}).length) {
    throw new Error(`kdiff model: the scenario sets ${Object.keys(setup.sysfs!).join(', ')}, knobs 2.6.38 does not have`);
  }
  const en = (v: Vma) => (kernel === '6.x' ? eligible6(host, v) : eligible2638(host, v));
  const out: StepReport[] = [];
  try {
    const mm = host.newProcess() as MmStruct;
    let slotEnd = BASE;
    const report = (step: number, who: StepReport['who'], m: MmStruct, before: Record<string, number>, faults: number | null) => {
      const vmas = m.vmas.filter((v) => v.start < slotEnd && v.end > BASE).map((v) => vmaFigures(host, m, v, en));
      const vm: Record<string, number> = {};
      const now = counters(host);
      for (const c of Object.keys(now)) vm[c] = now[c] - (before[c] ?? 0);
      host.checkInvariants();
      const mi = host.meminfo();
      out.push({
        step,
        who,
        vmas,
        faults: faults ?? -1,
        vm,
        ...(setup.memcg ? { memcg: memcgFigures(host) } : {}),
        meminfo: { AnonPages: mi.AnonPages, AnonHugePages: mi.AnonHugePages },
      });
    };
    let child: MmStruct | null = null;
    steps.forEach((s, step) => {
      const before = counters(host);
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
          touch(host, m, s, s.write);
          break;
        case 'munmap':
          m.munmap(at(s.off), s.len);
          break;
        case 'mprotect':
          m.mprotect(at(s.off), s.len, s.prot === 'none' ? PROT_NONE : s.prot === 'r' ? PROT_READ : PROT_READ | PROT_WRITE);
          break;
        case 'report':
          break;
        case 'khugepaged': {
          const start = host.khugepagedStats().full_scans;
          for (let i = 0; host.khugepagedStats().full_scans < start + (s.scans ?? 2); i++) {
            if (i === 10_000) throw new Error(`kdiff model: khugepaged made too few full scans in 10000 passes (step ${step})`);
            host.khugepaged_scan();
          }
          break;
        }
        case 'reclaim':
          if (!setup.memcg) throw new Error(`kdiff model: reclaim at step ${step} needs setup.memcg (the kernel reclaims the scenario's cgroup)`);
          host.reclaim(host.nrFrames);
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
      const unmeasured = s.op === 'fork' || s.op === 'exit' || s.op === 'khugepaged';
      report(step, who, m, before, unmeasured ? null : host.vmstat().pgfault - before.pgfault);
    });
  } finally {
    host.close();
  }
  return out;
}
