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
inline Status write_E(Cpu& c, const Insn& i, unsigned sz, uint64_t addr, uint64_t v) {
  if (!(i.flags & IF_MEM)) {
    set_reg(c, i.rm, i.flags & IF_RM_HI, sz, v);
    return ST_OK;
  }
  return c.write(addr, sz, v & size_mask(sz));
}

// ---- flags (SDM): all computed on values already masked to the operand size ----
inline uint64_t flags_szp(uint64_t r, unsigned sz) {
  uint64_t f = (r == 0) ? FL_ZF : 0;
  if (r & sign_bit(sz)) f |= FL_SF;
  if (!__builtin_parity(static_cast<unsigned>(r & 0xff))) f |= FL_PF;
  return f;
}
inline uint64_t flags_add(uint64_t a, uint64_t b, uint64_t r, bool cf, unsigned sz) {
  uint64_t f = flags_szp(r, sz) | ((a ^ b ^ r) & FL_AF);
  if (cf) f |= FL_CF;
  if ((a ^ r) & (b ^ r) & sign_bit(sz)) f |= FL_OF;
  return f;
}
inline uint64_t flags_sub(uint64_t a, uint64_t b, uint64_t r, bool cf, unsigned sz) {
  uint64_t f = flags_szp(r, sz) | ((a ^ b ^ r) & FL_AF);
  if (cf) f |= FL_CF;
  if ((a ^ b) & (a ^ r) & sign_bit(sz)) f |= FL_OF;
  return f;
}
inline void set_arith_flags(Cpu& c, uint64_t f) { c.r[R_RFLAGS] = (c.r[R_RFLAGS] & ~FL_ARITH) | f; }

// The eight classic ALU operations (ModRM.reg of group 1 / bits 5..3 of opcodes 00..3F).
enum AluOp : uint8_t { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };
// Computes a OP b at size sz; returns the result and the new arithmetic flags in *f.
inline uint64_t alu(uint8_t op, uint64_t a, uint64_t b, uint64_t flags_in, unsigned sz, uint64_t* f) {
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

// Condition code cc (low nibble of Jcc/SETcc/CMOVcc) against RFLAGS.
inline bool cond(uint64_t fl, uint8_t cc) {
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

// A taken branch: non-canonical targets raise #GP at the branch (RIP stays on it).
inline int jump_to(Cpu& c, uint64_t target) {
  if (!Cpu::canonical(target)) return c.gp();
  c.r[R_RIP] = target;
  return ST_OK;
}

#define HV_HANDLER(name) int name(Cpu& c, const Insn& i)
// exec_alu.cc
HV_HANDLER(h_alu_EG); HV_HANDLER(h_alu_GE); HV_HANDLER(h_alu_EI);
HV_HANDLER(h_alu_rr32); HV_HANDLER(h_alu_rr64); HV_HANDLER(h_alu_ri32); HV_HANDLER(h_alu_ri64);
HV_HANDLER(h_test_EG); HV_HANDLER(h_test_EI); HV_HANDLER(h_incdec); HV_HANDLER(h_incdec_r64);
HV_HANDLER(h_incdec_r32); HV_HANDLER(h_not); HV_HANDLER(h_neg);
HV_HANDLER(h_mul); HV_HANDLER(h_imul1); HV_HANDLER(h_div); HV_HANDLER(h_idiv);
HV_HANDLER(h_imul_GE); HV_HANDLER(h_imul_GEI);
HV_HANDLER(h_shift); HV_HANDLER(h_bt_EG); HV_HANDLER(h_bt_EI); HV_HANDLER(h_bsf); HV_HANDLER(h_bsr);
// exec_data.cc
HV_HANDLER(h_mov_EG); HV_HANDLER(h_mov_GE); HV_HANDLER(h_mov_EI); HV_HANDLER(h_mov_ri);
HV_HANDLER(h_mov_rr64); HV_HANDLER(h_mov_rr32);
HV_HANDLER(h_movzx); HV_HANDLER(h_movsx); HV_HANDLER(h_movsxd); HV_HANDLER(h_lea);
HV_HANDLER(h_xchg_EG); HV_HANDLER(h_xchg_ax); HV_HANDLER(h_push_r); HV_HANDLER(h_pop_r);
HV_HANDLER(h_push_imm); HV_HANDLER(h_push_E); HV_HANDLER(h_pop_E); HV_HANDLER(h_cmov);
HV_HANDLER(h_setcc); HV_HANDLER(h_cbw); HV_HANDLER(h_cwd);
HV_HANDLER(h_mov_to_sreg); HV_HANDLER(h_mov_from_sreg);
// exec_string.cc
HV_HANDLER(h_movs); HV_HANDLER(h_stos); HV_HANDLER(h_lods); HV_HANDLER(h_cmps);
// exec_ctrl.cc
HV_HANDLER(h_jmp_rel); HV_HANDLER(h_jcc); HV_HANDLER(h_jmp_E); HV_HANDLER(h_call_rel);
HV_HANDLER(h_call_E); HV_HANDLER(h_ret); HV_HANDLER(h_loop); HV_HANDLER(h_nop);
// exec_sys.cc
HV_HANDLER(h_hlt); HV_HANDLER(h_in); HV_HANDLER(h_out); HV_HANDLER(h_mov_from_cr);
HV_HANDLER(h_mov_to_cr); HV_HANDLER(h_invlpg); HV_HANDLER(h_lgdt); HV_HANDLER(h_sgdt);
HV_HANDLER(h_lidt); HV_HANDLER(h_sidt); HV_HANDLER(h_iretq); HV_HANDLER(h_cpuid);
HV_HANDLER(h_rdtsc); HV_HANDLER(h_cli); HV_HANDLER(h_sti); HV_HANDLER(h_cld); HV_HANDLER(h_std);
HV_HANDLER(h_wbinvd); HV_HANDLER(h_ud); HV_HANDLER(h_gp);
#undef HV_HANDLER

// Segment-selector check against the GDT (exec_sys.cc): loads the descriptor of `sel`
// into *desc; ST_OK or a pending #GP(selector) / #PF / exit.
Status read_descriptor(Cpu& c, uint16_t sel, uint64_t* desc);

}  // namespace hv
