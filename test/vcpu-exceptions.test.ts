/**
 * Exceptions through the guest's 64-bit IDT: #PF with the SDM error code and CR2, #DE, #GP,
 * #UD, the interrupt frame and IRETQ, #DF when delivery faults, and triple fault (with and
 * without an IDT) reported in the exit record.
 */
import test from 'ava';
import { ExitReason } from '../src/native/types.ts';
import { CODE, DATA, IDT, STACK_TOP, installIdt, machineWith } from './vcpu-harness.ts';

// Handler at CODE+0x800: records CR2, the top 6 stack words (error code / frame) and RSP,
// then stops.
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
  mov 32(%rsp), %rax
  mov %rax, 0x300028
  mov 40(%rsp), %rax
  mov %rax, 0x300030
  mov %rsp, 0x300038
  hlt
`;
const H = CODE + 0x800;
const word = (m: { mem: DataView }, i: number) => m.mem.getBigUint64(DATA + 8 * i, true);

// SDM 6.15: #UD is benign, so the #GP its delivery raises (IDT limit 0: error vector*8 + 2
// (IDT) + 1 (EXT)) is delivered serially; that delivery raises a second #GP (contributory
// twice → #DF), and #DF's delivery a third: triple fault. QEMU 7.2 logs the same sequence
// (v=06, v=0d, v=08, then "Triple fault"); its #GP error code differs (vector*16 + 2).
test('an undefined opcode with no IDT: #UD -> #GP -> #GP -> #DF -> #GP -> triple fault, every error code recorded', (t) => {
  const m = machineWith('nop\nnop\n.byte 0x0f, 0xff\n'); // 0F FF: undefined
  t.is(m.run(), ExitReason.SHUTDOWN);
  t.is(m.exitField('reason'), BigInt(ExitReason.SHUTDOWN));
  t.is(m.exitField('chain_len'), 5n);
  const vectors = ['vector0', 'vector1', 'vector2', 'vector3', 'vector4', 'vector5'].map((f) => m.exitField(f));
  t.deepEqual(vectors, [6n, 13n, 13n, 8n, 13n, 0xffn]);
  const none = 0xffffffffffffffffn;
  const errors = ['error0', 'error1', 'error2', 'error3', 'error4', 'error5'].map((f) => m.exitField(f));
  t.deepEqual(errors, [none, 6n * 8n + 3n, 13n * 8n + 3n, 0n, 8n * 8n + 3n, none]);
  t.is(m.exitField('error_code'), 0n, '#UD has no error code');
  t.is(m.exitField('rip'), BigInt(CODE + 2));
  t.is(m.reg('rip'), BigInt(CODE + 2));
  t.is(m.exitField('insn_lo') & 0xffffn, 0xff0fn);
  t.is(m.exitField('insn_len'), 16n);
  t.is(m.counter('instructions'), 2n);
  // Counted when delivered: nothing reached a handler.
  t.is(m.counter('exc_ud') + m.counter('exc_gp') + m.counter('exc_df'), 0n);
  t.is(m.counter('exits_shutdown'), 1n);
  t.is(m.run(), ExitReason.SHUTDOWN, 'shutdown is final');
  t.is(m.counter('instructions'), 2n);
});

test('UD2 and encodings outside the subset (LOCK where the SDM forbids it, 67, F2 outside CMPS/SCAS, LZCNT) raise #UD through the IDT', (t) => {
  for (const insn of ['ud2', '.byte 0xf0, 0x01, 0xc8 # lock add %ecx, %eax', '.byte 0xf0, 0x83, 0x3c, 0x24, 0x01 # lock cmpl $1, (%rsp)',
    '.byte 0xf0, 0x48, 0x89, 0x04, 0x24 # lock mov %rax, (%rsp)', '.byte 0xf0, 0xff, 0xc0 # lock inc %eax', 'addr32 mov (%eax), %ecx', 'repne movsb', 'repne stosq', 'lzcnt %rcx, %rax', 'clflush (%rsp)',
    '.byte 0x0f, 0xc3, 0xc8 # movnti to a register', '.byte 0x66, 0x0f, 0xae, 0xe8 # 66 lfence', 'fxsave (%rsp)', 'rcl %eax', 'int $0x80', 'enter $8, $0']) {
    const m = machineWith(`${insn}\n${RECORD}`);
    installIdt(m, { 6: H });
    t.is(m.run(), ExitReason.HLT, insn);
    t.is(m.counter('exc_ud'), 1n, insn);
    t.is(word(m, 1), BigInt(CODE), `${insn}: pushed RIP is the faulting instruction`);
  }
});

test('#PF on a not-present page pushes error code 2 for a write, sets CR2, and IRETQ resumes after the handler maps it', (t) => {
  const target = 0x5a1238;
  const m = machineWith(`
    movq $0x1234, %rax
    movq %rax, (%rbx)
    movq (%rbx), %rcx
    hlt
  .org 0x800
    mov %cr2, %r8
    mov %r8, 0x300000
    mov (%rsp), %r8
    mov %r8, 0x300008
    mov 8(%rsp), %r8
    mov %r8, 0x300010
    movq $0x5a1003, (%rdx)     # map the page again (PTE address in RDX)
    invlpg (%rbx)
    add $8, %rsp               # drop the error code
    iretq
  `);
  installIdt(m, { 14: H });
  const pte = m.pteAddr(target);
  m.mem.setBigUint64(pte, 0n, true);
  m.setReg('rbx', target);
  m.setReg('rdx', pte);
  t.is(m.run(), ExitReason.HLT);
  t.is(word(m, 0), BigInt(target), 'CR2');
  t.is(word(m, 1), 2n, 'error code: not present, write');
  t.is(word(m, 2), BigInt(CODE + 7), 'pushed RIP = the faulting MOV');
  t.is(m.reg('rcx'), 0x1234n, 'the store was re-executed after IRETQ');
  t.is(m.reg('rsp'), BigInt(STACK_TOP));
  t.is(m.counter('exc_pf'), 1n);
  t.is(m.counter('invlpg'), 1n);
  t.is(m.counter('instructions'), 4n + 10n); // 4 main (the faulting MOV retires once, after IRETQ) + 10 handler
});

test('#PF error codes: read of a not-present page is 0, write to a read-only page is 3, fetch from a not-present page is 0x10 with CR2 = RIP', (t) => {
  const cases: Array<[string, (m: ReturnType<typeof machineWith>, pte: number) => void, bigint, number]> = [
    ['movq (%rbx), %rax', (m, pte) => m.mem.setBigUint64(pte, 0n, true), 0n, 0x5a1010],
    ['movb $1, (%rbx)', (m, pte) => m.mem.setBigUint64(pte, 0x5a1001n, true), 3n, 0x5a1010],
    ['jmp *%rbx', (m, pte) => m.mem.setBigUint64(pte, 0n, true), 0x10n, 0x5a1010],
  ];
  for (const [insn, prep, ec, addr] of cases) {
    const m = machineWith(`${insn}\n${RECORD}`);
    installIdt(m, { 14: H });
    prep(m, m.pteAddr(addr));
    m.setReg('rbx', addr);
    t.is(m.run(), ExitReason.HLT, insn);
    t.is(word(m, 0), BigInt(addr), `${insn}: CR2`);
    t.is(word(m, 1), ec, `${insn}: error code`);
    // A fetch fault is taken at the target: the pushed RIP is the jump target itself.
    t.is(word(m, 2), insn.startsWith('jmp') ? BigInt(addr) : BigInt(CODE), `${insn}: pushed RIP`);
  }
});

test('the interrupt frame is SS, RSP, RFLAGS, CS, RIP (+ error code) on a 16-byte aligned stack; #DE has no error code', (t) => {
  const m = machineWith(`
    xor %ecx, %ecx
    mov $7, %eax
    div %ecx
    ${RECORD}`);
  installIdt(m, { 0: H });
  m.setReg('rsp', STACK_TOP - 8); // misaligned: the CPU aligns before pushing
  m.setReg('rflags', 0x202);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.counter('exc_de'), 1n);
  t.is(word(m, 1), BigInt(CODE + 7), 'RIP of the DIV');
  t.is(word(m, 2), 8n, 'CS');
  t.is(word(m, 3), 0x10246n, 'RFLAGS as they were (ZF, PF from XOR, IF) with RF set: a fault (SDM 17.3.1.1)');
  t.is(word(m, 4), BigInt(STACK_TOP - 8), 'old RSP');
  t.is(word(m, 5), 0x10n, 'SS');
  t.is(word(m, 7), BigInt(STACK_TOP - 16 - 40), 'frame of 5 words below the aligned RSP');
  t.is(m.reg('rflags') & 0x200n, 0n, 'an interrupt gate clears IF');
});

test('IDIV overflow (INT64_MIN / -1) raises #DE; DIV with a quotient too large raises #DE', (t) => {
  for (const [src, rax, rdx] of [['idiv %rcx', 0x8000000000000000n, 0xffffffffffffffffn], ['div %rcx', 0n, 5n]] as const) {
    const m = machineWith(`${src}\n${RECORD}`);
    installIdt(m, { 0: H });
    m.setReg('rax', rax);
    m.setReg('rdx', rdx);
    m.setReg('rcx', src.startsWith('idiv') ? 0xffffffffffffffffn : 3n);
    t.is(m.run(), ExitReason.HLT, src);
    t.is(m.counter('exc_de'), 1n, src);
    t.is(word(m, 1), BigInt(CODE), `${src}: pushed RIP`);
    t.is(m.reg('rdx'), rdx, `${src}: RDX unchanged`);
  }
});

test('a non-canonical data address raises #GP(0); a jump to one faults at the jump', (t) => {
  for (const insn of ['movq (%rbx), %rax', 'jmp *%rbx', 'call *%rbx']) {
    const m = machineWith(`${insn}\n${RECORD}`);
    installIdt(m, { 13: H });
    m.setReg('rbx', 0x0000800000000000n);
    t.is(m.run(), ExitReason.HLT, insn);
    t.is(m.counter('exc_gp'), 1n, insn);
    t.is(word(m, 1), 0n, `${insn}: error code 0`);
    t.is(word(m, 2), BigInt(CODE), `${insn}: pushed RIP`);
  }
});

test('contributory faults while delivering become #DF (error code 0); a fault while delivering #DF is a triple fault', (t) => {
  const m = machineWith(`ud2\n${RECORD}`);
  installIdt(m, { 8: H });
  // Gate 6 empty (type 0): #GP(6*8+3) delivered serially after the benign #UD; gate 13 is
  // empty too: #GP while delivering #GP → #DF.
  m.mem.setBigUint64(IDT + 6 * 16, 0n, true);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.counter('exc_ud'), 0n);
  t.is(m.counter('exc_gp'), 0n);
  t.is(m.counter('exc_df'), 1n);
  t.is(word(m, 1), 0n, '#DF error code');
  t.is(word(m, 2), BigInt(CODE));
  t.is(word(m, 4), 0x2n, '#DF is an abort: RF is not set in the pushed RFLAGS');

  const m2 = machineWith(`ud2\n${RECORD}`);
  installIdt(m2, { 6: H, 8: H });
  m2.setReg('rsp', 0x0000800000000010n); // every push is non-canonical: #SS(EXT)
  t.is(m2.run(), ExitReason.SHUTDOWN);
  // #UD → #SS(1) serially → gate 12 empty: #GP(12*8+3) → #DF → #SS(1) → triple fault.
  t.deepEqual(['vector0', 'vector1', 'vector2', 'vector3', 'vector4'].map((f) => m2.exitField(f)), [6n, 12n, 13n, 8n, 12n]);
  t.deepEqual(['error1', 'error2', 'error3', 'error4'].map((f) => m2.exitField(f)), [1n, 99n, 0n, 1n]);
  t.is(m2.exitField('rip'), BigInt(CODE));
  t.is(m2.exitField('insn_lo') & 0xffffn, 0x0b0fn);
});

test('#PF while pushing the frame (stack page not present) escalates to #DF, then triple fault, CR2 = the stack address', (t) => {
  const m = machineWith('movq (%rbx), %rax\n');
  installIdt(m, { 8: CODE + 0x800, 14: CODE + 0x800 });
  m.setReg('rbx', 0x0000800000000000n); // #GP first
  m.mem.setBigUint64(m.pteAddr(STACK_TOP - 8), 0n, true);
  t.is(m.run(), ExitReason.SHUTDOWN);
  // #GP(0) → gate 13 empty: #GP(13*8+3) → #DF → its first push: #PF(W) → triple fault.
  t.deepEqual(['vector0', 'vector1', 'vector2', 'vector3'].map((f) => m.exitField(f)), [13n, 13n, 8n, 14n]);
  t.deepEqual(['error0', 'error1', 'error2', 'error3'].map((f) => m.exitField(f)), [0n, 107n, 0n, 2n]);
  t.is(m.exitField('cr2'), BigInt(STACK_TOP - 8));
  t.is(m.exitField('error_code'), 0n);
  t.is(m.counter('exc_gp'), 0n);
  t.is(m.counter('exc_df'), 0n);
});

test('a guest stuck re-faulting still returns at the budget', (t) => {
  const m = machineWith('ud2\n');
  installIdt(m, { 6: CODE }); // the handler is the UD2 itself
  t.is(m.run(1000), ExitReason.BUDGET);
  t.is(m.counter('exc_ud'), 1000n);
  t.is(m.counter('instructions'), 0n);
});

test('INT3 is a trap: #BP pushes the RIP after it and RFLAGS without RF, retires it and counts exc_bp', (t) => {
  const m = machineWith(`nop\nint3\nnop\n${RECORD}`);
  installIdt(m, { 3: H });
  t.is(m.run(), ExitReason.HLT);
  t.is(word(m, 1), BigInt(CODE + 2), 'pushed RIP: the instruction after INT3');
  t.is(word(m, 3) & 0x10000n, 0n, 'RF clear in the pushed RFLAGS');
  t.is(m.counter('exc_bp'), 1n);
  t.is(m.counter('instructions'), 2n + 16n, 'NOP, INT3 and the handler up to its HLT');
});

test('a fault delivering INT3 is reported on the INT3: #GP(3*8+2+EXT) with its RIP, not retired', (t) => {
  const m = machineWith(`nop\nint3\nnop\n${RECORD}`);
  installIdt(m, { 13: H }); // gate 3 empty: #GP(vector*8 + 2 + 1)
  t.is(m.run(), ExitReason.HLT);
  t.is(word(m, 1), 3n * 8n + 3n, 'error code');
  t.is(word(m, 2), BigInt(CODE + 1), 'pushed RIP: the INT3');
  t.is(m.counter('exc_bp'), 0n);
  t.is(m.counter('exc_gp'), 1n);
  t.is(m.counter('instructions'), 1n + 16n, 'INT3 did not retire');
});

test('POPF at CPL 0 loads the arithmetic flags, DF, IOPL, NT, AC and ID; bit 1 stays set, RF, VM and reserved bits clear', (t) => {
  const m = machineWith('pushq $-1\nandq $~0x300, (%rsp)\npopfq\npushfq\npopq %rbx\npushq $0\npopfq\nhlt');
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rbx'), 0x247cd7n);
  t.is(m.reg('rflags'), 2n);
});

test('IRETQ with RFLAGS.NT set raises #GP(0): IA-32e mode has no task return', (t) => {
  const m = machineWith(`pushq $0x4002\npopfq\niretq\n${RECORD}`);
  installIdt(m, { 13: H });
  t.is(m.run(), ExitReason.HLT);
  t.is(word(m, 1), 0n, 'error code');
  t.is(word(m, 2), BigInt(CODE + 6), 'pushed RIP: the IRETQ');
  t.is(word(m, 4) & 0x4000n, 0x4000n, 'pushed RFLAGS has NT');
  t.is(m.reg('rflags') & 0x4000n, 0n, 'delivery clears NT');
});
