/**
 * CLI: run every kdiff scenario (or those named on the command line) on the model and on
 * this machine's kernel and print the verdicts, the documented differences and the
 * figures. Usage: node --import tsx tools/kdiff/run.ts [scenario...] [--verbose]
 */
import { buildKernelRunner, checkScenario, kernelAtLeast, readKernelEnv, SCENARIOS, totals } from './index.ts';

const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
const names = args.filter((a) => !a.startsWith('--'));
const env = readKernelEnv();
if ('skip' in env) {
  console.log(`kdiff: skipped: ${env.skip}`);
  process.exit(0);
}
console.log(`kernel ${env.release}: PMD THP ${env.enabled}, use_zero_page=${env.useZeroPage ? 1 : 0}, other THP sizes: ${env.mthpSizes.join(' ') || 'none'}`);
const runner = buildKernelRunner();
if (typeof runner === 'string') {
  console.log(`kdiff: skipped: ${runner}`);
  process.exit(0);
}
let bad = 0;
try {
  for (const sc of SCENARIOS.filter((s) => names.length === 0 || names.includes(s.name))) {
    if (!kernelAtLeast(env, sc.minKernel)) {
      console.log(`\n${sc.name}: not judged (its documented differences assume Linux ${sc.minKernel!.join('.')}+)`);
      continue;
    }
    const r = checkScenario(sc, env, runner);
    if (r.verdict === 'mismatch') bad++;
    console.log(`\n${sc.name}: ${r.verdict} (${r.attempts} kernel run${r.attempts > 1 ? 's' : ''}) — ${sc.about}`);
    for (const s of r.steps) {
      const i = r.steps.indexOf(s);
      const m = totals(r.model[i].vmas);
      const k = totals(r.kernel[i].vmas);
      const line =
        `  step ${s.step} ${sc.steps[s.step]?.op ?? ''} (${s.who}): model rss=${m.rss} ahp=${m.ahp} kB faults=${r.model[i].faults} | ` +
        `kernel rss=${k.rss} ahp=${k.ahp} kB faults=${r.kernel[i].faults}  ${s.verdict}`;
      console.log(line);
      if (verbose || s.verdict !== 'match') for (const n of s.notes) console.log(`      ${n}`);
      if (verbose) console.log(`      model vm ${JSON.stringify(r.model[i].vm)}\n      kernel vm ${JSON.stringify(r.kernel[i].vm)}`);
    }
  }
} finally {
  runner.cleanup();
}
process.exit(bad ? 1 : 0);
