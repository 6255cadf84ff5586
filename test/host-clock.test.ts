// The host clock follows the guest (src/kvm/host-clock.ts): khugepaged runs during a run on
// the guest's simulated time, so a THP split under a running guest is collapsed by the next
// due pass and the following EPT violation maps 2 MiB again; exact, deterministic counts.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createVm } from '../src/kvm/vm.ts';
import type { EptMemoryBackend } from '../src/kvm/mmu/ept-memory.ts';
import { ConfigError } from '../src/util/errors.ts';
import { gpa } from '../src/util/address.ts';
import type { HostOptions } from '../src/api/types.ts';

const MiB = 1024 * 1024;
const memScan = { bytes: new Uint8Array(readFileSync('build/guests/mem-scan.elf')), name: 'mem-scan' };
const victim = gpa(8 * MiB);

/**
 * mem-scan over 16 MiB, 3 passes, 64 MiB guest: after the fill (ROI begin) the THP behind
 * GPA 8 MiB is split on the host (the notifier zaps its 2 MiB EPT leaf); the rest runs with
 * khugepaged passes every `sleep` simulated ms.
 */
function splitUnderGuest(host: HostOptions) {
  const vm = createVm({ memory: 64 * MiB, args: [16 * MiB, 3], host }, memScan);
  const b = vm.backend as EptMemoryBackend;
  const k = b.kvmMmu;
  let atSplit = 0;
  const roiBegin = vm.roiBegin.bind(vm);
  vm.roiBegin = () => {
    roiBegin();
    b.host.split_huge_page(k.ept.lookup(victim)!.pfn);
    atSplit = k.stats.ept_violations;
  };
  const r = vm.run()!;
  return { r, k, b, afterSplit: k.stats.ept_violations - atSplit };
}

test('khugepaged collapses a split THP during the run when the host clock follows the guest; the next violation maps 2 MiB', (t) => {
  const { r, k, b, afterSplit } = splitUnderGuest({ thp: { khugepaged: { scan_sleep_millisecs: 2 } } });
  t.is(r.exitStatus, 0);
  t.regex(r.console, /checksum 0x000005ffffd00000/);
  // The scan refaulted the split range 4 KiB by 4 KiB (512 violations) before khugepaged's
  // next pass collapsed it (zapping those 512 leaves); one more violation mapped it 2 MiB.
  t.is(afterSplit, 512 + 1);
  t.like(r.memory.host, { thp_split: 1, thp_collapse_alloc: 1, pages_collapsed: 1, full_scans: 2, thp_fault_alloc: 9, nr_anon_transparent_hugepages: 9 });
  t.like(r.memory.ept, { ept_violations: 9 + 512 + 1, pages_4k: 0, pages_2m: 9, mmu_notifier_invalidate: 2, mmu_zapped_leaves: 1 + 512 });
  t.is(k.ept.lookup(victim)!.level, 2);
  t.like(r.memory.clock, { follows_guest: true, host_ms: r.simulated.seconds * 1000 });
  // The collapse's copy is host work in simulated time.
  t.is(r.simulated.events.kib_copied, 2048);
  k.checkInvariants();
  b.host.checkInvariants();

  // Deterministic: the same guest and config give the same counts.
  const again = splitUnderGuest({ thp: { khugepaged: { scan_sleep_millisecs: 2 } } });
  t.deepEqual(again.r.memory, r.memory);
  t.deepEqual(again.r.counters, r.counters);
});

test('with the host clock stopped the split range stays 4 KiB for the rest of the run', (t) => {
  const { r, afterSplit } = splitUnderGuest({ clock: false, thp: { khugepaged: { scan_sleep_millisecs: 2 } } });
  t.regex(r.console, /checksum 0x000005ffffd00000/);
  t.is(afterSplit, 512);
  t.like(r.memory.host, { thp_split: 1, thp_collapse_alloc: 0, pages_collapsed: 0, full_scans: 0 });
  t.like(r.memory.ept, { pages_4k: 512, pages_2m: 8 });
  t.deepEqual(r.memory.clock, { follows_guest: false, host_ms: 0, syncs: 0 });
});

test('with the 2.6.38 default scan_sleep_millisecs (10 s) no pass falls due in a 22 ms run after the first', (t) => {
  const { r, afterSplit } = splitUnderGuest({});
  t.is(afterSplit, 512);
  // The first pass ran when madvise(MADV_HUGEPAGE) woke khugepaged at boot: 4096 pages of
  // progress, a quarter of the 64 MiB guest's 32 PMDs, so no full scan.
  t.like(r.memory.host, { pages_collapsed: 0, full_scans: 0 });
  t.true(r.memory.clock!.host_ms < 10_000);
});

test('host clock and khugepaged options are validated, naming the field', (t) => {
  const boot = (host: unknown) => () => createVm({ memory: 4 * MiB, host: host as HostOptions }, memScan);
  t.throws(boot({ clock: 'yes' }), { instanceOf: ConfigError, message: 'host.clock: expected a boolean, got "yes"' });
  t.throws(boot({ thp: { khugepaged: { pages_to_scan: 0 } } }), { instanceOf: ConfigError, message: 'host.thp.khugepaged.pages_to_scan: expected an integer from 1 to 4294967295, got 0' });
  t.throws(boot({ thp: { khugepaged: { max_ptes_none: 600 } } }), { instanceOf: ConfigError, message: 'host.thp.khugepaged.max_ptes_none: expected an integer from 0 to 511, got 600' });
  t.throws(boot({ thp: { khugepaged: { scan_sleep: 1 } } }), { instanceOf: ConfigError, message: /^host.thp.khugepaged: unknown key "scan_sleep" \(known: defrag, pages_to_scan, / });
  t.throws(boot({ thp: { khugepaged: { defrag: 'yes' } } }), { instanceOf: ConfigError, message: 'host.thp.khugepaged.defrag: expected true|false (sysfs: yes|no), got "yes"' });
  t.throws(() => createVm({ ept: false, memory: 4 * MiB, host: { clock: false } }, memScan), { instanceOf: ConfigError, message: 'host: only with EPT on (ept: true; --ept on): the host THP model backs guest RAM only in EPT mode' });
  const vm = createVm({ memory: 4 * MiB, host: { thp: { khugepaged: { pages_to_scan: 8, max_ptes_none: 0, defrag: false } } } }, memScan);
  t.like((vm.backend as EptMemoryBackend).host.knobs.khugepaged, { pages_to_scan: 8, max_ptes_none: 0, defrag: false, scan_sleep_millisecs: 10000 });
});

test('the wall-clock limit interrupts the host catching up with a guest whose simulated time explodes', (t) => {
  // 10^12 cycles per instruction at 1 kHz: every instruction is 10^9 simulated seconds, and
  // khugepaged owes a pass per scan_sleep_millisecs of it. The catch-up stops between passes
  // once the deadline passed (the passes still due would run at the next advance).
  const vm = createVm({ memory: 4 * MiB, costs: { clock_hz: 1e3, instruction: 1e12 }, timeoutMs: 50 }, memScan);
  const r = vm.run()!;
  t.is(r.stopReason, 'timeout');
  t.true(r.memory.clock!.host_ms > 1e12, 'the host clock followed the guest');
  vm.close();
});
