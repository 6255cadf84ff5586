/**
 * MMU notifiers (mm/mmu_notifier.c): secondary MMUs (KVM's EPT) register on an mm and are
 * told before and after any change that removes or downgrades a host mapping, so they
 * can zap their own entries. Also carries KVM's mmu_notifier_seq / mmu_notifier_count
 * pair: a secondary fault that started before an invalidation (seq changed, or count > 0)
 * must retry instead of installing a stale mapping.
 *
 * Callers in this model: munmap, mprotect, madvise(DONTNEED), fork (write-protecting the
 * parent), COW breaks (4 KiB and huge), split_huge_page pass 1, exit_mmap,
 * khugepaged's collapse and swap-out's try_to_unmap, all through mmu_notifier_invalidate_range_start/end below.
 */
import type { Hva } from '../util/address.ts';
import type { MmStructApi, MmuNotifierOps } from './types.ts';

export class MmuNotifierList {
  readonly ops = new Set<MmuNotifierOps>();
  seq = 0;
  count = 0;
  /** invalidate_range_start calls so far (for tests and tracing). */
  invalidations = 0;
}

export function mmu_notifier_register(list: MmuNotifierList, ops: MmuNotifierOps): void {
  list.ops.add(ops);
}
export function mmu_notifier_unregister(list: MmuNotifierList, ops: MmuNotifierOps): void {
  list.ops.delete(ops);
}

export function mmu_notifier_invalidate_range_start(mm: MmStructApi & { notifiers: MmuNotifierList }, start: Hva, end: Hva): void {
  const l = mm.notifiers;
  l.count++;
  l.invalidations++;
  for (const o of l.ops) o.invalidate_range_start(mm, start, end);
}

export function mmu_notifier_invalidate_range_end(mm: MmStructApi & { notifiers: MmuNotifierList }, start: Hva, end: Hva): void {
  const l = mm.notifiers;
  for (const o of l.ops) o.invalidate_range_end(mm, start, end);
  l.seq++;
  l.count--;
}
