// Each exit handler, driven by a synthetic ExitInfo: what it does to the devices and the
// context, and whether the run loop resumes or stops with which report.
import test from 'ava';
import { gpa } from '../src/util/address.ts';
import { ExitReason, type AccessKind } from '../src/native/types.ts';
import { Console, DebugExit, PioBus, RoiPort, Serial8250, type VmControl } from '../src/kvm/devices.ts';
import { handleExit, type ExitContext, type StopInfo } from '../src/kvm/exits.ts';
import type { ExitInfo } from '../src/kvm/vcpu.ts';

/** A synthetic exit: fields not given are 0; addresses and access kinds as plain numbers. */
function exitInfo(p: Omit<Partial<ExitInfo>, 'gpa' | 'access'> & { gpa?: number; access?: number }): ExitInfo {
  const base = { reason: ExitReason.IO, rip: 0x100020n, ioPort: 0, ioSize: 1, ioDirection: 0, value: 0, gva: 0n, gvaValid: false, level: 0, vectors: [], chain: [], vectoring: null, cr2: 0n, errorCode: 0, insnBytes: [] };
  return { ...base, ...p, gpa: gpa(p.gpa ?? 0), access: (p.access ?? 0) as AccessKind };
}

function setup(strict = false) {
  const logs: string[] = [];
  const mmio: number[] = [];
  const inValues: number[] = [];
  const roi: string[] = [];
  const console = new Console();
  const bus = new PioBus();
  const ctx: ExitContext = {
    bus, strict, log: (m) => logs.push(m), setInValue: (v) => inValues.push(v), unhandledPorts: new Set(), pendingStop: null,
    unhandledMmio: new Set(), completeMmio: (g) => mmio.push(g),
    stats: { io_out: 0, io_in: 0, io_unhandled: 0, roi_begin: 0, roi_end: 0, mmio_pages: 0, log_suppressed: 0 },
  };
  const ctl: VmControl = {
    requestStop: (s: StopInfo) => { ctx.pendingStop ??= s; },
    roiBegin: () => roi.push('begin'),
    roiEnd: () => roi.push('end'),
    log: (m) => logs.push(m),
  };
  bus.register(new Serial8250(console));
  bus.register(new DebugExit(ctl));
  bus.register(new RoiPort(ctl));
  return { ctx, logs, inValues, roi, console, mmio };
}

test('an OUT to COM1 prints the byte and resumes', (t) => {
  const { ctx, console } = setup();
  t.deepEqual(handleExit(ctx, exitInfo({ ioPort: 0x3f8, value: 0x41 })), { kind: 'resume' });
  console.flush();
  t.is(console.text, 'A');
  t.is(ctx.stats.io_out, 1);
});

test('an IN from the COM1 line status register reads 0x60', (t) => {
  const { ctx, inValues } = setup();
  t.is(handleExit(ctx, exitInfo({ ioPort: 0x3fd, ioDirection: 1 })).kind, 'resume');
  t.deepEqual(inValues, [0x60]);
});

test('the debug-exit port stops the VM with the byte or dword written as status', (t) => {
  for (const [size, value, status] of [[1, 0x1ff, 0xff], [4, 0xdeadbeef, 0xdeadbeef], [4, 0, 0], [2, 0x12345, 0x2345]]) {
    const { ctx } = setup();
    t.deepEqual(handleExit(ctx, exitInfo({ ioPort: 0xf4, ioSize: size, value })), { kind: 'stop', stop: { reason: 'exit', exitStatus: status } });
  }
});

test('ROI port values 1 and 2 mark begin and end; other values are logged once', (t) => {
  const { ctx, roi, logs } = setup();
  for (const v of [1, 2, 7, 9]) t.is(handleExit(ctx, exitInfo({ ioPort: 0xf6, value: v })).kind, 'resume');
  t.deepEqual(roi, ['begin', 'end']);
  t.deepEqual(logs, ['ROI port 0xf6: ignoring value 7 (1 = begin, 2 = end)']);
});

test('an unhandled port is logged once per port, reads return all ones, and the guest continues', (t) => {
  const { ctx, logs, inValues } = setup();
  t.is(handleExit(ctx, exitInfo({ ioPort: 0x80, value: 1 })).kind, 'resume');
  t.is(handleExit(ctx, exitInfo({ ioPort: 0x80, value: 2 })).kind, 'resume');
  t.is(handleExit(ctx, exitInfo({ ioPort: 0x60, ioDirection: 1 })).kind, 'resume');
  t.is(handleExit(ctx, exitInfo({ ioPort: 0x61, ioDirection: 1, ioSize: 4 })).kind, 'resume');
  t.is(handleExit(ctx, exitInfo({ ioPort: 0xf4, ioDirection: 1 })).kind, 'resume'); // debug-exit decodes writes only
  t.deepEqual(inValues, [0xff, 0xffffffff, 0xff]);
  t.deepEqual(logs, [
    'unhandled I/O: out byte port 0x80 at RIP 0x100020 (reads return all ones; reported once per port)',
    'unhandled I/O: in byte port 0x60 at RIP 0x100020 (reads return all ones; reported once per port)',
    'unhandled I/O: in dword port 0x61 at RIP 0x100020 (reads return all ones; reported once per port)',
    'unhandled I/O: in byte port 0xf4 at RIP 0x100020 (reads return all ones; reported once per port)',
  ]);
  t.deepEqual([...ctx.unhandledPorts], [0x80, 0x60, 0x61, 0xf4]);
  t.is(ctx.stats.io_unhandled, 5);
});

test('in strict mode an unhandled port stops the VM naming the port and RIP', (t) => {
  const { ctx } = setup(true);
  t.deepEqual(handleExit(ctx, exitInfo({ ioPort: 0x80, value: 0x1234, ioSize: 2 })), {
    kind: 'stop',
    stop: { reason: 'unhandled-io', exitStatus: null, error: { code: 'EGUEST', message: 'unhandled I/O: out word port 0x80 value 0x1234 at RIP 0x100020 (strict mode)' } },
  });
  const r = handleExit(ctx, exitInfo({ ioPort: 0x71, ioDirection: 1 }));
  t.is(r.kind === 'stop' && r.stop.error?.message, 'unhandled I/O: in byte port 0x71 at RIP 0x100020 (strict mode)');
});

test('HLT with nothing to wake it stops with status 0', (t) => {
  const { ctx } = setup();
  t.deepEqual(handleExit(ctx, exitInfo({ reason: ExitReason.HLT })), { kind: 'stop', stop: { reason: 'hlt', exitStatus: 0 } });
});

test('a triple fault stops with a report naming the vector chain with error codes, RIP, CR2, error code and bytes', (t) => {
  const { ctx } = setup();
  // #PF, then #PF while delivering it → #DF(0), then #PF while delivering #DF.
  const chain = [{ vector: 14, errorCode: 2 }, { vector: 14, errorCode: 3 }, { vector: 8, errorCode: 0 }, { vector: 14, errorCode: 3 }];
  const r = handleExit(ctx, exitInfo({ reason: ExitReason.SHUTDOWN, rip: 0x100123n, vectors: [14, 14, 8, 14], chain, cr2: 0xdead000n, errorCode: 2, insnBytes: [0x48, 0x89, 0x07] }));
  t.deepEqual(r, {
    kind: 'stop',
    stop: { reason: 'triple-fault', exitStatus: null, error: { code: 'EGUEST', message: 'triple fault: #PF(14) error 0x2 -> #PF(14) error 0x3 -> #DF(8) error 0x0 -> #PF(14) error 0x3 -> triple fault at RIP 0x100123, CR2 0xdead000, error code 0x2, instruction bytes 48 89 07' } },
  });
  const ud = handleExit(ctx, exitInfo({ reason: ExitReason.SHUTDOWN, rip: 0x100001n, chain: [{ vector: 6, errorCode: null }, { vector: 13, errorCode: 0x33 }], insnBytes: [] }));
  t.is(ud.kind === 'stop' ? ud.stop.error?.message : '', 'triple fault: #UD(6) -> #GP(13) error 0x33 -> triple fault at RIP 0x100001, CR2 0x0, error code 0x0, instruction bytes (unreadable)');
});

test('an EPT misconfiguration stops with a report naming the GPA and an internal-error code, never resumes', (t) => {
  const { ctx } = setup();
  const r = handleExit(ctx, exitInfo({ reason: ExitReason.EPT_MISCONFIG, rip: 0x100040n, gpa: 0x203000, gva: 0x203000n, gvaValid: true, access: 1, level: 1 }));
  t.deepEqual(r, {
    kind: 'stop',
    stop: { reason: 'ept-misconfig', exitStatus: null, error: { code: 'EINTERNAL', message: 'EPT misconfiguration at GPA 0x203000 (write via GVA 0x203000, EPT level 1) at RIP 0x100040: a malformed EPT entry, a hypervisor bug' } },
  });
});

test('strict mode: an MMIO access stops the VM naming the GPA, access kind and RIP', (t) => {
  const { ctx, mmio } = setup(true);
  const r = handleExit(ctx, exitInfo({ reason: ExitReason.MMIO, gpa: 0xfee00000, access: 1, gvaValid: true, gva: 0xfee00000n }));
  t.is(r.kind === 'stop' && r.stop.reason, 'mmio');
  t.is(r.kind === 'stop' && r.stop.error?.message, 'MMIO write at GPA 0xfee00000 (GVA 0xfee00000) outside guest memory, at RIP 0x100020 (strict mode)');
  t.deepEqual(mmio, []);
});

test('default mode: an MMIO data access is logged once per page and completed by the vCPU', (t) => {
  const { ctx, logs, mmio } = setup();
  t.is(handleExit(ctx, exitInfo({ reason: ExitReason.MMIO, gpa: 0xfee00010, access: 0, gvaValid: true, gva: 0xfee00010n })).kind, 'resume');
  t.is(handleExit(ctx, exitInfo({ reason: ExitReason.MMIO, gpa: 0xfee00ff8, access: 1, gvaValid: true, gva: 0xfee00ff8n })).kind, 'resume');
  t.is(handleExit(ctx, exitInfo({ reason: ExitReason.MMIO, gpa: 0xfee01000, access: 1, gvaValid: true, gva: 0xfee01000n })).kind, 'resume');
  t.deepEqual(mmio, [0xfee00010, 0xfee00ff8, 0xfee01000]);
  t.deepEqual([...ctx.unhandledMmio], [0xfee00000, 0xfee01000]);
  t.deepEqual(logs, [
    'unhandled MMIO access at GPA 0xfee00010 (RIP 0x100020): read; reads return all ones, writes are dropped (reported once per page)',
    'unhandled MMIO access at GPA 0xfee01000 (RIP 0x100020): write; reads return all ones, writes are dropped (reported once per page)',
  ]);
});

test('an instruction fetch or a guest page-table access in MMIO space stops even in default mode', (t) => {
  const { ctx, mmio } = setup();
  const f = handleExit(ctx, exitInfo({ reason: ExitReason.MMIO, gpa: 0xfee00000, access: 2, gvaValid: true, gva: 0xfee00000n }));
  t.is(f.kind === 'stop' && f.stop.error?.message, 'MMIO fetch at GPA 0xfee00000 (GVA 0xfee00000) outside guest memory, at RIP 0x100020: cannot be completed (no MMIO device model)');
  const w = handleExit(ctx, exitInfo({ reason: ExitReason.MMIO, gpa: 0xfee00000, access: 0, gvaValid: false, gva: 0x7000n }));
  t.is(w.kind === 'stop' && w.stop.error?.message, 'MMIO read at GPA 0xfee00000 (a guest page-table access) outside guest memory, at RIP 0x100020: cannot be completed (no MMIO device model)');
  t.deepEqual(mmio, []);
});

test('an EPT violation goes to the memory backend: resolved resumes, no memslot is MMIO', (t) => {
  const { ctx, mmio } = setup();
  const seen: number[] = [];
  ctx.ept = { handleEptViolation: (e) => (seen.push(e.gpa), e.gpa < 0x1000000 ? { kind: 'fixed', level: 1 } : { kind: 'mmio', gpa: gpa(e.gpa) }) };
  t.is(handleExit(ctx, exitInfo({ reason: ExitReason.EPT_VIOLATION, gpa: 0x200000, gvaValid: true })).kind, 'resume');
  t.is(handleExit(ctx, exitInfo({ reason: ExitReason.EPT_VIOLATION, gpa: 0x4000000, gvaValid: true })).kind, 'resume');
  t.deepEqual(seen, [0x200000, 0x4000000]);
  t.deepEqual(mmio, [0x4000000]);
  ctx.strict = true;
  const r = handleExit(ctx, exitInfo({ reason: ExitReason.EPT_VIOLATION, gpa: 0x4000000, gvaValid: true }));
  t.is(r.kind === 'stop' && r.stop.reason, 'mmio');
});

test('a host out of memory or a faulting memslot during an EPT violation is a stop reason with its own code, not an exception', (t) => {
  const { ctx } = setup();
  ctx.ept = {
    handleEptViolation: (e) =>
      e.gpa === 0x200000
        ? { kind: 'host-oom', gpa: gpa(e.gpa), message: 'EPT violation at GPA 0x200000: host out of memory: no free frame' }
        : { kind: 'efault', gpa: gpa(e.gpa), message: 'EPT violation at GPA 0x400000: memslot 0 HVA 0x7f0000400000 cannot be faulted in (SIGSEGV)' },
  };
  const oom = handleExit(ctx, exitInfo({ reason: ExitReason.EPT_VIOLATION, gpa: 0x200000, gvaValid: true }));
  t.deepEqual(oom, {
    kind: 'stop',
    stop: { reason: 'host-oom', exitStatus: null, error: { code: 'ENOMEM', message: 'EPT violation at GPA 0x200000: host out of memory: no free frame at RIP 0x100020' } },
  });
  const fault = handleExit(ctx, exitInfo({ reason: ExitReason.EPT_VIOLATION, gpa: 0x400000, gvaValid: true }));
  t.is(fault.kind === 'stop' && fault.stop.reason, 'efault');
  t.is(fault.kind === 'stop' && fault.stop.error?.code, 'EFAULT');
});

test('an EPT violation without an EPT backend is reported, not ignored', (t) => {
  const { ctx } = setup();
  const r = handleExit(ctx, exitInfo({ reason: ExitReason.EPT_VIOLATION, gpa: 0x5000 }));
  t.is(r.kind === 'stop' && r.stop.error?.message, 'EPT violation at GPA 0x5000 with EPT off (RIP 0x100020): no handler');
});

test('budget exits resume; internal errors and unknown reasons stop', (t) => {
  const { ctx } = setup();
  t.is(handleExit(ctx, exitInfo({ reason: ExitReason.BUDGET })).kind, 'resume');
  const r = handleExit(ctx, exitInfo({ reason: ExitReason.INTERNAL }));
  t.is(r.kind === 'stop' && r.stop.reason, 'internal-error');
  const u = handleExit(ctx, exitInfo({ reason: 99 as never }));
  t.is(u.kind === 'stop' && u.stop.error?.message, 'unknown exit reason 99 at RIP 0x100020');
});
