/**
 * Execution semantics beyond single ALU results: exact instruction counts and the budget
 * exit, port I/O exits (OUT value, IN completion on the next run), HLT, page-crossing
 * accesses, self-modifying code and TS writes to code, RIP-relative addressing, strings
 * with REP/REPE and DF, stack and calls, RDTSC, CPUID, control and descriptor registers,
 * segment loads, and MMIO exits.
 */
import test from 'ava';
import { ExitReason } from '../src/native/types.ts';
import { CODE, DATA, GDT, PML4, STACK_TOP, assemble, installIdt, machineWith, makeMachine } from './vcpu-harness.ts';

test('a loop retires exactly the instructions it executes, and the budget stops it mid-block', (t) => {
  const src = 'mov $100, %ecx\nxor %eax, %eax\n1: add %ecx, %eax\ndec %ecx\njnz 1b\nhlt';
  const m = machineWith(src);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.counter('instructions'), 2n + 300n + 1n);
  t.is(m.reg('rax'), 5050n);
  t.is(m.exitField('rip'), BigInt(CODE + 13), 'the exit names the HLT');
  t.is(m.reg('rip'), BigInt(CODE + 14), 'RIP is past the HLT');

  const b = machineWith(src);
  t.is(b.run(4), ExitReason.BUDGET);
  t.is(b.counter('instructions'), 4n);
  t.is(b.reg('rip'), BigInt(CODE + 11), 'stopped after MOV, XOR, ADD, DEC: at the JNZ');
  t.is(b.reg('rcx'), 99n);
  let runs = 1;
  while (b.run(7) === ExitReason.BUDGET) runs++;
  t.is(b.counter('instructions'), 303n);
  t.is(runs, 1 + Math.floor((303 - 4) / 7)); // budget exits: the first run and every full slice of 7
  t.is(b.counter('exits_budget'), BigInt(runs));
  t.is(b.counter('exits'), 1n, 'a budget exit is not a VM exit');
  t.is(b.reg('rax'), 5050n);
});

test('OUT exits with port, size and value; IN completes on the next run into AL (merged) or EAX (zero-extended)', (t) => {
  const m = machineWith(`
    mov $0x41, %al
    out %al, $0xf6
    mov $0x3f8, %dx
    mov $0xdeadbeef, %eax
    out %eax, %dx
    mov $-1, %rax
    mov $0x3fd, %dx
    in %dx, %al
    in $0x80, %eax
    hlt`);
  t.is(m.run(), ExitReason.IO);
  t.deepEqual([m.exitField('io_port'), m.exitField('io_size'), m.exitField('io_direction'), m.exitField('value')], [0xf6n, 1n, 0n, 0x41n]);
  t.is(m.exitField('rip'), BigInt(CODE + 2));
  t.is(m.run(), ExitReason.IO);
  t.deepEqual([m.exitField('io_port'), m.exitField('io_size'), m.exitField('value')], [0x3f8n, 4n, 0xdeadbeefn]);
  t.is(m.run(), ExitReason.IO);
  t.deepEqual([m.exitField('io_port'), m.exitField('io_size'), m.exitField('io_direction')], [0x3fdn, 1n, 1n]);
  m.setExitField('value', 0x60n);
  t.is(m.run(), ExitReason.IO);
  t.is(m.reg('rax'), 0xffffffffffffff60n, 'IN AL merges into RAX');
  t.deepEqual([m.exitField('io_port'), m.exitField('io_size')], [0x80n, 4n]);
  m.setExitField('value', 0x12345678n);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rax'), 0x12345678n, 'IN EAX zero-extends');
  t.is(m.counter('exits_io'), 4n);
  t.is(m.counter('exits_hlt'), 1n);
  t.is(m.counter('instructions'), 10n);
});

test('page-crossing loads and stores move every byte; a store whose second page faults changes nothing', (t) => {
  const m = machineWith(`
    movabs $0x1122334455667788, %rax
    mov %rax, (%rbx)
    mov (%rbx), %rcx
    movl $0xaabbccdd, 0x1000(%rbx)
    mov 0x1000(%rbx), %edx
    hlt`);
  const at = DATA + 0x1000 - 3;
  m.setReg('rbx', at);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rcx'), 0x1122334455667788n);
  t.is(m.mem.getBigUint64(at, true), 0x1122334455667788n);
  t.is(m.reg('rdx'), 0xaabbccddn);
  t.is(m.counter('loads'), 2n);
  t.is(m.counter('stores'), 2n);

  const f = machineWith(`mov %rax, (%rbx)\n.org 0x800\nhlt`);
  installIdt(f, { 14: CODE + 0x800 });
  f.setReg('rbx', at);
  f.setReg('rax', -1);
  f.mem.setBigUint64(f.pteAddr(DATA + 0x1000), 0n, true);
  t.is(f.run(), ExitReason.HLT);
  t.is(f.reg('cr2'), BigInt(DATA + 0x1000), 'CR2 is the first byte on the missing page');
  t.is(f.mem.getUint32(at, true) & 0xffffff, 0, 'the first page was not written');
});

test('self-modifying code: a store into the running block takes effect on the next instruction', (t) => {
  // `movb $2, 1f+1(%rip)` rewrites the immediate of the very next instruction.
  const m = machineWith(`
    movb $2, 1f+1(%rip)
1:  mov $1, %al
    hlt`);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rax') & 0xffn, 2n);
  t.is(m.counter('instructions'), 3n);
});

test('self-modifying code in a loop, and bytes written by TS between runs, are always re-decoded', (t) => {
  // Each iteration patches the ADD's immediate with the loop counter.
  const m = machineWith(`
    mov $5, %ecx
    xor %eax, %eax
1:  mov %cl, 2f+2(%rip)
2:  add $0, %eax
    dec %ecx
    jnz 1b
    hlt`);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rax'), 15n);
  t.true(m.counter('decode_cache_invalidations') >= 4n);

  const w = machineWith('mov $1, %eax\nhlt');
  t.is(w.run(), ExitReason.HLT);
  t.is(w.reg('rax'), 1n);
  w.load(assemble('mov $7, %eax\nhlt'));
  w.setReg('rip', CODE);
  t.is(w.run(), ExitReason.HLT);
  t.is(w.reg('rax'), 7n);
});

test('self-modifying code: patching a cached block in another page is seen the next time it runs', (t) => {
  const m = machineWith(`
    call f
    mov %eax, %ebx
    movb $9, f+1(%rip)
    call f
    hlt
  .org 0x1800
f:  mov $4, %eax
    ret`);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rbx'), 4n);
  t.is(m.reg('rax'), 9n);
  t.is(m.counter('decode_cache_invalidations'), 1n);
});

test('RIP-relative operands address from the next instruction', (t) => {
  const m = machineWith(`
    lea data(%rip), %rbx
    mov data+8(%rip), %rax
    addq $5, data(%rip)
    mov data(%rip), %rcx
    hlt
    .balign 8
data: .quad 10, 0x77`);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rbx'), BigInt(CODE + 32));
  t.is(m.reg('rax'), 0x77n);
  t.is(m.reg('rcx'), 15n);
});

test('REP MOVSB/STOSQ and LODSB forward, REP MOVSB backward with STD, REPE CMPSB stops at the first difference', (t) => {
  const m = machineWith(`
    mov $0x300000, %rsi
    mov $0x301000, %rdi
    mov $5, %ecx
    rep movsb
    mov %rsi, %r8
    mov %rdi, %r9
    std
    mov $0x300004, %rsi
    mov $0x302004, %rdi
    mov $5, %ecx
    rep movsb
    cld
    mov $0x303000, %rdi
    mov $3, %ecx
    movabs $0x0102030405060708, %rax
    rep stosq
    mov $0x300000, %rsi
    lodsb
    mov %al, %bl
    mov $0x300000, %rsi
    mov $0x304000, %rdi
    mov $5, %ecx
    repe cmpsb
    hlt`);
  const src = [1, 2, 3, 9, 5];
  src.forEach((b, i) => m.mem.setUint8(DATA + i, b));
  [1, 2, 3, 4, 5].forEach((b, i) => m.mem.setUint8(DATA + 0x4000 + i, b));
  t.is(m.run(), ExitReason.HLT);
  t.deepEqual([...m.bytes.subarray(DATA + 0x1000, DATA + 0x1005)], src);
  t.is(m.reg('r8'), BigInt(DATA + 5));
  t.is(m.reg('r9'), BigInt(DATA + 0x1005));
  t.deepEqual([...m.bytes.subarray(DATA + 0x2000, DATA + 0x2005)], src, 'backward copy');
  t.is(m.mem.getBigUint64(DATA + 0x3010, true), 0x0102030405060708n);
  t.is(m.mem.getBigUint64(DATA + 0x3018, true), 0n);
  t.is(m.reg('rbx') & 0xffn, 1n);
  // 1,2,3 equal; 9 vs 4 differs at the 4th: RCX = 5 - 4, RSI/RDI past it, ZF = 0, CF = 0 (9 > 4)
  t.is(m.reg('rcx'), 1n);
  t.is(m.reg('rsi'), BigInt(DATA + 4));
  t.is(m.reg('rdi'), BigInt(DATA + 0x4004));
  t.is(m.reg('rflags') & 0x41n, 0n);
  t.is(m.reg('rflags') & 0x400n, 0n, 'DF cleared again');
  t.is(m.counter('stores'), 5n + 5n + 3n);
  t.is(m.counter('loads'), 5n + 5n + 1n + 8n);
});

// The run() budget counts a REP iteration as one unit (native/cpu.cc Cpu::run), so a REP with
// RCX = 2^64 - 1 cannot outrun it: the run stops between two iterations with RCX/RDI exact,
// RIP on the REP and nothing retired.
test('a REP STOSB with RCX = 2^64-1 stops within a small budget with exact RCX/RDI progress', (t) => {
  const m = machineWith('rep stosb\nhlt');
  m.setReg('rcx', 0xffffffffffffffffn);
  m.setReg('rdi', DATA);
  m.setReg('rax', 0xab);
  t.is(m.run(5), ExitReason.BUDGET);
  t.is(m.exitField('budget_used'), 5n);
  t.is(m.counter('instructions'), 0n, 'the REP has not retired');
  t.is(m.reg('rip'), BigInt(CODE), 'RIP stays on the REP');
  t.is(m.reg('rcx'), 0xffffffffffffffffn - 5n);
  t.is(m.reg('rdi'), BigInt(DATA + 5));
  t.is(m.counter('stores'), 5n);
  t.is(m.run(1), ExitReason.BUDGET);
  t.is(m.reg('rcx'), 0xffffffffffffffffn - 6n, 'a budget of 1 still makes one iteration of progress');
  t.is(m.run(1000), ExitReason.BUDGET);
  t.is(m.exitField('budget_used'), 1000n);
  t.is(m.reg('rdi'), BigInt(DATA + 1006));
  t.is(m.counter('instructions'), 0n);
  t.deepEqual([...m.bytes.subarray(DATA + 1004, DATA + 1008)], [0xab, 0xab, 0, 0]);
});

test('a REP split over many small budgets ends in the state and instruction count of one run', (t) => {
  // Each REP sits mid-block, between ordinary instructions; the last one has RCX = 0.
  const src = `
    mov $0x300000, %rdi
    mov $5000, %ecx
    mov $0xcd, %al
    rep stosb
    mov $0x300000, %rsi
    mov $0x310000, %rdi
    mov $5000, %ecx
    rep movsb
    mov $0x300000, %rsi
    mov $0x310000, %rdi
    mov $5000, %ecx
    repe cmpsb
    mov %rcx, %rbx
    mov $0, %ecx
    rep lodsb
    hlt`;
  const one = machineWith(src);
  t.is(one.run(), ExitReason.HLT);
  // 11 movs + 4 REPs + hlt retire; units: 12 ordinary + 5000 + 5000 + 5000 + 1 (RCX = 0)
  t.is(one.counter('instructions'), 16n);
  t.is(one.exitField('budget_used'), 12n + 15000n + 1n);
  for (const slice of [1, 7, 4999, 5001]) {
    const m = machineWith(src);
    let runs = 1;
    let used = 0n;
    let why;
    while ((why = m.run(slice)) === ExitReason.BUDGET) {
      t.is(m.exitField('budget_used'), BigInt(slice));
      used += BigInt(slice);
      runs++;
    }
    t.is(why, ExitReason.HLT);
    used += m.exitField('budget_used');
    t.is(used, 15013n, `slice ${slice}: the same units`);
    t.is(runs, Math.ceil(15013 / slice), `slice ${slice}: every run but the last used its whole budget`);
    t.is(m.counter('instructions'), 16n, `slice ${slice}: each REP retired once`);
    for (const r of ['rax', 'rbx', 'rcx', 'rsi', 'rdi', 'rip', 'rflags'] as const) t.is(m.reg(r), one.reg(r), `slice ${slice}: ${r}`);
    t.deepEqual(m.bytes.subarray(DATA, DATA + 0x12000), one.bytes.subarray(DATA, DATA + 0x12000));
    for (const c of ['loads', 'stores'] as const) t.is(m.counter(c), one.counter(c), `slice ${slice}: ${c}`);
  }
  t.is(one.reg('rbx'), 0n, 'REPE CMPSB compared every pair equal');
  t.is(one.reg('rflags') & 0x40n, 0x40n);
});

test('CALL/RET/PUSH/POP, RET imm16, LOOP and indirect jumps keep the stack exact', (t) => {
  const m = machineWith(`
    push $-2
    pushq $7
    call f
    pop %rbx
    pop %rdx
    mov $3, %ecx
    xor %eax, %eax
2:  inc %eax
    loop 2b
    lea 3f(%rip), %r9
    jmp *%r9
    ud2
3:  hlt
f:  mov 8(%rsp), %r8
    ret $8`);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('r8'), 7n);
  t.is(m.reg('rbx'), 0xfffffffffffffffen);
  t.is(m.reg('rsp'), BigInt(STACK_TOP + 8), 'RET 8 released one slot, so one POP read above the top');
  t.is(m.reg('rax'), 3n);
  t.is(m.reg('rcx'), 0n);
});

test('IMUL r, r and SHL/SHR/SAR r, imm set the flags the SDM leaves undefined as the portable flags do: SF ZF PF of the result, AF 0', (t) => {
  // [instruction, rax, rcx, the arithmetic flags after] with CF, AF and OF set beforehand.
  const cases: [string, bigint, bigint, bigint][] = [
    ['imul %rcx, %rax', 0n, 5n, 0x44n], // 0: ZF PF
    ['imul %rcx, %rax', 0xffffffffffffffffn, 3n, 0x80n], // -3 = ..fd: SF, odd parity
    ['imul %rcx, %rax', 1n << 62n, 4n, 0x845n], // overflows to 0: ZF PF CF OF
    ['imul %ecx, %eax', 0x10000n, 0x10000n, 0x845n], // 2^32 overflows 32 bits to 0
    ['shr $4, %rax', 0x10n, 0n, 0x0n], // 1, CF = bit 3 = 0
    ['shr $4, %rax', 0x8000000000000018n, 0n, 0x801n], // CF = bit 3 = 1, OF = the old sign, odd parity
    ['sar $1, %rax', 0x8000000000000000n, 0n, 0x84n], // SF, PF of 0x00
    ['shl $1, %eax', 0xc0000000n, 0n, 0x85n], // 0x80000000: SF PF CF, OF = SF xor CF = 0
  ];
  for (const [insn, rax, rcx, flags] of cases) {
    const m = machineWith(`${insn}\nhlt`);
    m.setReg('rax', rax);
    m.setReg('rcx', rcx);
    m.setReg('rflags', 0x2n | 0x1n | 0x10n | 0x800n);
    t.is(m.run(), ExitReason.HLT);
    t.is(m.reg('rflags') & 0x8d5n, flags, `${insn} with rax ${rax.toString(16)}, rcx ${rcx}`);
  }
});

test('a hot loop that ends in an unfused branch and a store: runs of any budget end where one run ends', (t) => {
  // The block (store, add, cmp with memory, jne) is not fused (CMP reads memory): each pass
  // ends on the JNE's own handler; budgets cut it at every position.
  const src = `
    mov $${DATA}, %edi
    xor %eax, %eax
1:  mov %rax, (%rdi,%rax,8)
    add $1, %rax
    cmp 0x800(%rdi), %rax
    jne 1b
    hlt`;
  const setup = (m: ReturnType<typeof machineWith>) => m.mem.setBigUint64(DATA + 0x800, 25n, true);
  const whole = machineWith(src);
  setup(whole);
  t.is(whole.run(), ExitReason.HLT);
  const total = 2n + 4n * 25n + 1n;
  t.is(whole.counter('instructions'), total);
  t.is(whole.counter('stores'), 25n);
  t.is(whole.counter('decode_cache_hits'), total, 'one hit per instruction executed');
  for (const piece of [1, 2, 3, 4, 5, 9]) {
    const m = machineWith(src);
    setup(m);
    let used = 0n;
    while (m.run(piece) === ExitReason.BUDGET) used += BigInt(piece);
    t.is(m.reg('rax'), 25n, `runs of ${piece}`);
    t.is(m.mem.getBigUint64(DATA + 24 * 8, true), 24n, `runs of ${piece}`);
    t.is(m.counter('instructions'), total, `runs of ${piece}`);
    t.is(m.counter('loads'), whole.counter('loads'), `runs of ${piece}`);
    t.is(m.counter('stores'), 25n, `runs of ${piece}`);
    t.is(used + m.exitField('budget_used'), total, `runs of ${piece}: one unit per instruction`);
  }
});

test('RDTSC in a hot loop reads the instructions retired before it on every pass, in one run and in runs of any budget', (t) => {
  // The loop block (rdtsc, mov, add, dec+jnz) reruns without a lookup and is charged once per
  // pass: each RDTSC must still see every instruction before it, and a budget that ends
  // anywhere in a pass must change nothing.
  const src = `
    mov $6, %ecx
    mov $${DATA}, %edi
1:  rdtsc
    mov %eax, (%rdi)
    add $8, %rdi
    dec %ecx
    jnz 1b
    hlt`;
  const expected = [0, 1, 2, 3, 4, 5].map((j) => BigInt(100 + 2 + 5 * j));
  const tscs = (m: ReturnType<typeof machineWith>) => [0, 1, 2, 3, 4, 5].map((j) => m.mem.getBigUint64(DATA + 8 * j, true));
  const whole = machineWith(src);
  whole.setReg('tsc_offset', 100);
  t.is(whole.run(), ExitReason.HLT);
  t.deepEqual(tscs(whole), expected);
  t.is(whole.counter('instructions'), 2n + 5n * 6n + 1n);
  t.is(whole.counter('decode_cache_hits'), 2n + 5n * 6n + 1n, 'one hit per instruction executed');
  for (const piece of [1, 2, 3, 4, 5, 6, 7, 11]) {
    const m = machineWith(src);
    m.setReg('tsc_offset', 100);
    let used = 0n;
    while (m.run(piece) === ExitReason.BUDGET) used += BigInt(piece);
    t.deepEqual(tscs(m), expected, `runs of ${piece}`);
    t.is(m.counter('instructions'), 2n + 5n * 6n + 1n, `runs of ${piece}`);
    t.is(used + m.exitField('budget_used'), 2n + 5n * 6n + 1n, `runs of ${piece}: one unit per instruction`);
  }
});

test('RDTSC is tsc_offset plus instructions retired before it; CPUID reports the vendor and exactly the implemented feature bits', (t) => {
  const m = machineWith(`
    nop
    nop
    rdtsc
    mov %eax, %r8d
    mov $0, %eax
    cpuid
    mov %ebx, %r9d
    mov %edx, %r10d
    mov %ecx, %r11d
    mov $0x80000001, %eax
    cpuid
    mov %edx, %r12d
    mov %ecx, %r13d
    mov $1, %eax
    cpuid
    mov %ecx, %r14d
    mov %edx, %r15d
    hlt`);
  m.setReg('tsc_offset', 1000);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('r8'), 1002n);
  const vendor = Buffer.alloc(12);
  vendor.writeUInt32LE(Number(m.reg('r9')), 0);
  vendor.writeUInt32LE(Number(m.reg('r10')), 4);
  vendor.writeUInt32LE(Number(m.reg('r11')), 8);
  t.is(vendor.toString(), 'HugeVisorCPU');
  const edx = m.reg('r12');
  t.is((edx >> 29n) & 1n, 1n, 'LM');
  t.is((edx >> 20n) & 1n, 1n, 'NX');
  t.is((edx >> 26n) & 1n, 1n, '1 GiB pages');
  t.is(edx, 0x24100000n, 'nothing else in 0x80000001 EDX (no SYSCALL)');
  t.is(m.reg('r13'), 0x101n, '0x80000001 ECX: LAHF/SAHF in 64-bit mode, PREFETCHW; no LZCNT (ABM)');
  t.is(m.reg('r14'), 0n, 'leaf 1 ECX: no SSE3..., POPCNT, CMPXCHG16B');
  t.is(m.reg('r15'), 0x8058n, 'leaf 1 EDX: PSE TSC PAE CMOV only (no FPU, CX8, SSE, SSE2)');
});

test('MOV to CR3 flushes and counts; INVLPG counts; LGDT/SGDT/LIDT/SIDT round-trip; CR0/CR4 reads', (t) => {
  const m = machineWith(`
    mov %cr3, %rax
    mov %rax, %cr3
    invlpg (%rax)
    sgdt 0x300000
    movw $0x1ff, 0x300010
    movq $0x305000, 0x300012
    lidt 0x300010
    sidt 0x300020
    mov %cr0, %rbx
    mov %cr4, %rcx
    hlt`);
  const flushes = m.counter('tlb_flushes');
  t.is(m.run(), ExitReason.HLT);
  t.is(m.counter('cr3_writes'), 1n);
  t.is(m.counter('invlpg'), 1n);
  t.true(m.counter('tlb_flushes') > flushes);
  t.is(m.mem.getUint16(DATA, true), 23);
  t.is(m.mem.getBigUint64(DATA + 2, true), BigInt(GDT));
  t.is(m.reg('idtr_base'), 0x305000n);
  t.is(m.reg('idtr_limit'), 0x1ffn);
  t.is(m.mem.getUint16(DATA + 0x20, true), 0x1ff);
  t.is(m.reg('rbx'), 0x80010031n);
  t.is(m.reg('rcx'), 0x20n);
  t.is(m.reg('rax'), BigInt(PML4));
});

test('clearing CR0.PG, setting a reserved CR4 bit or loading a selector beyond the GDT raise #GP', (t) => {
  for (const [insn, ec] of [
    ['mov %cr0, %rax\nbtr $31, %rax\nmov %rax, %cr0', 0n],
    ['mov %cr4, %rax\nbts $17, %rax\nmov %rax, %cr4', 0n],
    ['mov $0x18, %ax\nmov %ax, %ds', 0x18n],
    ['mov $0x08, %ax\nmov %ax, %ss', 0x08n],
  ] as const) {
    const m = machineWith(`${insn}\nhlt\n.org 0x800\nmov (%rsp), %r15\nhlt`);
    installIdt(m, { 13: CODE + 0x800 });
    t.is(m.run(), ExitReason.HLT, insn);
    t.is(m.counter('exc_gp'), 1n, insn);
    t.is(m.reg('r15'), ec, `${insn}: error code`);
  }
  const ok = machineWith('mov $0x10, %ax\nmov %ax, %es\nxor %eax, %eax\nmov %ax, %fs\nmov %es, %ebx\nhlt');
  t.is(ok.run(), ExitReason.HLT);
  t.is(ok.reg('es'), 0x10n);
  t.is(ok.reg('fs'), 0n);
  t.is(ok.reg('rbx'), 0x10n);
});

test('an access outside guest memory is an MMIO exit that does not retire the instruction', (t) => {
  const m = makeMachine({ memory: 8 << 20 });
  m.load(assemble('mov $5, %eax\nmov (%rbx), %rcx\nhlt'));
  // Map the page at DATA to a guest-physical page beyond the 8 MiB of guest memory.
  m.mem.setBigUint64(m.pteAddr(DATA), 0x10000003n | 0n, true);
  m.setReg('rbx', DATA + 0x18);
  t.is(m.run(), ExitReason.MMIO);
  t.is(m.exitField('gpa'), 0x10000018n);
  t.is(m.exitField('gva'), BigInt(DATA + 0x18));
  t.is(m.exitField('rip'), BigInt(CODE + 5));
  t.is(m.reg('rip'), BigInt(CODE + 5));
  t.is(m.counter('instructions'), 1n);
  t.is(m.counter('exits_mmio'), 1n);
  // TS "fixes the mapping" and resumes: the instruction re-executes.
  m.mem.setBigUint64(m.pteAddr(DATA), BigInt(DATA | 3), true);
  m.vcpu.flushTlb();
  m.mem.setBigUint64(DATA + 0x18, 42n, true);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rcx'), 42n);
  t.is(m.counter('instructions'), 3n);
});

test('2 MiB guest pages run the same code with the same results', (t) => {
  const m = machineWith('mov $0x300000, %rbx\nmovq $9, (%rbx)\nmov (%rbx), %rax\nhlt', { pageSize: 2097152 });
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rax'), 9n);
});

test('GNU as alignment padding (data16 cs nopw, nopl) executes as NOPs; FS/GS overrides stay outside the subset', (t) => {
  const m = machineWith('mov $1, %eax\n.p2align 5\ninc %eax\n.p2align 4\ninc %eax\nhlt');
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rax'), 3n);
  const u = machineWith('mov %fs:0, %rax\nhlt');
  t.is(u.run(), ExitReason.SHUTDOWN);
  t.is(u.exitField('vector0'), 6n);
});

test('an instruction that straddles two pages executes, and faults with CR2 = the second page when it is missing', (t) => {
  // movabs (10 bytes) starting 4 bytes before a page boundary; the #PF handler is two pages on.
  const src = '.org 0xffc\nmovabs $0x1122334455667788, %rax\nhlt\n.org 0x2800\nmov %cr2, %rbx\nmov (%rsp), %rcx\nmov 8(%rsp), %rdx\nhlt';
  const m = machineWith(src);
  m.setReg('rip', CODE + 0xffc);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rax'), 0x1122334455667788n);
  t.is(m.counter('instructions'), 2n);
  t.is(m.counter('fetch_lookups'), 3n, 'first page, second page for the straddling bytes, second page for the HLT');

  const f = machineWith(src);
  installIdt(f, { 14: CODE + 0x2800 });
  f.setReg('rip', CODE + 0xffc);
  f.mem.setBigUint64(f.pteAddr(CODE + 0x1000), 0n, true);
  t.is(f.run(), ExitReason.HLT);
  t.is(f.reg('rbx'), BigInt(CODE + 0x1000), 'CR2');
  t.is(f.reg('rcx'), 0x10n, 'error code: instruction fetch, not present');
  t.is(f.reg('rdx'), BigInt(CODE + 0xffc), 'pushed RIP: the straddling instruction');
  t.is(f.reg('rax'), 0n);
});

test('BT/BTS with a register offset address a bit string beyond the operand, negative offsets included', (t) => {
  const m = machineWith(`
    mov $0x300008, %rbx
    mov $70, %rcx
    bt %rcx, (%rbx)          # bit 6 of the qword at rbx+8
    setc %r8b
    mov $-1, %rcx
    bts %rcx, (%rbx)         # bit 63 of the qword at rbx-8
    setc %r9b
    btsl $33, (%rbx)         # imm offset: taken mod 32 → bit 1 of the dword at rbx
    hlt`);
  m.mem.setBigUint64(DATA + 16, 0x40n, true);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('r8') & 0xffn, 1n);
  t.is(m.reg('r9') & 0xffn, 0n);
  t.is(m.mem.getBigUint64(DATA, true), 0x8000000000000000n);
  t.is(m.mem.getBigUint64(DATA + 8, true), 2n);
});

test('gcc -fcf-protection code runs: ENDBR64 is a NOP, NOTRACK (3E) indirect JMP/CALL through a register branch', (t) => {
  const m = machineWith(`
    endbr64
    lea 1f(%rip), %rax
    notrack jmp *%rax
    hlt
1:  lea 2f(%rip), %rcx
    notrack call *%rcx
    mov $7, %ebx
    hlt
2:  endbr64
    ret`);
  t.is(m.run(), ExitReason.HLT);
  t.is(m.reg('rbx'), 7n);
  const u = machineWith('notrack jmp *(%rax)\nhlt');
  t.is(u.run(), ExitReason.SHUTDOWN, 'a DS override on a memory operand stays outside the subset');
  t.is(u.exitField('vector0'), 6n);
});
