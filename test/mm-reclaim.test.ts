/**
 * Page reclaim (src/mm/reclaim.ts): HostApi.reclaim, direct reclaim and kswapd, the CLOCK
 * order, THPs split before swap-out, gup-pinned pages kept; exact counts and checksums.
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { createHost } from '../src/mm/index.ts';
import { HPAGE_PMD_SIZE, PAGE_SIZE, type Hva } from '../src/util/address.ts';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed + (i >> 12)) & 0xff);

test('reclaim skips pages pinned by gup and swaps the rest', (t) => {
  const host = createHost({ memoryBytes: 8 * MiB, swap: { bytes: 4 * MiB }, debugChecks: true, thp: { enabled: 'never' } });
  const mm = host.newProcess();
  const a = mm.mmap(64 * PAGE_SIZE);
  const data = fill(64 * PAGE_SIZE, 1);
  mm.writeBytes(a, data);
  const pins = mm.get_user_pages((a + 10 * PAGE_SIZE) as Hva, 2, true);
  t.is(host.reclaim(1000), 62);
  t.is(host.vmstat().pswpout, 62);
  t.deepEqual(mm.follow_page((a + 10 * PAGE_SIZE) as Hva)?.pfn, pins[0]);
  t.deepEqual(mm.follow_page((a + 11 * PAGE_SIZE) as Hva)?.pfn, pins[1]);
  t.is(mm.follow_page((a + 12 * PAGE_SIZE) as Hva), null);
  for (const p of pins) host.put_page(p);
  t.is(host.reclaim(1000), 2);
  t.is(sha(mm.readBytes(a, data.length)), sha(data));
  host.close();
});

test('a pinned tail inside a THP stays mapped after the split; the other 511 pages are swapped', (t) => {
  const host = createHost({ memoryBytes: 8 * MiB, swap: { bytes: 4 * MiB }, debugChecks: true });
  const mm = host.newProcess();
  const a = mm.mmap(HPAGE_PMD_SIZE, { alignHuge: true });
  mm.writeBytes(a, fill(HPAGE_PMD_SIZE, 2));
  const [pin] = mm.get_user_pages((a + 7 * PAGE_SIZE) as Hva, 1, false);
  t.is(host.reclaim(512), 511);
  const v = host.vmstat();
  t.is(v.thp_split, 1);
  t.is(v.pswpout, 511);
  t.is(mm.follow_page((a + 7 * PAGE_SIZE) as Hva)?.pfn, pin);
  host.put_page(pin);
  host.close();
  t.pass();
});

test('young pages get a second chance: the clock takes the old ones first', (t) => {
  const host = createHost({ memoryBytes: 8 * MiB, swap: { bytes: 4 * MiB }, debugChecks: true, thp: { enabled: 'never' } });
  const mm = host.newProcess();
  const a = mm.mmap(8 * PAGE_SIZE);
  mm.writeBytes(a, fill(8 * PAGE_SIZE, 3)); // all young
  // First turn of the clock clears every young bit and frees nothing; the second takes page 0.
  t.is(host.reclaim(1), 1);
  t.is(mm.follow_page(a), null);
  mm.readBytes((a + PAGE_SIZE) as Hva, 1); // touch page 1 again
  t.is(host.reclaim(1), 1); // page 1 is young: skipped (its bit cleared), page 2 goes
  t.not(mm.follow_page((a + PAGE_SIZE) as Hva), null);
  t.is(mm.follow_page((a + 2 * PAGE_SIZE) as Hva), null);
  host.close();
});

test('kswapd on advanceTime restores free frames above min_free_frames, up to the high watermark', (t) => {
  const host = createHost({
    memoryBytes: 8 * MiB,
    swap: { bytes: 8 * MiB },
    min_free_frames: 1024,
    debugChecks: true,
    thp: { enabled: 'never' },
  });
  const mm = host.newProcess();
  const a = mm.mmap(5 * MiB);
  mm.writeBytes(a, fill(5 * MiB, 4)); // 1280 pages: free drops below 1024
  const free = host.vmstat().nr_free_pages;
  t.true(free < 1024);
  host.advanceTime(1);
  t.is(host.vmstat().nr_free_pages, 1536); // min + min/2
  t.is(host.vmstat().pswpout, 1536 - free);
  host.close();
});

test('direct reclaim lets a process touch more memory than the host has; the bytes survive', (t) => {
  const host = createHost({ memoryBytes: 4 * MiB, swap: { bytes: 8 * MiB }, debugChecks: false, thp: { enabled: 'never' } });
  const mm = host.newProcess();
  const a = mm.mmap(6 * MiB);
  const data = fill(6 * MiB, 5);
  mm.writeBytes(a, data);
  t.true(host.vmstat().pswpout > 0);
  t.is(sha(mm.readBytes(a, data.length)), sha(data));
  t.true(host.vmstat().pswpin > 0);
  host.debugChecks = true;
  host.checkInvariants();
  host.close(); // every frame free, swap file removed
  t.pass();
});

test('without swap, reclaim frees nothing', (t) => {
  const host = createHost({ memoryBytes: 4 * MiB, debugChecks: true });
  const mm = host.newProcess();
  const a = mm.mmap(HPAGE_PMD_SIZE, { alignHuge: true });
  mm.writeBytes(a, new Uint8Array(10));
  t.is(host.reclaim(100), 0);
  t.is(host.vmstat().thp_split, 0);
  t.throws(() => host.reclaim(-1), { code: 'EINVAL_CONFIG' });
  host.close();
});

test('every frame is free again once the processes exit after swap, collapse and fork', (t) => {
  const host = createHost({ memoryBytes: 8 * MiB, swap: { bytes: 4 * MiB }, debugChecks: true });
  const mm = host.newProcess();
  const a = mm.mmap(2 * HPAGE_PMD_SIZE, { alignHuge: true });
  mm.writeBytes(a, fill(2 * HPAGE_PMD_SIZE, 6));
  const child = mm.fork();
  t.is(host.reclaim(600), 600); // splits both THPs and swaps pages both processes map
  t.is(host.vmstat().thp_split, 2);
  child.writeBytes(a, fill(PAGE_SIZE, 7));
  host.khugepaged_scan();
  mm.exit_mmap();
  child.exit_mmap();
  const v = host.vmstat();
  t.is(v.nr_free_pages, 8 * 256 - 1); // all but the zero page
  t.is(v.nr_anon_pages + v.nr_anon_transparent_hugepages, 0);
  t.is(host.meminfo().SwapFree, host.meminfo().SwapTotal);
  host.close();
});

test('kswapd backs off 100 ms after a sweep that freed nothing, then retries', (t) => {
  const host = createHost({ memoryBytes: 8 * MiB, swap: { bytes: 8 * MiB }, min_free_frames: 1024, debugChecks: true, thp: { enabled: 'never' } });
  const mm = host.newProcess();
  const a = mm.mmap(5 * MiB);
  mm.writeBytes(a, fill(5 * MiB, 8));
  const pins = mm.get_user_pages(a, 1280, true); // every page pinned: nothing reclaimable
  host.advanceTime(1); // t = 1: a fruitless sweep
  t.is(host.vmstat().pswpout, 0);
  for (const p of pins) host.put_page(p); // released silently: no counter moves
  host.advanceTime(99);
  t.is(host.vmstat().pswpout, 0); // t = 100: still backing off (99 ms since the sweep)
  host.advanceTime(1); // t = 101: kswapd sweeps again
  t.is(host.vmstat().nr_free_pages, 1536);
  host.close();
});

test("a secondary MMU's accessed bit (clear_flush_young) gives a page a second chance", (t) => {
  const host = createHost({ memoryBytes: 8 * MiB, swap: { bytes: 4 * MiB }, debugChecks: true, thp: { enabled: 'never' } });
  const mm = host.newProcess();
  const a = mm.mmap(4 * PAGE_SIZE);
  mm.writeBytes(a, fill(4 * PAGE_SIZE, 9));
  const eptYoung = new Set([a as number]); // the guest keeps touching page 0 through EPT
  const asked: number[] = [];
  mm.mmu_notifier_register(Object.assign(
    { invalidate_range_start: () => {}, invalidate_range_end: () => {} },
    { clear_flush_young: (_mm: unknown, addr: number) => (asked.push(addr), eptYoung.has(addr)) },
  ));
  t.is(host.reclaim(3), 3); // pages 1..3; page 0 stays, young in the EPT each time asked
  t.not(mm.follow_page(a), null);
  t.is(mm.follow_page((a + PAGE_SIZE) as Hva), null);
  t.true(asked.includes(a));
  host.close();
});
