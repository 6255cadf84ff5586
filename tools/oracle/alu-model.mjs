// A small reference model of x86 ALU results and flags (Intel SDM vol. 2 per-instruction
// "Flags Affected"), used only to generate the expected values in guests/isa/alu-vectors.inc.
// The oracle (tools/oracle/) then checks every one of them on the real CPU, so a model bug
// shows up as an oracle failure, never as a wrong answer silently baked into the guest.
export const CF = 0x1, PF = 0x4, AF = 0x10, ZF = 0x40, SF = 0x80, OF = 0x800;
export const ARITH = CF | PF | AF | ZF | SF | OF;
const BITS = { b: 8, w: 16, l: 32, q: 64 };
const M64 = (1n << 64n) - 1n;

export function bits(sz) { return BigInt(BITS[sz]); }
export function mask(sz) { return (1n << bits(sz)) - 1n; }
const msb = (v, sz) => (v >> (bits(sz) - 1n)) & 1n;
const sext = (v, sz) => (msb(v, sz) ? v - (1n << bits(sz)) : v);
function parity(v) { let p = 0; for (let x = Number(v & 0xffn); x; x >>= 1) p ^= x & 1; return p ? 0 : PF; }
function szp(r, sz) { return (r === 0n ? ZF : 0) | (msb(r, sz) ? SF : 0) | parity(r); }

/** Writes `r` (size sz) into the 64-bit register value `old` as the CPU does. */
export function merge(old, r, sz) {
  if (sz === 'l') return r & 0xffffffffn;          // 32-bit results zero-extend
  if (sz === 'q') return r & M64;
  return (old & ~mask(sz) & M64) | (r & mask(sz)); // 8/16-bit results keep the rest
}

// Each op returns { r (sz-bit result, or undefined when not written), f (flags), m (defined-flags mask) }
export function add(a, b, sz, cin = 0n) {
  const r = (a + b + cin) & mask(sz);
  const f = (a + b + cin > mask(sz) ? CF : 0) | (((a ^ r) & (b ^ r)) >> (bits(sz) - 1n) & 1n ? OF : 0) | ((a ^ b ^ r) & 0x10n ? AF : 0) | szp(r, sz);
  return { r, f, m: ARITH };
}
export function sub(a, b, sz, bin = 0n) {
  const r = (a - b - bin) & mask(sz);
  const f = (a < b + bin ? CF : 0) | (((a ^ b) & (a ^ r)) >> (bits(sz) - 1n) & 1n ? OF : 0) | ((a ^ b ^ r) & 0x10n ? AF : 0) | szp(r, sz);
  return { r, f, m: ARITH };
}
export function logic(op, a, b, sz) {
  const r = (op === 'and' || op === 'test' ? a & b : op === 'or' ? a | b : a ^ b) & mask(sz);
  return { r, f: szp(r, sz), m: ARITH & ~AF };       // CF = OF = 0, AF undefined
}
export function incdec(op, a, sz, fin) {
  const x = op === 'inc' ? add(a, 1n, sz) : sub(a, 1n, sz);
  return { r: x.r, f: (x.f & ~CF) | (fin & CF), m: ARITH };  // CF not affected
}
export function neg(a, sz) {
  const x = sub(0n, a, sz);
  return { r: x.r, f: x.f, m: ARITH };
}
export function shift(op, a, count, sz, fin) {
  const n = bits(sz);
  const c = BigInt(count) & (sz === 'q' ? 63n : 31n);
  if (c === 0n) return { r: a & mask(sz), f: fin, m: ARITH };   // count 0: flags unchanged
  let r, cf;
  if (op === "shl" || op === "sal") { r = (a << c) & mask(sz); cf = c < n ? (a >> (n - c)) & 1n : undefined; }
  else if (op === "shr") { r = a >> c; cf = c < n ? (a >> (c - 1n)) & 1n : undefined; }
  else { const s = sext(a, sz); r = (s >> c) & mask(sz); cf = (s >> (c - 1n)) & 1n; if (c > n) cf = msb(a, sz); }
  let f = szp(r, sz), m = CF | PF | ZF | SF;             // AF undefined for count != 0
  if (cf === undefined) m &= ~CF; else if (cf) f |= CF;
  if (c === 1n) {
    m |= OF;
    const of = op === 'shr' ? msb(a, sz) : op === 'sar' ? 0n : msb(r, sz) ^ (cf ?? 0n);
    if (of) f |= OF;
  }
  return { r, f, m };
}
export function rotate(op, a, count, sz, fin) {
  const n = bits(sz);
  const c = BigInt(count) & (sz === 'q' ? 63n : 31n);
  if (c === 0n) return { r: a & mask(sz), f: fin, m: ARITH };
  const t = c % n;
  let r = a & mask(sz);
  if (t) r = op === 'rol' ? ((r << t) | (r >> (n - t))) & mask(sz) : ((r >> t) | (r << (n - t))) & mask(sz);
  const cf = op === 'rol' ? r & 1n : msb(r, sz);
  // only CF and OF are affected; the other flags keep their input values
  let f = (fin & ~(CF | OF)) | (cf ? CF : 0);
  let m = ARITH;
  if (c === 1n) { if (op === 'rol' ? msb(r, sz) ^ cf : msb(r, sz) ^ ((r >> (n - 2n)) & 1n)) f |= OF; }
  else m &= ~OF;
  return { r, f, m };
}
/** MUL / one-operand IMUL: { lo, hi } of the double-width product, CF = OF = upper half significant. */
export function mul1(op, a, b, sz) {
  const n = bits(sz);
  let p;
  if (op === 'mul') p = (a & mask(sz)) * (b & mask(sz));
  else p = sext(a & mask(sz), sz) * sext(b & mask(sz), sz);
  const full = p & ((1n << (2n * n)) - 1n);
  const lo = full & mask(sz), hi = full >> n;
  const big = op === 'mul' ? hi !== 0n : sext(lo, sz) !== p;
  return { lo, hi, f: big ? CF | OF : 0, m: CF | OF };
}
/** Two/three-operand IMUL: truncated product, CF = OF = truncation changed the value. */
export function imul2(a, b, sz) {
  const p = sext(a & mask(sz), sz) * sext(b & mask(sz), sz);
  const r = p & mask(sz);
  return { r, f: sext(r, sz) !== p ? CF | OF : 0, m: CF | OF };
}
/** DIV/IDIV of hi:lo by d: { q, r } or undefined when the CPU raises #DE. */
export function div(op, hi, lo, d, sz) {
  const n = bits(sz);
  if ((d & mask(sz)) === 0n) return undefined;
  if (op === 'div') {
    const num = ((hi & mask(sz)) << n) | (lo & mask(sz));
    const q = num / (d & mask(sz));
    if (q > mask(sz)) return undefined;
    return { q, r: num % (d & mask(sz)) };
  }
  const num = sext(((hi & mask(sz)) << n) | (lo & mask(sz)), sz === 'q' ? 'o' : sz + '2');
  const dv = sext(d & mask(sz), sz);
  const q = num / dv;  // BigInt division truncates toward zero, like IDIV
  const r = num - q * dv;
  if (q > (mask(sz) >> 1n) || q < -(1n << (n - 1n))) return undefined;
  return { q: q & mask(sz), r: r & mask(sz) };
}
BITS.b2 = 16; BITS.w2 = 32; BITS.l2 = 64; BITS.o = 128;
export function bt(op, a, bit, sz) {
  const i = BigInt(bit) & (bits(sz) - 1n);
  const cf = (a >> i) & 1n;
  let r = a & mask(sz);
  if (op === 'bts') r |= 1n << i; else if (op === 'btr') r &= ~(1n << i) & mask(sz); else if (op === 'btc') r ^= 1n << i;
  return { r: op === 'bt' ? undefined : r, f: cf ? CF : 0, m: CF };  // ZF unaffected (checked via fin)
}
export function bsx(op, a, sz) {
  const v = a & mask(sz);
  if (v === 0n) return { r: undefined, f: ZF, m: ZF };
  let i = 0n;
  if (op === 'bsf') { while (!((v >> i) & 1n)) i++; } else { i = bits(sz) - 1n; while (!((v >> i) & 1n)) i--; }
  return { r: i, f: 0, m: ZF };
}
