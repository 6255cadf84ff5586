/**
 * CLI: run every kdiff scenario (or those named on the command line) on the model and on
 * this machine's kernel and print the verdicts, the documented differences and the
 * figures, then one table of every scenario.
 * Usage: node --import tsx tools/kdiff/run.ts [scenario...] [--host-kernel 2.6.38|6.x] [--verbose]
 * --host-kernel picks the model's THP design (HostConfig.kernel; default 2.6.38): against
 * 6.x nothing may differ but what this machine cannot show (Scenario.diffs6).
 */
import { buildKernelRunner, checkScenario, notJudged, readKernelEnv, SCENARIOS, totals, type ModelKernel } from './index.ts';

const args = process.argv.slice(2);
const verbose = args.includes('--verbose');
const hk = args.indexOf('--host-kernel');
const hostKernel = (hk >= 0 ? args[hk + 1] : '2.6.38') as ModelKernel;
if (hostKernel !== '2.6.38' && hostKernel !== '6.x') {
  console.error(`kdiff: --host-kernel must be 2.6.38 or 6.x, got ${hostKernel ?? '(nothing)'}`);
  process.exit(2);
}
const names = args.filter((a, i) => !a.startsWith('--') && !(hk >= 0 && i === hk + 1));
const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
if (unknown.length) {
  console.error(`kdiff: no such scenario: ${unknown.join(', ')}`);
  process.exit(2);
}
const env = readKernelEnv();
if ('skip' in env) {
  console.log(`kdiff: skipped: ${env.skip}`);
  process.exit(0);
}
console.log(
  `kernel ${env.release}: PMD THP ${env.enabled}, use_zero_page=${env.useZeroPage ? 1 : 0}, other THP sizes: ${env.mthpSizes.join(' ') || 'none'}; ` +
    `model: host.kernel ${hostKernel}`,
);
const runner = buildKernelRunner();
if (typeof runner === 'string') {
  console.log(`kdiff: skipped: ${runner}`);
  process.exit(0);
}
let bad = 0;
const table: [string, string, string][] = [];
try {
  for (const sc of SCENARIOS.filter((s) => names.length === 0 || names.includes(s.name))) {
    const why = notJudged(sc, env, hostKernel);
    if (why) {
      console.log(`\n${sc.name}: not judged (${why})`);
      table.push([sc.name, 'not judged', why]);
      continue;
    }
    let r: ReturnType<typeof checkScenario>;
    try {
      r = checkScenario(sc, env, runner, 4, hostKernel);
    } catch (e) {
      bad++;
      const msg = (e as Error).message.split('\n')[0];
      console.log(`\n${sc.name}: error — ${msg}`);
      table.push([sc.name, 'error', msg]);
      continue;
    }
    if (r.verdict === 'mismatch') bad++;
    const diffs = hostKernel === '6.x' ? sc.diffs6 : sc.diffs;
    const documented = Object.values(diffs ?? {}).flat().length;
    table.push([sc.name, r.verdict, `${r.attempts} kernel run${r.attempts > 1 ? 's' : ''}, ${documented} documented difference${documented === 1 ? '' : 's'}`]);
    console.log(`\n${sc.name}: ${r.verdict} (${r.attempts} kernel run${r.attempts > 1 ? 's' : ''}) — ${sc.about}`);
    for (const s of r.steps) {
      const i = r.steps.indexOf(s);
      if (!r.model[i] || !r.kernel[i]) {
        console.log(`  ${s.verdict}: ${s.notes.join('; ')}`);
        continue;
      }
      const m = totals(r.model[i].vmas);
      const k = totals(r.kernel[i].vmas);
      const cg = (x: (typeof r.model)[number]) => (x.memcg ? ` memcg anon=${x.memcg.anon} swap=${x.memcg.swap}` : '');
      const line =
        `  step ${s.step} ${sc.steps[s.step]?.op ?? ''} (${s.who}): model rss=${m.rss} ahp=${m.ahp} swap=${m.swap} kB faults=${r.model[i].faults}${cg(r.model[i])} | ` +
        `kernel rss=${k.rss} ahp=${k.ahp} swap=${k.swap} kB faults=${r.kernel[i].faults}${cg(r.kernel[i])}  ${s.verdict}`;
      console.log(line);
      if (verbose || s.verdict !== 'match') for (const n of s.notes) console.log(`      ${n}`);
      if (verbose) {
        const nz = (vm: Record<string, number>) => JSON.stringify(Object.fromEntries(Object.entries(vm).filter(([, v]) => v !== 0)));
        console.log(`      model vm ${nz(r.model[i].vm)}\n      kernel vm ${nz(r.kernel[i].vm)}`);
      }
    }
  }
} finally {
  runner.cleanup();
}
const w = Math.max(...table.map((t) => t[0].length));
console.log(`\n${'scenario'.padEnd(w)}  verdict       notes (model host.kernel ${hostKernel}, Linux ${env.release})`);
for (const [n, v, note] of table) console.log(`${n.padEnd(w)}  ${v.padEnd(12)}  ${note}`);
process.exit(bad ? 1 : 0);
