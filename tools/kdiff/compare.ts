/**
 * Compare the model's and the kernel's reports of one scenario run.
 *
 * Per-process smaps figures (VMA boundaries, perms, hg/nh, THPeligible, Rss, Anonymous,
 * AnonHugePages) must be equal after every step, except for the differences the
 * scenario documents (scenarios.ts). Per-process page faults (getrusage) too, except
 * that a kernel count above the model's is "noisy" (retried): x86 upgrades a PTE/PMD
 * to writable without flushing the TLB, and under a hypervisor a 2 MiB page may sit in
 * the TLB as 4 KiB pieces, so each stale piece takes one spurious fault (observed
 * 90–190 faults writing every 4 KiB of four reused PMDs, where 4 is exact); a count
 * below the model's is a mismatch. /proc/vmstat counters are global, so other
 * processes add noise; the standing mapping is
 *     model thp_fault_alloc    → kernel thp_fault_alloc
 *     model thp_fault_fallback → kernel thp_fault_fallback (includes _charge)
 *     model thp_split          → kernel thp_split_pmd (2.6.38 splits the page, once per
 *                                 PMD mapping it here; the modern kernel splits the PMD
 *                                 and defers the page split: thp_deferred_split_page)
 * (against the 6.x model every counter of comparedCounters('6.x') by the same name on both
 * sides, per-size stats included; one the model does not keep is a mismatch),
 * and a kernel delta below the expected one is a hard mismatch (counters only grow),
 * one above it is noise ("noisy", the caller retries).
 * When smaps differ and the kernel's thp_fault_fallback (or thp_collapse_alloc, i.e.
 * khugepaged ran meanwhile) rose beyond expectation, the run is "inconclusive", never
 * a pass or a model failure: the real kernel could not (or did more than) the model
 * assumes for reasons outside the scenario (fragmentation, memcg, khugepaged timing).
 */
import type { KernelEnv } from './kernel.ts';
import { COUNTERS_6X, PER_SIZE_COMPARED, type KernelCounter, type KernelDiff, type ModelKernel, type Scenario } from './scenarios.ts';
import type { StepReport, VmaFigures } from './script.ts';

export type Verdict = 'match' | 'noisy' | 'inconclusive' | 'mismatch';

export interface StepComparison {
  step: number;
  who: StepReport['who'];
  verdict: Verdict;
  /** Human-readable findings: mismatches, noise, notes on documented differences applied. */
  notes: string[];
}

export interface ScenarioComparison {
  scenario: string;
  verdict: Verdict;
  steps: StepComparison[];
}

const RANK: Record<Verdict, number> = { match: 0, noisy: 1, inconclusive: 2, mismatch: 3 };
export const worst = (vs: Verdict[]): Verdict => vs.reduce<Verdict>((a, b) => (RANK[b] > RANK[a] ? b : a), 'match');

const SMAPS_FIELDS = ['rss', 'anon', 'ahp', 'swap'] as const;

/** The counters compared against the `hostKernel` model, by kernel name. */
export function comparedCounters(hostKernel: ModelKernel): KernelCounter[] {
  if (hostKernel === '2.6.38') return ['thp_fault_alloc', 'thp_fault_fallback', 'thp_split_pmd'];
  return [...COUNTERS_6X, ...PER_SIZE_COMPARED.sizes.flatMap((z) => PER_SIZE_COMPARED.items.map((i) => `hugepages-${z}/${i}` as KernelCounter))];
}

export interface Expected {
  vmas: VmaFigures[];
  faults: number;
  vm: Partial<Record<KernelCounter, number>>;
  /** Compared counters the model does not count (6.x: a missing model feature). */
  unmodelled: KernelCounter[];
  memcg?: StepReport['memcg'];
}

/** The kernel figures the model predicts for one report, documented differences applied. */
export function expectedKernel(model: StepReport, diffs: KernelDiff[], hostKernel: ModelKernel = '2.6.38'): Expected {
  const vmas = model.vmas.map((v) => ({ ...v }));
  const vm: Partial<Record<KernelCounter, number>> = {};
  const unmodelled: KernelCounter[] = [];
  for (const c of comparedCounters(hostKernel)) {
    // 2.6.38 splits the page where the modern kernel splits the PMD (the standing mapping).
    const m = hostKernel === '2.6.38' && c === 'thp_split_pmd' ? 'thp_split' : c;
    if (m in model.vm) vm[c] = model.vm[m];
    else if (hostKernel === '2.6.38') vm[c] = 0;
    else unmodelled.push(c);
  }
  const memcg = model.memcg ? { ...model.memcg } : undefined;
  let faults = model.faults;
  for (const d of diffs) {
    faults += d.faults ?? 0;
    for (const [start, delta] of Object.entries(d.vma ?? {})) {
      const v = vmas.find((x) => x.start === Number(start));
      if (!v) throw new Error(`kdiff scenario bug: a documented difference names a VMA at ${start} that the model does not have`);
      for (const f of SMAPS_FIELDS) v[f] += delta[f] ?? 0;
    }
    for (const [c, delta] of Object.entries(d.vm ?? {})) vm[c as KernelCounter] = (vm[c as KernelCounter] ?? 0) + (delta ?? 0);
    if (memcg) for (const [f, delta] of Object.entries(d.memcg ?? {})) memcg[f as keyof typeof memcg] += delta ?? 0;
  }
  return { vmas, faults, vm, unmodelled, memcg };
}

const fmt = (v: VmaFigures) =>
  `[${v.start / 1024}K,${v.end / 1024}K) ${v.perms} ${v.thp || '-'} rss=${v.rss} anon=${v.anon} ahp=${v.ahp} swap=${v.swap} eligible=${v.eligible}`;

function compareOne(sc: Scenario, env: KernelEnv, model: StepReport, kernel: StepReport, kernelVm: Record<string, number>, hostKernel: ModelKernel): StepComparison {
  const table = hostKernel === '6.x' ? sc.diffs6 : sc.diffs;
  const diffs = (table?.[model.step] ?? []).filter((d) => (d.who ?? model.who) === model.who && (d.when?.(env) ?? true));
  const exp = expectedKernel(model, diffs, hostKernel);
  const notes = diffs.map((d) => `documented difference: ${d.why}`);
  const smaps: string[] = [];
  const n = Math.max(exp.vmas.length, kernel.vmas.length);
  for (let i = 0; i < n; i++) {
    const e = exp.vmas[i];
    const k = kernel.vmas[i];
    if (!e || !k || fmt(e) !== fmt(k)) smaps.push(`VMA ${i}: expected ${e ? fmt(e) : 'none'}, kernel ${k ? fmt(k) : 'none'}`);
  }
  // The scenario's own cgroup holds only its pages: exact, except that after a swap-out
  // some pages may still sit in the swap cache (charged as memory, not swap).
  if (exp.memcg && kernel.memcg) {
    const e = exp.memcg;
    const k = kernel.memcg;
    const cached = sc.setup?.swapBytes ? k.anon - e.anon : 0;
    if (k.anon_thp !== e.anon_thp || k.anon + k.swap !== e.anon + e.swap || cached < 0) {
      smaps.push(`memcg: expected anon=${e.anon} anon_thp=${e.anon_thp} swap=${e.swap} kB, kernel anon=${k.anon} anon_thp=${k.anon_thp} swap=${k.swap}`);
    } else if (cached > 0) {
      notes.push(`memcg: ${cached} kB still in the swap cache (charged as anon, not swap): kernel noise`);
    }
  } else if (exp.memcg || kernel.memcg) {
    smaps.push(`memcg figures on one side only (model ${exp.memcg ? 'has' : 'lacks'} them, kernel ${kernel.memcg ? 'has' : 'lacks'} them)`);
  }
  const excess = (c: string, expected: number) => (kernelVm[c] ?? 0) - expected;
  let verdict: Verdict = 'match';
  if (smaps.length) {
    const fallback = excess('thp_fault_fallback', exp.vm.thp_fault_fallback ?? 0);
    // A collapse is what a khugepaged step waits for: there it is judged, not excused.
    const collapse = sc.steps[model.step]?.op === 'khugepaged' ? 0 : excess('thp_collapse_alloc', exp.vm.thp_collapse_alloc ?? 0);
    if (fallback > 0 || collapse > 0) {
      verdict = 'inconclusive';
      notes.push(
        `inconclusive: the kernel ${fallback > 0 ? `fell back to 4 KiB pages (thp_fault_fallback +${fallback} beyond the model)` : ''}` +
          `${fallback > 0 && collapse > 0 ? ' and ' : ''}${collapse > 0 ? `collapsed THPs (thp_collapse_alloc +${collapse})` : ''}` +
          ' during the step; smaps differences not judged:',
        ...smaps,
      );
    } else {
      verdict = 'mismatch';
      notes.push(...smaps);
    }
  }
  // A kernel that fell back or collapsed also faulted and counted differently: judge no further.
  if (verdict === 'inconclusive') return { step: model.step, who: model.who, verdict, notes };
  if (exp.faults >= 0 && kernel.faults >= 0 && kernel.faults !== exp.faults) {
    if (kernel.faults < exp.faults) {
      verdict = 'mismatch';
      notes.push(`faults: expected ${exp.faults}, kernel ${kernel.faults}`);
    } else {
      if (verdict === 'match') verdict = 'noisy';
      notes.push(`faults: expected ${exp.faults}, kernel ${kernel.faults} (extra faults are kernel noise: e.g. spurious faults after a write-protect upgrade without TLB flush)`);
    }
  }
  for (const c of exp.unmodelled) {
    if (!(c in kernelVm)) continue;
    verdict = 'mismatch';
    notes.push(`${c}: the model does not count it (kernel +${kernelVm[c]})`);
  }
  {
    for (const [c, e] of Object.entries(exp.vm) as [KernelCounter, number][]) {
      if (e === undefined) continue;
      if (!(c in kernelVm)) {
        notes.push(`${c}: not in this kernel's /proc/vmstat, not compared`);
        continue;
      }
      const x = excess(c, e);
      if (x < 0) {
        verdict = 'mismatch';
        notes.push(`${c}: expected +${e}, kernel +${kernelVm[c]} (global counters only grow: a real difference)`);
      } else if (x > 0) {
        if (verdict === 'match') verdict = 'noisy';
        notes.push(`${c}: expected +${e}, kernel +${kernelVm[c]} (other processes fault THPs too: noise)`);
      }
    }
  }
  return { step: model.step, who: model.who, verdict, notes };
}

/** Compare a scenario run report by report (model and kernel must report the same steps). */
export function compareRuns(sc: Scenario, env: KernelEnv, model: StepReport[], kernel: StepReport[], hostKernel: ModelKernel = '2.6.38'): ScenarioComparison {
  if (model.length !== kernel.length || model.some((m, i) => m.step !== kernel[i].step || m.who !== kernel[i].who)) {
    return {
      scenario: sc.name,
      verdict: 'mismatch',
      steps: [{ step: -1, who: 'self', verdict: 'mismatch', notes: [`report sequences differ: model ${model.length}, kernel ${kernel.length} reports`] }],
    };
  }
  // Once the kernel could not follow the scenario (fallback, collapse), its state differs
  // from the model's for the rest of the run: later differences are not judged either.
  let diverged = -1;
  const steps = model.map((m, i) => {
    const c = compareOne(sc, env, m, kernel[i], kernel[i].vm, hostKernel);
    if (diverged >= 0 && c.verdict === 'mismatch') {
      c.verdict = 'inconclusive';
      c.notes.unshift(`inconclusive: the kernel's state diverged at step ${diverged} (see there); not judged:`);
    }
    if (c.verdict === 'inconclusive' && diverged < 0) diverged = m.step;
    return c;
  });
  return { scenario: sc.name, verdict: worst(steps.map((s) => s.verdict)), steps };
}
