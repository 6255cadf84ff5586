// The C workloads (guests/c/) on hugevisor through the public API: each prints the checksum
// an independent TypeScript version of its algorithm computes (test/c-guests-reference.ts),
// and the guest kernel's own count of page faults handled equals the vCPU's exc_pf. Each is
// also run as built at -O0 and must print exactly what the -O2 build prints (every
// instruction gcc emits at either level is decoded: test/guests-build.test.ts).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createVm, loadGuest, type RunResult } from '../src/api/index.ts';
import * as ref from './c-guests-reference.ts';
import { MiB, guestElf, root } from './guests-helpers.ts';

const O0 = (name: string) => join(root, 'build', 'guests', 'O0', `${name}.elf`);

function run(elf: string, args: number[], cmdline?: string, memory = 32 * MiB): RunResult {
  return createVm({ memory, args, cmdline }, loadGuest(elf)).run();
}

/** The kernel's "page faults N" from its exit line; it must be the vCPU's exc_pf. */
function kernelFaults(t: { is: (a: unknown, b: unknown, m?: string) => void }, r: RunResult): number {
  const m = /^kernel: page faults (\d+) \(4k (\d+), 2m (\d+), fault-around (\d+)\)/m.exec(r.console);
  if (!m) throw new Error(`no kernel line in ${JSON.stringify(r.console)}`);
  t.is(Number(m[1]), r.counters.exc_pf, 'the kernel counted every #PF the vCPU delivered');
  t.is(Number(m[1]), Number(m[2]) + Number(m[3]), 'each fault mapped one 4 KiB or 2 MiB page');
  return Number(m[1]);
}

interface Case { guest: string; args: number[]; cmdline?: string; expect?: string }
const cases: Case[] = [
  { guest: 'c-hello', args: [1000, 7], cmdline: 'name=test', expect: ref.hello(1000, 7) },
  { guest: 'c-gups', args: [64 * 1024, 0, 1, 1], expect: ref.gups(64 * 1024, 0, 1) },
  { guest: 'c-stream', args: [4096, 3], expect: ref.stream(4096, 3) },
  { guest: 'c-chase', args: [4096, 20000, 5], expect: ref.chase(4096, 20000, 5) },
  { guest: 'c-sort', args: [5000, 3], expect: ref.sort(5000, 3) },
  { guest: 'c-hash', args: [1024, 5000, 2], expect: ref.hash(1024, 5000, 2) },
  { guest: 'c-rbtree', args: [2000, 4000, 1] },
  { guest: 'c-bfs', args: [10, 8, 2, 1] },
  { guest: 'c-allocmix', args: [5000, 256, 1] },
];

const o2Console = new Map<string, Promise<string>>();
for (const c of cases) {
  const label = `${c.guest} args ${c.args.join(',')}${c.cmdline ? ` cmdline "${c.cmdline}"` : ''}`;
  let resolve!: (s: string) => void;
  o2Console.set(label, new Promise((r) => (resolve = r)));
  test(`${label}: exits 0, prints its checksum, and the kernel's fault count is exc_pf`, (t) => {
    let r: RunResult;
    try {
      r = run(guestElf(c.guest), c.args, c.cmdline);
    } finally {
      resolve(r! ? r.console : '(the -O2 run failed)');
    }
    t.is(r.exitStatus, 0, r.console);
    if (c.expect) t.true(r.console.includes(`${c.expect}\n`), `expected "${c.expect}" in:\n${r.console}`);
    else t.regex(r.console, /checksum 0x[0-9a-f]{16}\n/);
    t.true(kernelFaults(t, r) > 0);
  });
  test(`${label} built -O0 prints what -O2 prints`, async (t) => {
    const r = run(O0(c.guest), c.args, c.cmdline);
    t.is(r.exitStatus, 0, r.console);
    t.is(r.console, await o2Console.get(label)!);
  });
}

test('c-hello greets the cmdline name= and says how much memory it has', (t) => {
  const r = run(guestElf('c-hello'), [10, 1], 'x=1 name=vm y', 16 * MiB);
  t.true(r.console.startsWith('Hello, vm! 16 MiB of guest memory\n'));
  t.true(run(guestElf('c-hello'), [10, 1], undefined, 16 * MiB).console.startsWith('Hello, world! '));
});

test('gthp=always backs 2 MiB heap extents with 2 MiB pages: fewer faults, same checksum, still exc_pf', (t) => {
  const args = [512 * 1024, 1]; // three 4 MiB arrays
  const never = run(guestElf('c-stream'), args, undefined, 64 * MiB);
  const always = run(guestElf('c-stream'), args, 'gthp=always', 64 * MiB);
  t.is(always.console.split('\n')[0], never.console.split('\n')[0]);
  t.is(always.console.split('\n')[0], ref.stream(512 * 1024, 1));
  const fNever = kernelFaults(t, never);
  const fAlways = kernelFaults(t, always);
  t.regex(never.console, /\(4k \d+, 2m 0,/);
  t.regex(always.console, /, 2m 6,/, 'each array is 2 MiB-aligned: two 2 MiB pages each');
  t.true(fAlways < fNever / 10, `${fAlways} faults with gthp=always, ${fNever} without`);
});

test('fault_around=16 maps the aligned 16-page block around a fault: fewer faults, same checksum', (t) => {
  const plain = run(guestElf('c-gups'), [1024 * 1024, 0, 1, 0]);
  const around = run(guestElf('c-gups'), [1024 * 1024, 0, 1, 0], 'fault_around=16');
  t.is(around.console.split('\n')[0], plain.console.split('\n')[0]);
  const fPlain = kernelFaults(t, plain);
  const fAround = kernelFaults(t, around);
  t.true(fAround * 8 < fPlain, `${fAround} faults with fault-around, ${fPlain} without`);
  t.regex(around.console, /fault-around [1-9]\d*\)/);
});

test('bad kernel knobs and a too-small memory are one panic line and status 1', (t) => {
  t.regex(run(guestElf('c-hello'), [], 'gthp=sometimes').console, /^panic: kernel: gthp=sometimes: expected never or always\n$/);
  t.regex(run(guestElf('c-hello'), [], 'fault_around=3').console, /^panic: kernel: fault_around=3: expected a power of two/);
  const r = run(guestElf('c-stream'), [4 * 1024 * 1024, 1], undefined, 16 * MiB);
  t.is(r.exitStatus, 1);
  t.regex(r.console, /panic: kernel: out of guest memory/);
});

test('docs/c-guests.md shows guests/c/c-hello.c verbatim and what it prints', (t) => {
  const doc = readFileSync(join(root, 'docs', 'c-guests.md'), 'utf8');
  const src = readFileSync(join(root, 'guests', 'c', 'c-hello.c'), 'utf8');
  t.true(doc.includes('```c\n' + src + '```\n'), 'the example is the file');
  t.true(src.split('\n').length - 1 <= 21, 'the example stays short');
  const shown = /\$ hugevisor run c-hello --arg 10 --cmdline name=you\n([\s\S]*?)```/.exec(doc)![1];
  t.is(run(guestElf('c-hello'), [10], 'name=you', 64 * MiB).console, shown);
});
