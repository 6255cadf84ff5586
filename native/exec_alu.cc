// ALU handlers: ADD..CMP, TEST, INC/DEC, NOT/NEG, MUL/IMUL/DIV/IDIV, shifts and rotates,
// SHLD/SHRD, BT/BTS/BTR/BTC, BSF/BSR, XADD, CMPXCHG. Flags follow the SDM; where it says "undefined" the choice is
// fixed and documented next to the handler. Memory destinations are written before the
// flags so a faulting store leaves the architectural state untouched.
#include "exec.h"

namespace hv {

namespace {
// Commit a result and its arithmetic flags: the destination first (it may fault).
inline int commit_E(Cpu& c, const Insn& i, unsigned sz, uint64_t addr, uint64_t v, uint64_t f, uint64_t keep = 0) {
  Status s = write_E(c, i, sz, addr, v);
  if (s != ST_OK) return s;
  c.set_arith((c.arith() & keep) | (f & ~keep));
  return ST_OK;
}
}  // namespace

// ---- ADD OR ADC SBB AND SUB XOR CMP (i.sub = operation) ----
int h_alu_EG(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t a, addr = 0, f;
  Status s = i.sub == ALU_CMP ? read_E(c, i, sz, &a, &addr) : read_E_rmw(c, i, sz, &a, &addr);  // the destination is translated for the write
  if (s != ST_OK) return s;
  const uint64_t r = alu(i.sub, a, get_G(c, i, sz), c.arith(), sz, &f);
  if (i.sub == ALU_CMP) { set_arith_flags(c, f); return ST_OK; }
  return commit_E(c, i, sz, addr, r, f);
}

int h_alu_GE(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t b, addr = 0, f;
  Status s = read_E(c, i, sz, &b, &addr);
  if (s != ST_OK) return s;
  const uint64_t r = alu(i.sub, get_G(c, i, sz), b, c.arith(), sz, &f);
  if (i.sub != ALU_CMP) set_G(c, i, sz, r);
  set_arith_flags(c, f);
  return ST_OK;
}

int h_alu_EI(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t a, addr = 0, f;
  Status s = i.sub == ALU_CMP ? read_E(c, i, sz, &a, &addr) : read_E_rmw(c, i, sz, &a, &addr);  // the destination is translated for the write
  if (s != ST_OK) return s;
  const uint64_t r = alu(i.sub, a, i.imm & size_mask(sz), c.arith(), sz, &f);
  if (i.sub == ALU_CMP) { set_arith_flags(c, f); return ST_OK; }
  return commit_E(c, i, sz, addr, r, f);
}

// Register-register and register-immediate forms at 32/64 bits, one handler per operation
// and size (decode picks them; i.rm is the destination, i.reg the source).
template <uint8_t OP, unsigned SZ>
inline int alu_reg(Cpu& c, const Insn& i, uint64_t b) {
  const uint64_t a = c.r[i.rm] & size_mask(SZ);
  const uint64_t r = alu_a<OP, SZ>(a, b, (c.afl_ >> 8) & 1, &c.afl_);
  if (OP != ALU_CMP) c.r[i.rm] = r;
  return ST_OK;
}
template <uint8_t OP, unsigned SZ>
int h_alu_rr(Cpu& c, const Insn& i) { return alu_reg<OP, SZ>(c, i, c.r[i.reg] & size_mask(SZ)); }
template <uint8_t OP, unsigned SZ>
int h_alu_ri(Cpu& c, const Insn& i) { return alu_reg<OP, SZ>(c, i, i.imm & size_mask(SZ)); }

// Memory forms at 32/64 bits: r/m is memory, reg a plain GPR (no AH..BH at these sizes).
template <uint8_t OP, unsigned SZ>
int h_alu_GEm(Cpu& c, const Insn& i) {
  uint64_t b;
  Status s = c.read(ea(c, i), SZ, &b);
  if (s != ST_OK) return s;
  const uint64_t r = alu_a<OP, SZ>(c.r[i.reg] & size_mask(SZ), b, (c.afl_ >> 8) & 1, &c.afl_);
  if (OP != ALU_CMP) c.r[i.reg] = r;
  return ST_OK;
}
template <uint8_t OP, unsigned SZ>
int h_alu_EGm(Cpu& c, const Insn& i) {
  const uint64_t addr = ea(c, i);
  uint64_t a;
  Status s = OP == ALU_CMP ? c.read(addr, SZ, &a) : c.read_rmw(addr, SZ, &a);  // RMW: translated as a write
  if (s != ST_OK) return s;
  uint16_t afl;
  const uint64_t r = alu_a<OP, SZ>(a, c.r[i.reg] & size_mask(SZ), (c.afl_ >> 8) & 1, &afl);
  if (OP != ALU_CMP && (s = c.write_t<SZ>(addr, r)) != ST_OK) return s;
  c.afl_ = afl;
  return ST_OK;
}

#define HV_ALU8(T, SZ) {T<0, SZ>, T<1, SZ>, T<2, SZ>, T<3, SZ>, T<4, SZ>, T<5, SZ>, T<6, SZ>, T<7, SZ>}
const Handler kAluRR[2][8] = {HV_ALU8(h_alu_rr, 4), HV_ALU8(h_alu_rr, 8)};
const Handler kAluRI[2][8] = {HV_ALU8(h_alu_ri, 4), HV_ALU8(h_alu_ri, 8)};
const Handler kAluGEm[2][8] = {HV_ALU8(h_alu_GEm, 4), HV_ALU8(h_alu_GEm, 8)};
const Handler kAluEGm[2][8] = {HV_ALU8(h_alu_EGm, 4), HV_ALU8(h_alu_EGm, 8)};
#undef HV_ALU8

// ---- TEST: AND without a result; CF = OF = 0, AF undefined (0) ----
int h_test_EG(Cpu& c, const Insn& i) {
  uint64_t a, addr = 0;
  Status s = read_E(c, i, i.osz, &a, &addr);
  if (s != ST_OK) return s;
  set_arith_flags(c, flags_szp(a & get_G(c, i, i.osz), i.osz));
  return ST_OK;
}
int h_test_EI(Cpu& c, const Insn& i) {
  uint64_t a, addr = 0;
  Status s = read_E(c, i, i.osz, &a, &addr);
  if (s != ST_OK) return s;
  set_arith_flags(c, flags_szp(a & i.imm & size_mask(i.osz), i.osz));
  return ST_OK;
}

// ---- INC / DEC (i.sub 0 / 1): CF is preserved ----
inline uint64_t incdec(uint64_t a, bool dec, unsigned sz, uint64_t* f) {
  const uint64_t r = (dec ? a - 1 : a + 1) & size_mask(sz);
  *f = dec ? flags_sub(a, 1, r, false, sz) : flags_add(a, 1, r, false, sz);
  return r;
}
int h_incdec(Cpu& c, const Insn& i) {
  uint64_t a, addr = 0, f;
  Status s = read_E_rmw(c, i, i.osz, &a, &addr);
  if (s != ST_OK) return s;
  const uint64_t r = incdec(a, i.sub, i.osz, &f);
  return commit_E(c, i, i.osz, addr, r, f, FL_CF);
}
template <bool DEC, unsigned SZ>
int h_incdec_r(Cpu& c, const Insn& i) {
  uint16_t afl;
  // INC/DEC flags are those of ADD/SUB 1 except CF, which is kept.
  c.r[i.rm] = alu_a<DEC ? ALU_SUB : ALU_ADD, SZ>(c.r[i.rm] & size_mask(SZ), 1, 0, &afl);
  c.afl_ = static_cast<uint16_t>((afl & ~Cpu::kAflCF) | (c.afl_ & Cpu::kAflCF));
  return ST_OK;
}
const Handler kIncDecR[2][2] = {{h_incdec_r<false, 4>, h_incdec_r<true, 4>}, {h_incdec_r<false, 8>, h_incdec_r<true, 8>}};

// ---- NOT (no flags), NEG (flags of 0 - x; CF = x != 0) ----
int h_not(Cpu& c, const Insn& i) {
  uint64_t a, addr = 0;
  Status s = read_E_rmw(c, i, i.osz, &a, &addr);
  if (s != ST_OK) return s;
  return write_E(c, i, i.osz, addr, ~a & size_mask(i.osz));
}
int h_neg(Cpu& c, const Insn& i) {
  uint64_t a, addr = 0;
  Status s = read_E_rmw(c, i, i.osz, &a, &addr);
  if (s != ST_OK) return s;
  const uint64_t r = (0 - a) & size_mask(i.osz);
  return commit_E(c, i, i.osz, addr, r, flags_sub(0, a, r, a != 0, i.osz));
}

// ---- MUL / IMUL (one operand): rDX:rAX (AX for bytes) = rAX * src. CF = OF = "the upper
// half is significant"; SF ZF PF undefined: taken from the lower half; AF undefined: 0. ----
namespace {
void store_wide(Cpu& c, unsigned sz, uint64_t lo, uint64_t hi) {
  if (sz == 1) {
    set_reg(c, R_RAX, false, 2, (lo & 0xff) | ((hi & 0xff) << 8));
  } else {
    set_reg(c, R_RAX, false, sz, lo);
    set_reg(c, R_RDX, false, sz, hi);
  }
}
void mul_flags(Cpu& c, unsigned sz, uint64_t lo, bool overflow) {
  uint64_t f = flags_szp(lo & size_mask(sz), sz);
  if (overflow) f |= FL_CF | FL_OF;
  set_arith_flags(c, f);
}
}  // namespace

int h_mul(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t b, addr = 0;
  Status s = read_E(c, i, sz, &b, &addr);
  if (s != ST_OK) return s;
  const unsigned __int128 p = static_cast<unsigned __int128>(c.r[R_RAX] & size_mask(sz)) * b;
  const uint64_t lo = static_cast<uint64_t>(p) & size_mask(sz);
  const uint64_t hi = sz == 8 ? static_cast<uint64_t>(p >> 64) : static_cast<uint64_t>(p >> (8 * sz)) & size_mask(sz);
  store_wide(c, sz, lo, hi);
  mul_flags(c, sz, lo, hi != 0);
  return ST_OK;
}

int h_imul1(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t b, addr = 0;
  Status s = read_E(c, i, sz, &b, &addr);
  if (s != ST_OK) return s;
  const __int128 p = static_cast<__int128>(sext(c.r[R_RAX], sz)) * sext(b, sz);
  const uint64_t lo = static_cast<uint64_t>(p) & size_mask(sz);
  const uint64_t hi = sz == 8 ? static_cast<uint64_t>(p >> 64) : static_cast<uint64_t>(p >> (8 * sz)) & size_mask(sz);
  store_wide(c, sz, lo, hi);
  mul_flags(c, sz, lo, p != static_cast<__int128>(sext(lo, sz)));
  return ST_OK;
}

// IMUL r, r/m and IMUL r, r/m, imm: the truncated signed product; CF = OF = truncation lost bits.
namespace {
int imul2(Cpu& c, const Insn& i, int64_t a, int64_t b) {
  const unsigned sz = i.osz;
  const __int128 p = static_cast<__int128>(a) * b;
  const uint64_t lo = static_cast<uint64_t>(p) & size_mask(sz);
  set_G(c, i, sz, lo);
  mul_flags(c, sz, lo, p != static_cast<__int128>(sext(lo, sz)));
  return ST_OK;
}
}  // namespace
int h_imul_GE(Cpu& c, const Insn& i) {
  uint64_t b, addr = 0;
  Status s = read_E(c, i, i.osz, &b, &addr);
  if (s != ST_OK) return s;
  return imul2(c, i, sext(get_G(c, i, i.osz), i.osz), sext(b, i.osz));
}
int h_imul_GEI(Cpu& c, const Insn& i) {
  uint64_t a, addr = 0;
  Status s = read_E(c, i, i.osz, &a, &addr);
  if (s != ST_OK) return s;
  return imul2(c, i, sext(a, i.osz), sext(i.imm, i.osz));
}

// A fast path for IMUL r, r at 32/64 bits (decode picks these for the register form of 0F AF): the
// same result and flags as imul2 (CF = OF = the truncation lost bits; SF ZF PF from the
// truncated result; AF 0) without the 128-bit product or the runtime size switches.
template <unsigned SZ>
int h_imul_rr(Cpu& c, const Insn& i) {
  uint64_t lo;
  bool ovf;
  if (SZ == 8) {
    int64_t p;
    ovf = __builtin_mul_overflow(static_cast<int64_t>(c.r[i.reg]), static_cast<int64_t>(c.r[i.rm]), &p);
    lo = static_cast<uint64_t>(p);
  } else {
    const int64_t p = static_cast<int64_t>(static_cast<int32_t>(c.r[i.reg])) * static_cast<int32_t>(c.r[i.rm]);
    ovf = p != static_cast<int32_t>(p);
    lo = static_cast<uint64_t>(p) & 0xffffffffull;
  }
  c.r[i.reg] = lo;
  // SF, ZF, PF of the result with AF = 0 (flags_szp's choice for the undefined ones) are what
  // AND of the result with itself leaves; CF = OF = the overflow.
  uint16_t afl;
  alu_a<ALU_AND, SZ>(lo, lo, 0, &afl);
  c.afl_ = static_cast<uint16_t>(afl | (ovf ? Cpu::kAflCF | Cpu::kAflOF : 0));
  return ST_OK;
}
const Handler kImulRR[2] = {h_imul_rr<4>, h_imul_rr<8>};

// ---- DIV / IDIV: #DE on a zero divisor or a quotient that does not fit. All flags are
// undefined: left unchanged. ----
int h_div(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t d, addr = 0;
  Status s = read_E(c, i, sz, &d, &addr);
  if (s != ST_OK) return s;
  if (d == 0) return c.raise(V_DE);
  unsigned __int128 n;
  if (sz == 1) n = c.r[R_RAX] & 0xffff;
  else n = (static_cast<unsigned __int128>(c.r[R_RDX] & size_mask(sz)) << (8 * sz)) | (c.r[R_RAX] & size_mask(sz));
  const unsigned __int128 q = n / d, rem = n % d;
  if (q > size_mask(sz)) return c.raise(V_DE);
  if (sz == 1) set_reg(c, R_RAX, false, 2, static_cast<uint64_t>(q) | (static_cast<uint64_t>(rem) << 8));
  else store_wide(c, sz, static_cast<uint64_t>(q), static_cast<uint64_t>(rem));
  return ST_OK;
}

int h_idiv(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t draw, addr = 0;
  Status s = read_E(c, i, sz, &draw, &addr);
  if (s != ST_OK) return s;
  const int64_t d = sext(draw, sz);
  if (d == 0) return c.raise(V_DE);
  __int128 n;
  if (sz == 1) n = sext(c.r[R_RAX] & 0xffff, 2);
  else if (sz == 8) n = static_cast<__int128>((static_cast<unsigned __int128>(c.r[R_RDX]) << 64) | c.r[R_RAX]);
  else n = sext(((c.r[R_RDX] & size_mask(sz)) << (8 * sz)) | (c.r[R_RAX] & size_mask(sz)), 2 * sz);
  // |n| < 2^127 unless rDX:rAX is the most negative 128-bit value, whose quotient never fits.
  const __int128 kMin = static_cast<__int128>(static_cast<unsigned __int128>(1) << 127);
  if (n == kMin) return c.raise(V_DE);
  const __int128 q = n / d, rem = n % d;
  const __int128 lim = static_cast<__int128>(1) << (8 * sz - 1);
  if (q >= lim || q < -lim) return c.raise(V_DE);
  const uint64_t qv = static_cast<uint64_t>(q) & size_mask(sz), rv = static_cast<uint64_t>(rem) & size_mask(sz);
  if (sz == 1) set_reg(c, R_RAX, false, 2, qv | (rv << 8));
  else store_wide(c, sz, qv, rv);
  return ST_OK;
}

// ---- ROL ROR SHL SHR SAR (i.sub 0 1 4 5 7). Count: imm8, 1 or CL, masked to 5 bits (6 with
// REX.W); a masked count of 0 changes nothing. OF is defined for count 1; for larger counts
// the same formula is used (deterministic). AF undefined: 0. CF for 8/16-bit shifts by more
// than the width: 0. ----
int h_shift(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz, bits = 8 * sz;
  const uint64_t m = size_mask(sz), msb = sign_bit(sz);
  const bool by_cl = i.op == 0xD2 || i.op == 0xD3;
  const unsigned count = static_cast<unsigned>((by_cl ? c.r[R_RCX] : i.imm) & (sz == 8 ? 63 : 31));
  uint64_t a, addr = 0;
  Status s = read_E_rmw(c, i, sz, &a, &addr);
  if (s != ST_OK) return s;
  if (count == 0) {  // flags untouched; a 32-bit register is still written (zero-extended)
    if (sz == 4 && !(i.flags & IF_MEM)) c.r[i.rm] &= 0xffffffffull;
    return ST_OK;
  }
  uint64_t r, f;
  bool cf;
  switch (i.sub) {
    case 0: {  // ROL: only CF and OF
      const unsigned n = count % bits;
      r = n ? ((a << n) | (a >> (bits - n))) & m : a;
      cf = r & 1;
      f = (cf ? FL_CF : 0) | (((r & msb) != 0) != cf ? FL_OF : 0);
      return commit_E(c, i, sz, addr, r, f, FL_ARITH & ~(FL_CF | FL_OF));
    }
    case 1: {  // ROR: only CF and OF
      const unsigned n = count % bits;
      r = n ? ((a >> n) | (a << (bits - n))) & m : a;
      cf = (r & msb) != 0;
      f = (cf ? FL_CF : 0) | (cf != ((r & (msb >> 1)) != 0) ? FL_OF : 0);
      return commit_E(c, i, sz, addr, r, f, FL_ARITH & ~(FL_CF | FL_OF));
    }
    case 4:  // SHL / SAL
      r = (a << count) & m;
      cf = count <= bits ? (a >> (bits - count)) & 1 : false;
      f = flags_szp(r, sz) | (cf ? FL_CF : 0) | (((r & msb) != 0) != cf ? FL_OF : 0);
      break;
    case 5:  // SHR: OF = the original sign
      r = count < 64 ? (a >> count) & m : 0;
      cf = (a >> (count - 1)) & 1;
      f = flags_szp(r, sz) | (cf ? FL_CF : 0) | ((a & msb) ? FL_OF : 0);
      break;
    default: {  // SAR: OF = 0
      const int64_t sa = sext(a, sz);
      r = static_cast<uint64_t>(sa >> count) & m;
      cf = (sa >> (count - 1)) & 1;
      f = flags_szp(r, sz) | (cf ? FL_CF : 0);
      break;
    }
  }
  return commit_E(c, i, sz, addr, r, f);
}

// ---- SHLD / SHRD (0F A4 A5 / 0F AC AD: imm8 or CL): shift r/m, filling from the register.
// Count masked to 5 bits (6 with REX.W); 0 changes nothing. CF = the last bit shifted out;
// SF ZF PF from the result; OF (defined for count 1: the sign changed) uses that formula for
// every count; AF undefined: 0. A 16-bit count above 16 (result undefined) shifts through
// the 48-bit dest:src:src (SHLD) or src:src:dest (SHRD), as x86-64 hardware does. ----
int h_shd(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz, bits = 8 * sz;
  const bool left = i.op < 0xA8;
  const unsigned n = static_cast<unsigned>(((i.op & 1) ? c.r[R_RCX] : i.imm) & (sz == 8 ? 63 : 31));
  uint64_t a, addr = 0;
  Status s = read_E_rmw(c, i, sz, &a, &addr);
  if (s != ST_OK) return s;
  if (n == 0) {  // flags untouched; a 32-bit register is still written (zero-extended)
    if (sz == 4 && !(i.flags & IF_MEM)) c.r[i.rm] &= 0xffffffffull;
    return ST_OK;
  }
  const uint64_t m = size_mask(sz), b = get_G(c, i, sz);
  uint64_t r;
  bool cf;
  if (sz == 2) {
    const uint64_t v = left ? (a << 32) | (b << 16) | b : (b << 32) | (b << 16) | a;
    r = (left ? v >> (32 - n) : v >> n) & m;
    cf = (left ? v >> (48 - n) : v >> (n - 1)) & 1;
  } else if (left) {
    r = ((a << n) | (b >> (bits - n))) & m;
    cf = (a >> (bits - n)) & 1;
  } else {
    r = ((a >> n) | (b << (bits - n))) & m;
    cf = (a >> (n - 1)) & 1;
  }
  const uint64_t f = flags_szp(r, sz) | (cf ? FL_CF : 0) | (((r ^ a) & sign_bit(sz)) ? FL_OF : 0);
  return commit_E(c, i, sz, addr, r, f);
}

// ---- XADD: r/m = r/m + reg, reg = the old r/m (flags of the ADD); with one register as both,
// it ends up holding the sum ----
int h_xadd(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t a, addr = 0, f;
  Status s = read_E_rmw(c, i, sz, &a, &addr);
  if (s != ST_OK) return s;
  const uint64_t r = alu(ALU_ADD, a, get_G(c, i, sz), 0, sz, &f);
  if (i.flags & IF_MEM) {
    if ((s = c.write(addr, sz, r)) != ST_OK) return s;
    set_G(c, i, sz, a);
  } else {
    set_G(c, i, sz, a);
    set_reg(c, i.rm, i.flags & IF_RM_HI, sz, r);
  }
  set_arith_flags(c, f);
  return ST_OK;
}

// ---- CMPXCHG: flags of CMP rAX, r/m. Equal: r/m = reg. Not equal: rAX = r/m, and a memory
// destination is written back unchanged (the SDM's write cycle); a register destination is
// not written, so neither register's upper half is cleared but the one loaded (as hardware
// does for the 32-bit forms). ----
int h_cmpxchg(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  uint64_t d, addr = 0, f;
  Status s = read_E_rmw(c, i, sz, &d, &addr);
  if (s != ST_OK) return s;
  alu(ALU_CMP, c.r[R_RAX] & size_mask(sz), d, 0, sz, &f);
  if (f & FL_ZF) {
    if ((s = write_E(c, i, sz, addr, get_G(c, i, sz))) != ST_OK) return s;
  } else {
    if ((i.flags & IF_MEM) && (s = c.write(addr, sz, d)) != ST_OK) return s;
    set_reg(c, R_RAX, false, sz, d);
  }
  set_arith_flags(c, f);
  return ST_OK;
}

// A fast path for SHL/SHR/SAR of a 32/64-bit register by an immediate (C1 /4 /5 /7, D1) whose masked
// count is not 0 (decode checks): h_shift's results and flags without the runtime switches.
template <unsigned SUB, unsigned SZ>
int h_shift_ri(Cpu& c, const Insn& i) {
  constexpr unsigned bits = 8 * SZ;
  constexpr uint64_t m = SZ == 8 ? ~0ull : 0xffffffffull, msb = 1ull << (bits - 1);
  const unsigned count = static_cast<unsigned>(i.imm & (SZ == 8 ? 63 : 31));
  const uint64_t a = c.r[i.rm] & m;
  uint64_t r, cf, of;  // CF and OF as 0 or 1
  if (SUB == 4) {  // SHL
    r = (a << count) & m;
    cf = (a >> (bits - count)) & 1;
    of = ((r & msb) != 0) != (cf != 0);
  } else if (SUB == 5) {  // SHR: OF = the original sign
    r = a >> count;
    cf = (a >> (count - 1)) & 1;
    of = (a & msb) != 0;
  } else {  // SAR: OF = 0
    const int64_t sa = SZ == 8 ? static_cast<int64_t>(a) : static_cast<int64_t>(static_cast<int32_t>(a));
    r = static_cast<uint64_t>(sa >> count) & m;
    cf = (sa >> (count - 1)) & 1;
    of = 0;
  }
  c.r[i.rm] = r;
  // SF, ZF, PF of the result and AF = 0 (flags_szp's) are what AND of it with itself leaves.
  uint16_t afl;
  alu_a<ALU_AND, SZ>(r, r, 0, &afl);
  c.afl_ = static_cast<uint16_t>(afl | (cf << 8) | of);  // Cpu::kAflCF, Cpu::kAflOF
  return ST_OK;
}
// Indexed [osz == 8][ModRM.reg]; nullptr where there is no fast form (ROL, ROR, /2 /3 /6).
const Handler kShiftRI[2][8] = {
    {nullptr, nullptr, nullptr, nullptr, h_shift_ri<4, 4>, h_shift_ri<5, 4>, nullptr, h_shift_ri<7, 4>},
    {nullptr, nullptr, nullptr, nullptr, h_shift_ri<4, 8>, h_shift_ri<5, 8>, nullptr, h_shift_ri<7, 8>}};

// ---- BT BTS BTR BTC: CF = the bit; the other flags are undefined and left unchanged. With a
// register bit offset and a memory operand the offset is signed and may address outside the
// operand (bit-string addressing, SDM). ----
namespace {
int bit_op(Cpu& c, const Insn& i, unsigned kind, uint64_t offset, bool from_reg) {
  const unsigned sz = i.osz, bits = 8 * sz;
  const unsigned bit = static_cast<unsigned>(offset & (bits - 1));
  uint64_t a, addr = 0;
  Status s;
  if ((i.flags & IF_MEM) && from_reg) {
    const int64_t units = sext(offset, sz) >> (sz == 2 ? 4 : sz == 4 ? 5 : 6);
    addr = ea(c, i) + static_cast<uint64_t>(units) * sz;
    s = kind == 0 ? c.read(addr, sz, &a) : c.read_rmw(addr, sz, &a);  // BTS/BTR/BTC are RMW
  } else {
    s = kind == 0 ? read_E(c, i, sz, &a, &addr) : read_E_rmw(c, i, sz, &a, &addr);
  }
  if (s != ST_OK) return s;
  const bool cf = (a >> bit) & 1;
  uint64_t r = a;
  if (kind == 1) r |= 1ull << bit;
  else if (kind == 2) r &= ~(1ull << bit);
  else if (kind == 3) r ^= 1ull << bit;
  if (kind != 0 && (s = write_E(c, i, sz, addr, r)) != ST_OK) return s;
  c.set_arith((c.arith() & ~FL_CF) | (cf ? FL_CF : 0));
  return ST_OK;
}
}  // namespace
int h_bt_EG(Cpu& c, const Insn& i) { return bit_op(c, i, (i.op >> 3) & 3, get_G(c, i, i.osz), true); }
int h_bt_EI(Cpu& c, const Insn& i) { return bit_op(c, i, i.sub - 4u, i.imm, false); }

// ---- BSF / BSR: ZF = (source == 0), and then the destination is left unchanged; CF OF SF AF
// PF undefined: unchanged. ----
int h_bsf(Cpu& c, const Insn& i) {
  uint64_t v, addr = 0;
  Status s = read_E(c, i, i.osz, &v, &addr);
  if (s != ST_OK) return s;
  if (v == 0) { c.set_arith(c.arith() | FL_ZF); return ST_OK; }
  set_G(c, i, i.osz, static_cast<uint64_t>(__builtin_ctzll(v)));
  c.set_arith(c.arith() & ~FL_ZF);
  return ST_OK;
}
int h_bsr(Cpu& c, const Insn& i) {
  uint64_t v, addr = 0;
  Status s = read_E(c, i, i.osz, &v, &addr);
  if (s != ST_OK) return s;
  if (v == 0) { c.set_arith(c.arith() | FL_ZF); return ST_OK; }
  set_G(c, i, i.osz, static_cast<uint64_t>(63 - __builtin_clzll(v)));
  c.set_arith(c.arith() & ~FL_ZF);
  return ST_OK;
}

}  // namespace hv
