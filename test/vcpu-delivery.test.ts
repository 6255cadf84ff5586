/**
 * Exception delivery per the SDM: the double-fault classes of Vol. 3 §6.15 (benign,
 * contributory, page fault: serial delivery, #DF, triple fault), the error codes delivery
 * faults carry (IDT/selector + EXT), #NP for not-present gates and code segments, RF and IF
 * in the pushed RFLAGS, trap gates, and exceptions counted once per delivery completed.
 */
import test from 'ava';
import { ExitReason } from '../src/native/types.ts';
import { CODE, DATA, GDT, IDT, STACK_TOP, installIdt, machineWith, type Machine } from './vcpu-harness.ts';

// Handler at CODE+0x800: records CR2, the error code / frame words and RSP, then stops.
const RECORD = `
.org 0x800
record:
  mov %cr2, %rax
  mov %rax, 0x300000
  mov (%rsp), %rax
  mov %rax, 0x300008
  mov 8(%rsp), %rax
  mov %rax, 0x300010
  mov 16(%rsp), %rax
  mov %rax, 0x300018
  mov 24(%rsp), %rax
  mov %rax, 0x300020
  mov %rsp, 0x300038
  hlt
`;
const H = CODE + 0x800;
const word = (m: Machine, i: number) => m.mem.getBigUint64(DATA + 8 * i, true);
const counters = (m: Machine, names: string[]) => Object.fromEntries(names.map((n) => [n, Number(m.counter(n))]));
const EXC = ['exc_de', 'exc_ud', 'exc_df', 'exc_np', 'exc_ss', 'exc_gp', 'exc_pf'];
const only = (_m: Machine, name: string) => ({ ...Object.fromEntries(EXC.map((n) => [n, 0])), [name]: 1 });
/** A 64-bit interrupt gate for vector v of an IDT at `base` (selector 0x08). */
function gateAt(m: Machine, base: number, v: number, target: number): void {
  m.mem.setBigUint64(base + v * 16, BigInt(target & 0xffff) | (8n << 16n) | (0x8en << 40n) | (BigInt(target >>> 16) << 48n), true);
  m.mem.setBigUint64(base + v * 16 + 8, 0n, true);
}

test('benign then contributory: #UD through a not-present gate delivers #NP(6*8+2+EXT) serially', (t) => {
  const m = machineWith(`ud2\n${RECORD}`);
  installIdt(m, { 6: H, 11: H });
  m.mem.setUint8(IDT + 6 * 16 + 5, 0x0e); // type 0xE, P = 0
  t.is(m.run(), ExitReason.HLT);
  t.deepEqual(counters(m, EXC), only(m, 'exc_np'));
  t.is(word(m, 1), 0x33n, 'error code: vector 6, IDT, EXT');
  t.is(word(m, 2), BigInt(CODE), 'pushed RIP: the UD2');
});

test('contributory then #PF: #GP whose IDT gate sits on a not-present page delivers that #PF serially', (t) => {
  // IDT base so that gate 13 ends a page (0x40fff) and gate 14 starts the next.
  const base = IDT + 0x1000 - 14 * 16;
  const m = machineWith(`movq (%rbx), %rax\n${RECORD}`);
  installIdt(m, {});
  gateAt(m, base, 13, H);
  gateAt(m, base, 14, H);
  m.setReg('idtr_base', base);
  m.mem.setBigUint64(m.pteAddr(IDT), 0n, true); // the page holding gate 13
  m.setReg('rbx', 0x0000800000000000n);
  t.is(m.run(), ExitReason.HLT);
  t.deepEqual(counters(m, EXC), only(m, 'exc_pf'));
  t.is(word(m, 0), BigInt(base + 13 * 16), 'CR2: the gate of #GP');
  t.is(word(m, 1), 0n, 'error code: read of a not-present page');
  t.is(word(m, 2), BigInt(CODE));
});

test('#PF then #PF, and #PF then contributory, become #DF(0); CR2 names the latest #PF', (t) => {
  // #PF on a data read; gate 14 on a not-present page: #PF while delivering #PF.
  const base = IDT + 0x1000 - 14 * 16; // gate 14 at the start of IDT's second page
  const m = machineWith(`movq (%rbx), %rax\n${RECORD}`);
  installIdt(m, {});
  gateAt(m, base, 8, H);
  m.setReg('idtr_base', base);
  m.mem.setBigUint64(m.pteAddr(IDT + 0x1000), 0n, true);
  m.mem.setBigUint64(m.pteAddr(0x5a1000), 0n, true);
  m.setReg('rbx', 0x5a1010);
  t.is(m.run(), ExitReason.HLT);
  t.deepEqual(counters(m, EXC), only(m, 'exc_df'));
  t.is(word(m, 0), BigInt(IDT + 0x1000), 'CR2: the gate read that faulted');
  t.is(word(m, 1), 0n, '#DF error code');

  // #PF whose gate is present but type 0: #GP while delivering #PF → #DF.
  const m2 = machineWith(`movq (%rbx), %rax\n${RECORD}`);
  installIdt(m2, { 8: H });
  m2.mem.setBigUint64(m2.pteAddr(0x5a1000), 0n, true);
  m2.setReg('rbx', 0x5a1010);
  t.is(m2.run(), ExitReason.HLT);
  t.deepEqual(counters(m2, EXC), only(m2, 'exc_df'));
  t.is(word(m2, 0), 0x5a1010n, 'CR2: the data address');
});

test('a non-canonical handler address: the delivery completes, then the fetch there raises #GP(0)', (t) => {
  const m = machineWith(`ud2\n${RECORD}`);
  installIdt(m, { 6: H, 13: H });
  m.mem.setBigUint64(IDT + 6 * 16 + 8, 0x8000n, true);
  t.is(m.run(), ExitReason.HLT);
  t.deepEqual(counters(m, ['exc_ud', 'exc_gp']), { exc_ud: 1, exc_gp: 1 });
  t.is(word(m, 1), 0n, 'error code 0');
  t.is(word(m, 2), 0x0000800000000000n + BigInt(H), 'pushed RIP: the non-canonical handler address');
  t.is(word(m, 7), BigInt(STACK_TOP - 48 - 48), 'two frames: #UD (40 bytes), then #GP (48) below it aligned to 16');
});

test('delivery checks the code segment: #GP(EXT), #GP(selector+EXT), #NP(selector+EXT)', (t) => {
  const cases: Array<[string, (m: Machine) => void, string, bigint]> = [
    ['selector names the data segment', (m) => m.mem.setUint16(IDT + 6 * 16 + 2, 0x10, true), 'exc_gp', 0x11n],
    ['selector outside the GDT', (m) => m.mem.setUint16(IDT + 6 * 16 + 2, 0x28, true), 'exc_gp', 0x29n],
    ['null selector', (m) => m.mem.setUint16(IDT + 6 * 16 + 2, 0, true), 'exc_gp', 1n],
    ['code segment not present', (m) => {
      m.setReg('gdtr_limit', 31);
      m.mem.setBigUint64(GDT + 24, 0x00201a0000000000n, true); // 64-bit code, P = 0
      m.mem.setUint16(IDT + 6 * 16 + 2, 0x18, true);
    }, 'exc_np', 0x19n],
    ['32-bit code segment (L = 0)', (m) => {
      m.setReg('gdtr_limit', 31);
      m.mem.setBigUint64(GDT + 24, 0x00409a0000000000n, true);
      m.mem.setUint16(IDT + 6 * 16 + 2, 0x18, true);
    }, 'exc_gp', 0x19n],
  ];
  for (const [what, prep, counter, err] of cases) {
    const m = machineWith(`ud2\n${RECORD}`);
    installIdt(m, { 6: H, 11: H, 13: H });
    prep(m);
    t.is(m.run(), ExitReason.HLT, what);
    t.deepEqual(counters(m, EXC), only(m, counter), what);
    t.is(word(m, 1), err, `${what}: error code`);
  }
});

test('pushed RFLAGS: RF set for faults; an interrupt gate clears IF, a trap gate keeps it; TF cleared', (t) => {
  for (const [type, ifAfter] of [[0x8e, 0n], [0x8f, 0x200n]] as const) {
    const m = machineWith(`ud2\n${RECORD}`);
    installIdt(m, { 6: H });
    m.mem.setUint8(IDT + 6 * 16 + 5, type);
    m.setReg('rflags', 0x302); // IF | TF
    t.is(m.run(), ExitReason.HLT);
    t.is(word(m, 3), 0x10302n, 'pushed RFLAGS: as they were, plus RF');
    t.is(m.reg('rflags') & 0x10300n, ifAfter, 'RF and TF clear in the handler; IF per gate type');
  }
});

test('the handler runs with CS.RPL = 0 whatever RPL the gate selector has; the old CS is pushed as it was', (t) => {
  const m = machineWith(`ud2\n${RECORD}`);
  installIdt(m, { 6: H });
  m.mem.setUint16(IDT + 6 * 16 + 2, 0x0b, true); // selector 0x08 with RPL 3
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('cs'), 8n);
  t.is(word(m, 2), 8n, 'pushed CS');
  t.is(m.counter('exc_ud'), 1n);
});

test('a non-canonical RSP at delivery is #SS(EXT), never a write to memory', (t) => {
  const m = machineWith(`ud2\n${RECORD}`);
  installIdt(m, { 6: H, 8: H, 12: H });
  m.setReg('rsp', 0xffff800000000020n); // canonical, but the frame below it is not
  t.is(m.run(), ExitReason.SHUTDOWN);
  // #UD → #SS(EXT) serially → #SS again (contributory twice) → #DF → #SS: triple fault.
  t.is(m.exitField('chain_len'), 5n);
  t.deepEqual(['vector0', 'vector1', 'vector2', 'vector3', 'vector4'].map((f) => m.exitField(f)), [6n, 12n, 12n, 8n, 12n]);
  t.deepEqual(['error1', 'error2', 'error3', 'error4'].map((f) => m.exitField(f)), [1n, 1n, 0n, 1n]);
  t.is(m.counter('stores'), 0n);
});

test('a non-canonical stack-segment reference (RSP/RBP base, PUSH/POP/RET/CALL) raises #SS(0), a DS one #GP(0)', (t) => {
  for (const [insn, vec] of [['movq (%rbp), %rax', 'exc_ss'], ['movq %rax, 8(%rsp,%rbx)', 'exc_ss'], ['incl (%rbp,%rcx,4)', 'exc_ss'], ['movq (%rbx), %rax', 'exc_gp'], ['movq (%rcx,%rbp), %rax', 'exc_gp']] as const) {
    const m = machineWith(`${insn}\n${RECORD}`);
    installIdt(m, { 12: H, 13: H });
    m.setReg('rbp', 0x0000800000000000n);
    m.setReg('rbx', 0x0000800000000000n);
    t.is(m.run(), ExitReason.HLT, insn);
    t.deepEqual(counters(m, EXC), only(m, vec), insn);
    t.is(word(m, 1), 0n, `${insn}: error code 0`);
    t.is(word(m, 2), BigInt(CODE), `${insn}: pushed RIP`);
  }
  // Implicit stack references with a non-canonical RSP: #SS(0) first; its delivery on the
  // same stack is #SS(EXT), then #DF, then triple fault.
  for (const insn of ['pushq %rax', 'popq %rax', 'ret', 'call .+5', 'pushq (%rbx)', 'iretq']) {
    const m = machineWith(`${insn}\n${RECORD}`);
    installIdt(m, { 8: H, 12: H, 13: H });
    m.setReg('rsp', 0x0000800000000010n);
    m.setReg('rbx', DATA);
    t.is(m.run(), ExitReason.SHUTDOWN, insn);
    t.deepEqual(['vector0', 'vector1', 'vector2', 'vector3', 'vector4'].map((f) => m.exitField(f)), [12n, 12n, 8n, 12n, 0xffn], insn);
    t.deepEqual(['error0', 'error1', 'error2', 'error3'].map((f) => m.exitField(f)), [0n, 1n, 0n, 1n], insn);
  }
});

test('a read-modify-write destination on a read-only page takes one #PF with W=1 and stays unchanged', (t) => {
  for (const insn of ['addl $1, (%rbx)', 'incq (%rbx)', 'notb (%rbx)', 'negw (%rbx)', 'shll $3, (%rbx)', 'btsq $5, (%rbx)', 'xchg %rcx, (%rbx)', 'sbbl %ecx, (%rbx)', 'orq $-1, (%rbx)']) {
    const m = machineWith(`${insn}\n${RECORD}`);
    installIdt(m, { 14: H });
    m.mem.setBigUint64(m.pteAddr(0x5a1000), 0x5a1001n, true); // present, read-only (WP = 1)
    m.mem.setBigUint64(0x5a1010, 0x1111n, true);
    m.setReg('rbx', 0x5a1010);
    t.is(m.run(), ExitReason.HLT, insn);
    t.is(m.counter('exc_pf'), 1n, insn);
    t.is(word(m, 1), 3n, `${insn}: error code P|W`);
    t.is(m.mem.getBigUint64(0x5a1010, true), 0x1111n, `${insn}: memory unchanged`);
  }
  // A read-only form (CMP, BT, TEST) reads the page without fault.
  for (const insn of ['cmpl $1, (%rbx)', 'btq $5, (%rbx)', 'testl $1, (%rbx)']) {
    const m = machineWith(`${insn}\nhlt`);
    m.mem.setBigUint64(m.pteAddr(0x5a1000), 0x5a1001n, true);
    m.setReg('rbx', 0x5a1010);
    t.is(m.run(), ExitReason.HLT, insn);
    t.is(m.counter('stores'), 0n, insn);
  }
});

test('a read-modify-write is one load and one store, and sets A and D with its one walk', (t) => {
  const m = machineWith('addl $1, (%rbx)\nhlt');
  m.setReg('rbx', 0x5a1010);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.counter('loads'), 1n);
  t.is(m.counter('stores'), 1n);
  t.is(m.mem.getUint32(0x5a1010, true), 1);
  t.is(m.mem.getBigUint64(m.pteAddr(0x5a1000), true) & 0x60n, 0x60n, 'A and D set');
});
