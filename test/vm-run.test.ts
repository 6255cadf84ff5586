// The Vm and its run loop, driven by a fake vCPU replaying synthetic exits over the real
// hello image: boot state, console streaming, exact instruction limits and chunking, ROI
// deltas, stop reasons and reports, pause/resume.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { createVm, MAX_LOG_LINES } from '../src/kvm/vm.ts';
import { UNHANDLED_LOGGED } from '../src/kvm/exits.ts';
import { RunLoop } from '../src/kvm/run.ts';
import { Vcpu } from '../src/kvm/vcpu.ts';
import { ExitReason, REG } from '../src/native/types.ts';
import { PioBus } from '../src/kvm/devices.ts';
import { gpa } from '../src/util/address.ts';
import { ConfigError, ElfError } from '../src/util/errors.ts';
import { fakeAddon, FakeVcpu, inp, out, printSteps, type Step } from './fixtures/fake-vcpu.ts';
import type { VmConfig } from '../src/api/types.ts';

// Any image will do: the fake vCPU never reads it. The committed fixture keeps addresses stable.
const hello = { bytes: new Uint8Array(readFileSync(new URL('./fixtures/two-segments.elf', import.meta.url))), name: 'two-segments' };
const MiB = 1024 * 1024;
const exitWith = (status: number, n = 2): Step => ({ instructions: n, exit: out(0xf4, status, 4) });

function vmWith(steps: Step[], config: VmConfig = {}) {
  const f = fakeAddon(steps);
  const vm = createVm({ memory: 4 * MiB, ...config }, hello, { addon: f.addon });
  return { vm, fake: f.vcpu(), addon: f.addon };
}

test('the vCPU starts at the entry point in the boot state, with guest RAM written (native: one linear range)', (t) => {
  const { vm, fake, addon } = vmWith([], { ept: false });
  t.deepEqual(fake.mmu, { ept: false, guestBase: 0, guestSize: 4 * MiB, tlb: addon.defaultTlbGeometry });
  t.is(fake.regs[REG.rip], 0x100000n);
  t.is(fake.regs[REG.cr3], BigInt(vm.boot.pml4));
  t.is(fake.regs[REG.rdi], BigInt(vm.boot.bootInfo));
  t.is(fake.regs[REG.rsp], BigInt(vm.boot.freeStart));
  t.deepEqual(vm.boot, { memory: 4 * MiB, guestPageSize: '4k', entry: 0x100000, imageEnd: 0x112008, pml4: 0x113000, pageTables: 5, bootInfo: 0x118000, freeStart: 0x12a000 });
  const mem = vm.backend.memory;
  t.deepEqual(mem.read(gpa(0x100000), 0x18), hello.bytes.subarray(0x1000, 0x1018));
  t.deepEqual([...mem.read(gpa(0x110000), 6)], [0x41, 0x44, 0x41, 0x54, 0x41, 0]);
  t.is(new TextDecoder().decode(mem.read(gpa(0x118000), 8)), 'HVBOOT01');
});

test('a guest that prints and exits: console streamed and collected, status, exact counts (native)', (t) => {
  const chunks: string[] = [];
  const { vm } = vmWith([...printSteps('Hi\nyo'), exitWith(3)], { ept: false, onConsole: (s) => chunks.push(s) });
  const r = vm.run()!;
  t.is(vm.state, 'Finished');
  t.is(r.exitStatus, 3);
  t.is(r.stopReason, 'exit');
  t.is(r.error, null);
  t.is(r.console, 'Hi\nyo');
  t.deepEqual(chunks, ['Hi\n', 'yo']);
  t.is(r.instructions, 5 * 3 + 2);
  t.is(r.counters.instructions, 17);
  t.like(r.exits, { io: 6, hlt: 0, ept_violation: 0, mmio: 0, shutdown: 0 });
  t.deepEqual(r.vmm, { io_out: 6, io_in: 0, io_unhandled: 0, roi_begin: 0, roi_end: 0, console_bytes: 5, mmio_pages: 0, log_suppressed: 0 });
  // cost model: 17 instructions x 1 + 6 VM exits x 1500
  t.is(r.simulated.cycles, 17 + 6 * 1500);
  t.is(r.simulated.seconds, (17 + 6 * 1500) / 3e9);
});

test('an IN is completed with the device value before the guest continues', (t) => {
  const { vm, fake } = vmWith([{ instructions: 4, exit: inp(0x3fd) }, { instructions: 1, exit: inp(0x3fd, 4), check: (v) => t.is(v.inValues.at(-1), 0x60n) }, exitWith(0)]);
  vm.run();
  t.deepEqual(fake.inValues.slice(1), [0x60n, 0x60n]);
});

test('the instruction limit is exact and chunks never overshoot it', (t) => {
  const { vm, fake } = vmWith([{ instructions: 10_000_000, exit: out(0xf4, 0) }], { maxInstructions: 2_500_000, chunkInstructions: 1_000_000 });
  const r = vm.run()!;
  t.is(r.stopReason, 'max-instructions');
  t.is(r.exitStatus, null);
  t.is(r.instructions, 2_500_000);
  t.deepEqual(fake.runCalls, [1_000_000, 1_000_000, 500_000]);
  t.is(r.exits.io, 0);
  t.is(r.counters.exits_budget, 2, 'two natural chunk ends; the return at the limit is not one');
});

test('long stretches without exits run in chunks until the guest exits', (t) => {
  const { vm, fake } = vmWith([{ instructions: 5_000_000, exit: out(0xf4, 1, 4) }], { chunkInstructions: 2_000_000 });
  const r = vm.run()!;
  t.is(r.exitStatus, 1);
  t.is(r.instructions, 5_000_000);
  t.deepEqual(fake.runCalls, [2_000_000, 2_000_000, 2_000_000]);
});

test('ROI markers record exact counter deltas with their simulated time and rates', (t) => {
  const { vm } = vmWith([
    { instructions: 100, exit: out(0xf6, 1) },
    { instructions: 1000, exit: out(0xf6, 2), counters: { exc_pf: 3, walk_refs: 40 } },
    { instructions: 7, exit: out(0xf6, 1) },
    exitWith(0),
  ]);
  const r = vm.run()!;
  t.is(r.roi.length, 1);
  const roi = r.roi[0];
  t.is(roi.counters.instructions, 1000);
  t.is(roi.counters.exc_pf, 3);
  t.is(roi.counters.walk_refs, 40);
  t.is(roi.counters.exits_io, 1);
  t.is(roi.simulated.cycles, 1000 + 40 * 25 + 1500);
  t.is(roi.rates.events.guest_pf.per_million_instructions, 3000);
  t.is(roi.rates.events.guest_pf.per_sim_second, 3 / ((1000 + 40 * 25 + 1500) / 3e9));
  t.true(r.roiOpen);
  t.is(r.counters.exc_pf, 3);
});

test('HLT ends the run with status 0', (t) => {
  const r = vmWith([...printSteps('x'), { instructions: 2, exit: { reason: ExitReason.HLT } }]).vm.run()!;
  t.deepEqual([r.exitStatus, r.stopReason, r.console, r.exits.hlt], [0, 'hlt', 'x', 1]);
});

test('a triple fault finishes the run with the report in the result, not a throw', (t) => {
  const { vm } = vmWith([{ instructions: 9, exit: { reason: ExitReason.SHUTDOWN, rip: 0x100004, chain_len: 2, vector0: 13, vector1: 8, vector2: 0xff, error0: 0, error1: 0, cr2: 0, error_code: 0, insn_lo: 0x0b0f, insn_len: 2 } }]);
  const r = vm.run()!;
  t.is(r.stopReason, 'triple-fault');
  t.is(r.exitStatus, null);
  t.deepEqual(r.error, { code: 'EGUEST', message: 'triple fault: #GP(13) error 0x0 -> #DF(8) error 0x0 -> triple fault at RIP 0x100004, CR2 0x0, error code 0x0, instruction bytes 0f 0b' });
  t.is(r.exits.shutdown, 1);
});

test('unhandled ports are logged once and listed; strict mode stops at the first', (t) => {
  const logs: string[] = [];
  const steps = () => [{ instructions: 1, exit: out(0x80, 1) }, { instructions: 1, exit: out(0x80, 2) }, exitWith(0)];
  const r = vmWith(steps(), { onLog: (m) => logs.push(m) }).vm.run()!;
  t.deepEqual([r.stopReason, r.exitStatus, r.unhandledPorts, logs.length], ['exit', 0, [0x80], 1]);
  const s = vmWith(steps(), { strict: true }).vm.run()!;
  t.is(s.stopReason, 'unhandled-io');
  t.is(s.error?.message, 'unhandled I/O: out byte port 0x80 value 0x1 at RIP 0x100010 (strict mode)');
  t.is(s.instructions, 1);
});

test('pause() from a console callback pauses after that exit; run() resumes', (t) => {
  let vmRef: { pause(): void } | undefined;
  const { vm } = vmWith([...printSteps('a\nb\n'), exitWith(0)], { onConsole: () => vmRef!.pause() });
  vmRef = vm;
  t.is(vm.run().stopReason, 'paused');
  t.is(vm.state, 'Paused');
  t.is(vm.result().console, 'a\n');
  t.is(vm.result().stopReason, 'paused');
  t.is(vm.run().stopReason, 'paused');
  const r = vm.run()!;
  t.is(vm.state, 'Finished');
  t.is(r.console, 'a\nb\n');
  t.is(vm.run()!.exitStatus, 0); // a finished VM stays finished
});

test('the wall-clock timeout pauses the loop with what ran so far (the VM is not finished)', (t) => {
  const f = fakeAddon([{ instructions: 100, exit: out(0x3f8, 0x41) }, { instructions: 100, exit: out(0x3f8, 0x42) }, exitWith(0)]);
  const native = new f.addon.Vcpu({} as never) as unknown as FakeVcpu;
  const vcpu = new Vcpu(native, f.addon.counterNames, f.addon.exitFieldNames);
  let clock = 0;
  const ctx = { bus: new PioBus(), strict: false, log() {}, setInValue() {}, unhandledPorts: new Set<number>(), unhandledMmio: new Set<number>(), pendingStop: null, stats: { io_out: 0, io_in: 0, io_unhandled: 0, roi_begin: 0, roi_end: 0, mmio_pages: 0, log_suppressed: 0 } };
  const loop = new RunLoop(vcpu, ctx, { maxInstructions: 0, timeoutMs: 250, chunkInstructions: 1000 }, () => { clock += 200; }, () => clock);
  t.is(loop.run(), 'Paused');
  t.deepEqual(loop.stop, { reason: 'timeout', exitStatus: null });
  t.is(loop.executed, 200);
  t.is(loop.wallMs, 400);
});

test('a bad image or config is refused before anything runs', (t) => {
  const f = fakeAddon([]);
  const bad = { bytes: hello.bytes.slice(0, 30), name: 'bad.elf' };
  t.throws(() => createVm({ memory: 4 * MiB }, bad, { addon: f.addon }), { instanceOf: ElfError, message: 'bad.elf: truncated ELF header: file is 30 bytes, the ELF64 header needs 64' });
  t.throws(() => createVm({ memory: 0x100000 }, hello, { addon: f.addon }), { instanceOf: ElfError, message: /two-segments: segment 0 \[0x100000, 0x100018\) is outside guest memory/ });
  t.throws(() => createVm({ memory: 0x120000 }, hello, { addon: f.addon }), { instanceOf: ConfigError, message: /guest memory too small/ });
  t.throws(() => createVm({ memory: 4 * MiB, guestPageSize: '8k' as never }, hello, { addon: f.addon }), { message: 'guestPageSize: expected 4k|2m|1g, got "8k"' });
  t.throws(() => createVm({ memory: 4 * MiB, maxInstructions: -1 }, hello, { addon: f.addon }), { message: 'maxInstructions: expected an integer ≥ 0 (0 = no limit), got -1' });
  t.throws(() => createVm({ memroy: 4 * MiB } as never, hello, { addon: f.addon }), { message: /^config: unknown key "memroy" \(known: memory, guestPageSize, / });
  t.throws(() => createVm({ costs: { walk_ref: -1 } }, hello, { addon: f.addon }), { message: 'costs.walk_ref: expected a number of cycles from 0 to 1e12, got -1' });
});

test('a malformed image argument is a ConfigError naming it; an ArrayBuffer of ELF bytes is accepted', (t) => {
  const f = fakeAddon([]);
  const deps = { addon: f.addon };
  t.throws(() => createVm({}, null as never, deps), { instanceOf: ConfigError, message: 'image: expected { bytes: Uint8Array, name: string }, got null' });
  t.throws(() => createVm({}, 'hello' as never, deps), { instanceOf: ConfigError, message: 'image: expected { bytes: Uint8Array, name: string }, got "hello"' });
  t.throws(() => createVm({}, { bytes: [1, 2], name: 'x' } as never, deps), { instanceOf: ConfigError, message: 'image.bytes: expected a Uint8Array or an ArrayBuffer of ELF bytes, got an array' });
  t.throws(() => createVm({}, { bytes: hello.bytes } as never, deps), { instanceOf: ConfigError, message: 'image.name: expected a string (a file path or sample name), got undefined' });
  t.throws(() => createVm(42 as never, hello, deps), { instanceOf: ConfigError, message: 'config: expected an object, got 42' });
  t.throws(() => createVm(null as never, hello, deps), { instanceOf: ConfigError, message: 'config: expected an object, got null' });
  t.throws(() => createVm({ tlb: [] as never }, hello, deps), { instanceOf: ConfigError, message: 'tlb: expected default|none or { structure: { entries, ways } }, got an array' });
  t.throws(() => createVm({ guestPageSize: '__proto__' as never }, hello, deps), { instanceOf: ConfigError, message: 'guestPageSize: expected 4k|2m|1g, got "__proto__"' });
  const buf = hello.bytes.buffer.slice(hello.bytes.byteOffset, hello.bytes.byteOffset + hello.bytes.byteLength);
  t.notThrows(() => createVm({ ept: false }, { bytes: buf as never, name: 'from an ArrayBuffer' }, deps));
});

test('cost overrides change simulated time without re-running', (t) => {
  const r = vmWith([{ instructions: 1000, exit: out(0xf4, 0, 4) }], { ept: false, costs: { instruction: 2, vm_exit: 0, clock_hz: 1e9 } }).vm.run()!;
  t.is(r.simulated.cycles, 2000);
  t.is(r.simulated.seconds, 2e-6);
  t.is(r.simulated.breakdown.instruction, 2000);
  // EPT mode (the default): loading the image faulted one THP in on the host, but that is
  // the VMM's work before the guest started, not guest time.
  const e = vmWith([{ instructions: 1000, exit: out(0xf4, 0, 4) }], { costs: { instruction: 2, vm_exit: 0, clock_hz: 1e9 } }).vm.run()!;
  t.is(e.simulated.cycles, 2000);
  t.is(e.simulated.breakdown.instruction, 2000);
});

test('the default is EPT mode: the vCPU gets an EPT pointer, guest RAM is host anonymous memory', (t) => {
  const { vm, fake, addon } = vmWith([]);
  t.is(vm.config.ept, true);
  t.is(vm.backend.kind, 'ept');
  const eptp = (vm.backend.mmu as { eptp: number }).eptp;
  t.deepEqual(fake.mmu, { ept: true, eptp, tlb: addon.defaultTlbGeometry });
  t.is(eptp % 4096, 0);
  t.is(fake.regs[REG.rip], 0x100000n);
  const mem = vm.backend.memory;
  t.deepEqual(mem.read(gpa(0x100000), 0x18), hello.bytes.subarray(0x1000, 0x1018));
  t.is(new TextDecoder().decode(mem.read(gpa(0x118000), 8)), 'HVBOOT01');
});

test('a guest that prints and exits in EPT mode: exact counts, the VMM\'s boot-time host faults kept out of guest time, and the memory report', (t) => {
  const { vm } = vmWith([...printSteps('Hi\nyo'), exitWith(3)]);
  const r = vm.run()!;
  t.is(r.exitStatus, 3);
  t.is(r.console, 'Hi\nyo');
  t.is(r.instructions, 17);
  t.like(r.exits, { io: 6, ept_violation: 0 });
  // Loading the image and boot tables (all below 2 MiB) faulted one THP in on the host: it
  // shows in the host counters below, not in the guest's simulated time.
  t.deepEqual(r.simulated.events, { instruction: 17, l1_tlb_hit: 0, stlb_hit: 0, walk_ref: 0, vm_exit: 6, host_fault_4k: 0, host_fault_2m: 0, kib_zeroed: 0, kib_copied: 0, swap_io_page: 0 });
  t.is(r.simulated.cycles, 17 + 6 * 1500);
  t.is(r.memory.mode, 'ept');
  t.like(r.memory.ept, { ept_violations: 0, pages_4k: 0, pages_2m: 0 });
  // khugepaged woke when QEMU-style madvise(MADV_HUGEPAGE) registered the VMM at boot: its
  // first pass (4096 pages) covers the 2 PMDs of this 4 MiB guest, one full scan, nothing
  // to collapse.
  t.like(r.memory.host, { thp_fault_alloc: 1, pgfault: 1, nr_anon_transparent_hugepages: 1, full_scans: 1, pages_collapsed: 0 });
  t.like(r.memory.meminfo, { AnonHugePages: 2048 });
  // The host clock followed the guest to the run's simulated time, once per VM exit (6).
  t.deepEqual(r.memory.clock, { follows_guest: true, host_ms: r.simulated.seconds * 1000, syncs: 6 });
});

test('VMM diagnostics are bounded: the first 64 unhandled ports logged, 256 lines at most, then the counts', (t) => {
  const logs: string[] = [];
  // 100 distinct unhandled ports, then 300 ROI ends without a begin (a line each).
  const steps: Step[] = [
    ...Array.from({ length: 100 }, (_, i) => ({ instructions: 1, exit: out(0x100 + i, 0) })),
    { instructions: 1, exit: out(0xf6, 2), repeat: 300 },
    { instructions: 1, exit: out(0xf4, 0) },
  ];
  const { addon } = fakeAddon(steps);
  const r = createVm({ ept: false, onLog: (m) => logs.push(m) }, hello, { addon }).run()!;
  t.is(r.stopReason, 'exit');
  t.is(r.unhandledPorts.length, 100);
  t.is(logs.filter((m) => m.startsWith('unhandled I/O: out byte')).length, UNHANDLED_LOGGED);
  t.is(logs.filter((m) => m === 'ROI end without a begin: ignored').length, MAX_LOG_LINES - UNHANDLED_LOGGED);
  t.is(r.vmm.log_suppressed, UNHANDLED_LOGGED + 300 - MAX_LOG_LINES);
  t.deepEqual(logs.slice(MAX_LOG_LINES), [
    `unhandled I/O: ${100 - UNHANDLED_LOGGED} more ports not logged (100 in all, listed in the result)`,
    `${UNHANDLED_LOGGED + 300 - MAX_LOG_LINES} more diagnostic lines not shown (at most ${MAX_LOG_LINES} per run)`,
  ]);
});
