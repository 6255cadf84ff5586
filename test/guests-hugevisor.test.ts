// Every sample guest booted on the hugevisor vCPU (Vm API) with exact outputs: the values
// are computed independently here (boot layout model, checksum references), so these runs
// check the interpreter, not just that it agrees with itself.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { QEMU_BENCHES } from '../tools/qemu/bench.mjs';
import { createVm } from '../src/kvm/vm.ts';
import type { VmConfig } from '../src/api/types.ts';
import {
  MiB, aluLoopChecksum, bootInfoHead, requireBuiltGuests, guestElf, gupsChecksum, gupsFinalState, hex, memScanChecksum, pointerChaseFinal, symbol,
} from './guests-helpers.ts';

test.before(() => requireBuiltGuests());
const run = (name: string, cfg: VmConfig = {}) => createVm(cfg, { bytes: new Uint8Array(readFileSync(guestElf(name))), name }).run()!;
const ISA_SELFTEST_OUTPUT = 'data: 232 passed\nalu: 1379 passed\ncontrol: 136 passed\nstrings: 22 passed\nsystem: 24 passed\n1793 passed, 0 failed\n';

test('hello prints its greeting and exits 0', (t) => {
  const r = run('hello', { memory: 4 * MiB });
  t.is(r.console, 'Hello from a hugevisor guest!\n');
  t.is(r.exitStatus, 0);
  t.is(r.stopReason, 'exit');
});

test('isa-selftest passes every group, flags read from the #UD frame', (t) => {
  const r = run('isa-selftest', { memory: 8 * MiB });
  t.is(r.console, ISA_SELFTEST_OUTPUT);
  t.is(r.exitStatus, 0);
  t.is(r.counters.exc_pf, 3);   // the system group's three #PF tests, nothing else
});

test('isa-selftest passes with flags read through SETcc only', (t) => {
  const r = run('isa-selftest', { memory: 8 * MiB, cmdline: 'noaf' });
  t.is(r.console, ISA_SELFTEST_OUTPUT);
  t.is(r.exitStatus, 0);
});

for (const [memory, pageSize, bytes] of [[5 * MiB, '4k', 4096], [67 * MiB + 4096, '2m', 2 * MiB], [1025 * MiB, '1g', 1024 * MiB]] as const) {
  test(`boot-info sees the docs/guest-abi.md layout: ${memory} bytes, ${pageSize} pages`, (t) => {
    const r = run('boot-info', { memory, guestPageSize: pageSize, args: [1, 16, 2n ** 64n - 1n], cmdline: 'one two=3' });
    t.is(r.exitStatus, 0);
    const want = bootInfoHead(memory, bytes, [1n, 16n, 2n ** 64n - 1n], 'one two=3');
    t.deepEqual(r.console.split('\n').slice(0, want.length), want);
  });
}

test('demand-paging takes exactly one #PF per 4 KiB page', (t) => {
  const r = run('demand-paging', { memory: 32 * MiB });
  t.is(r.console, 'demand-paging: region 0x0000008000000000 size 16777216 page 4096\npage faults handled: 4096\npattern verified: 262144 words\n');
  t.is(r.counters.exc_pf, 4096);
  t.is(r.exitStatus, 0);
});

test('demand-paging with 2 MiB pages takes one #PF per 2 MiB', (t) => {
  const r = run('demand-paging', { memory: 32 * MiB, args: [16 * MiB, 1] });
  t.is(r.console, 'demand-paging: region 0x0000008000000000 size 16777216 page 2097152\npage faults handled: 8\npattern verified: 262144 words\n');
  t.is(r.counters.exc_pf, 8);
  t.is(r.exitStatus, 0);
});

test('demand-paging refuses a region guest memory cannot back', (t) => {
  const r = run('demand-paging', { memory: 8 * MiB, args: [16 * MiB] });
  t.regex(r.console, /^demand-paging: guest memory too small: need \d+ free bytes, have \d+\n$/);
  t.is(r.exitStatus, 2);
  t.is(r.counters.exc_pf, 0);
});

test('ud-no-idt triple-faults with #UD at its ud2', (t) => {
  const ud2 = symbol('ud-no-idt', 'the_ud2');
  const r = run('ud-no-idt', { memory: 4 * MiB });
  t.is(r.console, `executing ud2 with no IDT at ${hex(ud2)}\n`);
  t.is(r.stopReason, 'triple-fault');
  t.is(r.exitStatus, null);
  // #UD → #GP → #GP → #DF → #GP → triple fault, as QEMU logs it (-d int).
  t.regex(r.error?.message ?? '', new RegExp(`^triple fault: #UD\\(6\\) -> #GP\\(13\\) error 0x33 -> #GP\\(13\\) error 0x6b -> #DF\\(8\\) error 0x0 -> #GP\\(13\\) error 0x43 -> triple fault at RIP 0x${ud2.toString(16)},.*instruction bytes 0f 0b`));
});

test('bench guests print the reference checksums', (t) => {
  t.is(run('alu-loop', { args: [100000] }).console, `alu-loop: iterations 100000 checksum ${hex(aluLoopChecksum(100000))}\n`);
  t.is(run('mem-scan', { args: [2 * MiB, 2] }).console, `mem-scan: region ${2 * MiB} passes 2 checksum ${hex(memScanChecksum(2 * MiB, 2))}\n`);
  t.is(run('pointer-chase', { args: [MiB, 50000] }).console, `pointer-chase: region ${MiB} steps 50000 final node ${pointerChaseFinal(MiB, 50000)}\n`);
  t.is(run('gups', { memory: 8 * MiB, args: [4 * MiB, 50000] }).console, `gups: region ${4 * MiB} updates 50000 checksum ${hex(gupsChecksum(4 * MiB, 50000))}\n`);
});

test('gups, mem-scan and pointer-chase in too little memory say which --memory holds their region, and that much does', (t) => {
  const small = run('gups', { memory: 2 * MiB, args: [64 * MiB, 1000] });
  t.is(small.exitStatus, 1);
  t.is(small.console, `panic: gups: guest memory too small for the ${64 * MiB}-byte region: run with --memory of at least 69206016 bytes\n`);
  t.is(run('gups', { memory: 69206016, args: [64 * MiB, 1000] }).exitStatus, 0);
  t.regex(run('gups', { memory: 64 * MiB }).console, /run with --memory of at least 271581184 bytes\n$/, 'the default 256 MiB region');
  for (const name of ['mem-scan', 'pointer-chase']) {
    const r = run(name, { memory: 2 * MiB, args: [64 * MiB, 1] });
    t.is(r.console, `panic: ${name}: guest memory too small for the ${64 * MiB}-byte region: run with --memory of at least 69206016 bytes\n`);
    t.is(run(name, { memory: 69206016, args: [64 * MiB, 1] }).exitStatus, 0);
  }
});

test('gups with args[3] = 0 skips the checksum and prints the final LCG state', (t) => {
  const r = run('gups', { memory: 8 * MiB, args: [4 * MiB, 30000, 5, 0] });
  t.is(r.console, `gups: region ${4 * MiB} updates 30000 checksum skipped, final state ${hex(gupsFinalState(30000, 5n))}\n`);
  t.is(r.roi[0].counters.instructions, 8 * 30000 + 9);
});

test('alu-loop runs 4 instructions per iteration inside its region of interest', (t) => {
  const r = run('alu-loop', { args: [1000] });
  t.is(r.roi.length, 1);
  // add, xor, dec, jnz per iteration; plus roi_begin's pop, pop, ret after its OUT and
  // roi_end's call, push, push, mov, mov and OUT
  t.is(r.roi[0].counters.instructions, 4 * 1000 + 3 + 6);
});

test('the QEMU bench table counts the guest instructions per iteration exactly', (t) => {
  for (const [guest, b] of Object.entries(QEMU_BENCHES)) {
    const roi = (n: number) => run(guest, { memory: b.memory, args: b.args(n) }).roi[0].counters.instructions;
    t.is(roi(2) - roi(1), b.perIteration, guest);
  }
});
