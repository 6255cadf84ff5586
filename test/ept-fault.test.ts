import test from 'ava';
import { KvmMmu } from '../src/kvm/ept-mmu.ts';
import { eptDump, eptLeafCounts } from '../src/kvm/ept-debug.ts';
import { gpa, hva } from '../src/util/address.ts';
import { FakeHost } from './ept-fake-host.ts';
import { MiB, countBadPages, touchRegion } from './ept-helpers.ts';

function setup(thp: 'always' | 'never', hostBytes = 192 * MiB) {
  const host = new FakeHost(hostBytes);
  host.setKnob('enabled', thp);
  const mm = host.newProcess();
  let invepts = 0;
  const k = new KvmMmu({ host, mm, physmem: host.physmem, debugChecks: true });
  k.attachVcpu({ invept: () => invepts++ });
  return { host, mm, k, invepts: () => invepts };
}

test('a 64 MiB region touched with host THP on takes exactly 32 EPT violations and 32 2 MiB mappings', (t) => {
  const { k, host } = setup('always');
  k.addRamSlot(0, gpa(0), 64 * MiB);
  const s = touchRegion(k, host.physmem, 0, 64 * MiB, true);
  t.is(s.exits, 32);
  t.is(k.stats.ept_violations, 32);
  t.is(k.pages_2m, 32);
  t.is(k.pages_4k, 0);
  t.deepEqual(eptLeafCounts(k, gpa(0), gpa(64 * MiB)), { pages_4k: 0, pages_2m: 32 });
  t.is(host.vmstat().thp_fault_alloc, 32);
  t.is(countBadPages(k, host.physmem, 0, 64 * MiB), 0);
  k.checkInvariants();
});

test('the same region with host THP off takes 16384 EPT violations and 16384 4 KiB mappings', (t) => {
  const { k, host, invepts } = setup('never');
  k.addRamSlot(0, gpa(0), 64 * MiB);
  const s = touchRegion(k, host.physmem, 0, 64 * MiB, true);
  t.is(s.exits, 16384);
  t.is(k.pages_4k, 16384);
  t.is(k.pages_2m, 0);
  t.is(k.stats.pf_fixed, 16384);
  t.is(invepts(), 16384, 'every installed leaf is followed by INVEPT');
  t.is(countBadPages(k, host.physmem, 0, 64 * MiB), 0);
  k.checkInvariants();
});

test('a memslot whose GPA and HVA are not congruent mod 2 MiB is mapped with 4 KiB leaves over host THPs', (t) => {
  const { k, host, mm } = setup('always');
  // HVA 4 KiB past a 2 MiB boundary, GPA 2 MiB aligned: KVM's lpage disallow case.
  const h = mm.mmap(8 * MiB + 4096, { alignHuge: true });
  k.setUserMemoryRegion({ slot: 0, gpa: gpa(0), size: 8 * MiB, hva: hva(h + 4096) });
  const s = touchRegion(k, host.physmem, 0, 8 * MiB, true);
  t.is(s.exits, 2048);
  t.is(k.pages_4k, 2048);
  t.is(k.pages_2m, 0);
  t.true(host.vmstat().thp_fault_alloc! >= 3, 'the host itself did use huge pages');
  t.is(countBadPages(k, host.physmem, 0, 8 * MiB), 0);
});

test('a slot edge that cuts a 2 MiB range maps that range with 4 KiB leaves', (t) => {
  const { k, host } = setup('always');
  // 3 MiB slot: [0, 2M) can be one leaf, [2M, 3M) cannot (the 2 MiB range leaves the slot).
  k.addRamSlot(0, gpa(0), 3 * MiB);
  const s = touchRegion(k, host.physmem, 0, 3 * MiB, true);
  t.is(k.pages_2m, 1);
  t.is(k.pages_4k, 256);
  t.is(s.exits, 257);
});

test('a GPA outside every memslot is reported as MMIO, not crashed on', (t) => {
  const { k } = setup('always');
  k.addRamSlot(0, gpa(0), 4 * MiB);
  const r = k.handleEptViolation(gpa(0xfee0_0000), 1);
  t.deepEqual(r, { kind: 'mmio', gpa: 0xfee0_0000 });
  t.is(k.stats.mmio_exits, 1);
  t.is(k.pages_4k + k.pages_2m, 0);
});

test('a read fault on host memory mapped read-only gives a read-only EPT leaf and the write faults again', (t) => {
  const { k, host, mm } = setup('never');
  k.addRamSlot(0, gpa(0), 2 * MiB);
  // Make the host PTE read-only the way COW after fork would: fake it via follow_page.
  const orig = mm.follow_page.bind(mm);
  let ro = true;
  mm.follow_page = (a) => {
    const m = orig(a);
    return m && ro ? { ...m, writable: false } : m;
  };
  t.deepEqual(k.handleEptViolation(gpa(0x1000), 0), { kind: 'fixed', level: 1 });
  t.false(k.ept.lookup(gpa(0x1000))!.writable);
  ro = false;
  t.deepEqual(k.handleEptViolation(gpa(0x1000), 1), { kind: 'fixed', level: 1 });
  t.true(k.ept.lookup(gpa(0x1000))!.writable);
  t.is(k.pages_4k, 1);
  t.is(host.refcount[k.ept.lookup(gpa(0x1000))!.pfn], 1, 'the gup pin was dropped after install');
});

test('eptDump shows EPT leaves beside the host mapping', (t) => {
  const { k, host } = setup('always');
  k.addRamSlot(0, gpa(0), 4 * MiB);
  touchRegion(k, host.physmem, 0, 4096, true);
  const out = eptDump(k, 0, 4 * MiB);
  const lines = out.split('\n');
  t.is(lines.length, 3);
  t.regex(lines[0]!, /0 4K \+ 1 2M leaves mapped/);
  t.regex(lines[2]!, /^0x0 +2M +rwx +\d+ +\| 0x[0-9a-f]+ +\d+ +huge\(head \d+\) rw$/);
});
