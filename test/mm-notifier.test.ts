import test from 'ava';
import type { Hva } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { createHost, type MmStructApi } from '../src/mm/index.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;

function recorded() {
  const h = createHost({ memoryBytes: 64 * MiB, debugChecks: true });
  const mm = h.newProcess();
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  const log: string[] = [];
  const ops = {
    invalidate_range_start: (_m: MmStructApi, s: Hva, e: Hva) => log.push(`start +${(s - a) / PAGE_SIZE} ${(e - s) / PAGE_SIZE}`),
    invalidate_range_end: (_m: MmStructApi, s: Hva, e: Hva) => log.push(`end +${(s - a) / PAGE_SIZE} ${(e - s) / PAGE_SIZE}`),
  };
  return { h, mm, a, log, ops };
}

test('munmap, mprotect and madvise(DONTNEED) invalidate their ranges; faults do not', (t) => {
  const { h, mm, a, log, ops } = recorded();
  mm.handle_mm_fault(a, true);
  mm.mmu_notifier_register(ops);
  mm.handle_mm_fault(at(a + 2 * MiB), true);
  t.deepEqual(log, []);
  mm.madvise(at(a + 2 * MiB), 2 * MiB, 'MADV_DONTNEED');
  mm.mprotect(a, 2 * MiB, 1);
  mm.munmap(at(a + 2 * MiB), 2 * MiB);
  t.deepEqual(log, ['start +512 512', 'end +512 512', 'start +0 512', 'end +0 512', 'start +512 512', 'end +512 512']);
  t.is(mm.mmu_notifier_seq, 3);
  t.is(mm.mmu_notifier_count, 0);
  h.close();
});

test('a partial madvise(DONTNEED) nests the split invalidation inside its own', (t) => {
  const { h, mm, a, log, ops } = recorded();
  mm.handle_mm_fault(a, true);
  let countInside = -1;
  mm.mmu_notifier_register({
    invalidate_range_start: (m, s, e) => {
      ops.invalidate_range_start(m, s, e);
      countInside = Math.max(countInside, m.mmu_notifier_count);
    },
    invalidate_range_end: ops.invalidate_range_end,
  });
  mm.madvise(at(a + PAGE_SIZE), PAGE_SIZE, 'MADV_DONTNEED');
  t.deepEqual(log, ['start +1 1', 'start +0 512', 'end +0 512', 'end +1 1']);
  t.is(countInside, 2, 'mmu_notifier_count > 0 during the whole invalidation');
  h.close();
});

test('a partial munmap splits the THP at the VMA edge before zapping (split_vma first)', (t) => {
  const { h, mm, a, log, ops } = recorded();
  mm.handle_mm_fault(a, true);
  mm.mmu_notifier_register(ops);
  mm.munmap(at(a + PAGE_SIZE), PAGE_SIZE);
  t.deepEqual(log, ['start +0 512', 'end +0 512', 'start +1 1', 'end +1 1']);
  t.is(h.vmstat().thp_split, 1);
  h.close();
});

test('fork write-protects the parent (invalidate) and COW breaks invalidate the old mapping', (t) => {
  const { h, mm, a, log, ops } = recorded();
  mm.handle_mm_fault(a, true);
  mm.mmu_notifier_register(ops);
  const child = mm.fork();
  t.deepEqual(log, ['start +0 1024', 'end +0 1024']);
  log.length = 0;
  mm.writeBytes(a, new Uint8Array([1])); // huge COW copy
  t.deepEqual(log, ['start +0 512', 'end +0 512']);
  child.exit_mmap();
  h.close();
});

test('an unregistered notifier hears nothing', (t) => {
  const { h, mm, a, log, ops } = recorded();
  mm.mmu_notifier_register(ops);
  mm.mmu_notifier_unregister(ops);
  mm.munmap(a, 2 * MiB);
  t.deepEqual(log, []);
  t.is(mm.mmu_notifier_seq, 1, 'the sequence still moves');
  h.close();
});
