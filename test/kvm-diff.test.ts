// Differential test against real KVM: each deterministic sample guest (and each C workload) runs on /dev/kvm
// (tools/kvm/kvm-run.c, booted from the same image hugevisor's loader builds) and under
// hugevisor with the same memory, page size, args and command line; console output, exit
// status, I/O exit counts and guest #PF counts must agree, and ud-no-idt must triple-fault
// at the same RIP on both. Small iteration counts: KVM on this machine emulates every guest
// instruction in the kernel (~1 µs each). Skips, with the reason, when /dev/kvm is unusable.
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import { createVm } from '../src/kvm/vm.ts';
import type { GuestPageSize, RunResult } from '../src/api/types.ts';
import { buildKvmGuest, kvmUnavailableReason, runGuestKvm, type KvmRunResult } from '../tools/kvm/run-guest.mjs';
import { MiB, requireBuiltGuests, guestElf } from './guests-helpers.ts';

const why = kvmUnavailableReason();
const ktest = why === null ? test : test.skip;
if (why !== null) console.warn(`kvm-diff: SKIPPED: ${why}`);
test.before(() => requireBuiltGuests());
// kvm-run's wall-clock limit is only a hang guard: the guests run in well under a second,
// and the tests assert console, status and counts, never a time.
const HANG_GUARD_S = 120;

interface Case {
  guest: string;
  memory: number;
  pages: GuestPageSize;
  args?: number[];
  cmdline?: string;
  /** No exception and no REP string op: an emulate-everything KVM counts exactly the retired instructions. */
  plainInstructions?: boolean;
  /** The same, inside the region of interest only (gups zeroes its region with REP STOSQ before it). */
  plainRoi?: boolean;
}

const cases: Case[] = [
  { guest: 'hello', memory: 4 * MiB, pages: '4k', plainInstructions: true },
  { guest: 'boot-info', memory: 9 * MiB + 4096, pages: '4k', args: [1, 2, 3], cmdline: 'a b=c', plainInstructions: true },
  { guest: 'boot-info', memory: 67 * MiB, pages: '2m', plainInstructions: true },
  { guest: 'demand-paging', memory: 16 * MiB, pages: '4k', args: [1 * MiB] },
  { guest: 'demand-paging', memory: 32 * MiB, pages: '2m', args: [8 * MiB, 1] },
  { guest: 'alu-loop', memory: 4 * MiB, pages: '4k', args: [20000], plainInstructions: true, plainRoi: true },
  { guest: 'mem-scan', memory: 8 * MiB, pages: '2m', args: [2 * MiB, 1], plainInstructions: true, plainRoi: true },
  { guest: 'gups', memory: 8 * MiB, pages: '4k', args: [1 * MiB, 5000, 99], plainRoi: true },
];

function runHugevisor(c: Pick<Case, 'guest' | 'memory' | 'pages' | 'args' | 'cmdline'>): RunResult {
  return createVm({ memory: c.memory, guestPageSize: c.pages, args: c.args, cmdline: c.cmdline },
    { bytes: new Uint8Array(readFileSync(guestElf(c.guest))), name: c.guest }).run()!;
}

const stat = (k: KvmRunResult, name: string): number | undefined => {
  const v = k.stats.vcpu?.[name];
  return typeof v === 'number' ? v : undefined;
};

/** Exit counts, guest #PF counts and (emulating kernels) instruction counts, both sides, whole run and per ROI. */
function compareCounts(t: ExecutionContext, k: KvmRunResult, h: RunResult, plainInstructions: boolean, plainRoi = false): void {
  t.is(k.exits.io, h.exits.io, 'port-I/O exits');
  t.is(k.exits.hlt, h.exits.hlt, 'HLT exits');
  t.is(k.exits.shutdown, h.exits.shutdown, 'shutdown exits');
  t.is(k.exits.mmio, h.exits.mmio, 'MMIO exits');
  // pf_guest counts #PFs KVM injects; a KVM whose guest page faults never exit (EPT on
  // hardware) leaves it 0, so only a nonzero count is comparable.
  const pfGuest = stat(k, 'pf_guest');
  if (pfGuest) t.is(pfGuest, h.counters.exc_pf, 'guest #PF: KVM pf_guest vs hugevisor exc_pf');
  else t.log(`KVM pf_guest ${pfGuest ?? 'absent'}, hugevisor exc_pf ${h.counters.exc_pf}`);
  const emulated = stat(k, 'insn_emulation') ?? 0;
  if (plainInstructions && emulated >= h.instructions * 0.9) t.is(emulated, h.instructions, 'KVM insn_emulation vs hugevisor instructions');
  t.log(`KVM insn_emulation ${emulated}, hugevisor instructions ${h.instructions}; KVM pages_4k ${k.stats.vm?.pages_4k} pages_2m ${k.stats.vm?.pages_2m}`);
  t.is(k.roi.length, h.roi.length, 'regions of interest');
  t.is(k.roiOpen, h.roiOpen);
  k.roi.forEach((kr, i) => {
    const hc = h.roi[i].counters;
    const kEmu = kr.vcpu?.insn_emulation ?? 0;
    if (pfGuest) t.is(kr.vcpu?.pf_guest ?? 0, hc.exc_pf, `ROI ${i}: guest #PF`);
    if (plainRoi && kEmu >= hc.instructions * 0.9) t.is(kEmu, hc.instructions, `ROI ${i}: KVM insn_emulation vs hugevisor instructions`);
    t.log(`ROI ${i}: KVM insn_emulation ${kEmu} pf_guest ${kr.vcpu?.pf_guest ?? 0}; hugevisor instructions ${hc.instructions} exc_pf ${hc.exc_pf}`);
  });
}

for (const c of cases) {
  const label = `${c.guest} ${c.memory} bytes ${c.pages}${c.args ? ` args ${c.args.join(',')}` : ''}${c.cmdline ? ` cmdline "${c.cmdline}"` : ''}`;
  ktest(`KVM and hugevisor agree: ${label}`, async (t) => {
    const k = await runGuestKvm(c.guest, { memory: c.memory, pageSize: c.pages, args: c.args, cmdline: c.cmdline, timeoutSeconds: HANG_GUARD_S });
    const h = runHugevisor(c);
    t.is(k.reason, 'exit', k.log);
    t.is(h.console, k.console);
    t.is(h.exitStatus, k.status);
    t.not(k.console, '');
    t.is(k.log, '', 'no unhandled port or MMIO access');
    compareCounts(t, k, h, c.plainInstructions ?? false, c.plainRoi ?? false);
  });
}

// The C workloads (guests/c/) on their tiny guest kernel, at small sizes (each is a few
// seconds of emulation on this KVM), with 4 KiB and 2 MiB heap pages. The sizes are the
// smallest that still take each workload's paths: c-bfs at scale 9 (512 vertices, 22 heap
// faults) and c-allocmix at 1000 operations (707 allocations, 542 frees, 31 faults, 61
// fault-around maps) show the same as scale 10 and 5000 did, at half and a fifth of the
// KVM time (KVM's in-kernel emulation of the guest is most of this file's CPU): the console (the
// workload's checksum line and the kernel's fault line) must be identical, and the kernel's
// count of #PFs handled must be hugevisor's exc_pf and, where KVM counts injected #PFs
// (pf_guest nonzero), KVM's too.
const cCases: Array<Pick<Case, 'guest' | 'args' | 'cmdline'>> = [
  { guest: 'c-hello', args: [1000, 7], cmdline: 'name=kvm' },
  { guest: 'c-gups', args: [64 * 1024, 0, 1, 1] },
  { guest: 'c-stream', args: [4096, 3] },
  { guest: 'c-gups', args: [2 * MiB, 1000, 1, 0], cmdline: 'gthp=always' },
  { guest: 'c-chase', args: [4096, 20000, 5] },
  { guest: 'c-hash', args: [1024, 5000, 2] },
  { guest: 'c-rbtree', args: [2000, 4000, 1] },
  { guest: 'c-bfs', args: [9, 8, 2, 1] },
  { guest: 'c-sort', args: [5000, 3] },
  { guest: 'c-allocmix', args: [1000, 256, 1], cmdline: 'fault_around=16' },
];
for (const c of cCases) {
  const full = { ...c, memory: 32 * MiB, pages: '4k' as const };
  ktest(`KVM and hugevisor agree on C workload ${c.guest} args ${c.args!.join(',')}${c.cmdline ? ` cmdline "${c.cmdline}"` : ''}`, async (t) => {
    const k = await runGuestKvm(c.guest, { memory: full.memory, pageSize: full.pages, args: c.args, cmdline: c.cmdline, timeoutSeconds: HANG_GUARD_S });
    const h = runHugevisor(full);
    t.is(k.reason, 'exit', k.log);
    t.is(h.exitStatus, 0, h.console);
    t.is(k.status, 0);
    t.is(k.console, h.console, 'console: checksum line and kernel line');
    t.regex(h.console, /checksum 0x[0-9a-f]{16}\n/);
    const faults = Number(/^kernel: page faults (\d+) /m.exec(h.console)?.[1]);
    t.true(faults > 0, h.console);
    t.is(faults, h.counters.exc_pf, 'the guest kernel handled every #PF hugevisor delivered');
    if (c.cmdline === 'gthp=always') t.regex(h.console, /, 2m [1-9]\d*,/, 'a 2 MiB heap page');
    const pfGuest = stat(k, 'pf_guest');
    if (pfGuest) t.is(pfGuest, faults, 'KVM pf_guest: the #PFs KVM injected are the ones the kernel handled');
    else t.log(`KVM pf_guest ${pfGuest ?? 'absent'}: this KVM does not count injected #PFs (guest faults do not exit), so only the consoles are compared`);
    compareCounts(t, k, h, false);
  });
}

// The only expected difference: docs/guest-abi.md promises CPUID 0x80000001 EDX with the 1 GiB
// page bit (26), which hugevisor sets; a KVM whose supported CPUID lacks it fails exactly
// that one test of the guest and nothing else. Both run with "noint3": this host's KVM
// emulates the guest's INT3, and KVM's instruction emulator delivers INT n only in real mode
// (KVM_EXIT_INTERNAL_ERROR, emulation failure), so the INT3 test is left out on both sides.
ktest('KVM and hugevisor agree on isa-selftest (but for a missing 1 GiB-page CPUID bit on KVM)', async (t) => {
  const c = { guest: 'isa-selftest', memory: 8 * MiB, pages: '2m' as const, cmdline: 'noint3' };
  const k = await runGuestKvm(c.guest, { memory: c.memory, pageSize: c.pages, cmdline: c.cmdline, timeoutSeconds: HANG_GUARD_S });
  const h = runHugevisor(c);
  t.is(h.exitStatus, 0);
  const total = Number(/^(\d+) passed, 0 failed$/m.exec(h.console)?.[1]);
  const system = Number(/^system: (\d+) passed$/m.exec(h.console)?.[1]);
  t.true(total > 1000 && system > 1, h.console);
  const gb = (BigInt(k.cpuid80000001Edx) >> 26n) & 1n;
  if (gb === 1n) {
    t.is(k.console, h.console);
    t.is(k.status, 0);
  } else {
    t.log(`KVM CPUID 0x80000001 EDX ${k.cpuid80000001Edx}: no 1 GiB pages (pdpe1gb)`);
    const fails = k.console.split('\n').filter((l) => l.includes('FAIL'));
    t.deepEqual(fails, ['  FAIL system cpuid 0x80000001: LM, NX and 1 GiB pages: %rdx 0x0000000020100000 expected 0x0000000024100000']);
    const drop = (s: string): string[] => s.split('\n').filter((l) => !l.includes('FAIL') && !/^(system:|\d+ passed)/.test(l));
    t.deepEqual(drop(k.console), drop(h.console));
    t.true(k.console.includes(`\nsystem: ${system - 1} passed, 1 failed\n`), k.console);
    t.true(k.console.includes(`\n${total - 1} passed, 1 failed\n`), k.console);
    t.is(k.status, 1);
  }
  t.is(stat(k, 'pf_guest') || h.counters.exc_pf, h.counters.exc_pf, 'guest #PF count');
});

ktest('KVM and hugevisor both stop ud-no-idt with a triple fault at the ud2', async (t) => {
  const c = { guest: 'ud-no-idt', memory: 4 * MiB, pages: '4k' as const };
  const k = await runGuestKvm(c.guest, { memory: c.memory, pageSize: c.pages, timeoutSeconds: HANG_GUARD_S });
  const h = runHugevisor(c);
  t.is(k.console, h.console);
  const printed = /at (0x[0-9a-f]+)/.exec(k.console)?.[1];
  t.truthy(printed, k.console);
  t.is(k.reason, 'triple-fault');
  t.is(k.status, null);
  t.is(BigInt(k.regs.rip), BigInt(printed!), 'KVM stops at the ud2');
  t.is(h.stopReason, 'triple-fault');
  t.is(h.exitStatus, null);
  t.regex(h.error!.message, new RegExp(`^triple fault: #UD\\(6\\) .* at RIP 0x${BigInt(printed!).toString(16)},`));
  t.is(k.exits.shutdown, 1);
  compareCounts(t, k, h, false);
});

// Exception escalation through a not-present #UD gate (tools/kvm/guests/ud-bad-gate.s).
// hugevisor follows the SDM's double-fault classes (Vol. 3A
// 6.15, Table 6-5): #UD is benign, so the #NP(6*8+2+EXT = 0x33) its delivery raises is
// delivered serially, as QEMU TCG does too (vector 11; QEMU's error code is 6*16+2). The KVM
// on this machine emulates delivery in software and escalates any delivery fault to #DF
// (docs/guest-abi.md's simplification): the known difference is pinned on both sides.
ktest('on #UD through a not-present gate hugevisor delivers #NP serially (SDM, QEMU); this KVM escalates to #DF', async (t) => {
  const elf = buildKvmGuest('ud-bad-gate');
  const k = await runGuestKvm(elf, { memory: 4 * MiB, timeoutSeconds: HANG_GUARD_S });
  const h = createVm({ memory: 4 * MiB }, { bytes: new Uint8Array(readFileSync(elf)), name: 'ud-bad-gate' }).run()!;
  t.is(h.console, 'ud2 through a bad #UD gate\n#NP error 0x0000000000000033\n');
  t.is(h.exitStatus, 11);
  t.is(h.counters.exc_np, 1);
  t.is(h.counters.exc_ud, 0);
  t.is(h.counters.exc_df, 0);
  t.is(k.console, 'ud2 through a bad #UD gate\n#DF error 0x0000000000000000\n');
  t.is(k.status, 8);
});
