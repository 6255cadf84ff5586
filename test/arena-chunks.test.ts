// The host-physical arena beyond 4 GiB: the JS side sees it as 1 GiB chunk ArrayBuffers
// (src/util/chunked-bytes.ts), the native vCPU as one contiguous mmap. These tests write and
// read the far end of an 8 GiB arena through every TS path (physmem, LinearGuestMemory, EPT
// tables) and through the native vCPU, boot guests in VMs larger than 4 GiB, and check that
// sizes nobody can have are ConfigErrors. The arena is lazy: each test touches a few pages.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadAddon } from '../src/native/addon.ts';
import { ExitReason, REG } from '../src/native/types.ts';
import { ChunkedBytes } from '../src/util/chunked-bytes.ts';
import { PhysMem } from '../src/mm/physmem.ts';
import { LinearGuestMemory } from '../src/guest/memory.ts';
import { Ept } from '../src/kvm/mmu/ept.ts';
import { createVm } from '../src/kvm/vm.ts';
import { createLinearMemory } from '../src/kvm/memory.ts';
import { createEptMemory, type EptMemoryBackend } from '../src/kvm/mmu/ept-memory.ts';
import type { HostApi } from '../src/mm/types.ts';
import { ConfigError } from '../src/util/errors.ts';
import { gpa, hpa, pfn } from '../src/util/address.ts';
import { assemble, CODE, DATA, GDT, PML4, STACK_TOP } from './vcpu-harness.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const addon = loadAddon();
const guest = (name: string) => ({ bytes: new Uint8Array(readFileSync(`build/guests/${name}.elf`)), name });
const bytesOf = (...xs: number[]) => Uint8Array.from(xs);

test('ChunkedBytes splits byte ranges at chunk boundaries and refuses a view across one', (t) => {
  // Three 2 MiB "chunks", the last one shorter, as the arena's list would be.
  const chunks = [new ArrayBuffer(2 * MiB), new ArrayBuffer(2 * MiB), new ArrayBuffer(4096)];
  const b = new ChunkedBytes({ chunks, chunkSize: 2 * MiB, byteLength: 4 * MiB + 4096 });
  b.write(2 * MiB - 2, bytesOf(1, 2, 3, 4));
  t.deepEqual([...new Uint8Array(chunks[0]!, 2 * MiB - 2)], [1, 2]);
  t.deepEqual([...new Uint8Array(chunks[1]!, 0, 2)], [3, 4]);
  t.deepEqual([...b.read(2 * MiB - 3, 6)], [0, 1, 2, 3, 4, 0]);
  b.write(4 * MiB - 1, bytesOf(9, 8));
  t.is(new Uint8Array(chunks[2]!)[0], 8);
  b.fill(2 * MiB - 1, 2, 0);
  t.deepEqual([...b.read(2 * MiB - 2, 4)], [1, 0, 0, 4]);
  t.is(b.view(2 * MiB, 4096).byteOffset, 0);
  t.throws(() => b.view(2 * MiB - 4096, 8192), { instanceOf: RangeError, message: /straddle a 2097152-byte chunk boundary/ });
  t.throws(() => b.read(4 * MiB + 4000, 97), { instanceOf: RangeError, message: /outside \[0, 4198400\)/ });
});

test('a chunk list that does not describe its bytes is a ConfigError', (t) => {
  const c = () => new ArrayBuffer(2 * MiB);
  t.throws(() => new ChunkedBytes({ chunks: [c()], chunkSize: 3 * MiB, byteLength: 2 * MiB }), { instanceOf: ConfigError, message: /power of two >= 2 MiB/ });
  t.throws(() => new ChunkedBytes({ chunks: [new ArrayBuffer(4096), c()], chunkSize: 2 * MiB, byteLength: 2 * MiB + 4096 }), { instanceOf: ConfigError, message: /chunk 0 has 4096 bytes/ });
  t.throws(() => new ChunkedBytes({ chunks: [c()], chunkSize: 2 * MiB, byteLength: 4 * MiB }), { instanceOf: ConfigError, message: /chunks hold 2097152 bytes, byteLength says 4194304/ });
});

test('an 8 GiB arena is written and read at its far end through physmem, LinearGuestMemory and an EPT table', (t) => {
  const arena = new addon.Arena(8 * GiB);
  t.is(arena.chunks.length, 8);
  const last = new Uint8Array(arena.chunks[7]!);
  // physmem: the last frame (a zero-copy view), and bytes across the 4 GiB chunk boundary.
  const physmem = new PhysMem(arena);
  const top = pfn(8 * GiB / 4096 - 1);
  physmem.frames(top)[4095] = 0x5a;
  t.is(last[GiB - 1], 0x5a);
  physmem.write(hpa(4 * GiB - 3), bytesOf(1, 2, 3, 4, 5, 6));
  t.deepEqual([...new Uint8Array(arena.chunks[3]!, GiB - 3)], [1, 2, 3]);
  t.deepEqual([...new Uint8Array(arena.chunks[4]!, 0, 3)], [4, 5, 6]);
  t.deepEqual([...physmem.read(hpa(4 * GiB - 4), 8)], [0, 1, 2, 3, 4, 5, 6, 0]);
  // LinearGuestMemory over the whole arena: the last bytes, and a range across 7 GiB.
  const mem = new LinearGuestMemory(arena, 0, 8 * GiB);
  mem.write(gpa(8 * GiB - 2), bytesOf(0xaa, 0xbb));
  t.deepEqual([...last.subarray(GiB - 2)], [0xaa, 0xbb]);
  mem.write(gpa(7 * GiB - 1), bytesOf(7, 7));
  t.deepEqual([...mem.read(gpa(7 * GiB - 2), 4)], [0, 7, 7, 0]);
  mem.zero(gpa(7 * GiB - 1), 2);
  t.deepEqual([...mem.read(gpa(7 * GiB - 2), 4)], [0, 0, 0, 0]);
  // An EPT whose tables live in the arena's last frames: the entries are real bytes there.
  let next = 8 * GiB / 4096 - 2;
  const host = { alloc_kernel_page: () => pfn(next--), free_kernel_page: () => {} } as unknown as HostApi;
  const ept = new Ept(host, arena);
  t.is(ept.eptp as number, 8 * GiB - 2 * 4096);
  ept.map(gpa(0x5000), pfn(7 * GiB / 4096 + 3), 1, true);
  t.deepEqual(ept.lookup(gpa(0x5123)), { gpa: 0x5000, level: 1, pfn: 7 * GiB / 4096 + 3, writable: true, executable: true });
  const pt = next + 1; // the fourth table allocated: PML4, PDPT, PD, PT
  const entry = new BigUint64Array(arena.chunks[7]!, pt * 4096 - 7 * GiB, 512)[5]!;
  t.is(entry, BigInt(7 * GiB + 3 * 4096) | (6n << 3n) | 7n, 'HPA above 4 GiB | WB | RWX');
  t.true(arena.discard(4 * GiB - 4096, 8192));
  t.true(arena.discard(7 * GiB - 4096, GiB + 4096));
});

test('the native vCPU runs a guest whose RAM straddles a chunk boundary above 4 GiB, through EPT tables at the arena top', (t) => {
  const arena = new addon.Arena(8 * GiB);
  const physmem = new PhysMem(arena);
  let next = 8 * GiB / 4096 - 1;
  const host = { alloc_kernel_page: () => pfn(next--), free_kernel_page: () => {} } as unknown as HostApi;
  const ept = new Ept(host, arena);
  // Guest RAM GPA [0, 8 MiB) = HPA [6 GiB - 4 MiB, 6 GiB + 4 MiB): four 2 MiB EPT leaves,
  // two on each side of the 6 GiB chunk boundary (code and data below, page tables above).
  const ramBase = 6 * GiB - 4 * MiB;
  for (let c = 0; c < 4; c++) ept.map(gpa(c * 2 * MiB), pfn((ramBase + c * 2 * MiB) / 4096), 2, true);
  const put = (g: number, v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    physmem.write(hpa(ramBase + g), b);
  };
  // Guest identity map of [0, 8 MiB) with 2 MiB pages, flat GDT.
  put(PML4, BigInt(PML4 + 0x1000) | 3n);
  put(PML4 + 0x1000, BigInt(PML4 + 0x2000) | 3n);
  for (let c = 0; c < 4; c++) put(PML4 + 0x2000 + c * 8, BigInt(c * 2 * MiB) | 0x83n);
  put(GDT + 8, 0x00209a0000000000n);
  put(GDT + 16, 0x0000920000000000n);
  physmem.write(hpa(ramBase + CODE), assemble(`movabs $0x1122334455667788, %rax\nmov %rax, ${DATA}\nmov ${DATA}, %rbx\nhlt`));
  const vcpu = new addon.Vcpu(arena);
  vcpu.configureMmu({ ept: true, eptp: ept.eptp });
  const init: Record<string, number> = {
    cr0: 0x80010031, cr4: 0x20, efer: 0xd00, cr3: PML4, gdtr_base: GDT, gdtr_limit: 23,
    cs: 8, ds: 0x10, es: 0x10, ss: 0x10, fs: 0x10, gs: 0x10, rflags: 2, rip: CODE, rsp: STACK_TOP,
  };
  for (const [k, v] of Object.entries(init)) vcpu.regs[REG[k as keyof typeof REG]] = BigInt(v);
  t.is(vcpu.run(100), ExitReason.HLT);
  t.is(vcpu.regs[REG.rbx], 0x1122334455667788n);
  t.deepEqual([...physmem.read(hpa(ramBase + DATA), 8)], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  t.true(arena.discard(ramBase, 8 * MiB));
});

test('a 6 GiB guest without EPT (1 GiB guest pages) boots hello and runs demand-paging', (t) => {
  // eptdefault: EPT is the default now; this case is the native one.
  const hello = createVm({ ept: false, memory: 6 * GiB, guestPageSize: '1g' }, guest('hello')).run()!;
  t.is(hello.exitStatus, 0);
  t.regex(hello.console, /hello/i);
  const vm = createVm({ ept: false, memory: 6 * GiB, guestPageSize: '1g', args: [16 * MiB] }, guest('demand-paging'));
  const r = vm.run()!;
  t.is(r.exitStatus, 0);
  t.regex(r.console, /page faults handled: 4096\npattern verified: 262144 words\n/);
  // The far end of guest RAM is reachable through the VM's guest memory (and reads zero).
  vm.backend.memory.write(gpa(6 * GiB - 8), bytesOf(1, 2, 3, 4, 5, 6, 7, 8));
  t.deepEqual([...new Uint8Array(vm.backend.arena.chunks[5]!, GiB - 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('an EPT-mode VM on a 6 GiB host boots hello and runs demand-paging with 2 MiB EPT leaves', (t) => {
  const hello = createVm({ memory: 64 * MiB, ept: true, host: { memory: 6 * GiB } }, guest('hello')).run()!;
  t.is(hello.exitStatus, 0);
  t.regex(hello.console, /hello/i);
  const vm = createVm({ memory: 6 * GiB, ept: true, host: { memory: 6 * GiB, thp: { enabled: 'always' } }, args: [16 * MiB] }, guest('demand-paging'));
  const r = vm.run()!;
  t.is(r.exitStatus, 0);
  t.regex(r.console, /page faults handled: 4096\npattern verified: 262144 words\n/);
  const b = vm.backend as EptMemoryBackend;
  t.is(b.arena.byteLength, 6 * GiB);
  t.is(b.kvmMmu.pages_4k, 0);
  t.is(r.exits.ept_violation, b.kvmMmu.pages_2m);
  b.kvmMmu.checkInvariants();
});

test('sizes above the 1 TiB arena maximum, and a reservation the kernel refuses, are ConfigErrors', (t) => {
  t.throws(() => createLinearMemory(addon, 1024 * GiB + 4096), { instanceOf: ConfigError, message: /above the 1099511627776-byte \(1 TiB\) maximum/ });
  t.throws(() => createVm({ memory: 64 * MiB, host: { memory: 2048 * GiB } }, guest('hello')), { instanceOf: ConfigError, message: 'host.memory: expected a multiple of 2 MiB from 8 MiB to 1 TiB (8388608 to 1099511627776 bytes), got 2199023255552' });
  t.throws(() => createVm({ memory: 2048 * GiB }, guest('hello')), { instanceOf: ConfigError, message: 'memory: expected a multiple of 4 KiB from 4 KiB to 1 TiB (4096 to 1099511627776 bytes), got 2199023255552' });
  // mmap refused (address space limited to ~200 GB, room for tsx's wasm reservations but
  // not for a 1 TiB arena): a ConfigError and exit status 1, no abort.
  const code = `import { createLinearMemory } from './src/kvm/memory.ts';
import { loadAddon } from './src/native/addon.ts';
try { createLinearMemory(loadAddon(), 2 ** 40); } catch (e) { console.log(e.constructor.name + ': ' + e.message); process.exit(1); }`;
  const r = spawnSync('bash', ['-c', `ulimit -v 200000000; exec "${process.execPath}" --import tsx --input-type=module -e "$0"`, code], { encoding: 'utf8' });
  t.is(r.stdout.trim(), 'ConfigError: cannot reserve 1099511627776 bytes of guest memory: could not reserve the host-physical arena (mmap failed)', r.stderr);
  t.is(r.status, 1);
});

test('zeroing guest memory returns whole arena pages to the kernel instead of writing them (a large bss costs nothing)', (t) => {
  const arena = new addon.Arena(64 * MiB);
  const calls: Array<[number, number]> = [];
  // The arena's chunks with a recording discard (the native method itself is read-only).
  const source = { chunks: arena.chunks, chunkSize: arena.chunkSize, byteLength: arena.byteLength, discard: (off: number, len: number) => (calls.push([off, len]), arena.discard(off, len)) };
  const mem = new LinearGuestMemory(source, 0, 64 * MiB);
  mem.write(gpa(0), new Uint8Array(64 * MiB).fill(0xaa));
  mem.zero(gpa(100), 32 * MiB); // partial first page, whole pages, partial last page
  t.deepEqual(calls, [[4096, 32 * MiB - 4096]]);
  const bytes = mem.read(gpa(0), 32 * MiB + 200);
  t.is(bytes[99], 0xaa);
  t.true(bytes.subarray(100, 32 * MiB + 100).every((b) => b === 0));
  t.is(bytes[32 * MiB + 100], 0xaa);
  // A range inside one page has no whole page to discard: it is written.
  mem.zero(gpa(40 * MiB + 10), 100);
  t.is(calls.length, 1);
  t.true(mem.read(gpa(40 * MiB + 10), 100).every((b) => b === 0));
  t.is(mem.read(gpa(40 * MiB + 110), 1)[0], 0xaa);
});
