// Hostile guests never crash the native core: builds the vCPU fuzz harness (tools/fuzz) with
// AddressSanitizer and UndefinedBehaviorSanitizer against every core source of
// native/sources.txt (no Node in the loop), replays the committed regression inputs, then
// runs a deterministic generated corpus (random bytes, mutated sample-guest code, decoder edge
// cases, garbage CR3/IDT/GDT/EPT pointers). The harness checks its invariants after every
// run() (counters monotonic, instructions within budget, RIP canonical, exit records well
// formed, no native access outside guest RAM and the EPT tables) and compares EPT-identity
// runs with no-EPT runs. The sanitizer build of the core is shared with test/mmu-walk.test.ts
// and cached, like the binary, in build/native-tests/ keyed by a hash of the sources and flags
// (test/fixtures/native-asan.ts), so only the first run after a change compiles.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ASAN_ENV, asanBinary, root } from './fixtures/native-asan.ts';

const regressDir = join(root, 'tools', 'fuzz', 'regress');
const COUNT = 1200;
const fuzzSources = ['harness.cc', 'corpus.cc'].map((f) => join(root, 'tools', 'fuzz', f));

const regressions = readdirSync(regressDir).filter((f) => f.endsWith('.bin')).sort();
const env = ASAN_ENV;
let binary = '';
let corpus = { status: null as number | null, stdout: '', stderr: '' };

test.before(async () => {
  binary = await asanBinary('fuzz_corpus', fuzzSources, [join(root, 'tools', 'fuzz', 'harness.h')]);
  const elfDir = join(root, 'build', 'guests');
  const elfs = readdirSync(elfDir).filter((f) => f.endsWith('.elf')).sort().flatMap((f) => ['--elf', join(elfDir, f)]);
  const r = spawnSync(binary, ['--seed', '1', '--count', String(COUNT), '--regress', regressDir, ...elfs],
    { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  corpus = { status: r.status, stdout: r.stdout, stderr: r.stderr };
});

function noReports(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /AddressSanitizer|runtime error:|LeakSanitizer|FUZZ INVARIANT/.test(l));
}

test('the sanitizer build runs the generated corpus with no crash, UB report or broken invariant', (t) => {
  t.deepEqual(noReports(corpus.stderr), []);
  t.is(corpus.status, 0);
  t.regex(corpus.stdout, /^fuzz ok$/m);
  const q = COUNT / 4;
  t.true(corpus.stdout.includes(
    `inputs ${COUNT} (random ${q}, guest-code mutations ${q}, decoder edges ${q}, garbage pointers ${q})\n`));
  t.true(corpus.stdout.includes(`determinism checks ${COUNT / 8}\n`));
});

test('the corpus reaches every kind of exit and runs the EPT-vs-no-EPT differential', (t) => {
  const exits = new Map<number, number>();
  for (const m of (/^exits (.*)$/m.exec(corpus.stdout)?.[1] ?? '').matchAll(/(\d+):(\d+)/g)) {
    exits.set(Number(m[1]), Number(m[2]));
  }
  // native/exit.h: 1 HLT, 2 IO, 3 EPT violation, 4 MMIO, 5 shutdown (triple fault), 6 budget.
  for (const reason of [1, 2, 3, 4, 5, 6]) t.true((exits.get(reason) ?? 0) > 0, `exit reason ${reason}`);
  const diff = Number(/^differential checks (\d+)$/m.exec(corpus.stdout)?.[1] ?? 0);
  t.true(diff > 0);
  const fixups = Number(/ept fixups (\d+)$/m.exec(corpus.stdout)?.[1] ?? 0);
  t.true(fixups > 0);
});

test('every committed regression input replays cleanly, alone', (t) => {
  t.true(corpus.stdout.includes(`regressions ${regressions.length}\n`));
  const r = spawnSync(binary, regressions.map((f) => join(regressDir, f)), { encoding: 'utf8', env });
  t.deepEqual(noReports(r.stderr), []);
  t.is(r.status, 0);
  t.deepEqual(r.stdout.trim().split('\n'), regressions.map((f) => `ok ${join(regressDir, f)}`));
});

// A REP string instruction pays one run() budget unit per iteration (native/cpu.cc), so no
// guest can keep run() busy past its budget; the harness asserts after every run() that the
// exit record's budget_used is within the budget (all of it on a budget exit). The input
// (from the fuzzer) aliases every GVA onto a few pages (PML4/PDPT/PD entries all naming the
// same tables) and runs `rep lodsq` with RCX = 2^64-1: without the per-iteration charge,
// run(10) would execute ~2^44 iterations. The harness aborts on a budget overrun, so a clean
// replay is the budget assertion; the runner's only clock is its 120 s hang guard.
test('a REP string instruction over aliased page tables returns within its run() budget', (t) => {
  const input = join(root, 'tools', 'fuzz', 'regress', 'rep-lods-aliased-tables-hang.bin');
  const r = spawnSync(binary, [input], { encoding: 'utf8', env });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(noReports(r.stderr), []);
  t.is(r.stdout, `ok ${input}\n`);
});
