/**
 * The fused compare-and-branch handlers (native/exec_fused.cc): a flag-setting register
 * instruction followed by the Jcc that ends its block runs as one handler, and must be
 * indistinguishable from the two run one after the other: the same results and flags as the
 * host CPU for every fused form, the same state at every budget boundary (a budget that ends
 * between the two retires only the first), and #GP on the Jcc itself (first instruction
 * retired) when the branch goes to a non-canonical address. The results-and-flags check
 * against the host CPU for the fused forms is in vcpu-host-diff.test.ts.
 */
import test from 'ava';
import { ExitReason } from '../src/native/types.ts';
import { CODE, PML4, assemble, makeMachine, type Machine } from './vcpu-harness.ts';

const ALU_LOOP = `
  1: add %rsi, %rax
     xor %rax, %rbx
     dec %rcx
     jnz 1b
     hlt`;

function aluMachine(iters: number): Machine {
  const m = makeMachine();
  m.load(assemble(ALU_LOOP));
  m.setReg('rsi', 0x9e3779b97f4a7c15n);
  m.setReg('rax', 1);
  m.setReg('rcx', iters);
  return m;
}
const state = (m: Machine) => ({
  rip: m.reg('rip'), rax: m.reg('rax'), rbx: m.reg('rbx'), rcx: m.reg('rcx'), rflags: m.reg('rflags'),
  instructions: m.counter('instructions'), hits: m.counter('decode_cache_hits'),
});

test('a budget that ends between a fused DEC and its JNZ retires only the DEC; runs in pieces end where one run ends', (t) => {
  // add(0) xor(3) dec(6) jnz(9): 3 budget units from the start retire add, xor, dec.
  const m = aluMachine(5);
  t.is(m.run(3), ExitReason.BUDGET);
  t.is(m.reg('rip'), BigInt(CODE + 9), 'RIP on the JNZ');
  t.is(m.reg('rcx'), 4n, 'DEC retired');
  t.is(m.counter('instructions'), 3n);
  t.is(m.reg('rflags') & 0x40n, 0n, 'ZF of the DEC');
  t.is(m.run(1), ExitReason.BUDGET);
  t.is(m.reg('rip'), BigInt(CODE), 'the JNZ alone was taken');
  t.is(m.counter('instructions'), 4n);

  const whole = aluMachine(37);
  t.is(whole.run(), ExitReason.HLT);
  t.is(whole.counter('instructions'), BigInt(4 * 37 + 1));
  for (const piece of [1, 2, 3, 5, 7, 8, 13]) {
    const p = aluMachine(37);
    let runs = 0;
    while (p.run(piece) === ExitReason.BUDGET) runs++;
    t.is(p.exitField('reason'), BigInt(ExitReason.HLT), `pieces of ${piece}`);
    t.deepEqual({ ...state(p), hits: 0n }, { ...state(whole), hits: 0n }, `pieces of ${piece}`);
    t.is(runs, Math.ceil((4 * 37 + 1) / piece) - 1, `pieces of ${piece}: runs that used their whole budget`);
  }
  // Every instruction executed is one decode-cache hit, fused or not; 5 decoded.
  t.is(whole.counter('decode_cache_hits'), BigInt(4 * 37 + 1));
  t.is(whole.counter('decode_cache_misses'), 5n);
});

test('a fused CMP/JNE at the top of the canonical range: the taken branch to a non-canonical target raises #GP on the Jcc, the CMP retired', (t) => {
  // Map VA 0x7ffffffff000 (PML4[255], PDPT[511], PD[511], PT[511]) to PA 0x380000; tables at
  // 0x390000.. (scratch memory of the 8 MiB machine).
  const m = makeMachine();
  const put = (a: number, v: bigint) => m.mem.setBigUint64(a, v, true);
  const pdpt = 0x390000, pd = 0x391000, pt = 0x392000, code = 0x380000;
  put(PML4 + 255 * 8, BigInt(pdpt | 3));
  put(pdpt + 511 * 8, BigInt(pd | 3));
  put(pd + 511 * 8, BigInt(pt | 3));
  put(pt + 511 * 8, BigInt(code | 3));
  const va = 0x7ffffffff000n + 0xf00n;
  // cmp %rcx, %rax (48 39 c8); jne rel32 0x200 (0f 85 00 02 00 00): the target is
  // va + 9 + 0x200 = 0x800000000109, not canonical.
  // then HLT.
  m.bytes.set([0x48, 0x39, 0xc8, 0x0f, 0x85, 0x00, 0x02, 0x00, 0x00, 0xf4], code + 0xf00);
  m.setReg('rip', va);
  m.setReg('rax', 2n);
  m.setReg('rcx', 2n);
  t.is(m.run(100), ExitReason.HLT, 'not taken: falls through to the HLT');
  t.is(m.counter('instructions'), 3n);
  t.is(m.reg('rflags') & 0x40n, 0x40n, 'ZF of CMP 2, 2');

  m.vcpu.resetCounters();
  m.setReg('rip', va);
  m.setReg('rax', 1n);
  const why = m.run(100);
  // No IDT: #GP → #DF → triple fault, reported on the JNE.
  t.is(why, ExitReason.SHUTDOWN);
  t.is(m.exitField('vector0'), 13n);
  t.is(m.exitField('rip'), va + 3n, 'the fault is on the JNE');
  t.is(m.counter('instructions'), 1n, 'the CMP retired, the JNE did not');
  t.is(m.reg('rflags') & 0x8d5n, 0x80n | 0x10n | 0x4n | 0x1n, "the CMP flags: 1 - 2 = all ones: SF, AF, PF, CF");
});
