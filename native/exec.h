// Shared pieces of the instruction handlers (native/exec_*.cc): operand access for the
// decoded ModRM forms, the SDM flag computations, condition codes, and the declarations of
// every handler the decode table (decode.cc) points at.
#pragma once
#include "cpu.h"

namespace hv {

inline uint64_t size_mask(unsigned sz) { return sz >= 8 ? ~0ull : (1ull << (8 * sz)) - 1; }
inline uint64_t sign_bit(unsigned sz) { return 1ull << (8 * sz - 1); }
inline int64_t sext(uint64_t v, unsigned sz) {
  const unsigned sh = 64 - 8 * sz;
  return static_cast<int64_t>(v << sh) >> sh;
}

// Effective address of a memory operand. r[R_RIP] already holds the next instruction's
// address (RIP-relative base), r[R_ZERO] is 0 ("no base" / "no index").
inline uint64_t ea(const Cpu& c, const Insn& i) {
  return c.r[i.base] + (c.r[i.index] << i.scale) + static_cast<uint64_t>(static_cast<int64_t>(i.disp));
}

// Register operands. 8-bit AH..BH (no REX) are bits 8..15 of RAX..RBX; 32-bit writes
// zero-extend; 8/16-bit writes merge.
inline uint64_t get_reg(const Cpu& c, uint8_t reg, bool hi, unsigned sz) {
  if (hi) return (c.r[reg] >> 8) & 0xff;
  return c.r[reg] & size_mask(sz);
}
inline void set_reg(Cpu& c, uint8_t reg, bool hi, unsigned sz, uint64_t v) {
  uint64_t& d = c.r[reg];
  switch (sz) {
    case 1:
      if (hi) d = (d & ~0xff00ull) | ((v & 0xff) << 8);
      else d = (d & ~0xffull) | (v & 0xff);
      break;
    case 2: d = (d & ~0xffffull) | (v & 0xffff); break;
    case 4: d = v & 0xffffffffull; break;
    default: d = v; break;
  }
}
inline uint64_t get_G(const Cpu& c, const Insn& i, unsigned sz) { return get_reg(c, i.reg, i.flags & IF_REG_HI, sz); }
inline void set_G(Cpu& c, const Insn& i, unsigned sz, uint64_t v) { set_reg(c, i.reg, i.flags & IF_REG_HI, sz, v); }

// The r/m operand: register or memory. `*addr` receives the effective address for a later
// write_E of the same operand (read-modify-write forms).
inline Status read_E(Cpu& c, const Insn& i, unsigned sz, uint64_t* v, uint64_t* addr) {
  if (!(i.flags & IF_MEM)) {
    *v = get_reg(c, i.rm, i.flags & IF_RM_HI, sz);
    return ST_OK;
  }
  *addr = ea(c, i);
  return c.read(*addr, sz, v);
}
// The r/m operand of a read-modify-write instruction: a memory operand is translated
// for the write it will receive (Cpu::read_rmw), so a read-only or dirty-logged page faults
// once, as a write.
inline Status read_E_rmw(Cpu& c, const Insn& i, unsigned sz, uint64_t* v, uint64_t* addr) {
  if (!(i.flags & IF_MEM)) {
    *v = get_reg(c, i.rm, i.flags & IF_RM_HI, sz);
    return ST_OK;
  }
  *addr = ea(c, i);
  return c.read_rmw(*addr, sz, v);
}
inline Status write_E(Cpu& c, const Insn& i, unsigned sz, uint64_t addr, uint64_t v) {
  if (!(i.flags & IF_MEM)) {
    set_reg(c, i.rm, i.flags & IF_RM_HI, sz, v);
    return ST_OK;
  }
  return c.write(addr, sz, v & size_mask(sz));
}

// ---- flags (SDM): all computed on values already masked to the operand size ----
__attribute__((always_inline)) inline uint64_t flags_szp(uint64_t r, unsigned sz) {
  uint64_t f = (r == 0) ? FL_ZF : 0;
  if (r & sign_bit(sz)) f |= FL_SF;
  if (!__builtin_parity(static_cast<unsigned>(r & 0xff))) f |= FL_PF;
  return f;
}
__attribute__((always_inline)) inline uint64_t flags_add(uint64_t a, uint64_t b, uint64_t r, bool cf, unsigned sz) {
  uint64_t f = flags_szp(r, sz) | ((a ^ b ^ r) & FL_AF);
  if (cf) f |= FL_CF;
  if ((a ^ r) & (b ^ r) & sign_bit(sz)) f |= FL_OF;
  return f;
}
__attribute__((always_inline)) inline uint64_t flags_sub(uint64_t a, uint64_t b, uint64_t r, bool cf, unsigned sz) {
  uint64_t f = flags_szp(r, sz) | ((a ^ b ^ r) & FL_AF);
  if (cf) f |= FL_CF;
  if ((a ^ b) & (a ^ r) & sign_bit(sz)) f |= FL_OF;
  return f;
}
inline void set_arith_flags(Cpu& c, uint64_t f) { c.set_arith(f); }

// The eight classic ALU operations (ModRM.reg of group 1 / bits 5..3 of opcodes 00..3F).
enum AluOp : uint8_t { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };
// Computes a OP b at size sz; returns the result and the new arithmetic flags in *f.
__attribute__((always_inline)) inline uint64_t alu_portable(uint8_t op, uint64_t a, uint64_t b, uint64_t flags_in, unsigned sz, uint64_t* f) {
  const uint64_t m = size_mask(sz);
  uint64_t r;
  switch (op) {
    case ALU_ADD: r = (a + b) & m; *f = flags_add(a, b, r, r < a, sz); return r;
    case ALU_ADC: {
      const bool c = flags_in & FL_CF;
      r = (a + b + c) & m;
      *f = flags_add(a, b, r, c ? r <= a : r < a, sz);
      return r;
    }
    case ALU_SBB: {
      const bool c = flags_in & FL_CF;
      r = (a - b - c) & m;
      *f = flags_sub(a, b, r, c ? a <= b : a < b, sz);
      return r;
    }
    case ALU_SUB:
    case ALU_CMP: r = (a - b) & m; *f = flags_sub(a, b, r, a < b, sz); return r;
    case ALU_OR: r = a | b; break;
    case ALU_AND: r = a & b; break;
    default: r = a ^ b; break;  // ALU_XOR
  }
  *f = flags_szp(r, sz);  // logic: CF = OF = 0, AF undefined (0)
  return r;
}

#if defined(__x86_64__) && !defined(HV_PORTABLE_FLAGS)
// On an x86-64 host the host's own ALU computes the SDM flags: run the same instruction at
// the same size, then LAHF (AH = SF ZF - AF - PF - CF, i.e. RFLAGS bits 7..0) and SETO.
// test/vcpu-host-diff.test.ts checks both paths' results against the host CPU; the portable
// C++ path (HV_PORTABLE_FLAGS, or any other host) is the reference for the AF=0 choice
// of the logic operations, which the host path copies by masking AF.
// The carry in is an operand only of ADC and SBB; a constant `b` of a 32/64-bit operation
// (INC/DEC's 1) is an immediate.
#define HV_HOST_ALU(I, CARRY)                                                                       \
  if (SZ == 8) asm(CARRY I "q %2, %0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "re"(b), "r"(cf) : "cc"); \
  else if (SZ == 4) asm(CARRY I "l %k2, %k0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "ri"(b), "r"(cf) : "cc"); \
  else if (SZ == 2) asm(CARRY I "w %w2, %w0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "r"(b), "r"(cf) : "cc"); \
  else asm(CARRY I "b %b2, %b0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "r"(b), "r"(cf) : "cc");
#define HV_HOST_ALU_NC(I)                                                                       \
  if (SZ == 8) asm(I "q %2, %0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "re"(b) : "cc"); \
  else if (SZ == 4) asm(I "l %k2, %k0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "ri"(b) : "cc"); \
  else if (SZ == 2) asm(I "w %w2, %w0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "r"(b) : "cc"); \
  else asm(I "b %b2, %b0\n\tlahf\n\tseto %%al" : "+r"(r), "=&a"(fl) : "r"(b) : "cc");
inline uint64_t lahf_flags(uint64_t fl) { return ((fl >> 8) & (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF)) | ((fl & 1) << 11); }

// alu_a: the result, and the flags in Cpu::afl_'s layout (LAHF:SETO, as the host leaves
// them) in *afl; `cf` is the carry in (0 or 1) of ADC/SBB.
template <uint8_t OP, unsigned SZ>
__attribute__((always_inline)) inline uint64_t alu_a(uint64_t a, uint64_t b, uint64_t cf, uint16_t* afl) {
  uint64_t r = a, fl;
  switch (OP) {
    case ALU_ADD: HV_HOST_ALU_NC("add") break;
    case ALU_ADC: HV_HOST_ALU("adc", "btl $0, %k3\n\t") break;
    case ALU_SBB: HV_HOST_ALU("sbb", "btl $0, %k3\n\t") break;
    case ALU_SUB: case ALU_CMP: HV_HOST_ALU_NC("sub") break;
    case ALU_OR: HV_HOST_ALU_NC("or") break;
    case ALU_AND: HV_HOST_ALU_NC("and") break;
    default: HV_HOST_ALU_NC("xor") break;
  }
  *afl = static_cast<uint16_t>(fl);
  if (OP == ALU_OR || OP == ALU_AND || OP == ALU_XOR) *afl &= ~Cpu::kAflAF;  // undefined: 0, as portable
  return r & size_mask(SZ);
}
#undef HV_HOST_ALU
#undef HV_HOST_ALU_NC
template <uint8_t OP, unsigned SZ>
__attribute__((always_inline)) inline uint64_t alu_t(uint64_t a, uint64_t b, uint64_t flags_in, uint64_t* f) {
  uint16_t afl;
  const uint64_t r = alu_a<OP, SZ>(a, b, flags_in & FL_CF, &afl);
  *f = Cpu::afl_to(afl);
  return r;
}
#else
template <uint8_t OP, unsigned SZ>
__attribute__((always_inline)) inline uint64_t alu_t(uint64_t a, uint64_t b, uint64_t flags_in, uint64_t* f) {
  return alu_portable(OP, a, b, flags_in, SZ, f);
}
template <uint8_t OP, unsigned SZ>
__attribute__((always_inline)) inline uint64_t alu_a(uint64_t a, uint64_t b, uint64_t cf, uint16_t* afl) {
  uint64_t f;
  const uint64_t r = alu_portable(OP, a, b, cf ? FL_CF : 0, SZ, &f);
  *afl = Cpu::afl_from(f);
  return r;
}
#endif

// Runtime operation and size: dispatches to the specialized form.
template <unsigned SZ>
inline uint64_t alu_sz(uint8_t op, uint64_t a, uint64_t b, uint64_t flags_in, uint64_t* f) {
  switch (op) {
    case ALU_ADD: return alu_t<ALU_ADD, SZ>(a, b, flags_in, f);
    case ALU_OR: return alu_t<ALU_OR, SZ>(a, b, flags_in, f);
    case ALU_ADC: return alu_t<ALU_ADC, SZ>(a, b, flags_in, f);
    case ALU_SBB: return alu_t<ALU_SBB, SZ>(a, b, flags_in, f);
    case ALU_AND: return alu_t<ALU_AND, SZ>(a, b, flags_in, f);
    case ALU_SUB: return alu_t<ALU_SUB, SZ>(a, b, flags_in, f);
    case ALU_XOR: return alu_t<ALU_XOR, SZ>(a, b, flags_in, f);
    default: return alu_t<ALU_CMP, SZ>(a, b, flags_in, f);
  }
}
inline uint64_t alu(uint8_t op, uint64_t a, uint64_t b, uint64_t flags_in, unsigned sz, uint64_t* f) {
  switch (sz) {
    case 1: return alu_sz<1>(op, a, b, flags_in, f);
    case 2: return alu_sz<2>(op, a, b, flags_in, f);
    case 4: return alu_sz<4>(op, a, b, flags_in, f);
    default: return alu_sz<8>(op, a, b, flags_in, f);
  }
}

// Condition code cc (low nibble of Jcc/SETcc/CMOVcc) against RFLAGS.
__attribute__((always_inline)) inline bool cond(uint64_t fl, uint8_t cc) {
  bool t;
  switch (cc >> 1) {
    case 0: t = fl & FL_OF; break;
    case 1: t = fl & FL_CF; break;
    case 2: t = fl & FL_ZF; break;
    case 3: t = fl & (FL_CF | FL_ZF); break;
    case 4: t = fl & FL_SF; break;
    case 5: t = fl & FL_PF; break;
    case 6: t = !(fl & FL_SF) != !(fl & FL_OF); break;
    default: t = (fl & FL_ZF) || (!(fl & FL_SF) != !(fl & FL_OF)); break;
  }
  return t ^ (cc & 1);
}

// The same test on flags in Cpu::afl_'s layout (the hot Jcc forms and the fused handlers).
__attribute__((always_inline)) inline bool cond_a(uint16_t fl, uint8_t cc) {
  bool t;
  switch (cc >> 1) {
    case 0: t = fl & Cpu::kAflOF; break;
    case 1: t = fl & Cpu::kAflCF; break;
    case 2: t = fl & Cpu::kAflZF; break;
    case 3: t = fl & (Cpu::kAflCF | Cpu::kAflZF); break;
    case 4: t = fl & Cpu::kAflSF; break;
    case 5: t = fl & Cpu::kAflPF; break;
    case 6: t = !(fl & Cpu::kAflSF) != !(fl & Cpu::kAflOF); break;
    default: t = (fl & Cpu::kAflZF) || (!(fl & Cpu::kAflSF) != !(fl & Cpu::kAflOF)); break;
  }
  return t ^ (cc & 1);
}

// A taken branch: non-canonical targets raise #GP at the branch (RIP stays on it).
inline int jump_to(Cpu& c, uint64_t target) {
  if (!Cpu::canonical(target)) return c.gp();
  c.r[R_RIP] = target;
  return ST_OK;
}

#define HV_HANDLER(name) int name(Cpu& c, const Insn& i)
// exec_alu.cc
HV_HANDLER(h_alu_EG); HV_HANDLER(h_alu_GE); HV_HANDLER(h_alu_EI);
HV_HANDLER(h_test_EG); HV_HANDLER(h_test_EI); HV_HANDLER(h_incdec); HV_HANDLER(h_not); HV_HANDLER(h_neg);
HV_HANDLER(h_mul); HV_HANDLER(h_imul1); HV_HANDLER(h_div); HV_HANDLER(h_idiv);
HV_HANDLER(h_imul_GE); HV_HANDLER(h_imul_GEI);
HV_HANDLER(h_shift); HV_HANDLER(h_bt_EG); HV_HANDLER(h_bt_EI); HV_HANDLER(h_bsf); HV_HANDLER(h_bsr);
HV_HANDLER(h_shd); HV_HANDLER(h_xadd); HV_HANDLER(h_cmpxchg);
// exec_data.cc
HV_HANDLER(h_mov_EG); HV_HANDLER(h_mov_GE); HV_HANDLER(h_mov_EI); HV_HANDLER(h_mov_ri);
HV_HANDLER(h_mov_rr64); HV_HANDLER(h_mov_rr32);
HV_HANDLER(h_movzx); HV_HANDLER(h_movsx); HV_HANDLER(h_movsxd); HV_HANDLER(h_lea);
HV_HANDLER(h_xchg_EG); HV_HANDLER(h_xchg_ax); HV_HANDLER(h_push_r); HV_HANDLER(h_pop_r);
HV_HANDLER(h_push_imm); HV_HANDLER(h_push_E); HV_HANDLER(h_pop_E); HV_HANDLER(h_cmov);
HV_HANDLER(h_setcc); HV_HANDLER(h_cbw); HV_HANDLER(h_cwd); HV_HANDLER(h_leave);
HV_HANDLER(h_pushf); HV_HANDLER(h_popf); HV_HANDLER(h_lahf); HV_HANDLER(h_sahf); HV_HANDLER(h_bswap);
HV_HANDLER(h_mov_to_sreg); HV_HANDLER(h_mov_from_sreg);
// exec_string.cc
HV_HANDLER(h_movs); HV_HANDLER(h_stos); HV_HANDLER(h_lods); HV_HANDLER(h_cmps); HV_HANDLER(h_scas);
// exec_ctrl.cc
HV_HANDLER(h_jmp_rel); HV_HANDLER(h_jcc); HV_HANDLER(h_jmp_E); HV_HANDLER(h_call_rel);
HV_HANDLER(h_call_E); HV_HANDLER(h_ret); HV_HANDLER(h_loop); HV_HANDLER(h_nop);
// exec_sys.cc
HV_HANDLER(h_hlt); HV_HANDLER(h_in); HV_HANDLER(h_out); HV_HANDLER(h_mov_from_cr);
HV_HANDLER(h_mov_to_cr); HV_HANDLER(h_invlpg); HV_HANDLER(h_lgdt); HV_HANDLER(h_sgdt);
HV_HANDLER(h_lidt); HV_HANDLER(h_sidt); HV_HANDLER(h_iretq); HV_HANDLER(h_cpuid);
HV_HANDLER(h_rdtsc); HV_HANDLER(h_cli); HV_HANDLER(h_sti); HV_HANDLER(h_cld); HV_HANDLER(h_std);
HV_HANDLER(h_wbinvd); HV_HANDLER(h_ud); HV_HANDLER(h_gp);
HV_HANDLER(h_clc); HV_HANDLER(h_stc); HV_HANDLER(h_cmc); HV_HANDLER(h_int3);
#undef HV_HANDLER
// Specialized register forms, indexed [osz == 8][operation] (exec_alu.cc) and by condition
// code (exec_ctrl.cc).
extern const Handler kAluRR[2][8];
extern const Handler kAluRI[2][8];
extern const Handler kIncDecR[2][2];
extern const Handler kAluGEm[2][8];
extern const Handler kAluEGm[2][8];
extern const Handler kMovLoad[2];
extern const Handler kMovStore[2];
extern const Handler kMovzxLoad[2];     // [source is 16-bit]: MOVZX r32/r64, m8/m16
extern const Handler kMovzxRR[2];       // MOVZX r32/r64, r8 (not AH..BH) / r16
extern const Handler kMovsxLoad[2][2];  // [64-bit destination][source is 16-bit]
extern const Handler kMovsxRR[2][2];
extern const Handler kJccHandlers[16];
extern const Handler kImulRR[2];    // fast path: IMUL r, r
extern const Handler kShiftRI[2][8];  // fast path: SHL/SHR/SAR r, imm (masked count != 0)

// Fused compare-and-branch (exec_fused.cc): the handler that runs `x` and then a Jcc with
// condition `cc` as one, or nullptr when x is not one of the fused forms; and whether j is a
// decoded Jcc rel8/rel32.
Handler fused_handler(const Insn& x, uint8_t cc);
bool is_jcc(const Insn& j);

// Segment-selector check against the GDT (exec_sys.cc): loads the descriptor of `sel`
// into *desc; ST_OK or a pending #GP(selector) / #PF / exit.
Status read_descriptor(Cpu& c, uint16_t sel, uint64_t* desc);

}  // namespace hv
