/**
 * Exception delivery over EPT: an EPT violation while delivering is a clean VM exit
 * naming the interrupted event (IDT-vectoring information); the next run() re-delivers it
 * with the same CR2 and error code, pushes the frame once and counts the exception once.
 * Read-modify-write destinations take one EPT violation, reported as a write; a malformed
 * EPT entry is an EPT misconfiguration exit. Demand paging under 4 KiB and 2 MiB EPT counts
 * exactly the faults the guest handled.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { loadAddon } from '../src/native/addon.ts';
import { ExitReason, REG, type NativeVcpu } from '../src/native/types.ts';
import { createVm } from '../src/kvm/vm.ts';
import { assemble, CODE, DATA, GDT, IDT, PML4, STACK_TOP } from './vcpu-harness.ts';

const GUEST_BASE = 8 * 1024 * 1024; // HPA of GPA 0
const GUEST_SIZE = 8 * 1024 * 1024;
const EPT_PML4 = 0x1000;
const NONE = 0xffffffffffffffffn;

interface EptMachine {
  vcpu: NativeVcpu;
  mem: DataView;
  counter(name: string): bigint;
  exitField(name: string): bigint;
  reg(name: keyof typeof REG): bigint;
  /** Set the EPT PTE of a guest-physical 4 KiB page: 7 = RWX, 5 = RX, 0 = absent, ... */
  eptPerm(gpa: number, perm: number): void;
  /** Guest-physical u64. */
  g64(gpa: number): bigint;
}

/** GPA [0, 8 MiB) at HPA 8 MiB, identity-mapped by 4 KiB guest pages over a 4 KiB EPT. */
function eptMachine(src: string, handlers: Record<number, number>): EptMachine {
  const addon = loadAddon();
  const arena = new addon.Arena(GUEST_BASE + GUEST_SIZE);
  const vcpu = new addon.Vcpu(arena);
  const mem = new DataView(arena.buffer);
  const put = (hpa: number, v: bigint) => mem.setBigUint64(hpa, v, true);
  const pdpt = EPT_PML4 + 0x1000, pd = EPT_PML4 + 0x2000, pt0 = EPT_PML4 + 0x3000;
  put(EPT_PML4, BigInt(pdpt | 7));
  put(pdpt, BigInt(pd | 7));
  for (let c = 0; c < GUEST_SIZE / 0x200000; c++) {
    put(pd + c * 8, BigInt((pt0 + c * 0x1000) | 7));
    for (let e = 0; e < 512; e++) put(pt0 + c * 0x1000 + e * 8, BigInt((GUEST_BASE + c * 0x200000 + e * 0x1000) | 7 | (6 << 3)));
  }
  const g = (gpa: number, v: bigint) => put(GUEST_BASE + gpa, v);
  const gpdpt = PML4 + 0x1000, gpd = PML4 + 0x2000, gpt0 = PML4 + 0x3000;
  g(PML4, BigInt(gpdpt | 3));
  g(gpdpt, BigInt(gpd | 3));
  for (let c = 0; c < GUEST_SIZE / 0x200000; c++) {
    g(gpd + c * 8, BigInt((gpt0 + c * 0x1000) | 3));
    for (let e = 0; e < 512; e++) g(gpt0 + c * 0x1000 + e * 8, BigInt((c * 0x200000 + e * 0x1000) | 3));
  }
  g(GDT + 8, 0x00209a0000000000n);
  g(GDT + 16, 0x0000920000000000n);
  for (const [vs, target] of Object.entries(handlers)) {
    const v = Number(vs);
    g(IDT + v * 16, BigInt(target & 0xffff) | (8n << 16n) | (0x8en << 40n) | (BigInt(target >>> 16) << 48n));
    g(IDT + v * 16 + 8, 0n);
  }
  new Uint8Array(arena.buffer).set(assemble(src), GUEST_BASE + CODE);
  vcpu.configureMmu({ ept: true, eptp: EPT_PML4 });
  const init: Record<string, number> = {
    cr0: 0x80010031, cr4: 0x20, efer: 0xd00, cr3: PML4, gdtr_base: GDT, gdtr_limit: 23, idtr_base: IDT, idtr_limit: 4095,
    cs: 8, ds: 0x10, es: 0x10, ss: 0x10, fs: 0x10, gs: 0x10, rflags: 2, rip: CODE, rsp: STACK_TOP,
  };
  for (const [k, v] of Object.entries(init)) vcpu.regs[REG[k as keyof typeof REG]] = BigInt(v);
  return {
    vcpu,
    mem,
    counter: (name) => vcpu.counters[addon.counterNames.indexOf(name)],
    exitField: (name) => vcpu.exit[addon.exitFieldNames.indexOf(name)],
    reg: (name) => vcpu.regs[REG[name]],
    eptPerm: (gpa, perm) => {
      const pte = pt0 + Math.floor(gpa / 0x1000) * 8;
      put(pte, BigInt(perm === 0 ? 0 : (GUEST_BASE + (gpa & ~0xfff)) | perm | (6 << 3)));
      vcpu.invept();
    },
    g64: (gpa) => mem.getBigUint64(GUEST_BASE + gpa, true),
  };
}

// #PF handler: records CR2, error code, pushed RIP and its RSP, maps the page back (PTE value
// in RDX, PTE address in RSI), drops the error code and returns.
const PF_HANDLER = `
.org 0x800
  mov %cr2, %rax
  mov %rax, ${DATA}
  mov (%rsp), %rax
  mov %rax, ${DATA + 8}
  mov 8(%rsp), %rax
  mov %rax, ${DATA + 16}
  mov %rsp, ${DATA + 24}
  mov %rdx, (%rsi)
  invlpg (%rbx)
  add $8, %rsp
  iretq
`;
const H = CODE + 0x800;

for (const [what, gpa, access] of [
  ['the stack page (frame push)', STACK_TOP - 0x1000, 1],
  ['the IDT page (gate read)', IDT, 0],
] as const) {
  test(`an EPT violation on ${what} while delivering #PF exits cleanly and the resume delivers it once`, (t) => {
    const target = 0x5a1238;
    const m = eptMachine(`movq $0x99, (%rbx)\nmovq (%rbx), %rcx\nhlt\n${PF_HANDLER}`, { 14: H });
    const pte = PML4 + 0x3000 + Math.floor(target / 0x1000) * 8;
    m.mem.setBigUint64(GUEST_BASE + pte, 0n, true); // guest PTE not present: #PF (W)
    m.vcpu.regs[REG.rbx] = BigInt(target);
    m.vcpu.regs[REG.rsi] = BigInt(pte);
    m.vcpu.regs[REG.rdx] = BigInt((target & ~0xfff) | 3);
    m.eptPerm(gpa, 0);
    t.is(m.vcpu.run(1000), ExitReason.EPT_VIOLATION);
    t.is(m.exitField('gpa'), BigInt(gpa & ~0xfff) + (access ? 0xff8n : 14n * 16n));
    t.is(m.exitField('access'), BigInt(access));
    t.is(m.exitField('rip'), BigInt(CODE), 'RIP: the faulting MOV');
    t.is(m.exitField('vectoring_vector'), 14n, 'the interrupted delivery: #PF');
    t.is(m.exitField('vectoring_error'), 2n);
    t.is(m.reg('cr2'), BigInt(target));
    t.is(m.reg('rsp'), BigInt(STACK_TOP), 'nothing pushed yet');
    t.is(m.counter('exc_pf'), 0n, 'not delivered yet');
    m.eptPerm(gpa, 7);
    t.is(m.vcpu.run(1000), ExitReason.HLT);
    t.is(m.counter('exc_pf'), 1n, 'one #PF, counted once');
    t.is(m.g64(DATA), BigInt(target), 'CR2 in the handler');
    t.is(m.g64(DATA + 8), 2n, 'error code: not present, write');
    t.is(m.g64(DATA + 16), BigInt(CODE), 'pushed RIP');
    t.is(m.g64(DATA + 24), BigInt(STACK_TOP - 48), 'one frame of 6 words');
    t.is(m.reg('rsp'), BigInt(STACK_TOP), 'IRETQ popped it all');
    t.is(m.reg('rcx'), 0x99n);
    t.is(m.counter('exits_ept_violation'), 1n, 'one exit: the one that interrupted the delivery');
  });
}

test('a read-modify-write on a write-protected EPT page (dirty logging) takes one EPT violation, reported as a write', (t) => {
  for (const insn of ['addl $1, (%rbx)', 'incq (%rbx)', 'negl (%rbx)', 'shrq $1, (%rbx)', 'btcq $3, (%rbx)', 'xchg %rcx, (%rbx)', 'adcb $1, (%rbx)']) {
    const m = eptMachine(`${insn}\nhlt`, {});
    m.vcpu.regs[REG.rbx] = BigInt(DATA + 0x40);
    m.vcpu.regs[REG.rcx] = 8n;
    m.mem.setBigUint64(GUEST_BASE + DATA + 0x40, 0x10n, true);
    m.eptPerm(DATA, 5); // R+X: write-protected as KVM's dirty logging does
    t.is(m.vcpu.run(100), ExitReason.EPT_VIOLATION, insn);
    t.is(m.exitField('access'), 1n, `${insn}: a write`);
    t.is(m.exitField('gpa'), BigInt(DATA + 0x40), insn);
    t.is(m.exitField('vectoring_vector'), 0xffn, `${insn}: not during a delivery`);
    t.is(m.g64(DATA + 0x40), 0x10n, `${insn}: memory unchanged`);
    m.eptPerm(DATA, 7);
    t.is(m.vcpu.run(100), ExitReason.HLT, insn);
    t.is(m.counter('exits_ept_violation'), 1n, `${insn}: exactly one exit`);
    t.is(m.counter('loads'), 1n, insn);
    t.is(m.counter('stores'), 1n, insn);
  }
});

test('a malformed EPT entry is an EPT misconfiguration exit naming the GPA, not a violation', (t) => {
  for (const perm of [2, 6]) { // W without R; W+X without R
    const m = eptMachine(`movq ${DATA + 0x88}, %rax\nhlt`, {});
    m.eptPerm(DATA, perm);
    t.is(m.vcpu.run(100), ExitReason.EPT_MISCONFIG);
    t.is(m.exitField('gpa'), BigInt(DATA + 0x88));
    t.is(m.exitField('access'), 0n);
    t.is(m.exitField('level'), 1n);
    t.is(m.exitField('rip'), BigInt(CODE));
    t.is(m.counter('exits_ept_misconfig'), 1n);
    t.is(m.counter('exits_ept_violation'), 0n);
    t.is(m.counter('exits'), 1n);
  }
});

test('demand paging under 4 KiB and 2 MiB EPT: exc_pf equals the page faults the guest handled', (t) => {
  const MiB = 1024 * 1024;
  const elf = new Uint8Array(readFileSync('build/guests/demand-paging.elf'));
  for (const thp of ['never', 'always'] as const) {
    const vm = createVm({ memory: 64 * MiB, ept: true, args: [16 * MiB], host: { thp: { enabled: thp } } }, { bytes: elf, name: 'demand-paging' });
    const r = vm.run()!;
    t.is(r.exitStatus, 0, thp);
    t.regex(r.console, /page faults handled: 4096\n/, thp);
    t.is(r.counters.exc_pf, 4096, `${thp}: one #PF counted per fault handled`);
    // Every demand-paged 4 KiB page needs its own EPT leaf without THP; 2 MiB leaves with it.
    if (thp === 'never') t.true(r.exits.ept_violation! > 4096);
    else t.true(r.exits.ept_violation! < 64);
  }
});

test('a VM whose EPT holds a malformed leaf stops with ept-misconfig naming the GPA, not a crash or a retry loop', (t) => {
  const MiB = 1024 * 1024;
  const elf = new Uint8Array(readFileSync('build/guests/hello.elf'));
  let vmRef: ReturnType<typeof createVm> | null = null;
  const vm = createVm({ memory: 4 * MiB, ept: true, host: { thp: { enabled: 'never' } }, onConsole: () => vmRef!.pause() }, { bytes: elf, name: 'hello' });
  vmRef = vm;
  t.is(vm.run().stopReason, 'paused', 'paused at the first console output');
  // The page of hello's message (RSI, identity-mapped): make its 4 KiB EPT leaf W without R.
  const gpa = Number(vm.vcpu.reg('rsi')) & ~0xfff;
  const backend = vm.backend as unknown as { arena: { buffer: ArrayBuffer }; kvmMmu: { eptp: number } };
  const mem = new DataView(backend.arena.buffer);
  let table = Number(backend.kvmMmu.eptp) & ~0xfff;
  for (const shift of [39, 30, 21]) table = Number(mem.getBigUint64(table + ((gpa / 2 ** shift) & 511) * 8, true) & 0xffffffffff000n);
  const leaf = table + ((gpa >>> 12) & 511) * 8;
  mem.setBigUint64(leaf, (mem.getBigUint64(leaf, true) & ~7n) | 2n, true);
  vm.vcpu.native.invept();
  const r = vm.run()!;
  t.is(r.stopReason, 'ept-misconfig');
  t.is(r.exitStatus, null);
  t.is(r.exits.ept_misconfig, 1);
  // hello's code shares that page with its message: the next fetch is what meets the entry.
  const rip = vm.vcpu.reg('rip').toString(16);
  t.is(Number(vm.vcpu.reg('rip')) & ~0xfff, gpa);
  t.is(r.error!.message, `EPT misconfiguration at GPA 0x${rip} (fetch via GVA 0x${rip}, EPT level 1) at RIP 0x${rip}: a malformed EPT entry, a hypervisor bug`);
});
