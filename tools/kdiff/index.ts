/**
 * kdiff: differential checks of the THP host model (src/mm, Linux 2.6.38 semantics)
 * against this machine's kernel. `checkScenario` runs one scenario on both sides, with
 * retries when the kernel side is noisy or inconclusive; `node --import tsx
 * tools/kdiff/run.ts` prints every scenario side by side.
 */
import { compareRuns, type ScenarioComparison } from './compare.ts';
import type { KernelEnv, KernelRunner } from './kernel.ts';
import { runModel } from './model.ts';
import type { Scenario } from './scenarios.ts';
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
/** Is the running kernel at least `min` (major, minor)? */
export function kernelAtLeast(env: KernelEnv, min: [number, number] | undefined): boolean {
  if (!min) return true;
  const m = /^(\d+)\.(\d+)/.exec(env.release);
  if (!m) return false;
  const [maj, mnr] = [Number(m[1]), Number(m[2])];
  return maj > min[0] || (maj === min[0] && mnr >= min[1]);
}

export function checkScenario(sc: Scenario, env: KernelEnv, kernel: KernelRunner, maxAttempts = 4): CheckResult {
  const model = runModel(sc.steps, env.enabled);
  let best: CheckResult | null = null;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const k = kernel.run(sc.steps);
    const c = compareRuns(sc, env, model, k);
    const r = { ...c, attempts: attempt, model, kernel: k };
    if (c.verdict === 'match' || c.verdict === 'mismatch') return r;
    const rank = { match: 0, noisy: 1, inconclusive: 2, mismatch: 3 } as const;
    if (!best || rank[c.verdict] < rank[best.verdict]) best = r;
    best.attempts = attempt;
  }
  return best!;
}
