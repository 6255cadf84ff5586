import test from 'ava';
import { Ept } from '../src/kvm/mmu/ept.ts';
import { gpa, pfn } from '../src/util/address.ts';
import { createHost } from '../src/mm/index.ts';

const MiB = 1024 * 1024;

/** Raw u64 entry `i` of the table at frame `p`, as the native walker reads it. */
function entry(buf: ArrayBuffer, p: number, i: number): bigint {
  return new BigUint64Array(buf, p * 4096, 512)[i]!;
}

test('EPT entries are written in the SDM format the native walker reads', (t) => {
  const physmem = new ArrayBuffer(64 * MiB);
  const host = createHost({ memoryBytes: 64 * MiB, physmem });
  const ept = new Ept(host, physmem);
  // A 2 MiB leaf at GPA 1 GiB + 2 MiB → frames from 512, and a 4 KiB leaf at GPA 0x5000.
  ept.map(gpa(1024 * MiB + 2 * MiB), pfn(512), 2, true);
  ept.map(gpa(0x5000), pfn(7), 1, false);
  const root = entry(physmem, ept.root, 0);
  t.is(root & 0xfffn, 7n, 'non-leaf: R|W|X, no memory type, no PS');
  const pdpt = Number(root >> 12n);
  const pdptE = entry(physmem, pdpt, 1);
  const pd = Number(pdptE >> 12n);
  t.is(entry(physmem, pd, 1), (512n << 12n) | 0x80n | (6n << 3n) | 7n, '2 MiB leaf: HPA | PS | WB | RWX');
  const pd0 = Number(entry(physmem, pdpt, 0) >> 12n);
  const pt = Number(entry(physmem, pd0, 0) >> 12n);
  t.is(entry(physmem, pt, 5), (7n << 12n) | (6n << 3n) | 5n, '4 KiB read-only leaf: HPA | WB | R|X');
  t.deepEqual(ept.lookup(gpa(1024 * MiB + 3 * MiB + 5)), { gpa: 1024 * MiB + 2 * MiB, level: 2, pfn: 512, writable: true, executable: true });
  t.is(ept.pages_2m, 1);
  t.is(ept.pages_4k, 1);
  t.is(ept.tableCount, 5, 'PML4, PDPT, two PDs, one PT');
});

test('a 2 MiB leaf replaces the page table below it and a 4 KiB fault inside a 2 MiB leaf drops it', (t) => {
  const physmem = new ArrayBuffer(64 * MiB);
  const host = createHost({ memoryBytes: 64 * MiB, physmem });
  const ept = new Ept(host, physmem);
  for (let i = 0; i < 10; i++) t.false(ept.map(gpa(2 * MiB + i * 4096), pfn(1000 + i), 1, true), 'filling an empty entry: no flush needed');
  t.is(ept.pages_4k, 10);
  t.true(ept.map(gpa(2 * MiB), pfn(1024), 2, true), 'replacing a page table: flush');
  t.is(ept.pages_4k, 0);
  t.is(ept.pages_2m, 1);
  t.is(ept.tableCount, 3, 'the page table was freed');
  t.true(ept.map(gpa(2 * MiB + 4096), pfn(1025), 1, true), 'dropping a 2 MiB leaf: flush');
  t.is(ept.pages_2m, 0);
  t.true(ept.map(gpa(2 * MiB + 4096), pfn(1025), 1, true), 'rewriting a present leaf: flush');
  t.is(ept.pages_4k, 1);
  t.is(ept.lookup(gpa(2 * MiB)), null);
  t.is(ept.writeProtectRange(gpa(0), gpa(4 * MiB)), 1);
  t.false(ept.lookup(gpa(2 * MiB + 4096))!.writable);
  t.deepEqual(ept.zapRange(gpa(2 * MiB + 8192), gpa(2 * MiB + 12288)), { zapped4k: 0, zapped2m: 0, tablesFreed: 0 });
  t.deepEqual(ept.zapRange(gpa(0), gpa(2 * MiB + 8192)), { zapped4k: 1, zapped2m: 0, tablesFreed: 3 });
  t.is(ept.tableCount, 1);
  ept.destroy();
  t.is(ept.tableCount, 0);
});

test('leaves pointing above 4 GiB of host memory keep the high address bits', (t) => {
  const physmem = new ArrayBuffer(16 * MiB);
  const host = createHost({ memoryBytes: 16 * MiB, physmem });
  const ept = new Ept(host, physmem);
  const high = (8 * 1024 * MiB) / 4096 + 512; // HPA 8 GiB + 2 MiB
  ept.map(gpa(0), pfn(high), 2, true);
  ept.map(gpa(4 * MiB), pfn(high + 3), 1, true);
  t.is(Number(ept.lookup(gpa(4096))!.pfn), high);
  t.is(Number(ept.lookup(gpa(4 * MiB))!.pfn), high + 3);
  const pdpt = Number(entry(physmem, ept.root, 0) >> 12n);
  const pd = Number(entry(physmem, pdpt, 0) >> 12n);
  t.is(entry(physmem, pd, 0) >> 12n, BigInt(high));
});
