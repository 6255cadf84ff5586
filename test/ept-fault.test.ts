import test from 'ava';
import { eptView, eptLeafCounts } from '../src/kvm/mmu/debug.ts';
import { formatEptDump } from '../src/cli/ept-dump.ts';
import { gpa, hva } from '../src/util/address.ts';
import { MiB, countBadPages, guestAccess, pageCount, setupEpt, touchRegion } from './ept-helpers.ts';

test('a 64 MiB region touched with host THP on takes exactly 32 EPT violations and 32 2 MiB mappings', (t) => {
  const { k, host, physmem } = setupEpt({ thp: 'always' });
  k.addRamSlot(0, gpa(0), 64 * MiB);
  const s = touchRegion(k, physmem, 0, 64 * MiB, true);
  t.is(s.exits, 32);
  t.is(k.stats.ept_violations, 32);
  t.is(k.pages_2m, 32);
  t.is(k.pages_4k, 0);
  t.deepEqual(eptLeafCounts(k, gpa(0), gpa(64 * MiB)), { pages_4k: 0, pages_2m: 32 });
  t.is(host.vmstat().thp_fault_alloc, 32);
  t.is(countBadPages(k, physmem, 0, 64 * MiB), 0);
  k.checkInvariants();
  host.checkInvariants();
});

test('the same region with host THP off takes 16384 EPT violations and 16384 4 KiB mappings', (t) => {
  const { k, host, physmem, invepts } = setupEpt({ thp: 'never' });
  k.addRamSlot(0, gpa(0), 64 * MiB);
  const s = touchRegion(k, physmem, 0, 64 * MiB, true);
  t.is(s.exits, 16384);
  t.is(k.pages_4k, 16384);
  t.is(k.pages_2m, 0);
  t.is(k.stats.pf_fixed, 16384);
  t.is(invepts(), 0, 'filling non-present entries needs no INVEPT');
  t.is(host.vmstat().thp_fault_alloc, 0);
  t.is(countBadPages(k, physmem, 0, 64 * MiB), 0);
  k.checkInvariants();
  host.checkInvariants();
});

test('a memslot whose GPA and HVA are not congruent mod 2 MiB is mapped with 4 KiB leaves over host THPs', (t) => {
  const { k, mm, host, physmem } = setupEpt({ thp: 'always' });
  // HVA 4 KiB past a 2 MiB boundary, GPA 2 MiB aligned: KVM's lpage disallow case.
  const h = mm.mmap(10 * MiB, { alignHuge: true });
  k.setUserMemoryRegion({ slot: 0, gpa: gpa(0), size: 8 * MiB, hva: hva(h + 4096) });
  const s = touchRegion(k, physmem, 0, 8 * MiB, true);
  t.is(s.exits, 2048);
  t.is(k.pages_4k, 2048);
  t.is(k.pages_2m, 0);
  t.is(host.vmstat().thp_fault_alloc, 5, 'the host itself backs the range with huge pages');
  t.is(countBadPages(k, physmem, 0, 8 * MiB), 0);
});

test('a slot edge that cuts a 2 MiB range maps that range with 4 KiB leaves', (t) => {
  const { k, physmem } = setupEpt({ thp: 'always' });
  // 3 MiB slot: [0, 2M) can be one leaf; [2M, 3M) cannot (its 2 MiB range leaves the slot).
  k.addRamSlot(0, gpa(0), 3 * MiB);
  const s = touchRegion(k, physmem, 0, 3 * MiB, true);
  t.is(k.pages_2m, 1);
  t.is(k.pages_4k, 256);
  t.is(s.exits, 257);
});

test('a GPA outside every memslot is reported as MMIO, not crashed on', (t) => {
  const { k } = setupEpt();
  k.addRamSlot(0, gpa(0), 4 * MiB);
  const r = k.handleEptViolation(gpa(0xfee0_0000), 1);
  t.deepEqual(r, { kind: 'mmio', gpa: 0xfee0_0000 });
  t.is(k.stats.mmio_exits, 1);
  t.is(k.pages_4k + k.pages_2m, 0);
});

test('a read fault maps the zero page read-only; the first write goes through the host COW and retries once', (t) => {
  const { k, host, physmem, invepts } = setupEpt({ thp: 'never' });
  k.addRamSlot(0, gpa(0), 2 * MiB);
  const s = { exits: 0, retries: 0 };
  t.is(guestAccess(k, physmem, gpa(0x1000), false, 0, s), 0);
  const ro = k.ept.lookup(gpa(0x1000))!;
  t.false(ro.writable);
  t.is(ro.pfn, host.zero_pfn, 'the host zero page, never writable through the EPT');
  guestAccess(k, physmem, gpa(0x1000), true, 0xabcd, s);
  // read exit; write exit whose gup COW-breaks (an invalidation → mmu_notifier_retry); write exit.
  t.deepEqual(s, { exits: 3, retries: 1 });
  // The COW break zapped the read-only leaf (one INVEPT); installing the new one filled an
  // empty entry (none).
  t.is(invepts(), 1);
  const rw = k.ept.lookup(gpa(0x1000))!;
  t.true(rw.writable);
  t.not(rw.pfn, host.zero_pfn);
  t.is(pageCount(host, rw.pfn), 1, 'only the host PTE holds the page: the gup pin was dropped');
  t.is(new DataView(physmem).getUint32(host.zero_pfn * 4096 + 0, true), 0, 'the zero page stayed zero');
  k.checkInvariants();
});

test('after fork the EPT cannot write the now COW-shared pages until the host breaks COW', (t) => {
  const { k, host, mm, physmem } = setupEpt({ thp: 'always' });
  k.addRamSlot(0, gpa(0), 4 * MiB);
  touchRegion(k, physmem, 0, 4 * MiB, true, 1);
  const before = k.ept.lookup(gpa(0))!;
  const child = mm.fork();
  t.is(k.pages_2m, 0, 'fork write-protected the parent: the notifier zapped the EPT');
  t.is(countBadPages(k, physmem, 0, 4 * MiB, 1), 0, 'reads see the same data');
  t.false(k.ept.lookup(gpa(0))!.writable);
  touchRegion(k, physmem, 0, 4096, true, 2);
  const after = k.ept.lookup(gpa(0))!;
  t.true(after.writable);
  t.not(after.pfn, before.pfn, 'the write went to the parent\'s private copy');
  t.is(new DataView(physmem).getUint32(before.pfn * 4096, true) >>> 0, (Math.imul(1, 2654435761) ^ 1) >>> 0, 'the child still sees the old data');
  k.checkInvariants();
  child.exit_mmap();
  host.checkInvariants();
});

test('an EPT violation on memory the VMM unmapped is an efault result (KVM_RUN -EFAULT), not an exception', (t) => {
  const { k, mm } = setupEpt();
  const s = k.addRamSlot(0, gpa(0), 4 * MiB);
  mm.munmap(s.hva, 4 * MiB);
  const r = k.handleEptViolation(gpa(0x2000), 0);
  t.is(r.kind, 'efault');
  t.regex(r.kind === 'efault' ? r.message : '', /^EPT violation at GPA 0x2000: memslot 0 HVA 0x[0-9a-f]+ cannot be faulted in \(SIGSEGV/);
});

test('the ept-dump view shows EPT leaves beside the host mapping', (t) => {
  const { k, physmem } = setupEpt();
  k.addRamSlot(0, gpa(0), 4 * MiB);
  touchRegion(k, physmem, 0, 4096, true);
  const out = formatEptDump(eptView(k, gpa(0), gpa(4 * MiB)));
  const lines = out.split('\n');
  t.is(lines.length, 3);
  t.regex(lines[0]!, /0 4K \+ 1 2M leaves mapped/);
  t.regex(lines[2]!, /^0x0 +2M +rwx +\d+ +\| 0x[0-9a-f]+ +\d+ +huge\(head \d+\) rw$/);
});
