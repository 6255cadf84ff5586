/**
 * The modern THP policy (host.kernel '6.x') against this machine's kernel (tools/kdiff):
 * every scenario, the 2.6.38 ones included, runs on the 6.x model and on the kernel, and
 * nothing may differ but what a scenario documents in `diffs6` (what this machine cannot
 * show). The 6.x-only scenarios change THP knobs, make a memory cgroup v1 child and swap
 * (a file, or a loop block device); kdiff.c undoes that under its lock, and a test here
 * kills a run mid-way and checks the next run restores everything.
 *
 * The "kernel facts" tests pin what Linux 6.18 does in those scenarios (exact smaps and
 * cgroup figures; global counters as lower bounds, since other processes add to them):
 * the figures the 6.x model must reproduce.
 *
 * Skipped, with the reason in the title, without THP, gcc, root, the cgroup v1 memory
 * controller, loop devices or a per-size knob.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import {
  buildKernelRunner,
  checkScenario,
  compareRuns,
  comparedCounters,
  MEMCG_V1,
  notJudged,
  readKernelEnv,
  SCENARIOS,
  setupUnavailable,
  THP_SYSFS,
  toScript,
  totals,
  type KernelEnv,
  type KernelRunner,
  type Scenario,
  type StepReport,
} from '../tools/kdiff/index.ts';

const env = readKernelEnv();
const runner = 'skip' in env ? null : buildKernelRunner();
const reason = 'skip' in env ? env.skip : typeof runner === 'string' ? runner : null;
test.after.always(() => {
  if (runner && typeof runner !== 'string') runner.cleanup();
});
const kenv = env as KernelEnv;
const kr = runner as KernelRunner;

for (const sc of SCENARIOS) {
  const title = `the 6.x model matches the kernel's THP figures: ${sc.name}`;
  const why = reason ?? notJudged(sc, kenv, '6.x');
  if (why) {
    test.skip(`${title} (skipped: ${why})`, () => {});
    continue;
  }
  test(title, (t) => {
    const r = checkScenario(sc, kenv, kr, 4, '6.x');
    const notes = r.steps.flatMap((s) => s.notes.map((n) => `step ${s.step} (${s.who}, ${s.verdict}): ${n}`));
    for (const n of notes) t.log(n);
    if (r.verdict === 'inconclusive') t.log(`INCONCLUSIVE after ${r.attempts} kernel runs: the kernel could not do what the scenario assumes (see above)`);
    t.not(r.verdict, 'mismatch', notes.join('\n'));
  });
}

// --- kernel facts: what 6.18 does, the figures the 6.x model must match -------------

const byName = (n: string) => SCENARIOS.find((s) => s.name === n)!;
/** Run a scenario on the kernel only, or say why it cannot run here. */
function kernelFacts(name: string, title: string, check: (t: import('ava').ExecutionContext, r: StepReport[]) => void) {
  const sc = byName(name);
  const why = reason ?? setupUnavailable(kenv, sc.setup);
  if (why) {
    test.skip(`${title} (skipped: ${why})`, () => {});
    return;
  }
  test(title, (t) => check(t, kr.run(sc.steps, sc.setup)));
}
const vm = (r: StepReport, c: string) => r.vm[c] ?? 0;

kernelFacts('deferred-split-reclaim', 'kernel: a partially unmapped THP stays whole on the deferred split queue until memcg reclaim splits it', (t, r) => {
  t.deepEqual(r[2].memcg, { anon: 8192, anon_thp: 8192, swap: 0 });
  // munmap [3M, 4M): the PMD is split, the THP queued (held whole: 2 MiB charged).
  t.true(vm(r[3], 'thp_split_pmd') >= 1 && vm(r[3], 'thp_deferred_split_page') >= 1 && vm(r[3], 'hugepages-2048kB/split_deferred') >= 1);
  t.deepEqual(totals(r[3].vmas), { rss: 7168, anon: 7168, ahp: 6144, swap: 0 });
  t.deepEqual(r[3].memcg, { anon: 8192, anon_thp: 6144, swap: 0 });
  t.deepEqual(r[4].memcg, { anon: 8192, anon_thp: 4096, swap: 0 });
  // reclaim: deferred_split_scan splits both; the 256 + 16 unmapped pages are freed.
  t.true(vm(r[5], 'thp_split_page') >= 2 && vm(r[5], 'hugepages-2048kB/split') >= 2);
  t.deepEqual(r[5].memcg, { anon: 8192 - 1024 - 64, anon_thp: 4096, swap: 0 });
  t.deepEqual(totals(r[5].vmas), totals(r[4].vmas));
});

kernelFacts('underused-thp-reclaim', 'kernel: with max_ptes_none 64, memcg reclaim splits the THP holding 504 zero-filled pages (thp_underused_split_page) and frees them; the written one stays', (t, r) => {
  t.deepEqual(totals(r[3].vmas), { rss: 4096, anon: 4096, ahp: 4096, swap: 0 });
  t.is(vm(r[3], 'thp_deferred_split_page'), 0, 'queued at fault without counting');
  t.true(vm(r[4], 'thp_underused_split_page') >= 1 && vm(r[4], 'thp_split_page') >= 1 && vm(r[4], 'thp_split_pmd') >= 1);
  t.deepEqual(totals(r[4].vmas), { rss: 2048 + 8 * 4, anon: 2048 + 8 * 4, ahp: 2048, swap: 0 }, 'the 504 zero-filled pages map the zero page: not in Rss');
  t.deepEqual(r[4].memcg, { anon: 2048 + 8 * 4, anon_thp: 2048, swap: 0 });
});

kernelFacts('underused-thp-off', 'kernel: with shrink_underused 0 the same reclaim splits nothing', (t, r) => {
  t.deepEqual(totals(r[4].vmas), { rss: 4096, anon: 4096, ahp: 4096, swap: 0 });
  t.deepEqual(r[4].memcg, { anon: 4096, anon_thp: 4096, swap: 0 });
});

kernelFacts('huge-zero-page-fork', 'kernel: read faults map the huge zero page (Rss 0, one fault per 2 MiB), shared by a forked child without faults', (t, r) => {
  t.deepEqual([r[2].faults, totals(r[2].vmas).rss], [4, 0]);
  t.deepEqual([r[4].who, r[4].faults, totals(r[4].vmas).rss], ['child', 0, 0]);
  t.deepEqual([r[6].faults, totals(r[6].vmas).ahp], [4, 8192]);
  t.true(vm(r[6], 'thp_fault_alloc') >= 4);
  t.deepEqual([r[8].faults, totals(r[8].vmas).rss], [1, 6144]);
});

kernelFacts('thp-swapout', 'kernel: to a block device a THP is swapped out whole (thp_swpout, the PMD split into swap PTEs) and read back 4 KiB at a time', (t, r) => {
  t.deepEqual(totals(r[3].vmas), { rss: 0, anon: 0, ahp: 0, swap: 8192 });
  t.true(vm(r[3], 'thp_swpout') >= 4 && vm(r[3], 'hugepages-2048kB/swpout') >= 4 && vm(r[3], 'thp_split_pmd') >= 4 && vm(r[3], 'pswpout') >= 2048);
  t.deepEqual(r[3].memcg, { anon: 0, anon_thp: 0, swap: 8192 });
  t.deepEqual([r[4].faults, totals(r[4].vmas).rss, totals(r[4].vmas).ahp], [2048, 8192, 0]);
});

kernelFacts('thp-swapout-file', 'kernel: to a swap file a THP is split first (thp_swpout_fallback, thp_split_page) and swapped out 4 KiB at a time', (t, r) => {
  t.deepEqual(totals(r[3].vmas), { rss: 0, anon: 0, ahp: 0, swap: 8192 });
  t.true(vm(r[3], 'thp_swpout_fallback') >= 4 && vm(r[3], 'thp_split_page') >= 4 && vm(r[3], 'hugepages-2048kB/swpout_fallback') >= 4);
  t.is(r[3].memcg!.anon + r[3].memcg!.swap, 8192); // some pages may still sit in the swap cache
  t.is(r[4].faults, 2048);
});

kernelFacts('mthp-64k-16k', 'kernel: a MADV_HUGEPAGE VMA gets the largest enabled size that fits: one PMD THP, 64 KiB folios, then 16 KiB at the tail', (t, r) => {
  t.is(r[2].faults, 1 + 16 + 3);
  t.deepEqual(totals(r[2].vmas), { rss: 3120, anon: 3120, ahp: 2048, swap: 0 });
  t.true(vm(r[2], 'hugepages-2048kB/anon_fault_alloc') >= 1 && vm(r[2], 'hugepages-64kB/anon_fault_alloc') >= 16 && vm(r[2], 'hugepages-16kB/anon_fault_alloc') >= 3);
  t.true(vm(r[3], 'hugepages-64kB/split_deferred') >= 1); // one page of a 64 KiB folio unmapped
  t.is(r[5].faults, 1); // the emptied 64 KiB block refaults as one folio
});

kernelFacts('mthp-swapout', 'kernel: 64 KiB folios are swapped out whole to a block device (hugepages-64kB/swpout)', (t, r) => {
  t.is(r[2].faults, 16);
  t.deepEqual(totals(r[3].vmas), { rss: 0, anon: 0, ahp: 0, swap: 1024 });
  t.true(vm(r[3], 'hugepages-64kB/swpout') >= 16 && vm(r[3], 'pswpout') >= 256);
  t.is(r[4].faults, 256);
});

kernelFacts('khugepaged-max-ptes-shared', 'kernel: khugepaged leaves a range with more than max_ptes_shared shared PTEs, and collapses it once the child has COWed enough', (t, r) => {
  t.is(totals(r[4].vmas).ahp, 0); // 512 shared PTEs > 256
  t.true(vm(r[4], 'thp_scan_exceed_share_pte') >= 1);
  t.deepEqual(totals(r[8].vmas), { rss: 2048, anon: 2048, ahp: 2048, swap: 0 }); // 212 shared: collapsed
  // khugepaged scans every 10 ms: it may collapse the range as soon as MADV_HUGEPAGE makes it
  // eligible again, so the collapse counts in step 7 or step 8.
  t.true(vm(r[7], 'thp_collapse_alloc') + vm(r[8], 'thp_collapse_alloc') >= 1);
  t.deepEqual([r[9].who, totals(r[9].vmas).ahp], ['child', 0]); // the child's VMA has no VM_HUGEPAGE
});

kernelFacts('khugepaged-max-ptes-swap', 'kernel: khugepaged leaves a range with more than max_ptes_swap swap PTEs, and collapses it (swapping in) at max_ptes_swap', (t, r) => {
  t.deepEqual(totals(r[5].vmas), { rss: 2048 - 260, anon: 2048 - 260, ahp: 0, swap: 260 }); // 65 swapped
  t.true(vm(r[5], 'thp_scan_exceed_swap_pte') >= 1);
  t.deepEqual(totals(r[9].vmas), { rss: 2048, anon: 2048, ahp: 2048, swap: 0 }); // 64 swapped: collapsed
  t.deepEqual(r[9].memcg, { anon: 2048, anon_thp: 2048, swap: 0 });
});

// --- setup is undone, even after a kill ---------------------------------------------

/**
 * The 64 KiB knob and what a kdiff run leaves behind (undo log, cgroups, swap), read under
 * kdiff.c's lock: another checkout's kdiff run (a second `npm test` beside this one) holds
 * the lock for its whole run, setup to undo, so it is never caught mid-way.
 */
function lockedState(): { knob: string | undefined; state: boolean; cgroups: string[]; swaps: string[] } {
  const sh = `cat ${THP_SYSFS}/hugepages-64kB/enabled; echo ---; test -e /tmp/hugevisor-kdiff.state && echo state; echo ---; ` +
    `ls ${MEMCG_V1} 2>/dev/null; echo ---; cat /proc/swaps`;
  const r = spawnSync('flock', ['/tmp/hugevisor-kdiff.lock', 'sh', '-c', sh], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`flock: ${r.error?.message ?? r.stderr}`);
  const [k, st, cg, sw] = r.stdout.split('---\n').map((x) => x.split('\n').filter(Boolean));
  return {
    knob: /\[(\w+)\]/.exec(k![0] ?? '')?.[1],
    state: st!.includes('state'),
    cgroups: cg!.filter((d) => d.startsWith('hugevisor-kdiff-')),
    swaps: sw!.filter((l) => l.includes('hugevisor-kdiff') || /^\/dev\/loop/.test(l)),
  };
}
{
  const sc = byName('mthp-swapout');
  const title = 'kdiff.c restores the knobs and removes the cgroup, loop device and swap file of a run killed mid-way (at the next run, under the lock)';
  const why = reason ?? setupUnavailable(kenv, sc.setup);
  if (why) test.skip(`${title} (skipped: ${why})`, () => {});
  else
    test.serial(title, async (t) => {
      const before = lockedState().knob;
      // A run that would take long: kill its supervisor once the first step has reported.
      const steps = [...sc.steps.slice(0, 3), ...Array.from({ length: 2000 }, () => sc.steps[2])];
      const p = spawn(kr.bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
      p.stdin.end(toScript(steps, sc.setup));
      await new Promise<void>((res) => p.stdout.once('data', () => res()));
      p.kill('SIGKILL');
      await new Promise((res) => p.once('exit', res));
      kr.run([{ op: 'region', len: 2 << 20, off: 0 }]); // the next run undoes the leftovers first
      const after = lockedState();
      t.is(after.knob, before);
      t.deepEqual({ ...after, knob: undefined }, { knob: undefined, state: false, cgroups: [], swaps: [] });
    });
}

// --- the pieces (no kernel needed) --------------------------------------------------

test('kdiff script: setup lines come first (swap, memcg, sysfs); a sysfs path outside the THP directory is refused', (t) => {
  const steps = byName('mthp-swapout').steps;
  t.is(toScript(steps, { swapBytes: 1 << 25, swapBlkdev: true, memcg: true, sysfs: { 'hugepages-64kB/enabled': 'madvise' } }).split('\n').slice(0, 4).join('|'), 'swap 33554432 blkdev|memcg 0|sysfs hugepages-64kB/enabled madvise|region 1048576 0');
  t.throws(() => toScript(steps, { sysfs: { '../../kernel/x': '1' } }), { message: /bad sysfs setup/ });
});

const fakeEnv: KernelEnv = { enabled: 'madvise', useZeroPage: true, mthpSizes: [], sizes: ['2048kB'], release: '6.18.0', root: false, memcgV1: true };

test('kdiff setup: no root, no cgroup v1 memory controller or no per-size knob skip with the reason; 6.x-only scenarios are not judged against 2.6.38', (t) => {
  t.regex(setupUnavailable(fakeEnv, { memcg: true })!, /needs root/);
  t.regex(setupUnavailable({ ...fakeEnv, root: true, memcgV1: false }, { memcg: true })!, /no cgroup v1 memory controller/);
  t.regex(setupUnavailable({ ...fakeEnv, root: true }, { sysfs: { 'hugepages-64kB/enabled': 'madvise' } })!, /no per-size THP knob hugepages-64kB/);
  t.is(setupUnavailable(fakeEnv, {}), null);
  t.regex(notJudged(byName('thp-swapout'), { ...fakeEnv, root: true }, '2.6.38')!, /a 6\.x scenario/);
});

const rep = (over: Partial<StepReport> = {}): StepReport => ({
  step: 0,
  who: 'self',
  vmas: [{ start: 0, end: 2 << 20, perms: 'rw-p', thp: 'hg', rss: 0, anon: 0, ahp: 0, swap: 2048, eligible: 1 }],
  faults: 0,
  vm: Object.fromEntries(comparedCounters('6.x').map((c) => [c, 0])),
  memcg: { anon: 0, anon_thp: 0, swap: 2048 },
  ...over,
});
const one: Scenario = { name: 'unit', about: '', steps: [{ op: 'region', len: 2 << 20, off: 0 }], setup: { memcg: true, swapBytes: 1 << 25 } };

test('kdiff compare (6.x): counters by their kernel names, a counter the model lacks is a mismatch; pages left in the swap cache are noted, not failed', (t) => {
  t.is(compareRuns(one, fakeEnv, [rep()], [rep()], '6.x').verdict, 'match');
  const { thp_swpout: _, ...lacking } = rep().vm;
  const r = compareRuns(one, fakeEnv, [rep({ vm: lacking })], [rep()], '6.x');
  t.is(r.verdict, 'mismatch');
  t.regex(r.steps[0].notes.join('\n'), /thp_swpout: the model does not count it/);
  const cached = compareRuns(one, fakeEnv, [rep()], [rep({ memcg: { anon: 36, anon_thp: 0, swap: 2012 } })], '6.x');
  t.is(cached.verdict, 'match');
  t.regex(cached.steps[0].notes.join('\n'), /36 kB still in the swap cache/);
  t.is(compareRuns(one, fakeEnv, [rep()], [rep({ memcg: { anon: 0, anon_thp: 0, swap: 1024 } })], '6.x').verdict, 'mismatch');
  t.is(compareRuns(one, fakeEnv, [rep()], [rep({ vm: { ...rep().vm, 'hugepages-64kB/swpout': 1 } })], '6.x').verdict, 'noisy');
});
