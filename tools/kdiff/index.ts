/**
 * kdiff: differential checks of the THP host model (src/mm, host.kernel 2.6.38 or 6.x)
 * against this machine's kernel. `checkScenario` runs one scenario on both sides, with
 * retries when the kernel side is noisy or inconclusive; `node --import tsx
 * tools/kdiff/run.ts` prints every scenario side by side.
 */
import { compareRuns, type ScenarioComparison } from './compare.ts';
import { setupUnavailable, type KernelEnv, type KernelRunner } from './kernel.ts';
import { runModel } from './model.ts';
import type { ModelKernel, Scenario } from './scenarios.ts';
import type { StepReport } from './script.ts';

export * from './compare.ts';
export * from './kernel.ts';
export * from './model.ts';
export * from './scenarios.ts';
export * from './script.ts';

export interface CheckResult extends ScenarioComparison {
  /** Kernel runs made (the reported one is the best of them). */
  attempts: number;
  model: StepReport[];
  kernel: StepReport[];
}

/**
 * Run `sc` on the model once (deterministic) and on the kernel up to `maxAttempts`
 * times: a mismatch ends at once (a wrong model is wrong every time); noise or an
 * inconclusive kernel run is retried, and the best attempt is returned.
 */
/** The machine's per-size knobs other than the PMD size that are on, for a 6.x model host ('64kB' → 'madvise'). */
export function machineSizes(env: KernelEnv): Record<string, string> {
  return Object.fromEntries(env.mthpSizes.map((s) => /^hugepages-(\d+kB)=(\w+)$/.exec(s)!).map((m) => [m[1], m[2]]));
}

/** Why `sc` is not judged against the `hostKernel` model on this machine, or null. */
export function notJudged(sc: Scenario, env: KernelEnv, hostKernel: ModelKernel): string | null {
  if (sc.kernels && !sc.kernels.includes(hostKernel)) return `a ${sc.kernels.join('/')} scenario (the ${hostKernel} model has no such feature)`;
  if (hostKernel === '2.6.38' && !kernelAtLeast(env, sc.minKernel)) return `its documented differences assume Linux ${sc.minKernel!.join('.')}+, this is ${env.release}`;
  if (hostKernel === '2.6.38' && env.mthpSizes.length) return `multi-size THP enabled (${env.mthpSizes.join(' ')}): 4 KiB-path figures would differ from 2.6.38`;
  return setupUnavailable(env, sc.setup);
}

/** Is the running kernel at least `min` (major, minor)? */
export function kernelAtLeast(env: KernelEnv, min: [number, number] | undefined): boolean {
  if (!min) return true;
  const m = /^(\d+)\.(\d+)/.exec(env.release);
  if (!m) return false;
  const [maj, mnr] = [Number(m[1]), Number(m[2])];
  return maj > min[0] || (maj === min[0] && mnr >= min[1]);
}

export function checkScenario(sc: Scenario, env: KernelEnv, kernel: KernelRunner, maxAttempts = 4, hostKernel: ModelKernel = '2.6.38'): CheckResult {
  const model = runModel(sc.steps, env.enabled, { kernel: hostKernel, useZeroPage: env.useZeroPage, sizes: machineSizes(env), setup: sc.setup });
  let best: CheckResult | null = null;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const k = kernel.run(sc.steps, sc.setup);
    const c = compareRuns(sc, env, model, k, hostKernel);
    const r = { ...c, attempts: attempt, model, kernel: k };
    if (c.verdict === 'match' || c.verdict === 'mismatch') return r;
    const rank = { match: 0, noisy: 1, inconclusive: 2, mismatch: 3 } as const;
    if (!best || rank[c.verdict] < rank[best.verdict]) best = r;
    best.attempts = attempt;
  }
  return best!;
}
