// Differential test: each deterministic guest under QEMU (TCG, the reference) and under
// hugevisor with the same memory, page size, args and command line must print the same
// console output and exit with the same status. Skips (with a message) without QEMU.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createVm } from '../src/kvm/vm.ts';
import type { GuestPageSize } from '../src/api/types.ts';
import { qemuAvailable, runGuestQemu } from '../tools/qemu/run-guest.mjs';
import { join } from 'node:path';
import { MiB, requireBuiltGuests, guestElf, root } from './guests-helpers.ts';

const haveQemu = qemuAvailable();
const qtest = haveQemu ? test : test.skip;
if (!haveQemu) console.warn('qemu-hugevisor-diff: SKIPPED: qemu-system-x86_64 not found (apt-get install -y qemu-system-x86)');
test.before(() => requireBuiltGuests());

interface Case { guest: string; memory: number; pages: GuestPageSize; args?: number[]; cmdline?: string }
const cases: Case[] = [
  { guest: 'hello', memory: 4 * MiB, pages: '4k' },
  { guest: 'boot-info', memory: 9 * MiB + 4096, pages: '4k', args: [1, 2, 3], cmdline: 'a b=c' },
  { guest: 'boot-info', memory: 67 * MiB, pages: '2m' },
  { guest: 'boot-info', memory: 1026 * MiB, pages: '1g', args: [7] },
  { guest: 'isa-selftest', memory: 8 * MiB, pages: '2m' },
  { guest: 'demand-paging', memory: 16 * MiB, pages: '4k', args: [4 * MiB] },
  { guest: 'demand-paging', memory: 32 * MiB, pages: '2m', args: [8 * MiB, 1] },
  { guest: 'demand-paging', memory: 8 * MiB, pages: '4k', args: [64 * MiB] },
  { guest: 'alu-loop', memory: 4 * MiB, pages: '4k', args: [200000] },
  { guest: 'mem-scan', memory: 8 * MiB, pages: '2m', args: [4 * MiB, 1] },
  { guest: 'pointer-chase', memory: 8 * MiB, pages: '4k', args: [2 * MiB, 40000] },
  { guest: 'gups', memory: 8 * MiB, pages: '1g', args: [4 * MiB, 40000, 99] },
  // The C guests (guests/c/): their kernel line compares the #PF count too.
  { guest: 'c-hello', memory: 16 * MiB, pages: '4k', args: [5000, 3], cmdline: 'name=qemu' },
  { guest: 'c-gups', memory: 16 * MiB, pages: '2m', args: [MiB, 0, 1, 1] },
  { guest: 'c-stream', memory: 32 * MiB, pages: '4k', args: [256 * 1024, 2], cmdline: 'gthp=always' },
  { guest: 'c-chase', memory: 16 * MiB, pages: '4k', args: [16384, 50000, 3], cmdline: 'fault_around=8' },
  { guest: 'c-sort', memory: 16 * MiB, pages: '4k', args: [20000, 2] },
  { guest: 'c-hash', memory: 16 * MiB, pages: '4k', args: [16384, 40000, 4] },
  { guest: 'c-rbtree', memory: 16 * MiB, pages: '4k', args: [5000, 10000, 2] },
  { guest: 'c-bfs', memory: 32 * MiB, pages: '4k', args: [12, 8, 2, 5], cmdline: 'gthp=always' },
  { guest: 'c-allocmix', memory: 16 * MiB, pages: '4k', args: [20000, 512, 3] },
];

for (const c of cases) {
  const label = `${c.guest} ${c.memory} bytes ${c.pages}${c.args ? ` args ${c.args.join(',')}` : ''}${c.cmdline ? ` cmdline "${c.cmdline}"` : ''}`;
  qtest(`QEMU and hugevisor agree: ${label}`, async (t) => {
    const q = await runGuestQemu(c.guest, { memory: c.memory, pageSize: c.pages, args: c.args, cmdline: c.cmdline });
    const h = createVm({ memory: c.memory, guestPageSize: c.pages, args: c.args, cmdline: c.cmdline },
      { bytes: new Uint8Array(readFileSync(guestElf(c.guest))), name: c.guest }).run()!;
    t.is(h.console, q.console);
    t.is(h.exitStatus, q.status);
    t.not(q.console, '');
  });
}

// The -O0 builds of the C guests (build/guests/O0/) use instructions the vCPU may lack
// (test/guests-build.test.ts lists them); under QEMU they must print what the -O2 build
// prints under hugevisor, which checks the SDK and kernel do not depend on optimisation.
for (const c of cases.filter((c) => c.guest.startsWith('c-'))) {
  qtest(`QEMU runs ${c.guest} built -O0 with the console hugevisor gives the -O2 build`, async (t) => {
    const q = await runGuestQemu(join(root, 'build', 'guests', 'O0', `${c.guest}.elf`), { memory: c.memory, pageSize: c.pages, args: c.args, cmdline: c.cmdline });
    const h = createVm({ memory: c.memory, guestPageSize: c.pages, args: c.args, cmdline: c.cmdline },
      { bytes: new Uint8Array(readFileSync(guestElf(c.guest))), name: c.guest }).run()!;
    t.is(q.console, h.console);
    t.is(q.status, 0);
  });
}

qtest('both stop ud-no-idt at the same ud2 with a triple fault', async (t) => {
  const q = await runGuestQemu('ud-no-idt', { memory: 4 * MiB });
  const h = createVm({ memory: 4 * MiB }, { bytes: new Uint8Array(readFileSync(guestElf('ud-no-idt'))), name: 'ud-no-idt' }).run()!;
  t.is(h.console, q.console);
  t.is(q.status, null);
  t.is(h.stopReason, 'triple-fault');
});
