import test from 'ava';
import type { Hva } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { createHost } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';
import type { MmStruct } from '../src/mm/mm.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;

function forked() {
  const h = createHost({ memoryBytes: 64 * MiB, debugChecks: true }) as Host;
  const parent = h.newProcess() as MmStruct;
  const a = parent.mmap(2 * MiB, { alignHuge: true });
  parent.writeBytes(a, new Uint8Array([1, 2, 3]));
  parent.writeBytes(at(a + 2 * MiB - 1), new Uint8Array([4]));
  const child = parent.fork() as MmStruct;
  return { h, parent, child, a };
}

test('fork shares the THP copy-on-write: both PMDs write-protected, mapcount 2', (t) => {
  const { h, parent, child, a } = forked();
  const p = parent.follow_page(a)!;
  const c = child.follow_page(a)!;
  t.is(p.headPfn, c.headPfn);
  t.true(p.huge && c.huge);
  t.false(p.writable || c.writable);
  t.is(h.pages.page_mapcount(p.headPfn), 2);
  t.is(h.pages._count[p.headPfn], 2);
  t.is(child.pmd_huge_pte.length, 1, 'the child deposits its own PTE table');
  h.close();
});

test('COW on a THP mapped once is reused in place (do_huge_pmd_wp_page reuse)', (t) => {
  const { h, parent, child, a } = forked();
  const head = parent.follow_page(a)!.headPfn;
  child.exit_mmap();
  parent.writeBytes(a, new Uint8Array([9]));
  const p = parent.follow_page(a)!;
  t.is(p.headPfn, head);
  t.true(p.writable && p.huge);
  t.is(h.vmstat().thp_fault_alloc, 1, 'no second huge page');
  h.close();
});

test('COW on a shared THP copies it into a new huge page', (t) => {
  const { h, parent, child, a } = forked();
  const head = parent.follow_page(a)!.headPfn;
  parent.writeBytes(a, new Uint8Array([9]));
  const p = parent.follow_page(a)!;
  t.not(p.headPfn, head);
  t.true(p.huge && p.writable);
  t.is(child.follow_page(a)!.headPfn, head);
  t.is(h.vmstat().thp_fault_alloc, 2);
  t.is(h.vmstat().thp_split, 0);
  t.deepEqual([...parent.readBytes(a, 3)], [9, 2, 3]);
  t.deepEqual([...child.readBytes(a, 3)], [1, 2, 3]);
  t.is(parent.readBytes(at(a + 2 * MiB - 1), 1)[0], 4, 'the whole 2 MiB was copied');
  t.is(h.pages.page_mapcount(head), 1);
  h.close();
});

test('COW on a shared THP without a huge page to copy into falls back to 512 small pages, no split', (t) => {
  const { h, parent, child, a } = forked();
  const head = parent.follow_page(a)!.headPfn;
  h.setKnob('enabled', 'never'); // THP no longer enabled for the VMA: no huge copy
  parent.writeBytes(at(a + 4096), new Uint8Array([9]));
  t.is(h.vmstat().thp_fault_fallback, 1);
  t.is(h.vmstat().thp_split, 0, '2.6.38 copies into small pages; the shared THP stays whole');
  t.false(parent.follow_page(a)!.huge);
  t.true(parent.follow_page(a)!.writable, 'do_huge_pmd_wp_page_fallback maps all 512 copies writable');
  t.true(child.follow_page(a)!.huge);
  t.is(h.pages.page_mapcount(head), 1);
  t.is(parent.pmd_huge_pte.length, 0, 'the deposited table became the PTE table');
  t.deepEqual([...parent.readBytes(a, 3)], [1, 2, 3]);
  t.is(parent.readBytes(at(a + 2 * MiB - 1), 1)[0], 4);
  t.is(h.vmstat().nr_anon_pages, 512);
  h.close();
});

test('4 KiB COW: a shared page is copied, a page mapped once is reused', (t) => {
  const h = createHost({ memoryBytes: 64 * MiB, debugChecks: true, thp: { enabled: 'never' } }) as Host;
  const parent = h.newProcess() as MmStruct;
  const a = parent.mmap(2 * PAGE_SIZE);
  parent.writeBytes(a, new Uint8Array([1]));
  parent.writeBytes(at(a + PAGE_SIZE), new Uint8Array([2]));
  const child = parent.fork() as MmStruct;
  const shared = parent.follow_page(a)!.pfn;
  child.writeBytes(a, new Uint8Array([3]));
  t.not(child.follow_page(a)!.pfn, shared);
  t.is(parent.follow_page(a)!.pfn, shared);
  t.false(parent.follow_page(a)!.writable, 'still write-protected until the parent writes');
  parent.writeBytes(a, new Uint8Array([4]));
  t.is(parent.follow_page(a)!.pfn, shared, 'mapped once now: reused');
  t.deepEqual([parent.readBytes(a, 1)[0], child.readBytes(a, 1)[0]], [4, 3]);
  t.is(child.readBytes(at(a + PAGE_SIZE), 1)[0], 2);
  h.close();
});
