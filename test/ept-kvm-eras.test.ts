import test from 'ava';
import { countDirty } from '../src/kvm/mmu/dirty-log.ts';
import { gpa, hva, pfn } from '../src/util/address.ts';
import { ConfigError } from '../src/util/errors.ts';
import { MiB, guestAccess, guestFetch, pattern, setupEpt, touchRegion } from './ept-helpers.ts';

// The KVM of each era over the same host: what differs is how a fault picks its leaf size
// (transparent_hugepage_adjust vs kvm_mmu_hugepage_adjust), what dirty logging does to
// large leaves (zap vs eager split; zap-collapsible vs in-place recovery) and the NX huge
// pages mitigation, which only 6.x has.

for (const kernel of ['2.6.38', '6.x'] as const) {
  test(`${kernel}: a host huge PMD gives one 2 MiB leaf per range, THP never gives 4 KiB leaves`, (t) => {
    const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel });
    k.addRamSlot(0, gpa(0), 8 * MiB);
    t.is(touchRegion(k, physmem, 0, 8 * MiB, true, 1).exits, 4);
    t.deepEqual([k.pages_2m, k.pages_4k], [4, 0]);

    const never = setupEpt({ thp: 'never', hostBytes: 64 * MiB, kernel });
    never.k.addRamSlot(0, gpa(0), 4 * MiB);
    t.is(touchRegion(never.k, never.physmem, 0, 4 * MiB, true, 1).exits, 1024);
    t.deepEqual([never.k.pages_2m, never.k.pages_4k], [0, 1024]);
  });
}

test('2.6.38 enabling dirty logging zaps large leaves: reads refault 4 KiB at a time; disabling zaps again and reads refault 2 MiB', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel: '2.6.38' });
  k.addRamSlot(0, gpa(0), 8 * MiB);
  touchRegion(k, physmem, 0, 8 * MiB, true, 1);
  k.enableDirtyLog(0);
  t.deepEqual([k.pages_2m, k.pages_4k, k.stats.kvm_mmu_split_huge_page], [0, 0, 0]);
  t.is(touchRegion(k, physmem, 0, 8 * MiB, false, 1).exits, 2048);
  t.is(touchRegion(k, physmem, 0, 2 * MiB, true, 2).exits, 512);
  t.is(countDirty(k.getDirtyLog(0)), 512);
  k.disableDirtyLog(0);
  t.deepEqual([k.pages_2m, k.pages_4k], [0, 0]);
  t.is(touchRegion(k, physmem, 0, 8 * MiB, false, 0).exits, 4);
  t.is(k.pages_2m, 4);
});

test('6.x eager page split: enabling dirty logging splits each 2 MiB leaf into 512 write-protected 4 KiB leaves; reads take no exit, first writes one each; disabling recovers 2 MiB in place', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel: '6.x', hostDebug: true });
  k.addRamSlot(0, gpa(0), 8 * MiB);
  touchRegion(k, physmem, 0, 8 * MiB, true, 1);
  const tables = k.ept.tableCount;
  const flushes = k.stats.remote_tlb_flush;
  k.enableDirtyLog(0);
  t.deepEqual([k.pages_2m, k.pages_4k, k.stats.kvm_mmu_split_huge_page], [0, 2048, 4]);
  t.is(k.ept.tableCount, tables + 4, 'one page table per split leaf');
  t.is(k.stats.remote_tlb_flush, flushes + 1, 'one flush for the whole enable');
  t.is(k.stats.mmu_zapped_leaves, 0);
  t.is(touchRegion(k, physmem, 0, 8 * MiB, false, 1).exits, 0, 'the split leaves still map every page for reads');
  t.is(touchRegion(k, physmem, 0, 2 * MiB, true, 2).exits, 512);
  t.is(countDirty(k.getDirtyLog(0)), 512);
  t.is(touchRegion(k, physmem, 0, 1 * MiB, true, 3).exits, 256, 'get-and-clear write-protects again');
  k.disableDirtyLog(0);
  t.deepEqual([k.pages_2m, k.pages_4k, k.ept.tableCount], [4, 0, tables]);
  t.is(touchRegion(k, physmem, 0, 8 * MiB, false, 0).exits, 0, 'recovered in place: no refault');
  // The first 1 MiB was written last (round 3), then 1–2 MiB round 2, the rest round 1.
  let bad = 0;
  for (let g = 0; g < 8 * MiB; g += 4096) {
    const want = pattern(g, g < MiB ? 3 : g < 2 * MiB ? 2 : 1);
    if (guestAccess(k, physmem, gpa(g), false) !== want) bad++;
  }
  t.is(bad, 0);
  k.checkInvariants();
});

test('6.x with eager_page_split off zaps large leaves at enable, like 2.6.38', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel: '6.x', eager_page_split: false });
  k.addRamSlot(0, gpa(0), 4 * MiB);
  touchRegion(k, physmem, 0, 4 * MiB, true, 1);
  k.enableDirtyLog(0);
  t.deepEqual([k.pages_2m, k.pages_4k, k.stats.kvm_mmu_split_huge_page], [0, 0, 0]);
  t.is(touchRegion(k, physmem, 0, 4 * MiB, false, 1).exits, 1024);
});

test('6.x nx_huge_pages: large leaves are mapped non-executable; a fetch splits its range to 4 KiB (nx_lpage_splits), data accesses there stay 4 KiB', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel: '6.x', nx_huge_pages: true, hostDebug: true });
  k.addRamSlot(0, gpa(0), 8 * MiB);
  t.is(touchRegion(k, physmem, 0, 8 * MiB, true, 1).exits, 4);
  t.deepEqual([k.pages_2m, k.pages_4k], [4, 0]);
  t.false(k.ept.lookup(gpa(0))!.executable);

  t.is(guestFetch(k, gpa(2 * MiB + 0x1000)), 1);
  t.deepEqual([k.pages_2m, k.pages_4k, k.stats.nx_lpage_splits, k.stats.kvm_mmu_split_huge_page], [3, 512, 1, 1]);
  t.true(k.ept.lookup(gpa(2 * MiB))!.executable, '4 KiB pieces are executable');
  t.is(guestFetch(k, gpa(2 * MiB + 0x5000)), 0, 'the whole range was split, not only the fetched page');
  t.is(touchRegion(k, physmem, 2 * MiB, 2 * MiB, true, 2).exits, 0);

  // A zap of the split range (the host's notifier, e.g. a THP split) frees its page table: no longer counted.
  k.zapGpaRange(gpa(2 * MiB), gpa(4 * MiB));
  t.is(k.stats.nx_lpage_splits, 0);
  // A fetch from a range the EPT does not map at all: mapped 4 KiB, counted, not a split.
  t.is(guestFetch(k, gpa(2 * MiB)), 1);
  t.deepEqual([k.pages_2m, k.pages_4k, k.stats.nx_lpage_splits, k.stats.kvm_mmu_split_huge_page], [3, 1, 1, 1]);
  // disallowed_hugepage_adjust: a data access in that range maps 4 KiB, not a 2 MiB leaf over the table.
  t.is(touchRegion(k, physmem, 2 * MiB, 8 * 4096, false, 2).exits, 7);
  t.deepEqual([k.pages_2m, k.pages_4k], [3, 8]);
  k.checkInvariants();
});

test('6.x NX recovery worker zaps DIV_ROUND_UP(nx_lpage_splits, ratio) split ranges, oldest first; they map 2 MiB again', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel: '6.x', nx_huge_pages: true });
  k.addRamSlot(0, gpa(0), 8 * MiB);
  touchRegion(k, physmem, 0, 8 * MiB, true, 1);
  for (const r of [1, 3, 0]) guestFetch(k, gpa(r * 2 * MiB));
  t.is(k.stats.nx_lpage_splits, 3);
  t.is(k.kvm_recover_nx_huge_pages(), 1, 'ceil(3 / 60) = 1');
  t.is(k.stats.nx_lpage_splits, 2);
  t.is(k.ept.lookup(gpa(2 * MiB)), null, 'the oldest split range (1) was zapped');
  t.is(touchRegion(k, physmem, 2 * MiB, 2 * MiB, false, 1).exits, 1);
  t.is(k.ept.lookup(gpa(2 * MiB))!.level, 2);
  t.is(k.kvm_recover_nx_huge_pages(1), 2, 'ratio 1: every split range');
  t.deepEqual([k.stats.nx_lpage_splits, k.pages_2m, k.pages_4k], [0, 2, 0]);
});

test('6.x without nx_huge_pages: fetches run from 2 MiB leaves', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel: '6.x' });
  k.addRamSlot(0, gpa(0), 4 * MiB);
  touchRegion(k, physmem, 0, 4 * MiB, true, 1);
  t.is(guestFetch(k, gpa(0x3000)), 0);
  t.deepEqual([k.pages_2m, k.stats.nx_lpage_splits], [2, 0]);
});

test('nx_huge_pages with the 2.6.38 KVM is a ConfigError naming kvm.nx_huge_pages', (t) => {
  t.throws(() => setupEpt({ kernel: '2.6.38', nx_huge_pages: true }), { instanceOf: ConfigError, message: /^kvm\.nx_huge_pages: .*6\.x/ });
});

test('a VM on a 6.x host with kvm.nx_huge_pages on splits the 2 MiB range its code runs from: one more EPT violation, nx_lpage_splits 1', async (t) => {
  const { createVm } = await import('../src/api/index.ts');
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(new URL('../build/guests/demand-paging.elf', import.meta.url));
  const rows = [];
  for (const [kernel, nx] of [['2.6.38', 'off'], ['6.x', 'off'], ['6.x', 'on']] as const) {
    const vm = createVm({ memory: 64 << 20, args: [16 << 20], host: { kernel, thp: { enabled: 'always' } }, kvm: { nx_huge_pages: nx } }, { bytes, name: 'demand-paging' });
    const r = vm.run();
    const e = r.memory.ept!;
    rows.push([kernel, nx, r.stopReason, r.counters.exits_ept_violation, e.pages_2m, e.pages_4k, e.nx_lpage_splits, e.kvm_mmu_split_huge_page]);
    vm.close();
  }
  t.deepEqual(rows, [
    ['2.6.38', 'off', 'exit', 9, 9, 0, 0, 0],
    ['6.x', 'off', 'exit', 9, 9, 0, 0, 0],
    ['6.x', 'on', 'exit', 10, 8, 512, 1, 1],
  ]);
  t.throws(() => createVm({ host: { kernel: '2.6.38' }, kvm: { nx_huge_pages: 'on' } }, { bytes, name: 'demand-paging' }), {
    instanceOf: ConfigError,
    message: /^kvm\.nx_huge_pages: on needs host\.kernel 6\.x/,
  });
  t.throws(() => createVm({ ept: false, kvm: { eager_page_split: 'off' } }, { bytes, name: 'demand-paging' }), { instanceOf: ConfigError, message: /^kvm: only with EPT on/ });
});

test('6.x NX recovery worker runs once per 60 s of host time (one hour / nx_huge_pages_recovery_ratio)', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel: '6.x', nx_huge_pages: true });
  k.addRamSlot(0, gpa(0), 8 * MiB);
  touchRegion(k, physmem, 0, 8 * MiB, true, 1);
  for (const r of [0, 1, 2, 3]) guestFetch(k, gpa(r * 2 * MiB));
  t.is(k.nx_huge_page_recovery_worker(59_999), 0);
  t.is(k.stats.nx_lpage_splits, 4);
  t.is(k.nx_huge_page_recovery_worker(60_000), 1);
  t.is(k.stats.nx_lpage_splits, 3);
  t.is(k.nx_huge_page_recovery_worker(180_000), 2, 'two more periods have passed');
  t.is(k.stats.nx_lpage_splits, 1);
});

test('6.x: a large folio the host maps with PTEs after a partial MADV_DONTNEED gets 4 KiB EPT leaves; 2.6.38 split the THP itself', async (t) => {
  const { folio_order } = await import('../src/mm/folio.ts');
  for (const kernel of ['2.6.38', '6.x'] as const) {
    const { k, physmem, mm, host } = setupEpt({ thp: 'always', hostBytes: 64 * MiB, kernel, hostDebug: true });
    const slot = k.addRamSlot(0, gpa(0), 4 * MiB);
    touchRegion(k, physmem, 0, 4 * MiB, true, 1);
    mm.madvise(hva(slot.hva + 0x1000), 0x1000, 'MADV_DONTNEED');
    const l = mm.lookup_address_in_mm(hva(slot.hva + 0x2000))!;
    t.is(l.level, 1, `${kernel}: the host maps the range with PTEs`);
    const v = host.vmstat();
    if (kernel === '6.x') {
      t.is(folio_order(host.pages, pfn(l.pfn - 2)), 9, 'the folio is still 2 MiB');
      t.deepEqual([v.thp_split_pmd, v.thp_deferred_split_page, v.thp_split_page ?? 0], [1, 1, 0]);
    } else t.is(v.thp_split, 1);
    // The notifier zapped the range's 2 MiB leaf; the guest's next pass maps it 4 KiB.
    t.is(touchRegion(k, physmem, 0, 4 * MiB, false, 1).exits, 512);
    t.deepEqual([k.pages_4k, k.pages_2m], [512, 1], kernel);
  }
});

test('6.x with 64 KiB mTHP only: one host fault per 16 pages, but PTE-mapped folios get one 4 KiB EPT leaf (and violation) per page', async (t) => {
  const { createHost } = await import('../src/mm/index.ts');
  const { KvmMmu } = await import('../src/kvm/mmu/kvm-mmu.ts');
  const physmem = new ArrayBuffer(64 * MiB);
  const host = createHost({ memoryBytes: 64 * MiB, physmem, kernel: '6.x', thp: { enabled: 'always', sizes: { '64kB': 'always', '2048kB': 'never' } }, debugChecks: true });
  const mm = host.newProcess();
  const k = new KvmMmu({ host, mm, physmem, debugChecks: true, kernel: '6.x' });
  const slot = k.addRamSlot(0, gpa(0), 4 * MiB);
  t.is(touchRegion(k, physmem, 0, 4 * MiB, true, 1).exits, 1024);
  t.deepEqual([k.pages_4k, k.pages_2m], [1024, 0]);
  t.is(host.vmstat().pgfault, 64);
  t.is(mm.lookup_address_in_mm(hva(slot.hva))!.level, 1);
  k.destroy();
  mm.exit_mmap();
  host.close();
});
