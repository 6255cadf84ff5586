/**
 * Direct reclaim runs inside an allocation, in the middle of a fault or fork. These tests
 * give the host a fake try_to_free_pages (on its own Reclaim, host.vmscan) that unmaps the
 * very page being faulted on, and check that the fault notices (pte_same / pmd_same) and
 * retries instead of corrupting state.
 */
import test from 'ava';
import type { Hva } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { OutOfMemoryError } from '../src/util/errors.ts';
import { createHost } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import type { MmStruct } from '../src/mm/mm.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;

/** Fill every free frame with 4 KiB pages of a filler mapping; returns it and its length in pages. */
function fillMemory(mm: MmStruct): { fill: Hva; pages: number } {
  const fill = mm.mmap(64 * MiB);
  mm.madvise(fill, 64 * MiB, 'MADV_NOHUGEPAGE');
  let n = 0;
  try {
    for (;; n++) mm.handle_mm_fault(at(fill + n * PAGE_SIZE), true);
  } catch (e) {
    if (!(e instanceof OutOfMemoryError)) throw e;
  }
  return { fill, pages: n };
}

test.serial('a 4 KiB COW whose page is unmapped by direct reclaim during the copy retries cleanly', (t) => {
  const h = createHost({ memoryBytes: 16 * MiB, debugChecks: true, thp: { enabled: 'never' } }) as Host;
  const parent = h.newProcess() as MmStruct;
  const a = parent.mmap(PAGE_SIZE);
  parent.writeBytes(a, new Uint8Array([42]));
  const child = parent.fork() as MmStruct;
  const { fill } = fillMemory(child);
  let calls = 0;
  h.vmscan.try_to_free_pages = () => {
    calls++;
    parent.madvise(a, PAGE_SIZE, 'MADV_DONTNEED'); // "reclaim" unmaps the COW source in the parent
    child.madvise(fill, 64 * PAGE_SIZE, 'MADV_DONTNEED'); // and frees some memory
    return 64;
  };
  parent.writeBytes(a, new Uint8Array([7]));
  t.is(calls, 1);
  t.is(parent.readBytes(a, 1)[0], 7);
  t.is(child.readBytes(a, 1)[0], 42, 'the child still sees its copy');
  h.close();
});

test.serial('a huge COW fallback whose THP is split by direct reclaim meanwhile retries on the 4 KiB path', (t) => {
  const h = createHost({ memoryBytes: 16 * MiB, debugChecks: true }) as Host;
  const parent = h.newProcess() as MmStruct;
  const a = parent.mmap(2 * MiB, { alignHuge: true });
  parent.writeBytes(a, new Uint8Array([42]));
  const child = parent.fork() as MmStruct;
  const { fill } = fillMemory(child);
  h.setKnob('enabled', 'never'); // force do_huge_pmd_wp_page_fallback
  let calls = 0;
  h.vmscan.try_to_free_pages = () => {
    if (calls++ === 0) h.split_huge_page(parent.follow_page(a)!.headPfn); // reclaim splits THPs first
    child.madvise(at(fill + (calls - 1) * 600 * PAGE_SIZE), 600 * PAGE_SIZE, 'MADV_DONTNEED');
    return 600;
  };
  parent.writeBytes(a, new Uint8Array([7]));
  t.true(calls >= 1);
  t.is(h.vmstat().thp_split, 1);
  t.false(parent.follow_page(a)!.huge);
  t.is(parent.readBytes(a, 1)[0], 7);
  t.is(child.readBytes(a, 1)[0], 42);
  h.close();
});
