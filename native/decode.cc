// The decoder: prefixes (66, F3, F2, LOCK, REX), opcode tables (one- and two-byte maps, group tables indexed by
// ModRM.reg), ModRM/SIB/displacement and immediates. Everything outside the guests'
// x86-64 subset (docs/guest-abi.md "The x86-64 subset") decodes to h_ud, so the guest gets #UD — never a crash or a silent wrong result.
#include "decode.h"

#include "cpu.h"
#include "exec.h"

namespace hv {

namespace {

// Immediate kinds.
enum Imm : uint8_t { IM_NONE, IM_B8S, IM_B8U, IM_W16U, IM_Z, IM_V, IM_32S };
// OpDesc::kind bits.
constexpr uint8_t K_MODRM = 1;   // has a ModRM byte
constexpr uint8_t K_BYTE = 2;    // operand size is 8 bits
constexpr uint8_t K_D64 = 4;     // operand size defaults to 64 bits in long mode; 0x66 without
                                 // REX.W selects 16 (PUSH/POP; the branches carry K_NO66)
constexpr uint8_t K_GROUP = 8;   // handler chosen by ModRM.reg from a group table
constexpr uint8_t K_RM8 = 16;    // the r/m operand is a byte register even when osz is not
constexpr uint8_t K_REPOK = 32;  // F3 allowed (strings; PAUSE)
constexpr uint8_t K_NO66 = 64;   // 0x66 is outside the subset for this opcode

struct OpDesc {
  Handler h;       // nullptr → #UD (or the group table decides)
  uint8_t kind;
  uint8_t imm;
  const Handler* group;  // K_GROUP: 8 handlers by ModRM.reg (nullptr entries → #UD)
};

const Handler kG1[8] = {h_alu_EI, h_alu_EI, h_alu_EI, h_alu_EI, h_alu_EI, h_alu_EI, h_alu_EI, h_alu_EI};
const Handler kG2[8] = {h_shift, h_shift, nullptr, nullptr, h_shift, h_shift, nullptr, h_shift};
const Handler kG3[8] = {h_test_EI, nullptr, h_not, h_neg, h_mul, h_imul1, h_div, h_idiv};
const Handler kG4[8] = {h_incdec, h_incdec, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
const Handler kG5[8] = {h_incdec, h_incdec, h_call_E, nullptr, h_jmp_E, nullptr, h_push_E, nullptr};
const Handler kG1A[8] = {h_pop_E, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
const Handler kG11[8] = {h_mov_EI, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
const Handler kG7[8] = {h_sgdt, h_sidt, h_lgdt, h_lidt, nullptr, nullptr, nullptr, h_invlpg};
const Handler kG8[8] = {nullptr, nullptr, nullptr, nullptr, h_bt_EI, h_bt_EI, h_bt_EI, h_bt_EI};
const Handler kG16[8] = {h_nop, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
// 0F 18: PREFETCHNTA/T0/T1/T2 (/0../3) and the reserved hint NOPs (/4../7); 0F 0D: PREFETCH,
// PREFETCHW. Prefetches never fault, so none computes its address.
const Handler kG16Prefetch[8] = {h_nop, h_nop, h_nop, h_nop, h_nop, h_nop, h_nop, h_nop};
const Handler kGP[8] = {h_nop, h_nop, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
// 0F AE with mod = 3: LFENCE (/5), MFENCE (/6), SFENCE (/7); one thread, no caches: no-ops.
const Handler kG15[8] = {nullptr, nullptr, nullptr, nullptr, nullptr, h_nop, h_nop, h_nop};

// LOCK is allowed on these read-modify-write forms, and only with a memory destination (SDM
// LOCK); anywhere else it is #UD. One thread runs, so the locked access needs nothing more.
bool lockable(bool two, uint8_t opc, uint8_t regf) {
  if (!two) {
    if (opc < 0x40) return (opc & 6) == 0 && (opc >> 3) != ALU_CMP;  // ADD..XOR r/m, reg
    switch (opc) {
      case 0x80: case 0x81: case 0x83: return regf != ALU_CMP;
      case 0x86: case 0x87: return true;                    // XCHG
      case 0xF6: case 0xF7: return regf == 2 || regf == 3;  // NOT, NEG
      case 0xFE: case 0xFF: return regf <= 1;               // INC, DEC
      default: return false;
    }
  }
  switch (opc) {
    case 0xAB: case 0xB3: case 0xBB: return true;  // BTS BTR BTC r/m, reg
    case 0xBA: return regf >= 5;                   // BTS BTR BTC r/m, imm8
    case 0xB0: case 0xB1: case 0xC0: case 0xC1: return true;  // CMPXCHG, XADD
    default: return false;
  }
}

struct Tables {
  OpDesc one[256];
  OpDesc two[256];
};

Tables build_tables() {
  Tables t{};
  auto set = [](OpDesc& d, Handler h, uint8_t kind, uint8_t imm = IM_NONE, const Handler* g = nullptr) {
    d = OpDesc{h, kind, imm, g};
  };
  OpDesc* o = t.one;
  for (int a = 0; a < 8; a++) {  // ADD OR ADC SBB AND SUB XOR CMP
    const int b = a * 8;
    set(o[b + 0], h_alu_EG, K_MODRM | K_BYTE);
    set(o[b + 1], h_alu_EG, K_MODRM);
    set(o[b + 2], h_alu_GE, K_MODRM | K_BYTE);
    set(o[b + 3], h_alu_GE, K_MODRM);
    set(o[b + 4], h_alu_EI, K_BYTE, IM_B8S);
    set(o[b + 5], h_alu_EI, 0, IM_Z);
  }
  for (int r = 0; r < 8; r++) {
    set(o[0x50 + r], h_push_r, K_D64);
    set(o[0x58 + r], h_pop_r, K_D64);
    set(o[0x70 + r], h_jcc, K_D64 | K_NO66, IM_B8S);
    set(o[0x78 + r], h_jcc, K_D64 | K_NO66, IM_B8S);
    set(o[0xB0 + r], h_mov_ri, K_BYTE, IM_B8U);
    set(o[0xB8 + r], h_mov_ri, 0, IM_V);
    if (r) set(o[0x90 + r], h_xchg_ax, 0);
  }
  set(o[0x63], h_movsxd, K_MODRM);
  set(o[0x68], h_push_imm, K_D64, IM_32S);
  set(o[0x69], h_imul_GEI, K_MODRM, IM_Z);
  set(o[0x6A], h_push_imm, K_D64, IM_B8S);
  set(o[0x6B], h_imul_GEI, K_MODRM, IM_B8S);
  set(o[0x80], nullptr, K_MODRM | K_BYTE | K_GROUP, IM_B8S, kG1);
  set(o[0x81], nullptr, K_MODRM | K_GROUP, IM_Z, kG1);
  set(o[0x83], nullptr, K_MODRM | K_GROUP, IM_B8S, kG1);
  set(o[0x84], h_test_EG, K_MODRM | K_BYTE);
  set(o[0x85], h_test_EG, K_MODRM);
  set(o[0x86], h_xchg_EG, K_MODRM | K_BYTE);
  set(o[0x87], h_xchg_EG, K_MODRM);
  set(o[0x88], h_mov_EG, K_MODRM | K_BYTE);
  set(o[0x89], h_mov_EG, K_MODRM);
  set(o[0x8A], h_mov_GE, K_MODRM | K_BYTE);
  set(o[0x8B], h_mov_GE, K_MODRM);
  set(o[0x8C], h_mov_from_sreg, K_MODRM);
  set(o[0x8D], h_lea, K_MODRM);
  set(o[0x8E], h_mov_to_sreg, K_MODRM);
  set(o[0x8F], nullptr, K_MODRM | K_D64 | K_GROUP, IM_NONE, kG1A);
  set(o[0x90], h_nop, K_REPOK);  // NOP; F3 90 = PAUSE; REX.B 90 = XCHG r8, rax (fixed up below)
  set(o[0x98], h_cbw, 0);
  set(o[0x99], h_cwd, 0);
  set(o[0x9C], h_pushf, K_D64);
  set(o[0x9D], h_popf, K_D64);
  set(o[0x9E], h_sahf, 0);
  set(o[0x9F], h_lahf, 0);
  set(o[0xA4], h_movs, K_BYTE | K_REPOK);
  set(o[0xA5], h_movs, K_REPOK);
  set(o[0xA6], h_cmps, K_BYTE | K_REPOK);
  set(o[0xA7], h_cmps, K_REPOK);
  set(o[0xA8], h_test_EI, K_BYTE, IM_B8S);
  set(o[0xA9], h_test_EI, 0, IM_Z);
  set(o[0xAA], h_stos, K_BYTE | K_REPOK);
  set(o[0xAB], h_stos, K_REPOK);
  set(o[0xAC], h_lods, K_BYTE | K_REPOK);
  set(o[0xAD], h_lods, K_REPOK);
  set(o[0xAE], h_scas, K_BYTE | K_REPOK);
  set(o[0xAF], h_scas, K_REPOK);
  set(o[0xC0], nullptr, K_MODRM | K_BYTE | K_GROUP, IM_B8U, kG2);
  set(o[0xC1], nullptr, K_MODRM | K_GROUP, IM_B8U, kG2);
  set(o[0xC2], h_ret, K_D64 | K_NO66, IM_W16U);
  set(o[0xC3], h_ret, K_D64 | K_NO66);
  set(o[0xC6], nullptr, K_MODRM | K_BYTE | K_GROUP, IM_B8S, kG11);
  set(o[0xC7], nullptr, K_MODRM | K_GROUP, IM_Z, kG11);
  set(o[0xC9], h_leave, K_D64);
  set(o[0xCC], h_int3, 0);
  set(o[0xCF], h_iretq, 0);
  set(o[0xD0], nullptr, K_MODRM | K_BYTE | K_GROUP, IM_NONE, kG2);
  set(o[0xD1], nullptr, K_MODRM | K_GROUP, IM_NONE, kG2);
  set(o[0xD2], nullptr, K_MODRM | K_BYTE | K_GROUP, IM_NONE, kG2);
  set(o[0xD3], nullptr, K_MODRM | K_GROUP, IM_NONE, kG2);
  set(o[0xE2], h_loop, K_D64 | K_NO66, IM_B8S);
  set(o[0xE4], h_in, K_BYTE, IM_B8U);
  set(o[0xE5], h_in, 0, IM_B8U);
  set(o[0xE6], h_out, K_BYTE, IM_B8U);
  set(o[0xE7], h_out, 0, IM_B8U);
  set(o[0xE8], h_call_rel, K_D64 | K_NO66, IM_32S);
  set(o[0xE9], h_jmp_rel, K_D64 | K_NO66, IM_32S);
  set(o[0xEB], h_jmp_rel, K_D64 | K_NO66, IM_B8S);
  set(o[0xEC], h_in, K_BYTE);
  set(o[0xED], h_in, 0);
  set(o[0xEE], h_out, K_BYTE);
  set(o[0xEF], h_out, 0);
  set(o[0xF4], h_hlt, 0);
  set(o[0xF5], h_cmc, 0);
  set(o[0xF8], h_clc, 0);
  set(o[0xF9], h_stc, 0);
  set(o[0xF6], nullptr, K_MODRM | K_BYTE | K_GROUP, IM_NONE, kG3);  // imm only for /0 (below)
  set(o[0xF7], nullptr, K_MODRM | K_GROUP, IM_NONE, kG3);
  set(o[0xFA], h_cli, 0);
  set(o[0xFB], h_sti, 0);
  set(o[0xFC], h_cld, 0);
  set(o[0xFD], h_std, 0);
  set(o[0xFE], nullptr, K_MODRM | K_BYTE | K_GROUP, IM_NONE, kG4);
  set(o[0xFF], nullptr, K_MODRM | K_GROUP, IM_NONE, kG5);

  OpDesc* w = t.two;
  set(w[0x01], nullptr, K_MODRM | K_GROUP | K_NO66, IM_NONE, kG7);
  set(w[0x09], h_wbinvd, 0);
  set(w[0x0B], h_ud, 0);
  set(w[0x0D], nullptr, K_MODRM | K_GROUP | K_NO66, IM_NONE, kGP);
  set(w[0x18], nullptr, K_MODRM | K_GROUP | K_NO66, IM_NONE, kG16Prefetch);
  set(w[0x1E], h_nop, K_MODRM | K_REPOK);  // hint NOP; F3 0F 1E FA is ENDBR64 (no CET: a NOP)
  set(w[0x1F], nullptr, K_MODRM | K_GROUP, IM_NONE, kG16);
  set(w[0x20], h_mov_from_cr, K_MODRM | K_NO66);
  set(w[0x22], h_mov_to_cr, K_MODRM | K_NO66);
  set(w[0x31], h_rdtsc, 0);
  set(w[0xA2], h_cpuid, 0);
  for (int cc = 0; cc < 16; cc++) {
    set(w[0x40 + cc], h_cmov, K_MODRM);
    set(w[0x80 + cc], h_jcc, K_D64 | K_NO66, IM_32S);
    set(w[0x90 + cc], h_setcc, K_MODRM | K_RM8);
  }
  set(w[0xA3], h_bt_EG, K_MODRM);
  set(w[0xA4], h_shd, K_MODRM, IM_B8U);
  set(w[0xA5], h_shd, K_MODRM);
  set(w[0xAB], h_bt_EG, K_MODRM);
  set(w[0xAC], h_shd, K_MODRM, IM_B8U);
  set(w[0xAD], h_shd, K_MODRM);
  set(w[0xAE], nullptr, K_MODRM | K_GROUP | K_NO66, IM_NONE, kG15);
  set(w[0xAF], h_imul_GE, K_MODRM);
  set(w[0xB0], h_cmpxchg, K_MODRM | K_BYTE);
  set(w[0xB1], h_cmpxchg, K_MODRM);
  set(w[0xB3], h_bt_EG, K_MODRM);
  set(w[0xB6], h_movzx, K_MODRM | K_RM8);
  set(w[0xB7], h_movzx, K_MODRM);
  set(w[0xBA], nullptr, K_MODRM | K_GROUP, IM_B8U, kG8);
  set(w[0xBB], h_bt_EG, K_MODRM);
  set(w[0xBC], h_bsf, K_MODRM | K_REPOK);  // F3 0F BC (TZCNT) is BSF where BMI1 is not advertised
  set(w[0xBD], h_bsr, K_MODRM);
  set(w[0xBE], h_movsx, K_MODRM | K_RM8);
  set(w[0xBF], h_movsx, K_MODRM);
  set(w[0xC0], h_xadd, K_MODRM | K_BYTE);
  set(w[0xC1], h_xadd, K_MODRM);
  set(w[0xC3], h_mov_EG, K_MODRM | K_NO66);  // MOVNTI m32/m64, r: a plain store (memory only)
  for (int r = 0; r < 8; r++) set(w[0xC8 + r], h_bswap, 0);
  return t;
}

const Tables kTables = build_tables();

}  // namespace

unsigned decode(const uint8_t* p, unsigned avail, Insn* out) {
  Insn in{};
  in.base = R_ZERO;
  in.index = R_ZERO;
  unsigned n = 0;
  bool p66 = false, rep = false, repne = false, lock = false, bad_prefix = false, seg = false;
  uint8_t rex = 0;
  auto undefined = [&](Handler h = h_ud) {
    in.fn = h;
    in.flags |= IF_END;
    in.len = static_cast<uint8_t>(n == 0 ? 1 : n);
    *out = in;
    return static_cast<unsigned>(in.len);
  };
  // More than `avail` bytes needed: 0 ("continue on the next page") only while fewer than 15
  // bytes were available; with 15 the instruction is longer than 15 bytes: #GP. (A 0 here
  // made the run loop treat a mid-page instruction as page-crossing: fuzz finding.)
  auto more = [&]() { return avail >= kMaxInsnLen ? undefined(h_gp) : 0u; };
  // Prefixes: 66, F3, F2 and F0 are in the subset; a REX only counts right before the opcode.
  // Of F3 and F2 the last one counts.
  for (;;) {
    if (n >= avail) return more();
    if (n >= kMaxInsnLen) return undefined(h_gp);  // longer than 15 bytes: #GP
    const uint8_t b = p[n];
    if (b == 0x66) { p66 = true; rex = 0; n++; continue; }
    if (b == 0xF3) { rep = true; repne = false; rex = 0; n++; continue; }
    if (b == 0xF2) { repne = true; rep = false; rex = 0; n++; continue; }
    if (b == 0xF0) { lock = true; rex = 0; n++; continue; }
    // CS/DS/ES/SS overrides do nothing in 64-bit mode; GNU as pads code with them
    // ("data16 cs nopw"), so they are accepted on the NOP forms only (checked below).
    if (b == 0x26 || b == 0x2E || b == 0x36 || b == 0x3E) { seg = true; rex = 0; n++; continue; }
    if (b == 0x67 || b == 0x64 || b == 0x65) {
      bad_prefix = true; rex = 0; n++; continue;
    }
    if ((b & 0xF0) == 0x40) { rex = b; n++; continue; }
    break;
  }
  if (bad_prefix) { n++; return undefined(); }
  uint8_t opc = p[n++];
  const OpDesc* d;
  bool two = false;
  if (opc == 0x0F) {
    if (n >= avail) return more();
    opc = p[n++];
    d = &kTables.two[opc];
    two = true;
  } else {
    d = &kTables.one[opc];
  }
  in.op = opc;
  // NOP forms; and FF /2 /4 with a register operand (checked below): gcc's NOTRACK (3E) on
  // indirect branches under -fcf-protection.
  if (seg && !(two ? opc == 0x1F : (opc == 0x90 || opc == 0xFF))) return undefined();
  if (!d->h && !(d->kind & K_GROUP)) return undefined();
  if (rep && !(d->kind & K_REPOK)) return undefined();
  // REPNE only on the compares (CMPS, SCAS); REP/REPE marks only the one-byte string forms
  // (and PAUSE) as repeating: on 0F BC and 0F 1E it selects another instruction.
  if (repne && (two || (opc != 0xA6 && opc != 0xA7 && opc != 0xAE && opc != 0xAF))) return undefined();
  if (lock && !(d->kind & K_MODRM)) return undefined();
  if (p66 && (d->kind & K_NO66)) return undefined();
  if (rex) in.flags |= IF_REX;
  if (rex & 8) in.flags |= IF_REXW;
  if ((rep && !two) || repne) in.flags |= IF_REP;
  if (repne) in.flags |= IF_REPNE;

  if (d->kind & K_BYTE) in.osz = 1;
  else if (d->kind & K_D64) in.osz = (p66 && !(rex & 8)) ? 2 : 8;  // REX.W wins over 0x66 (SDM)
  else in.osz = (rex & 8) ? 8 : p66 ? 2 : 4;

  Handler h = d->h;
  uint8_t imm = d->imm;
  if (d->kind & K_MODRM) {
    if (n >= avail) return more();
    const uint8_t modrm = p[n++];
    const uint8_t mod = modrm >> 6, regf = (modrm >> 3) & 7, rmf = modrm & 7;
    in.sub = regf;
    in.reg = static_cast<uint8_t>(regf | ((rex & 4) << 1));
    if (mod == 3) {
      in.rm = static_cast<uint8_t>(rmf | ((rex & 1) << 3));
    } else {
      in.flags |= IF_MEM;
      unsigned disp_len = mod == 1 ? 1 : mod == 2 ? 4 : 0;
      if (rmf == 4) {
        if (n >= avail) return more();
        const uint8_t sib = p[n++];
        const uint8_t idx = static_cast<uint8_t>(((sib >> 3) & 7) | ((rex & 2) << 2));
        in.scale = sib >> 6;
        in.index = idx == 4 ? static_cast<uint8_t>(R_ZERO) : idx;
        if ((sib & 7) == 5 && mod == 0) { in.base = R_ZERO; disp_len = 4; }
        else in.base = static_cast<uint8_t>((sib & 7) | ((rex & 1) << 3));
      } else if (rmf == 5 && mod == 0) {
        in.base = R_RIP;  // RIP-relative: r[R_RIP] is the next instruction when it executes
        disp_len = 4;
      } else {
        in.base = static_cast<uint8_t>(rmf | ((rex & 1) << 3));
      }
      if (n + disp_len > avail) return more();
      if (disp_len == 1) in.disp = static_cast<int8_t>(p[n]);
      else if (disp_len == 4) { int32_t v; std::memcpy(&v, p + n, 4); in.disp = v; }
      n += disp_len;
    }
    if (d->kind & K_GROUP) {
      h = d->group[regf];
      if (!h) return undefined();
      if (opc == 0xF6 || opc == 0xF7) imm = (regf == 0) ? (opc == 0xF6 ? IM_B8S : IM_Z) : IM_NONE;
      if (!two && opc == 0xFF && (regf == 2 || regf == 4)) {
        if (p66) return undefined();  // 16-bit near CALL/JMP are outside the subset
        in.osz = 8;  // near CALL/JMP r/m are 64-bit in long mode
      }
      if (!two && opc == 0xFF && regf == 6) in.osz = (p66 && !(rex & 8)) ? 2 : 8;  // PUSH r/m: 64 or 16
      if (two && opc == 0x01 && mod == 3) return undefined();  // 0F 01 /r with mod 3: other insns
      if (two && opc == 0xAE && mod != 3) return undefined();  // FXSAVE..CLFLUSH: outside the subset
      if (two && opc == 0x0D && mod == 3) return undefined();
    }
    if (lock && (mod == 3 || !lockable(two, opc, regf))) return undefined();
    if (seg && !two && opc == 0xFF && (mod != 3 || (regf != 2 && regf != 4))) return undefined();
    if (two && opc == 0xC3 && mod == 3) return undefined();  // MOVNTI stores to memory only
    // Byte registers without REX: 4..7 are AH, CH, DH, BH.
    if (!rex) {
      if (in.osz == 1 && regf >= 4) { in.flags |= IF_REG_HI; in.reg = regf - 4; }
      if ((in.osz == 1 || (d->kind & K_RM8)) && mod == 3 && rmf >= 4) { in.flags |= IF_RM_HI; in.rm = rmf - 4; }
    }
  }
  // Immediates.
  unsigned il = 0;
  switch (imm) {
    case IM_B8S: case IM_B8U: il = 1; break;
    case IM_W16U: il = 2; break;
    case IM_Z: il = in.osz == 2 ? 2 : 4; break;
    case IM_V: il = in.osz; break;
    case IM_32S: il = in.osz == 2 ? 2 : 4; break;  // PUSH imm: imm16 under 0x66
    default: break;
  }
  if (n + il > avail) return more();
  if (il) {
    uint64_t v = 0;
    std::memcpy(&v, p + n, il);
    if (imm == IM_B8S) v = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(v)));
    else if ((imm == IM_32S || imm == IM_Z) && il == 4) v = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v)));
    else if ((imm == IM_32S || imm == IM_Z) && il == 2) v = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int16_t>(v)));
    in.imm = v;
    n += il;
  }
  if (n > kMaxInsnLen) return undefined(h_gp);

  // Per-opcode fixups that turn short forms into the general ones.
  if (!two) {
    if (opc < 0x40 && (opc & 7) >= 4) {  // AL/eAX, imm → r/m = rAX
      in.sub = opc >> 3;
      in.rm = R_RAX;
    } else if (opc < 0x40) {
      in.sub = opc >> 3;
    } else if (opc == 0xA8 || opc == 0xA9) {
      in.rm = R_RAX;
    } else if ((opc & 0xF0) == 0x50 || (opc & 0xF8) == 0x90 || (opc & 0xF0) == 0xB0) {
      in.rm = static_cast<uint8_t>((opc & 7) | ((rex & 1) << 3));
      if (opc >= 0xB0 && opc < 0xB8 && !rex && (opc & 7) >= 4) { in.flags |= IF_RM_HI; in.rm = (opc & 7) - 4; }
      if (opc == 0x90 && (rex & 1)) h = h_xchg_ax;  // XCHG r8, rax
      if (opc == 0x90 && rep && h == h_xchg_ax) return undefined();
    } else if ((opc & 0xF0) == 0x70) {
      in.sub = opc & 0xF;
    } else if (opc == 0xD0 || opc == 0xD1) {
      in.imm = 1;
    }
    if (opc == 0xCF && !(rex & 8)) return undefined();  // IRET/IRETD: only IRETQ is in the subset
    if ((h == h_in || h == h_out) && in.osz == 8) in.osz = 4;  // REX.W is ignored by IN/OUT (SDM)
  } else {
    if ((opc & 0xF0) == 0x40 || (opc & 0xF0) == 0x80 || (opc & 0xF0) == 0x90) in.sub = opc & 0xF;
    if (opc >= 0xC8) in.rm = static_cast<uint8_t>((opc & 7) | ((rex & 1) << 3));  // BSWAP
    if (opc == 0x20 || opc == 0x22) {  // MOV CRn: operands are 64-bit registers
      // (hardware ignores mod; assemblers always emit mod = 3, other forms stay outside the subset)
      if (in.flags & IF_MEM) return undefined();
      in.osz = 8;
    }
  }
  // Block terminators: control transfers, exits, and anything that changes translations.
  if (h == h_jmp_rel || h == h_jcc || h == h_jmp_E || h == h_call_rel || h == h_call_E || h == h_ret ||
      h == h_loop || h == h_iretq || h == h_hlt || h == h_in || h == h_out || h == h_mov_to_cr ||
      h == h_invlpg || h == h_lgdt || h == h_lidt || h == h_ud || h == h_gp || h == h_int3)
    in.flags |= IF_END;
  // Specialized handlers for the hottest forms (ALU loop, register moves, Jcc): no runtime
  // switch on the operation, size or condition.
  if (h == h_jcc) h = kJccHandlers[in.sub];
  if (!(in.flags & IF_MEM) && (in.osz == 4 || in.osz == 8)) {
    if (h == h_alu_EG || h == h_alu_GE) {
      if (h == h_alu_GE) { const uint8_t t = in.rm; in.rm = in.reg; in.reg = t; }  // rm = destination
      h = kAluRR[in.osz == 8][in.sub];
    } else if (h == h_alu_EI) {
      h = kAluRI[in.osz == 8][in.sub];
    } else if (h == h_mov_EG || h == h_mov_GE) {
      if (h == h_mov_GE) { const uint8_t t = in.rm; in.rm = in.reg; in.reg = t; }
      h = in.osz == 8 ? h_mov_rr64 : h_mov_rr32;
    } else if (h == h_incdec && (in.flags & IF_MEM) == 0 && opc == 0xFF) {
      h = kIncDecR[in.osz == 8][in.sub];
    } else if ((h == h_movzx || h == h_movsx) && !(in.flags & IF_RM_HI)) {
      const bool w = opc == 0xB7 || opc == 0xBF;
      h = h == h_movzx ? kMovzxRR[w] : kMovsxRR[in.osz == 8][w];
    } else if (h == h_imul_GE) {  // register form: no 128-bit product
      h = kImulRR[in.osz == 8];
    } else if (h == h_shift && (opc == 0xC1 || opc == 0xD1) && (in.imm & (in.osz == 8 ? 63 : 31)) != 0 &&
               kShiftRI[in.osz == 8][in.sub]) {  // register by a non-zero immediate
      h = kShiftRI[in.osz == 8][in.sub];
    }
  } else if ((in.flags & IF_MEM) && (in.osz == 4 || in.osz == 8)) {
    const bool q = in.osz == 8;
    if (h == h_alu_GE) h = kAluGEm[q][in.sub];
    else if (h == h_alu_EG) h = kAluEGm[q][in.sub];
    else if (h == h_mov_GE) h = kMovLoad[q];
    else if (h == h_mov_EG) h = kMovStore[q];
    else if (h == h_movzx) h = kMovzxLoad[opc == 0xB7];
    else if (h == h_movsx) h = kMovsxLoad[q][opc == 0xBF];
  }
  in.fn = h;
  in.len = static_cast<uint8_t>(n);
  *out = in;
  return n;
}


}  // namespace hv
