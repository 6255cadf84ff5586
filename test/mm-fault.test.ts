import test from 'ava';
import type { Hva } from '../src/util/address.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE } from '../src/util/address.ts';
import { OutOfMemoryError } from '../src/util/errors.ts';
import { createHost, SegvError, type HostConfig } from '../src/mm/index.ts';
import { MMAP_BASE } from '../src/mm/mm.ts';

const MiB = 1 << 20;
const host = (extra: Partial<HostConfig> = {}) => createHost({ memoryBytes: 64 * MiB, debugChecks: true, ...extra });
const at = (a: number) => a as Hva;

test('an aligned 2 MiB range inside the VMA gets a THP on first touch (thp_fault_alloc)', (t) => {
  const h = host();
  const mm = h.newProcess();
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  mm.handle_mm_fault(at(a + 12345), false);
  const m = mm.follow_page(at(a + 12345))!;
  t.true(m.huge);
  t.is<number, number>(m.pfn, m.headPfn + 3);
  t.true(m.writable, '2.6.38 maps the huge page writable even on a read fault');
  t.is(h.vmstat().thp_fault_alloc, 1);
  t.is(h.vmstat().pgfault, 1);
  t.is(h.meminfo().AnonHugePages, 2048);
  h.close();
});

test('an unaligned VMA gets THPs only for the 2 MiB ranges wholly inside it', (t) => {
  const h = host();
  const mm = h.newProcess();
  const a = mm.mmap(4 * MiB, { addr: at(MMAP_BASE + PAGE_SIZE) });
  t.is<number, number>(a, MMAP_BASE + PAGE_SIZE);
  mm.handle_mm_fault(at(a), true); // [BASE, BASE+2M) is not inside
  mm.handle_mm_fault(at(MMAP_BASE + 2 * MiB), true); // [BASE+2M, BASE+4M) is
  mm.handle_mm_fault(at(MMAP_BASE + 4 * MiB), true); // [BASE+4M, ...) sticks out at the end
  t.false(mm.follow_page(at(a))!.huge);
  t.true(mm.follow_page(at(MMAP_BASE + 2 * MiB))!.huge);
  t.false(mm.follow_page(at(MMAP_BASE + 4 * MiB))!.huge);
  t.is(h.vmstat().thp_fault_alloc, 1);
  t.is(h.vmstat().thp_fault_fallback, 0, 'an ineligible range is not a fallback');
  t.is(h.vmstat().nr_anon_pages, 2);
  h.close();
});

test('enabled=madvise gives THPs only to MADV_HUGEPAGE VMAs', (t) => {
  const h = host({ thp: { enabled: 'madvise' } });
  const mm = h.newProcess();
  const plain = mm.mmap(2 * MiB, { alignHuge: true });
  const advised = mm.mmap(2 * MiB, { alignHuge: true, addr: at(plain + 16 * MiB) });
  mm.madvise(advised, 2 * MiB, 'MADV_HUGEPAGE');
  mm.handle_mm_fault(plain, true);
  mm.handle_mm_fault(advised, true);
  t.false(mm.follow_page(plain)!.huge);
  t.true(mm.follow_page(advised)!.huge);
  t.is(h.vmstat().thp_fault_alloc, 1);
  h.close();
});

test('enabled=never gives no THP even to MADV_HUGEPAGE VMAs', (t) => {
  const h = host();
  h.setKnob('enabled', 'never');
  const mm = h.newProcess();
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.madvise(a, 2 * MiB, 'MADV_HUGEPAGE');
  mm.handle_mm_fault(a, true);
  t.false(mm.follow_page(a)!.huge);
  t.is(h.vmstat().thp_fault_alloc, 0);
  h.close();
});

test('VM_NOHUGEPAGE (MADV_NOHUGEPAGE) wins over enabled=always', (t) => {
  const h = host();
  const mm = h.newProcess();
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  mm.madvise(at(a + 2 * MiB), 2 * MiB, 'MADV_NOHUGEPAGE');
  mm.handle_mm_fault(a, true);
  mm.handle_mm_fault(at(a + 2 * MiB), true);
  t.true(mm.follow_page(a)!.huge);
  t.false(mm.follow_page(at(a + 2 * MiB))!.huge);
  h.close();
});

test('a 4 KiB read fault maps the shared zero page; the first write replaces it', (t) => {
  const h = host({ thp: { enabled: 'never' } });
  const mm = h.newProcess();
  const a = mm.mmap(8 * PAGE_SIZE);
  t.deepEqual([...mm.readBytes(a, 4)], [0, 0, 0, 0]);
  const z = mm.follow_page(a)!;
  t.is(z.pfn, h.zero_pfn);
  t.false(z.writable);
  t.is(h.vmstat().nr_anon_pages, 0);
  mm.writeBytes(a, new Uint8Array([7]));
  const w = mm.follow_page(a)!;
  t.not(w.pfn, h.zero_pfn);
  t.true(w.writable);
  t.is(h.vmstat().nr_anon_pages, 1);
  t.is(h.vmstat().pgfault, 2);
  h.close();
});

test('fragmentation: with no free order-9 block the THP fault falls back to 4 KiB (thp_fault_fallback)', (t) => {
  const h = host();
  const mm = h.newProcess();
  // Fill RAM with 4 KiB pages, then free all but one frame of every 2 MiB block.
  h.debugChecks = false;
  const fill = mm.mmap(64 * MiB);
  mm.madvise(fill, 64 * MiB, 'MADV_NOHUGEPAGE');
  let touched = 0;
  try {
    for (;; touched++) mm.handle_mm_fault(at(fill + touched * PAGE_SIZE), true);
  } catch (e) {
    t.true(e instanceof OutOfMemoryError);
  }
  for (let k = 0; k < touched; k++) {
    const a = at(fill + k * PAGE_SIZE);
    if (mm.follow_page(a)!.pfn % 512 !== 511) mm.madvise(a, PAGE_SIZE, 'MADV_DONTNEED');
  }
  h.debugChecks = true;
  h.checkInvariants();
  t.true(h.nr_free_pages() > 60 * 256, 'plenty of free memory in total');
  t.is(h.buddy.alloc_pages(9), null, 'but no free order-9 block');
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(a, true);
  t.false(mm.follow_page(a)!.huge);
  t.is(h.vmstat().thp_fault_fallback, 1);
  t.is(h.vmstat().thp_fault_alloc, 0);
  h.close();
});

test('a fault outside any VMA or against its protection is a SegvError', (t) => {
  const h = host();
  const mm = h.newProcess();
  const a = mm.mmap(2 * MiB, { alignHuge: true, prot: 1 });
  t.throws(() => mm.handle_mm_fault(at(a + 2 * MiB), false), { instanceOf: SegvError });
  t.throws(() => mm.handle_mm_fault(a, true), { instanceOf: SegvError, message: /write not permitted/ });
  t.throws(() => mm.writeBytes(a, new Uint8Array(1)), { instanceOf: SegvError });
  h.close();
});

test('huge first touch zeroes the whole 2 MiB with real bytes', (t) => {
  const h = host();
  const mm = h.newProcess();
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.writeBytes(at(a + HPAGE_PMD_SIZE - 1), new Uint8Array([0xee]));
  const head = mm.follow_page(a)!.headPfn;
  mm.munmap(a, 2 * MiB);
  h.physmem.frames(head, 512).fill(0xaa); // stale garbage in the freed frames
  const b = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(b, false);
  t.is(mm.follow_page(b)!.headPfn, head, 'lowest-first buddy hands the same block back');
  t.true(mm.readBytes(b, 2 * MiB).every((x) => x === 0));
  h.close();
});
