import test from 'ava';
import { eptLeafCounts } from '../src/kvm/mmu/debug.ts';
import { gpa, HPAGE_PMD_SIZE, type Hva } from '../src/util/address.ts';
import { KvmMmu } from '../src/kvm/mmu/kvm-mmu.ts';
import { createHost } from '../src/mm/index.ts';
import { MiB, countBadPages, guestAccess, pageCount, setupEpt, touchRegion } from './ept-helpers.ts';

function setup() {
  const s = setupEpt({ thp: 'always' });
  s.k.addRamSlot(0, gpa(0), 16 * MiB);
  return s;
}

test('splitting a host huge page under the guest turns its 2 MiB EPT leaf into 4 KiB leaves on the next accesses, data intact', (t) => {
  const { host, k, physmem, invepts } = setup();
  touchRegion(k, physmem, 0, 16 * MiB, true, 1);
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
  const s = touchRegion(k, physmem, 4 * MiB, HPAGE_PMD_SIZE, false, 1);
  t.is(s.exits, 512);
  t.deepEqual(eptLeafCounts(k, gpa(4 * MiB), gpa(6 * MiB)), { pages_4k: 512, pages_2m: 0 });
  t.is(k.ept.lookup(gpa(4 * MiB))!.pfn, leaf.pfn, 'a split keeps the frames');
  t.is(countBadPages(k, physmem, 0, 16 * MiB, 1), 0);
  k.checkInvariants();
  host.checkInvariants();
});

test('after khugepaged collapses a split range the next guest access maps it 2 MiB again, data intact', (t) => {
  const { host, k, physmem } = setup();
  touchRegion(k, physmem, 0, 16 * MiB, true, 2);
  const old = k.ept.lookup(gpa(2 * MiB))!;
  host.split_huge_page(old.pfn);
  touchRegion(k, physmem, 2 * MiB, HPAGE_PMD_SIZE, false, 2);
  t.is(k.pages_4k, 512);
  host.khugepaged_scan();
  t.is(host.khugepagedStats().pages_collapsed, 1);
  t.is(k.pages_4k, 0, 'the collapse zapped the 512 small leaves');
  t.is(k.stats.mmu_shadow_zapped, 1, 'and freed their EPT page table');
  k.checkInvariants();
  const s = touchRegion(k, physmem, 2 * MiB, HPAGE_PMD_SIZE, false, 2);
  t.is(s.exits, 1);
  const now = k.ept.lookup(gpa(2 * MiB))!;
  t.is(now.level, 2);
  t.not(now.pfn, old.pfn, 'collapse copied into a new huge page');
  t.is(k.pages_2m, 8);
  t.is(countBadPages(k, physmem, 0, 16 * MiB, 2), 0);
  k.checkInvariants();
  host.checkInvariants();
});

test('an invalidation racing the fault makes it drop the page and retry', (t) => {
  const { host, mm, k, physmem } = setup();
  touchRegion(k, physmem, 0, 4 * MiB, true, 3);
  const leaf = k.ept.lookup(gpa(0))!;
  host.split_huge_page(leaf.pfn);
  // The next fault's gup races a split of the other huge page (mmu_notifier_seq moves).
  const other = k.ept.lookup(gpa(2 * MiB))!;
  const gup = mm.get_user_pages.bind(mm);
  mm.get_user_pages = (a: Hva, n: number, w: boolean) => {
    const r = gup(a, n, w);
    mm.get_user_pages = gup;
    host.split_huge_page(other.pfn);
    return r;
  };
  const stats = { exits: 0, retries: 0 };
  guestAccess(k, physmem, gpa(0x3000), false, 0, stats);
  t.is(stats.exits, 2);
  t.is(stats.retries, 1);
  t.is(k.stats.mmu_notifier_retry, 1);
  t.is(pageCount(host, leaf.pfn + 3), 1, 'the retried fault dropped its gup pin');
  t.is(k.pages_4k, 1);
  t.is(k.pages_2m, 0);
  t.is(countBadPages(k, physmem, 0, 4 * MiB, 3), 0);
  k.checkInvariants();
  host.checkInvariants();
});

test('a fault while an invalidation is in progress (mmu_notifier_count > 0) retries', (t) => {
  const { host, k, physmem } = setup();
  k.mmu_notifier_count++;
  t.deepEqual(k.handleEptViolation(gpa(0), 1), { kind: 'retry' });
  k.mmu_notifier_count--;
  t.deepEqual(k.handleEptViolation(gpa(0), 1), { kind: 'fixed', level: 2 });
  t.is(k.stats.mmu_notifier_retry, 1);
  t.is(pageCount(host, k.ept.lookup(gpa(0))!.pfn), 1, 'head: only the huge PMD mapping');
});

test('deleting a memslot zaps its EPT leaves and its GPAs become MMIO', (t) => {
  const { host, mm, k, physmem } = setup();
  touchRegion(k, physmem, 0, 16 * MiB, true);
  t.is(k.ept.tableCount, 3, 'PML4, PDPT, PD');
  k.deleteMemslot(0);
  t.is(k.pages_2m, 0);
  t.is(k.ept.tableCount, 1, 'the emptied PD and PDPT were freed');
  t.is(k.handleEptViolation(gpa(0), 0).kind, 'mmio');
  k.destroy();
  t.is(k.ept.tableCount, 0);
  mm.exit_mmap();
  host.checkInvariants();
  t.is(host.meminfo().MemFree, host.meminfo().MemTotal! - 4, 'every frame but the host zero page is free: guest RAM and every EPT table went back');
});

test('host swap-out under the guest zaps the EPT and swap-in on the next access brings the same data back', (t) => {
  const bytes = 64 * MiB;
  const physmem = new ArrayBuffer(bytes);
  const host = createHost({ memoryBytes: bytes, physmem, thp: { enabled: 'always' }, swap: { bytes: 32 * MiB } });
  t.teardown(() => host.close());
  const mm = host.newProcess();
  const k = new KvmMmu({ host, mm, physmem, debugChecks: true });
  k.addRamSlot(0, gpa(0), 16 * MiB);
  touchRegion(k, physmem, 0, 16 * MiB, true, 4);
  t.is(k.pages_2m, 8);
  const freed = host.reclaim(2048);
  t.is(freed, 2048);
  const v = host.vmstat();
  t.is(v.pswpout, 2048, '8 MiB swapped out, 4 KiB at a time');
  t.is(v.thp_split, 4, 'reclaim split each THP before swapping its pages');
  // One invalidation per split and one per page swapped out. The clock's page_referenced
  // asked the EPT for accessed bits first (clear_flush_young): with no EPT A bits KVM zaps
  // the mapping and says "young", so all 8 leaves went on the first turn, all 8 THPs got a
  // second chance, and the second turn swapped 4 of them.
  t.is(k.stats.mmu_notifier_invalidate, 4 + 2048);
  t.is(k.stats.mmu_notifier_age_zapped, 8);
  t.is(k.stats.mmu_zapped_leaves, 8);
  t.is(k.pages_2m + k.pages_4k, 0);
  k.checkInvariants();
  // Every page reads back its pattern through the EPT (swapped pages fault in again).
  t.is(countBadPages(k, physmem, 0, 16 * MiB, 4), 0);
  t.is(host.vmstat().pswpin, 2048, 'each swapped-out page came back once (a major fault via gup)');
  t.is(k.pages_4k, 2048, 'swapped-in pages come back as 4 KiB pages and leaves');
  t.is(k.pages_2m, 4, 'the THPs that stayed are mapped 2 MiB again');
  t.is(k.stats.ept_violations, 8 + 4 + 2048);
  k.checkInvariants();
  host.checkInvariants();
});
