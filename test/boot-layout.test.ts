// The boot protocol's exact layout (docs/guest-abi.md): table addresses in allocation order,
// every entry value, the boot-info and GDT pages, and the initial registers.
import test from 'ava';
import { initialRegisters, planBoot, writeBoot, type BootParams } from '../src/guest/boot.ts';
import { gpa } from '../src/util/address.ts';
import { ConfigError } from '../src/util/errors.ts';
import { SparseGuestMemory } from './fixtures/sparse-memory.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const E = gpa(0x112008); // end of test/fixtures/two-segments.elf

function boot(p: Partial<BootParams> & { memorySize: number }) {
  const layout = planBoot({ imageEnd: E, pageSize: '4k', ...p });
  const mem = new SparseGuestMemory(p.memorySize);
  writeBoot(layout, mem);
  return { layout, mem };
}

/** Non-zero entries of the table page at `at`, as [index, value]. */
function entries(mem: SparseGuestMemory, at: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < 512; i++) {
    const v = mem.u64(at + i * 8);
    if (v !== 0n) out.push([i, Number(v)]);
  }
  return out;
}

test('4k pages over 4 MiB: PML4, PDPT, PD, then one PT per 2 MiB chunk, then info, GDT, stack', (t) => {
  const { layout, mem } = boot({ memorySize: 4 * MiB });
  t.is<number, number>(layout.tablesStart, 0x113000);
  t.deepEqual(layout.tables.map((x) => [x.gpa, x.level]), [[0x113000, 4], [0x114000, 3], [0x115000, 2], [0x116000, 1], [0x117000, 1]]);
  t.deepEqual(entries(mem, 0x113000), [[0, 0x114003]]);
  t.deepEqual(entries(mem, 0x114000), [[0, 0x115003]]);
  t.deepEqual(entries(mem, 0x115000), [[0, 0x116003], [1, 0x117003]]);
  const pt0 = entries(mem, 0x116000);
  t.is(pt0.length, 512); // entry 0 maps page 0: value 0x3
  t.is(mem.u64(0x116000), 0x3n);
  t.is(mem.u64(0x116000 + 511 * 8), BigInt(511 * 4096 + 3));
  t.is(mem.u64(0x117000 + 5 * 8), BigInt(2 * MiB + 5 * 4096 + 3));
  t.is<number, number>(layout.bootInfo, 0x118000);
  t.is<number, number>(layout.gdt, 0x119000);
  t.is<number, number>(layout.stackBottom, 0x11a000);
  t.is<number, number>(layout.stackTop, 0x12a000);
  t.is<number, number>(layout.freeStart, 0x12a000);
  // Nothing but the 5 tables, the info page and the GDT page was written.
  t.deepEqual([...mem.pages.keys()].sort((a, b) => a - b), [0x113, 0x114, 0x115, 0x116, 0x117, 0x118, 0x119]);
});

test('2m pages over 3 MiB + 4 KiB: one 2 MiB leaf, then a PT of 257 entries for the remainder', (t) => {
  const { layout, mem } = boot({ memorySize: 3 * MiB + 4 * KiB, pageSize: '2m' });
  t.deepEqual(layout.tables.map((x) => [x.gpa, x.level]), [[0x113000, 4], [0x114000, 3], [0x115000, 2], [0x116000, 1]]);
  t.deepEqual(entries(mem, 0x115000), [[0, 0x83], [1, 0x116003]]);
  const pt = entries(mem, 0x116000);
  t.is(pt.length, 257);
  t.deepEqual(pt[0], [0, 2 * MiB + 3]);
  t.deepEqual(pt[256], [256, 3 * MiB + 3]);
  t.is<number, number>(layout.bootInfo, 0x117000);
  t.is<number, number>(layout.freeStart, 0x119000 + 64 * KiB);
});

test('1g pages over 1 GiB + 2 MiB: a 1 GiB leaf, then a PD with one 2 MiB leaf', (t) => {
  const { layout, mem } = boot({ memorySize: GiB + 2 * MiB, pageSize: '1g' });
  t.deepEqual(layout.tables.map((x) => [x.gpa, x.level]), [[0x113000, 4], [0x114000, 3], [0x115000, 2]]);
  t.deepEqual(entries(mem, 0x113000), [[0, 0x114003]]);
  t.deepEqual(entries(mem, 0x114000), [[0, 0x83], [1, 0x115003]]);
  t.deepEqual(entries(mem, 0x115000), [[0, GiB + 2 * MiB - 2 * MiB + 0x83]]);
  t.is<number, number>(layout.bootInfo, 0x116000);
});

test('1g pages over 1 GiB + 2 MiB + 4 KiB: the last 4 KiB gets a PT of its own', (t) => {
  const { layout, mem } = boot({ memorySize: GiB + 2 * MiB + 4 * KiB, pageSize: '1g' });
  t.deepEqual(layout.tables.map((x) => [x.gpa, x.level]), [[0x113000, 4], [0x114000, 3], [0x115000, 2], [0x116000, 1]]);
  t.deepEqual(entries(mem, 0x115000), [[0, GiB + 0x83], [1, 0x116003]]);
  t.deepEqual(entries(mem, 0x116000), [[0, GiB + 2 * MiB + 3]]);
});

test('1g pages over exactly 2 GiB need only the PML4 and one PDPT', (t) => {
  const { layout, mem } = boot({ memorySize: 2 * GiB, pageSize: '1g' });
  t.is<number, number>(layout.tables.length, 2);
  t.deepEqual(entries(mem, 0x114000), [[0, 0x83], [1, GiB + 0x83]]);
});

test('beyond 512 GiB a second PDPT comes right when GiB 512 is reached', (t) => {
  const two = planBoot({ imageEnd: E, memorySize: 513 * GiB, pageSize: '2m' });
  t.is(two.tables.length, 1 + 1 + 512 + 1 + 1);
  t.deepEqual(two.tables.slice(512, 516).map((x) => [x.gpa - 0x113000, x.level]), [[512 * 4096, 2], [513 * 4096, 2], [514 * 4096, 3], [515 * 4096, 2]]);
  t.deepEqual(two.tables[0].entries, [[0, 0x114003], [1, 0x113000 + 514 * 4096 + 3]]);
  const one = planBoot({ imageEnd: E, memorySize: 513 * GiB, pageSize: '1g' });
  t.deepEqual(one.tables.map((x) => [x.gpa, x.level]), [[0x113000, 4], [0x114000, 3], [0x115000, 3]]);
  t.deepEqual(one.tables[2].entries, [[0, 512 * GiB + 0x83]]);
});

test('the boot-info page holds magic, sizes, addresses, args and the command line', (t) => {
  const { layout, mem } = boot({ memorySize: 4 * MiB, pageSize: '2m', cmdline: 'iters=3 mode=fast', args: [7, 0xffffffffffffffffn, 64 * MiB] });
  const bi = layout.bootInfo;
  t.is<number, number>(bi, 0x116000);
  t.is(mem.u64(bi), 0x3130544f4f425648n);
  t.deepEqual(new TextDecoder().decode(mem.read(gpa(bi), 8)), 'HVBOOT01');
  t.is(mem.u64(bi + 8), BigInt(4 * MiB));
  t.is(mem.u64(bi + 16), BigInt(layout.freeStart));
  t.is(mem.u64(bi + 24), 0x113000n);
  t.is(mem.u64(bi + 32), BigInt(2 * MiB));
  t.is(mem.u64(bi + 40), BigInt(bi + 256));
  t.is(mem.u64(bi + 48), 3n);
  t.deepEqual([mem.u64(bi + 56), mem.u64(bi + 64), mem.u64(bi + 72), mem.u64(bi + 80)], [7n, 0xffffffffffffffffn, BigInt(64 * MiB), 0n]);
  const cmd = mem.read(gpa(bi + 256), 18);
  t.is(new TextDecoder().decode(cmd.subarray(0, 17)), 'iters=3 mode=fast');
  t.is(cmd[17], 0);
});

test('without a command line the boot-info cmdline field is 0', (t) => {
  const { layout, mem } = boot({ memorySize: 4 * MiB });
  t.is<number, number>(layout.cmdline, 0);
  t.is(mem.u64(layout.bootInfo + 40), 0n);
  t.is(mem.u64(layout.bootInfo + 48), 0n);
});

test('the GDT page holds null, 64-bit code and data descriptors', (t) => {
  const { layout, mem } = boot({ memorySize: 4 * MiB });
  t.deepEqual([mem.u64(layout.gdt), mem.u64(layout.gdt + 8), mem.u64(layout.gdt + 16), mem.u64(layout.gdt + 24)], [0n, 0x00209a0000000000n, 0x0000920000000000n, 0n]);
});

test('the initial registers put the vCPU in 64-bit long mode at the entry point', (t) => {
  const layout = planBoot({ imageEnd: E, memorySize: 4 * MiB, pageSize: '4k' });
  const r = initialRegisters(layout, 0x100000);
  t.is(r.get('cr0'), 0x80010031n);
  t.is(r.get('cr4'), 0x20n);
  t.is(r.get('efer'), 0xd00n);
  t.is(r.get('cr3'), 0x113000n);
  t.is(r.get('rip'), 0x100000n);
  t.is(r.get('rsp'), 0x12a000n);
  t.is(r.get('rdi'), 0x118000n);
  t.is(r.get('rflags'), 2n);
  t.is(r.get('cs'), 8n);
  t.deepEqual((['ds', 'es', 'ss', 'fs', 'gs'] as const).map((s) => r.get(s)), [0x10n, 0x10n, 0x10n, 0x10n, 0x10n]);
  t.is(r.get('gdtr_base'), 0x119000n);
  t.is(r.get('gdtr_limit'), 23n);
  t.is(r.get('idtr_limit'), 0n);
  t.is(r.size, 18, 'every other register starts at 0');
});

test('memory too small for image, tables and stack is a clear error', (t) => {
  // Below 2 MiB there are 4 tables: 0x129000 is exactly enough, one page less is not.
  t.is<number, number>(planBoot({ imageEnd: E, memorySize: 0x129000, pageSize: '4k' }).freeStart, 0x129000);
  const err = t.throws(() => planBoot({ imageEnd: E, memorySize: 0x128000, pageSize: '4k' }), { instanceOf: ConfigError });
  t.regex(err!.message, /guest memory too small: 1212416 bytes \(0x128000\), but the image ends at 0x112008 and 4 boot page tables, the boot-info and GDT pages and the 64 KiB stack need memory up to 0x129000/);
});

test('bad sizes, command lines and args are refused naming the problem', (t) => {
  const p = { imageEnd: E, memorySize: 4 * MiB, pageSize: '4k' as const };
  t.throws(() => planBoot({ ...p, memorySize: 4 * MiB + 100 }), { message: /multiple of 4 KiB, got 4194404/ });
  t.throws(() => planBoot({ ...p, pageSize: '16k' as never }), { message: /one of 4k, 2m, 1g, got 16k/ });
  t.throws(() => planBoot({ ...p, cmdline: 'x'.repeat(3001) }), { message: /command line too long: 3001 bytes \(at most 3000\)/ });
  t.notThrows(() => planBoot({ ...p, cmdline: 'x'.repeat(3000) }));
  t.throws(() => planBoot({ ...p, cmdline: 'a\0b' }), { message: /must not contain NUL/ });
  t.throws(() => planBoot({ ...p, args: new Array(17).fill(1) }), { message: /too many guest args: 17 \(at most 16\)/ });
  t.throws(() => planBoot({ ...p, args: [1, -1] }), { message: /guest arg 1 must be an integer in \[0, 2\^64\), got -1/ });
  t.throws(() => planBoot({ ...p, args: [1n << 64n] }), { message: /guest arg 0/ });
  t.throws(() => planBoot({ ...p, args: [1.5] }), { message: /guest arg 0 .* got 1\.5/ });
});
