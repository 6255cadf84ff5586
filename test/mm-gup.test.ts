import test from 'ava';
import type { Hva, Pfn } from '../src/util/address.ts';
import { PAGE_SIZE } from '../src/util/address.ts';
import { createHost, SegvError } from '../src/mm/index.ts';
import type { Host } from '../src/mm/host.ts';

const MiB = 1 << 20;
const at = (a: number) => a as Hva;

test('gup inside a THP returns the tails that map each address, pinning tail and head', (t) => {
  const h = createHost({ memoryBytes: 32 * MiB, debugChecks: true }) as Host;
  const mm = h.newProcess();
  const a = mm.mmap(4 * MiB, { alignHuge: true });
  const pins = mm.get_user_pages(at(a + 2 * MiB - 2 * PAGE_SIZE), 4, true);
  const h0 = mm.follow_page(a)!.headPfn;
  const h1 = mm.follow_page(at(a + 2 * MiB))!.headPfn;
  t.deepEqual(pins, [h0 + 510, h0 + 511, h1, h1 + 1] as Pfn[]);
  t.is(h.vmstat().thp_fault_alloc, 2, 'gup faulted both THPs in');
  t.is(h.pages._count[h0], 1 + 2);
  t.is(h.pages._count[h1], 1 + 1 + 1, 'the PMD, the pin on the head itself and the pin on tail h1+1');
  for (const p of pins) h.put_page(p);
  t.is(h.pages._count[h0], 1);
  t.is(h.pages._count[h1], 1);
  h.close();
});

test('a read gup of untouched 4 KiB memory pins the zero page; a write gup gets a private page', (t) => {
  const h = createHost({ memoryBytes: 32 * MiB, debugChecks: true, thp: { enabled: 'never' } }) as Host;
  const mm = h.newProcess();
  const a = mm.mmap(2 * PAGE_SIZE);
  const [z] = mm.get_user_pages(a, 1, false);
  t.is(z, h.zero_pfn);
  const [w] = mm.get_user_pages(a, 1, true);
  t.not(w, h.zero_pfn);
  t.is(mm.follow_page(a)!.pfn, w);
  t.is(h.pages._count[w], 2);
  h.put_page(z);
  h.put_page(w);
  h.close();
});

test('a write gup on a COW-shared THP breaks COW first', (t) => {
  const h = createHost({ memoryBytes: 32 * MiB, debugChecks: true }) as Host;
  const mm = h.newProcess();
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  mm.handle_mm_fault(a, true);
  const child = mm.fork();
  const [p] = mm.get_user_pages(at(a + PAGE_SIZE), 1, true);
  t.not(mm.follow_page(a)!.headPfn, child.follow_page(a)!.headPfn);
  t.is(p, (mm.follow_page(a)!.headPfn + 1) as Pfn);
  h.put_page(p);
  h.close();
});

test('gup for write on a read-only VMA fails with SegvError and leaves no pins', (t) => {
  const h = createHost({ memoryBytes: 32 * MiB, debugChecks: true }) as Host;
  const mm = h.newProcess();
  const a = mm.mmap(2 * PAGE_SIZE);
  mm.mprotect(at(a + PAGE_SIZE), PAGE_SIZE, 1);
  const before = h.nr_free_pages();
  t.throws(() => mm.get_user_pages(a, 2, true), { instanceOf: SegvError, message: /not writable/ });
  const [p] = mm.get_user_pages(a, 1, true);
  t.is(h.pages._count[p], 2, 'the page from the failed call was released');
  h.put_page(p);
  t.true(h.nr_free_pages() < before);
  h.close();
});

test('a THP unmapped while a tail is pinned stays whole until the last put_page frees all 512 frames', (t) => {
  const h = createHost({ memoryBytes: 32 * MiB, debugChecks: true }) as Host;
  const mm = h.newProcess();
  const a = mm.mmap(2 * MiB, { alignHuge: true });
  const [p] = mm.get_user_pages(at(a + 100 * PAGE_SIZE), 1, false);
  const head = mm.follow_page(a)!.headPfn;
  mm.munmap(a, 2 * MiB);
  t.true(h.pages.PageHead(head), 'zap_huge_pmd does not split');
  t.is(h.pages._count[head], 1);
  t.is(h.vmstat().nr_anon_transparent_hugepages, 0);
  h.split_huge_page(p); // not mapped anywhere: the kernel's split_huge_page gives up (no anon_vma to lock)
  t.is(h.vmstat().thp_split, 0);
  const free0 = h.nr_free_pages();
  h.put_page(p);
  t.is(h.nr_free_pages(), free0 + 512);
  h.close();
});
