#!/usr/bin/env node
// Generates guests/isa/alu-vectors.inc: ALU test vectors {instruction, inputs, input flags,
// expected register/memory result, expected flags, mask of SDM-defined flags}, computed by
// alu-model.mjs. The same file is assembled into the isa-selftest guest and into the native
// oracle (tools/oracle/isa-oracle.s), which checks every expectation on the real CPU.
//   node tools/oracle/gen-alu-vectors.mjs          # rewrite the file
//   node tools/oracle/gen-alu-vectors.mjs --check  # exit 1 if the file is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as M from './alu-model.mjs';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'guests', 'isa', 'alu-vectors.inc');
const SIZES = ['b', 'w', 'l', 'q'];
// Input-flag states the framework can set with one CMP (SETF n): their flags from the model.
const FIN = [M.sub(1n, 0n, 'l').f, M.sub(0n, 1n, 'l').f, M.sub(5n, 5n, 'l').f, M.sub(0x7fffffffn, 0xffffffffn, 'l').f];
const JUNK = 0x5a5a5a5a5a5a5a5an;   // upper register bits: show what partial writes keep
const h = (v) => `0x${(v & ((1n << 64n) - 1n)).toString(16)}`;
const lines = [];
let count = 0;
const emit = (s) => { lines.push(s); count++; };

function edge(sz) {
  const m = M.mask(sz), top = 1n << (M.bits(sz) - 1n);
  return [0n, 1n, m, top, top - 1n, 0x0fn & m, 0x5555555555555555n & m, 0x9e3779b97f4a7c15n & m];
}
function pairs(sz) {
  const e = edge(sz);
  return [[e[0], e[0]], [e[1], e[2]], [e[2], e[1]], [e[3], e[2]], [e[4], e[1]], [e[3], e[3]], [e[5], e[5]], [e[6], e[7]], [e[7], e[4]], [e[2], e[2]]];
}
const withJunk = (v, sz) => (sz === 'q' ? v : (JUNK & ~M.mask(sz)) | v);

// --- two-operand ALU, register/register: 8 ops x 4 sizes x 10 pairs (+ ADC/SBB with CF=1)
for (const op of ['add', 'adc', 'sub', 'sbb', 'cmp', 'and', 'or', 'xor', 'test']) {
  for (const sz of SIZES) {
    for (const [a0, b] of pairs(sz)) {
      for (const fin of op === 'adc' || op === 'sbb' ? [0, 1] : [op === 'test' || op === 'and' ? 2 : 1]) {
        const a = withJunk(a0, sz);
        const cin = BigInt(FIN[fin] & M.CF);
        const x = op === 'add' || op === 'adc' ? M.add(a0, b, sz, op === 'adc' ? cin : 0n)
          : op === 'sub' || op === 'sbb' || op === 'cmp' ? M.sub(a0, b, sz, op === 'sbb' ? cin : 0n)
          : M.logic(op, a0, b, sz);
        const res = op === 'cmp' || op === 'test' ? a : M.merge(a, x.r, sz);
        emit(`ALU_RR ${op}, ${sz}, ${h(a)}, ${h(b)}, ${fin}, ${h(res)}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
      }
    }
  }
}
// --- immediate forms: 0x80 (imm8), 0x81 (imm16/32), 0x83 (sign-extended imm8), accumulator
for (const op of ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp', 'test']) {
  for (const sz of SIZES) {
    const imms = sz === 'b' ? [0x7fn, 0x80n] : [0x7fn, -0x80n, 0x1234n, -0x12345n];
    for (const imm of imms) {
      if (sz === 'w' && (imm < -0x8000n || imm > 0x7fffn)) continue;
      const a0 = M.mask(sz) & 0x8081828384858687n;
      const b = imm & M.mask(sz);
      const fin = 1;
      const cin = BigInt(FIN[fin] & M.CF);
      const x = op === 'add' || op === 'adc' ? M.add(a0, b, sz, op === 'adc' ? cin : 0n)
        : op === 'sub' || op === 'sbb' || op === 'cmp' ? M.sub(a0, b, sz, op === 'sbb' ? cin : 0n) : M.logic(op, a0, b, sz);
      const a = withJunk(a0, sz);
      const res = op === 'cmp' || op === 'test' ? a : M.merge(a, x.r, sz);
      for (const form of ['ALU_RI', 'ALU_AI']) emit(`${form} ${op}, ${sz}, ${h(a)}, ${imm}, ${fin}, ${h(res)}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
    }
  }
}
// --- memory operands: op reg, mem (read-modify-write) and op mem, reg
for (const op of ['add', 'sub', 'and', 'or', 'xor', 'adc', 'sbb']) {
  for (const sz of SIZES) {
    const a0 = M.mask(sz) & 0xfedcba9876543210n, b = M.mask(sz) & 0x0123456789abcdefn;
    const fin = 1, cin = BigInt(FIN[fin] & M.CF);
    const x = op === 'add' || op === 'adc' ? M.add(a0, b, sz, op === 'adc' ? cin : 0n)
      : op === 'sub' || op === 'sbb' ? M.sub(a0, b, sz, op === 'sbb' ? cin : 0n) : M.logic(op, a0, b, sz);
    const a = withJunk(a0, sz);
    const memRes = sz === 'q' ? x.r : (a & ~M.mask(sz)) | x.r;   // memory keeps the other bytes
    emit(`ALU_MR ${op}, ${sz}, ${h(a)}, ${h(b)}, ${fin}, ${h(memRes)}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
    emit(`ALU_RM ${op}, ${sz}, ${h(a)}, ${h(b)}, ${fin}, ${h(M.merge(a, x.r, sz))}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
  }
}
// --- one-operand: INC DEC NEG NOT
for (const op of ['inc', 'dec', 'neg', 'not']) {
  for (const sz of SIZES) {
    const e = edge(sz);
    for (const a0 of [e[0], e[1], e[2], e[3], e[4], e[5]]) {
      for (const fin of op === 'inc' || op === 'dec' ? [0, 1] : [op === 'not' ? 3 : 1]) {
        const a = withJunk(a0, sz);
        const x = op === 'neg' ? M.neg(a0, sz) : op === 'not' ? { r: ~a0 & M.mask(sz), f: FIN[fin], m: M.ARITH } : M.incdec(op, a0, sz, FIN[fin]);
        emit(`ALU_UN ${op}, ${sz}, ${h(a)}, ${fin}, ${h(M.merge(a, x.r, sz))}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
      }
    }
  }
}
// --- one-operand and shift forms on a memory operand (read-modify-write, other bytes kept)
for (const sz of SIZES) {
  const a0 = M.mask(sz) & 0x80000000000000ffn;
  const a = withJunk(a0, sz);
  const memOf = (r) => (sz === 'q' ? r : (a & ~M.mask(sz)) | r);
  for (const op of ['inc', 'dec', 'neg', 'not']) {
    const x = op === 'neg' ? M.neg(a0, sz) : op === 'not' ? { r: ~a0 & M.mask(sz), f: FIN[1], m: M.ARITH } : M.incdec(op, a0, sz, FIN[1]);
    emit(`ALU_UNM ${op}, ${sz}, ${h(a)}, 1, ${h(memOf(x.r))}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
  }
  for (const [op, c] of [['shl', 1], ['shr', 4], ['sar', 7], ['rol', 1], ['ror', 9]]) {
    const x = op === 'rol' || op === 'ror' ? M.rotate(op, a0, c, sz, FIN[1]) : M.shift(op, a0, c, sz, FIN[1]);
    emit(`ALU_SHM ${op}, ${sz}, ${h(a)}, ${c}, 1, ${h(memOf(x.r))}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
  }
}
// --- shifts and rotates: by 1 (D0/D1), by imm8 (C0/C1), by CL (D2/D3)
for (const op of ['shl', 'shr', 'sar', 'rol', 'ror']) {
  for (const sz of SIZES) {
    const a0 = M.mask(sz) & 0x8123456789abcdefn;
    const a1 = M.mask(sz) & 0x4000000000000001n;
    const counts = [1, 3, Number(M.bits(sz)) - 1, 0, Number(M.bits(sz)), 33, 65];
    for (const [a0v, cs] of [[a0, counts], [a1, [1, 2]]]) {
      for (const c of cs) {
        const a = withJunk(a0v, sz);
        const fin = c === 0 ? 3 : 1;
        const x = op === 'rol' || op === 'ror' ? M.rotate(op, a0v, c, sz, FIN[fin]) : M.shift(op, a0v, c, sz, FIN[fin]);
        const form = c === 1 ? '1' : c % 2 ? 'i' : 'c';
        emit(`ALU_SH ${op}, ${sz}, ${h(a)}, ${c}, ${form}, ${fin}, ${h(M.merge(a, x.r, sz))}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
        if (c === 3 || c === 0) emit(`ALU_SH ${op}, ${sz}, ${h(a)}, ${c}, c, ${fin}, ${h(M.merge(a, x.r, sz))}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
      }
    }
  }
}
// --- MUL / IMUL (1, 2, 3 operands)
for (const op of ['mul', 'imul']) {
  for (const sz of SIZES) {
    const e = edge(sz);
    for (const [a0, b] of [[e[1], e[2]], [e[2], e[2]], [e[3], e[2]], [e[6], e[5]], [e[4], 2n]]) {
      const x = M.mul1(op, a0, b, sz);
      const a = withJunk(a0, sz), d = JUNK;
      let rax, rdx;
      if (sz === 'b') { rax = M.merge(a, (x.hi << 8n) | x.lo, 'w'); rdx = d; }
      else { rax = M.merge(a, x.lo, sz); rdx = M.merge(d, x.hi, sz); }
      emit(`ALU_MUL1 ${op}, ${sz}, ${h(a)}, ${h(b)}, ${h(rax)}, ${h(rdx)}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
      if (op === 'imul' && sz !== 'b') {
        const y = M.imul2(a0, b, sz);
        emit(`ALU_IMUL2 ${sz}, ${h(a)}, ${h(b)}, ${h(M.merge(a, y.r, sz))}, ${h(BigInt(y.f))}, ${h(BigInt(y.m))}`);
        for (const imm of [3n, -2n, 0x7fffn]) {
          const z = M.imul2(b, imm & M.mask(sz), sz);
          emit(`ALU_IMUL3 ${sz}, ${h(a)}, ${h(b)}, ${imm}, ${h(M.merge(a, z.r, sz))}, ${h(BigInt(z.f))}, ${h(BigInt(z.m))}`);
        }
      }
    }
  }
}
// --- DIV / IDIV (no #DE here; the system group raises #DE through the guest's IDT)
for (const op of ['div', 'idiv']) {
  for (const sz of SIZES) {
    const m = M.mask(sz);
    const cases = [[0n, 100n, 7n], [0n, m, 1n], [1n, 0n, 3n], [op === 'idiv' ? m : 0n, op === 'idiv' ? (m - 99n) : 99n, op === 'idiv' ? m - 6n : 7n], [0n, 1234567n & m, m >> 4n]];
    for (const [hi, lo, d] of cases) {
      const x = M.div(op, hi, lo, d, sz);
      if (!x) continue;
      let rax, rdx, a, dd;
      if (sz === 'b') { a = withJunk((hi << 8n) | lo, 'w'); dd = JUNK; rax = M.merge(a, (x.r << 8n) | x.q, 'w'); rdx = dd; }
      else { a = withJunk(lo, sz); dd = withJunk(hi, sz); rax = M.merge(a, x.q, sz); rdx = M.merge(dd, x.r, sz); }
      emit(`ALU_DIV ${op}, ${sz}, ${h(dd)}, ${h(a)}, ${h(d)}, ${h(rax)}, ${h(rdx)}`);
    }
  }
}
// --- BT BTS BTR BTC (register and imm8 bit offsets) and BSF/BSR
for (const op of ['bt', 'bts', 'btr', 'btc']) {
  for (const sz of ['w', 'l', 'q']) {
    const a0 = M.mask(sz) & 0xa5a5a5a5a5a5a5a5n;
    for (const bit of [0, 1, 7, Number(M.bits(sz)) - 1, Number(M.bits(sz)) + 2]) {
      const a = withJunk(a0, sz);
      const x = M.bt(op, a0, bit, sz);
      const fin = bit % 2 ? 2 : 1;
      const f = BigInt(x.f | (FIN[fin] & M.ZF));
      const res = x.r === undefined ? a : M.merge(a, x.r, sz);
      emit(`ALU_BT ${op}, ${sz}, ${h(a)}, ${bit}, ${bit % 2 ? 'i' : 'r'}, ${fin}, ${h(res)}, ${h(f)}, ${h(BigInt(M.CF | M.ZF))}`);
    }
  }
}
for (const op of ['bsf', 'bsr']) {
  for (const sz of ['w', 'l', 'q']) {
    for (const v of [1n, 0x80n, M.mask(sz), 1n << (M.bits(sz) - 1n), 0x0ff0n, 0n]) {
      const x = M.bsx(op, v, sz);
      const a = JUNK;
      // source 0: ZF = 1 and the destination is undefined (not compared)
      const res = x.r === undefined ? 0n : M.merge(a, x.r, sz);
      emit(`ALU_BSX ${op}, ${sz}, ${h(a)}, ${h(v)}, ${h(res)}, ${x.r === undefined ? 0 : 1}, ${h(BigInt(x.f))}, ${h(BigInt(x.m))}`);
    }
  }
}

const text = `# GENERATED by tools/oracle/gen-alu-vectors.mjs from tools/oracle/alu-model.mjs - do not edit.\n# ${count} ALU vectors; macros in guests/isa/framework.inc. Verified natively by tools/oracle/.\n${lines.join('\n')}\n`;
if (process.argv.includes('--check')) {
  const cur = readFileSync(out, 'utf8');
  if (cur !== text) { console.error(`${out} is stale: run node tools/oracle/gen-alu-vectors.mjs`); process.exit(1); }
} else {
  writeFileSync(out, text);
  console.log(`wrote ${count} vectors to ${out}`);
}
