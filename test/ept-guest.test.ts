// The EPT layer under real guests on the native vCPU (EPT mode of the Vm): exact EPT
// violation counts for demand paging with host THP on and off, a host huge page split and
// collapsed under a running guest, and dirty logging during a guest's region of interest.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createVm, type Vm } from '../src/kvm/vm.ts';
import type { EptMemoryBackend } from '../src/kvm/mmu/ept-memory.ts';
import { countDirty } from '../src/kvm/mmu/dirty-log.ts';
import { formatEptDump } from '../src/cli/ept-dump.ts';
import { ConfigError } from '../src/util/errors.ts';
import { gpa, HPAGE_PMD_SIZE, PAGE_SIZE } from '../src/util/address.ts';
import type { VmConfig } from '../src/api/types.ts';

const MiB = 1024 * 1024;
const guest = (name: string) => ({ bytes: new Uint8Array(readFileSync(`build/guests/${name}.elf`)), name });
const backendOf = (vm: Vm) => vm.backend as EptMemoryBackend;

function boot(name: string, config: VmConfig): Vm {
  return createVm({ memory: 64 * MiB, ept: true, ...config }, guest(name));
}

test('demand paging a 64 MiB region: one EPT violation per 2 MiB with host THP, one per 4 KiB without, same pages', (t) => {
  const run = (thp: 'always' | 'never') => {
    const vm = boot('demand-paging', { memory: 128 * MiB, args: [64 * MiB], host: { thp: { enabled: thp } } });
    const r = vm.run()!;
    t.is(r.exitStatus, 0);
    t.regex(r.console, /page faults handled: 16384\npattern verified: 1048576 words\n/);
    const k = backendOf(vm).kvmMmu;
    k.checkInvariants();
    backendOf(vm).host.checkInvariants();
    return { r, k, leaves: k.ept.leaves(gpa(0), gpa(128 * MiB)) };
  };
  const small = run('never');
  const huge = run('always');
  // Without THP every guest page touched (the region's 16384, its page tables, the kernel,
  // stack and boot tables) costs exactly one violation and one 4 KiB leaf.
  t.is(small.k.pages_2m, 0);
  t.is(small.k.pages_4k, small.r.memory.ept!.ept_violations);
  t.is(small.r.exits.ept_violation, small.k.pages_4k);
  t.true(small.k.pages_4k >= 16384 + 32);
  // With THP exactly one per 2 MiB range those pages fall in: the same ranges, 2 MiB leaves.
  const ranges = [...new Set(small.leaves.map((l) => Math.floor(l.gpa / HPAGE_PMD_SIZE)))];
  t.is(huge.k.pages_4k, 0);
  t.is(huge.r.exits.ept_violation, ranges.length);
  t.deepEqual(huge.leaves.map((l) => l.gpa / HPAGE_PMD_SIZE), ranges);
  t.true(huge.leaves.every((l) => l.level === 2));
  t.is(huge.r.memory.host!.thp_fault_alloc, ranges.length);
  t.is(small.r.memory.host!.thp_fault_alloc, 0);
  // The 2D walks are cheaper over 2 MiB EPT leaves.
  t.true(huge.r.memory.tlb.refs_per_walk < small.r.memory.tlb.refs_per_walk);
});

test('a host huge page split under a running guest is remapped 4 KiB, then 2 MiB again after khugepaged, checksum intact', (t) => {
  const args = [16 * MiB, 3];
  const base = boot('mem-scan', { args }).run()!;
  const baseViolations = base.exits.ept_violation!;

  // Debug checks: every host invariant after each host operation, the EPT invariant after
  // each EPT install.
  const vm = boot('mem-scan', { args, host: { debugChecks: true } });
  const b = backendOf(vm);
  t.true(b.kvmMmu.debugChecks);
  const k = b.kvmMmu;
  const victim = gpa(8 * MiB);
  let splitDone = false;
  let smallFaults = 0;
  let collapsed = false;
  // After the region is filled (ROI begin), split the THP behind GPA 8 MiB.
  const roiBegin = vm.roiBegin.bind(vm);
  vm.roiBegin = () => {
    roiBegin();
    const leaf = k.ept.lookup(victim)!;
    t.is(leaf.level, 2);
    b.host.split_huge_page(leaf.pfn);
    t.is(k.ept.lookup(victim), null, 'the notifier zapped the 2 MiB leaf');
    splitDone = true;
  };
  // The first scan pass faults the split range back 4 KiB by 4 KiB; once all 512 are
  // mapped, khugepaged collapses the range and the next pass maps it 2 MiB again.
  const handle = k.handleEptViolation.bind(k);
  k.handleEptViolation = (g, access) => {
    const r = handle(g, access);
    if (splitDone && !collapsed && g >= victim && g < victim + HPAGE_PMD_SIZE) {
      t.deepEqual(r, { kind: 'fixed', level: 1 });
      if (++smallFaults === 512) {
        for (let i = 0; i < 64 && b.host.khugepagedStats().pages_collapsed === 0; i++) b.host.khugepaged_scan();
        t.is(b.host.khugepagedStats().pages_collapsed, 1);
        t.is(k.ept.lookup(victim), null, 'the collapse zapped the 4 KiB leaves');
        collapsed = true;
      }
    }
    return r;
  };
  const r = vm.run()!;
  t.is(r.console, base.console, 'same checksum as the undisturbed run');
  t.is(smallFaults, 512);
  t.is(r.exits.ept_violation, baseViolations + 512 + 1);
  t.is(k.ept.lookup(victim)!.level, 2);
  t.is(k.pages_4k, 0);
  t.is(k.pages_2m, base.memory.ept!.pages_2m);
  t.is(r.memory.host!.thp_split, 1);
  t.is(r.memory.ept!.mmu_notifier_invalidate, 2, 'one for the split, one for the collapse');
  const dump = formatEptDump(vm.eptView(victim, victim + HPAGE_PMD_SIZE)).split('\n');
  t.is(dump.length, 3);
  t.regex(dump[2]!, /^0x800000 +2M +rwx +\d+ +\| 0x[0-9a-f]+ +\d+ +huge\(head \d+\) rw$/);
  k.checkInvariants();
  b.host.checkInvariants();
});

/** The distinct 4 KiB pages (relative to the region) gups updates: its LCG, in BigInt. */
function gupsPages(regionBytes: number, updates: number, seed = 1n): Set<number> {
  const A = 6364136223846793005n;
  const C = 1442695040888963407n;
  const mask = BigInt(regionBytes / 8 - 1);
  const pages = new Set<number>();
  let x = seed;
  for (let i = 0; i < updates; i++) {
    x = (x * A + C) & ((1n << 64n) - 1n);
    pages.add(Number(((x >> 24n) & mask) * 8n) >> 12);
  }
  return pages;
}

test('dirty logging during a guest ROI records exactly the pages it writes and splits, then restores 2 MiB mappings', (t) => {
  const region = 4 * MiB;
  const updates = 3000;
  const args = [region, updates];
  const base = boot('gups', { args }).run()!;

  const vm = boot('gups', { args });
  const b = backendOf(vm);
  const k = b.kvmMmu;
  let log: Uint8Array | null = null;
  let violationsAtBegin = 0;
  let fourKAtEnd = -1;
  let roiViolations = -1;
  const roiBegin = vm.roiBegin.bind(vm);
  vm.roiBegin = () => {
    roiBegin();
    t.true(k.pages_2m > 0);
    k.enableDirtyLog(0);
    t.is(k.pages_2m, 0);
    violationsAtBegin = k.stats.ept_violations;
  };
  const roiEnd = vm.roiEnd.bind(vm);
  vm.roiEnd = () => {
    roiEnd();
    log = k.getDirtyLog(0);
    roiViolations = k.stats.ept_violations - violationsAtBegin;
    fourKAtEnd = k.pages_4k;
    k.disableDirtyLog(0);
  };
  const r = vm.run()!;
  t.is(r.console, base.console, 'same checksum as without dirty logging');
  const want = gupsPages(region, updates);
  const regionStart = vm.boot.freeStart;
  const dirty: number[] = [];
  log!.forEach((byte, i) => {
    for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) dirty.push(i * 8 + bit);
  });
  const inRegion = dirty.filter((p) => p * PAGE_SIZE >= regionStart && p * PAGE_SIZE < regionStart + region).map((p) => p - regionStart / PAGE_SIZE);
  t.deepEqual(inRegion, [...want].sort((x, y) => x - y), 'every page the LCG hit, and no other region page');
  t.is(countDirty(log!), dirty.length);
  t.is(dirty.length - inRegion.length, 1, 'besides the region only the stack page (call roi_end) is written');
  // During the ROI every page the guest touches costs one violation: a region page is only
  // written by XOR-to-memory, whose destination is translated once, as a write (as
  // hardware does for read-modify-write), which maps it writable and sets its bit. Only the
  // stack page, read by roi_begin's RET before CALL roi_end writes it, costs a second one.
  t.is(roiViolations, fourKAtEnd + (dirty.length - inRegion.length));
  // After the ROI, dirty logging is off: the summing pass maps the region 2 MiB again.
  t.is(k.pages_4k, 0);
  t.is(k.pages_2m, base.memory.ept!.pages_2m);
  k.checkInvariants();
});

test('eptView on a VM without EPT is a ConfigError', (t) => {
  const vm = createVm({ memory: 4 * MiB, ept: false }, guest('hello'));
  t.throws(() => vm.eptView(0, 4 * MiB), { instanceOf: ConfigError, message: /does not run with EPT/ });
});
