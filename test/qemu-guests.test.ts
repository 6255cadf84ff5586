// The sample guests on the reference implementation: QEMU (TCG) booting them through the
// multiboot trampoline (tools/qemu/). Exact console output and exit status, exact page
// fault counts, and the boot layout checked against an independent model of docs/guest-abi.md.
// Skips (with a message) when qemu-system-x86_64 is not installed: Debian package
// qemu-system-x86.
import test from 'ava';
import { join } from 'node:path';
import { qemuAvailable, runGuestQemu } from '../tools/qemu/run-guest.mjs';
import { MiB, bootLayout, requireBuiltGuests, hex, imageEnd, root, symbol } from './guests-helpers.ts';

const haveQemu = qemuAvailable();
const qtest = haveQemu ? test : test.skip;
if (!haveQemu) console.warn('qemu-guests: SKIPPED: qemu-system-x86_64 not found (apt-get install -y qemu-system-x86)');

test.before(() => requireBuiltGuests());

qtest('hello prints its greeting and exits 0', async (t) => {
  const r = await runGuestQemu('hello', { memory: 16 * MiB });
  t.is(r.console, 'Hello from a hugevisor guest!\n');
  t.is(r.status, 0);
});

for (const [memory, pages, pageSize] of [[5 * MiB, '4k', 4096], [67 * MiB + 4096, '2m', 2 * MiB], [1025 * MiB, '1g', 1024 * MiB]] as const) {
  qtest(`boot layout matches docs/guest-abi.md for ${memory} bytes with ${pages} pages`, async (t) => {
    const r = await runGuestQemu('boot-info', { memory, pageSize: pages, args: [1, 16, '18446744073709551615'], cmdline: 'one two=3' });
    t.is(r.status, 0);
    const L = bootLayout(imageEnd('boot-info'), memory, pageSize);
    const lines = r.console.split('\n');
    t.is(lines[0], `memory ${memory}`);
    t.is(lines[1], `free_start ${hex(BigInt(L.freeStart))} pml4 ${hex(BigInt(L.pml4))} boot_info ${hex(BigInt(L.bootInfo))}`);
    t.is(lines[2], `page size ${pageSize}`);
    t.is(lines[3], `cmdline ${hex(BigInt(L.bootInfo + 256))} "one two=3"`);
    t.deepEqual(lines.slice(4, 8), ['args 3', 'arg0=1', 'arg1=16', 'arg2=18446744073709551615']);
    t.is(lines[8], `boot tables: pages ${L.tablePages} hash ${hex(L.hash)}`);
    t.regex(lines[10], new RegExp(`^gdtr base ${hex(BigInt(L.gdt))} limit 23 hash `));
    t.is(lines[11], ' 0x0000000000000000 0x00209a0000000000 0x0000920000000000');
    t.is(lines[12], 'idtr limit 0');
    t.is(lines[13], `cr0 0x0000000080010031 cr3 ${hex(BigInt(L.pml4))} cr4 0x0000000000000020`);
    t.is(lines[15], `rsp=${hex(BigInt(L.freeStart))} rbp=0x0000000000000000 rsi=0x0000000000000000 rdi=${hex(BigInt(L.bootInfo))}`);
    for (const i of [14, 16, 17]) t.notRegex(lines[i], /=0x0*[1-9a-f]/, 'other GPRs are 0');
  });
}

qtest('boot info without args or cmdline has nargs 0 and a null cmdline pointer', async (t) => {
  const r = await runGuestQemu('boot-info', { memory: 8 * MiB });
  t.is(r.status, 0);
  t.deepEqual(r.console.split('\n').slice(3, 5), ['cmdline 0x0000000000000000', 'args 0']);
});

qtest('demand-paging takes exactly one #PF per 4 KiB page of a 16 MiB region', async (t) => {
  const r = await runGuestQemu('demand-paging', { memory: 64 * MiB });
  t.is(r.console, 'demand-paging: region 0x0000008000000000 size 16777216 page 4096\npage faults handled: 4096\npattern verified: 262144 words\n');
  t.is(r.status, 0);
});

qtest('demand-paging with args[1] = 1 takes one #PF per 2 MiB page', async (t) => {
  const r = await runGuestQemu('demand-paging', { memory: 64 * MiB, args: [16 * MiB, 1] });
  t.is(r.console, 'demand-paging: region 0x0000008000000000 size 16777216 page 2097152\npage faults handled: 8\npattern verified: 262144 words\n');
  t.is(r.status, 0);
});

qtest('demand-paging honours "huge" on the command line and rounds the region up', async (t) => {
  const r = await runGuestQemu('demand-paging', { memory: 64 * MiB, args: [5 * MiB + 1], cmdline: 'huge' });
  t.is(r.console, 'demand-paging: region 0x0000008000000000 size 6291456 page 2097152\npage faults handled: 3\npattern verified: 98304 words\n');
  t.is(r.status, 0);
});

qtest('demand-paging refuses a region larger than guest memory', async (t) => {
  const r = await runGuestQemu('demand-paging', { memory: 16 * MiB, args: [64 * MiB] });
  t.regex(r.console, /^demand-paging: guest memory too small: need \d+ free bytes, have \d+\n$/);
  t.is(r.status, 2);
});

qtest('ud-no-idt ends in a triple fault right at its ud2', async (t) => {
  const r = await runGuestQemu('ud-no-idt', { memory: 16 * MiB });
  t.is(r.console, `executing ud2 with no IDT at ${hex(symbol('ud-no-idt', 'the_ud2'))}\n`);
  t.is(r.status, null);
  t.regex(r.reason, /shutdown/);
});

qtest('bench guests print the same checksums on every run', async (t) => {
  const runs = await Promise.all([
    runGuestQemu('alu-loop', { args: [1000000] }),
    runGuestQemu('mem-scan', { args: [4 * MiB, 2] }),
    runGuestQemu('pointer-chase', { args: [MiB, 16384] }),
    runGuestQemu('gups', { memory: 20 * MiB, args: [16 * MiB, 100000] }),
  ]);
  t.deepEqual(runs.map((r) => r.status), [0, 0, 0, 0]);
  t.is(runs[0].console, 'alu-loop: iterations 1000000 checksum 0xe13f736c1c87a000\n');
  // sum of word indices 0..524287, twice
  t.is(runs[1].console, 'mem-scan: region 4194304 passes 2 checksum 0x0000003ffff80000\n');
  // the LCG cycle visits all 16384 nodes once per lap: back at node 0
  t.is(runs[2].console, 'pointer-chase: region 1048576 steps 16384 final node 0\n');
  t.regex(runs[3].console, /^gups: region 16777216 updates 100000 checksum 0x[0-9a-f]{16}\n$/);
});

qtest('a guest that is not an ELF64 image is refused by the trampoline', async (t) => {
  const r = await runGuestQemu(join(root, 'guests', 'link.ld'), { memory: 8 * MiB });
  t.is(r.console, 'trampoline: guest module is not an ELF64 x86-64 image\n');
  t.is(r.status, 126);
});

const ISA_SELFTEST_OUTPUT = 'data: 232 passed\nalu: 1379 passed\ncontrol: 136 passed\nstrings: 22 passed\nsystem: 24 passed\n1793 passed, 0 failed\n';

qtest('isa-selftest passes every group under QEMU, flags read from the #UD frame', async (t) => {
  const r = await runGuestQemu('isa-selftest', { memory: 16 * MiB });
  t.is(r.console, ISA_SELFTEST_OUTPUT);
  t.is(r.status, 0);
});

qtest('isa-selftest passes with flags read through SETcc only ("noaf")', async (t) => {
  const r = await runGuestQemu('isa-selftest', { memory: 16 * MiB, cmdline: 'noaf' });
  t.is(r.console, ISA_SELFTEST_OUTPUT);
  t.is(r.status, 0);
});
