import test from 'ava';
import type { Hva } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { ConfigError } from '../src/util/errors.ts';
import { createHost, SegvError } from '../src/mm/index.ts';
import type { MmStruct } from '../src/mm/mm.ts';
import { VM_HUGEPAGE, VM_READ, VM_WRITE } from '../src/mm/vma.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;

function proc() {
  const h = createHost({ memoryBytes: 32 * MiB, debugChecks: true });
  return { h, mm: h.newProcess() as MmStruct };
}
const layout = (mm: MmStruct) => mm.vmas.map((v) => [v.start, v.end, v.flags]);

test('mmap with alignHuge starts on a 2 MiB boundary (qemu_ram_mmap)', (t) => {
  const { h, mm } = proc();
  mm.mmap(3 * PAGE_SIZE);
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  t.is(a % (2 * MiB), 0);
  t.is(mm.vmas.length, 2);
  h.close();
});

test('adjacent mappings with equal flags merge; a flag change in the middle splits into three and back', (t) => {
  const { h, mm } = proc();
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  mm.mmap(2 * MiB, { addr: at(a + 4 * MiB) });
  t.deepEqual(layout(mm), [[a, a + 6 * MiB, VM_READ | VM_WRITE]]);
  mm.madvise(at(a + 2 * MiB), 2 * MiB, 'MADV_HUGEPAGE');
  t.deepEqual(layout(mm), [
    [a, a + 2 * MiB, VM_READ | VM_WRITE],
    [a + 2 * MiB, a + 4 * MiB, VM_READ | VM_WRITE | VM_HUGEPAGE],
    [a + 4 * MiB, a + 6 * MiB, VM_READ | VM_WRITE],
  ]);
  mm.madvise(a, 6 * MiB, 'MADV_HUGEPAGE');
  t.deepEqual(layout(mm), [[a, a + 6 * MiB, VM_READ | VM_WRITE | VM_HUGEPAGE]]);
  h.close();
});

test('munmap in the middle leaves two VMAs and frees the hole', (t) => {
  const { h, mm } = proc();
  const a = mm.mmap(8 * PAGE_SIZE);
  mm.writeBytes(a, new Uint8Array(8 * PAGE_SIZE).fill(1));
  mm.munmap(at(a + 2 * PAGE_SIZE), 2 * PAGE_SIZE);
  t.deepEqual(layout(mm), [
    [a, a + 2 * PAGE_SIZE, VM_READ | VM_WRITE],
    [a + 4 * PAGE_SIZE, a + 8 * PAGE_SIZE, VM_READ | VM_WRITE],
  ]);
  t.throws(() => mm.readBytes(at(a + 2 * PAGE_SIZE), 1), { instanceOf: SegvError });
  t.is(mm.readBytes(at(a + 4 * PAGE_SIZE), 1)[0], 1);
  h.close();
});

test('MAP_FIXED over an existing mapping replaces it with fresh zeroed memory', (t) => {
  const { h, mm } = proc();
  const a = mm.mmap(4 * PAGE_SIZE);
  mm.writeBytes(a, new Uint8Array([5, 5]));
  mm.mmap(PAGE_SIZE, { addr: a, prot: 1 });
  t.is(mm.readBytes(a, 1)[0], 0);
  t.throws(() => mm.writeBytes(a, new Uint8Array([1])), { instanceOf: SegvError });
  h.close();
});

test('bad syscall arguments are ConfigErrors; unmapped ranges are SegvErrors', (t) => {
  const { h, mm } = proc();
  const a = mm.mmap(4 * PAGE_SIZE);
  t.throws(() => mm.mmap(0), { instanceOf: ConfigError, message: /length/ });
  t.throws(() => mm.mmap(4096, { prot: 9 }), { instanceOf: ConfigError, message: /prot/ });
  t.throws(() => mm.munmap(at(a + 1), 4096), { instanceOf: ConfigError, message: /not page aligned/ });
  t.throws(() => mm.madvise(a, 4096, 'MADV_FREE' as never), { instanceOf: ConfigError, message: /advice/ });
  t.throws(() => mm.mprotect(at(a + 2 * PAGE_SIZE), 4 * PAGE_SIZE, 1), { instanceOf: SegvError, message: /not fully mapped/ });
  t.throws(() => mm.get_user_pages(at(a + 4 * PAGE_SIZE), 1, false), { instanceOf: SegvError });
  mm.exit_mmap();
  t.throws(() => mm.mmap(4096), { message: /after exit_mmap/ });
  h.close();
});

test('page tables cost real frames and are freed with the VMA', (t) => {
  const { h, mm } = proc();
  const free0 = h.nr_free_pages();
  const a = mm.mmap(PAGE_SIZE);
  mm.writeBytes(a, new Uint8Array([1]));
  t.is(free0 - h.nr_free_pages(), 1 + 3, 'the page plus a PUD, PMD and PTE table');
  mm.munmap(a, PAGE_SIZE);
  t.is(h.nr_free_pages(), free0);
  h.close();
});
