import test from 'ava';
import { KvmMmu } from '../src/kvm/ept-mmu.ts';
import { eptLeafCounts } from '../src/kvm/ept-debug.ts';
import { gpa, HPAGE_PMD_SIZE } from '../src/util/address.ts';
import { FakeHost, type FakeMm } from './ept-fake-host.ts';
import { MiB, countBadPages, guestAccess, touchRegion } from './ept-helpers.ts';

function setup() {
  const host = new FakeHost(128 * MiB);
  const mm = host.newProcess() as FakeMm;
  let invepts = 0;
  const k = new KvmMmu({ host, mm, physmem: host.physmem, debugChecks: true });
  k.attachVcpu({ invept: () => invepts++ });
  k.addRamSlot(0, gpa(0), 16 * MiB);
  return { host, mm, k, invepts: () => invepts };
}

test('splitting a host huge page under the guest turns its 2 MiB EPT leaf into 4 KiB leaves on the next accesses, data intact', (t) => {
  const { host, k, invepts } = setup();
  touchRegion(k, host.physmem, 0, 16 * MiB, true, 1);
  t.is(k.pages_2m, 8);
  const leaf = k.ept.lookup(gpa(4 * MiB))!;
  const before = invepts();
  host.split_huge_page(leaf.pfn);
  t.is(k.stats.mmu_notifier_invalidate, 1);
  t.is(k.stats.mmu_zapped_leaves, 1);
  t.is(k.pages_2m, 7);
  t.is(invepts(), before + 1, 'the zap flushed the TLBs');
  t.is(k.ept.lookup(gpa(4 * MiB)), null);
  k.checkInvariants();
  // The guest reads the split range again: 512 exits, 512 4 KiB leaves, same frames.
  const s = touchRegion(k, host.physmem, 4 * MiB, HPAGE_PMD_SIZE, false, 1);
  t.is(s.exits, 512);
  t.deepEqual(eptLeafCounts(k, gpa(4 * MiB), gpa(6 * MiB)), { pages_4k: 512, pages_2m: 0 });
  t.is(k.ept.lookup(gpa(4 * MiB))!.pfn, leaf.pfn, 'a split keeps the frames');
  t.is(countBadPages(k, host.physmem, 0, 16 * MiB, 1), 0);
  k.checkInvariants();
});

test('after khugepaged collapses a split range the next guest access maps it 2 MiB again, data intact', (t) => {
  const { host, k } = setup();
  touchRegion(k, host.physmem, 0, 16 * MiB, true, 2);
  const old = k.ept.lookup(gpa(2 * MiB))!;
  host.split_huge_page(old.pfn);
  touchRegion(k, host.physmem, 2 * MiB, HPAGE_PMD_SIZE, false, 2);
  t.is(k.pages_4k, 512);
  host.khugepaged_scan();
  t.is(host.vmstat().thp_collapse_alloc, 1);
  t.is(k.pages_4k, 0, 'the collapse zapped the 512 small leaves');
  t.is(k.stats.mmu_shadow_zapped, 1, 'and freed their EPT page table');
  k.checkInvariants();
  const s = touchRegion(k, host.physmem, 2 * MiB, HPAGE_PMD_SIZE, false, 2);
  t.is(s.exits, 1);
  const now = k.ept.lookup(gpa(2 * MiB))!;
  t.is(now.level, 2);
  t.not(now.pfn, old.pfn, 'collapse copied into a new huge page');
  t.is(k.pages_2m, 8);
  t.is(countBadPages(k, host.physmem, 0, 16 * MiB, 2), 0);
  k.checkInvariants();
});

test('an invalidation racing the fault makes it drop the page and retry', (t) => {
  const { host, mm, k } = setup();
  touchRegion(k, host.physmem, 0, 4 * MiB, true, 3);
  const leaf = k.ept.lookup(gpa(0))!;
  host.split_huge_page(leaf.pfn);
  // The next fault's gup races a split of the other huge page (mmu_notifier_seq moves).
  const other = k.ept.lookup(gpa(2 * MiB))!;
  mm.duringGup = () => host.split_huge_page(other.pfn);
  const stats = { exits: 0, retries: 0 };
  guestAccess(k, host.physmem, gpa(0x3000), false, 0, stats);
  t.is(stats.exits, 2);
  t.is(stats.retries, 1);
  t.is(k.stats.mmu_notifier_retry, 1);
  t.is(host.refcount[leaf.pfn + 3], 1, 'the retried fault dropped its gup pin');
  t.is(k.pages_4k, 1);
  t.is(k.pages_2m, 0);
  t.is(countBadPages(k, host.physmem, 0, 4 * MiB, 3), 0);
  k.checkInvariants();
});

test('a fault while an invalidation is in progress (mmu_notifier_count > 0) retries', (t) => {
  const { host, k } = setup();
  k.mmu_notifier_count++;
  t.deepEqual(k.handleEptViolation(gpa(0), 1), { kind: 'retry' });
  k.mmu_notifier_count--;
  t.deepEqual(k.handleEptViolation(gpa(0), 1), { kind: 'fixed', level: 2 });
  t.is(k.stats.mmu_notifier_retry, 1);
  t.is(host.refcount[k.ept.lookup(gpa(0))!.pfn], 1);
});

test('deleting a memslot zaps its EPT leaves and its GPAs become MMIO', (t) => {
  const { host, k } = setup();
  touchRegion(k, host.physmem, 0, 16 * MiB, true);
  t.is(k.ept.tableCount, 3, 'PML4, PDPT, PD');
  k.deleteMemslot(0);
  t.is(k.pages_2m, 0);
  t.is(k.ept.tableCount, 1, 'the emptied PD and PDPT were freed');
  t.is(k.handleEptViolation(gpa(0), 0).kind, 'mmio');
  k.destroy();
  t.is(k.ept.tableCount, 0);
});
