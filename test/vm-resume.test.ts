// A run split into pieces equals one uninterrupted run: run({ maxInstructions }) stops at an
// artificial boundary where the VMM does no work (no host-clock step, no khugepaged pass, no
// console flush) and the next run() finishes the cut chunk, so every architectural and model
// counter, the host's state, the console bytes and the simulated time come out the same.
// Only the interpreter's own bookkeeping — how its decode cache was entered — records how the
// run was driven (DRIVER_COUNTERS); exits_budget counts natural chunk ends only.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createVm, type RunResult, type Sample, type VmConfig } from '../src/api/index.ts';

const MiB = 2 ** 20;
const image = (name: string) => ({ bytes: new Uint8Array(readFileSync(`build/guests/${name}.elf`)), name });
/** Counters of the interpreter's driving, not of the guest or the model. */
const DRIVER_COUNTERS = ['decode_cache_hits', 'decode_cache_misses'];

function comparable(r: RunResult) {
  const drop = (c: Readonly<Record<string, number>>) => Object.fromEntries(Object.entries(c).filter(([k]) => !DRIVER_COUNTERS.includes(k)));
  const { wallSeconds: _w, mips: _m, counters, roi, consoleBytes, ...rest } = r;
  return { ...rest, counters: drop(counters), roi: roi.map((x) => ({ ...x, counters: drop(x.counters) })), consoleBytes: Buffer.from(consoleBytes).toString('hex') };
}

/** A deterministic pseudo-random sequence (the piece sizes must not change between runs). */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

const guests: Array<[string, VmConfig]> = [
  // khugepaged passes every 2 simulated ms while the guest scans: host work between pieces.
  ['mem-scan', { memory: 64 * MiB, args: [16 * MiB, 3], host: { thp: { khugepaged: { scan_sleep_millisecs: 2 } } } }],
  ['demand-paging', { memory: 64 * MiB, args: [16 * MiB], host: { thp: { enabled: 'never' } } }],
  ['gups', { memory: 16 * MiB, args: [8 * MiB, 200000], chunkInstructions: 100_000, ept: false }],
];

for (const [name, config] of guests) {
  test(`${name}: a run in 7 random pieces equals the uninterrupted run`, (t) => {
    using whole = createVm(config, image(name));
    const expected = whole.run();
    t.true(expected.finished);
    const total = expected.counters.instructions;
    using split = createVm(config, image(name));
    const next = lcg(name.length * 7919);
    const pieces: RunResult[] = [];
    for (let i = 0; i < 6; i++) pieces.push(split.run({ maxInstructions: 1 + Math.floor((next() * total) / 4) }));
    t.true(pieces.every((p) => !p.finished && p.stopReason === 'max-instructions'), 'six pieces stop at their limit');
    const last = split.run();
    t.true(last.finished);
    t.deepEqual(comparable(last), comparable(expected));
  });
}

test('a finished VM stays finished: run() again returns the same final result', (t) => {
  using vm = createVm({ memory: 4 * MiB }, image('hello'));
  const r = vm.run();
  t.deepEqual(comparable(vm.run()), comparable(r));
});

test('run({ untilSimulatedNs }) stops at the first boundary past the time and continues exactly', (t) => {
  const config: VmConfig = { memory: 64 * MiB, args: [16 * MiB] };
  using whole = createVm(config, image('demand-paging'));
  const expected = whole.run();
  using vm = createVm(config, image('demand-paging'));
  const half = expected.simulated.seconds * 1e9 / 2;
  const first = vm.run({ untilSimulatedNs: half });
  t.is(first.stopReason, 'simulated-time');
  t.false(first.finished);
  t.true(first.simulated.seconds * 1e9 >= half);
  t.deepEqual(comparable(vm.run()), comparable(expected));
});

test('run({ signal }) stops at the next boundary once aborted, and continues exactly', (t) => {
  const config: VmConfig = { memory: 64 * MiB, args: [16 * MiB], ept: false };
  using whole = createVm(config, image('demand-paging'));
  const expected = whole.run();
  const ac = new AbortController();
  using vm = createVm({ ...config, onConsole: () => ac.abort() }, image('demand-paging'));
  const first = vm.run({ signal: ac.signal });
  t.is(first.stopReason, 'aborted');
  t.deepEqual(comparable(vm.run()), comparable(expected));
});

test('a time series every 100,000 instructions adds up to the run, and sampling does not change the run', (t) => {
  const config: VmConfig = { memory: 64 * MiB, args: [16 * MiB] };
  using plain = createVm(config, image('demand-paging'));
  const expected = plain.run();
  const rows: Sample[] = [];
  using vm = createVm(config, image('demand-paging'));
  const r = vm.run({ sampleEvery: { instructions: 100_000 }, onSample: (s) => rows.push(s) });
  t.deepEqual(comparable(r), comparable(expected));
  t.is(rows.length, Math.ceil(r.counters.instructions / 100_000));
  t.deepEqual(rows.map((s) => s.index), rows.map((_, i) => i));
  for (const key of ['instructions', 'exc_pf', 'walk_refs', 'exits_ept_violation']) {
    t.is(rows.reduce((sum, s) => sum + s.counters[key]!, 0), r.counters[key], `${key} adds up`);
  }
  // The host's counters too (EPT mode): every EPT violation is one host fault, except the
  // first, on a page the VMM already faulted in while loading the image.
  t.is(rows.reduce((sum, s) => sum + s.host!.pgfault!, 0), rows.reduce((sum, s) => sum + s.counters.exits_ept_violation!, 0) - 1);
  t.is(rows.at(-1)!.instructions, r.counters.instructions);
  t.true(rows.every((s, i) => i === 0 || s.simulatedNs > rows[i - 1]!.simulatedNs));
  // Each row's rate block counts the same events as the run's, interval by interval.
  for (const key of ['guest_pf', 'ept_violations', 'vm_exits', 'host_fault_4k', 'host_fault_2m'] as const) {
    t.is(rows.reduce((sum, s) => sum + s.rates.events[key].total, 0), r.rates.events[key].total, `rates.${key} adds up`);
  }
  t.is(rows.reduce((sum, s) => sum + s.rates.walks.walks, 0), r.rates.walks.walks);
  const first = rows[0]!;
  t.is(first.rates.events.guest_pf.per_million_instructions, first.counters.exc_pf! / (first.counters.instructions! / 1e6));
});

test('run options are validated like the config', (t) => {
  using vm = createVm({ memory: 4 * MiB }, image('hello'));
  t.throws(() => vm.run({ maxInstructions: 0 }), { message: 'run.maxInstructions: expected an integer from 1 to 9007199254740991, got 0' });
  t.throws(() => vm.run({ sampleEvery: { instructions: 10 } }), { message: 'run.onSample: sampleEvery and onSample go together' });
  t.throws(() => vm.run({ every: 1 } as never), { message: /^run: unknown key "every"/ });
});
