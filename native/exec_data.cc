// Data-movement handlers: MOV (all forms, MOVNTI), MOVZX/MOVSX/MOVSXD, LEA, XCHG, PUSH/POP,
// LEAVE, CMOVcc, SETcc, CBW/CWDE/CDQE, CWD/CDQ/CQO, BSWAP and MOV to/from segment registers
// change no flags; PUSHF/POPF and LAHF/SAHF move them.
#include "exec.h"

namespace hv {

int h_mov_EG(Cpu& c, const Insn& i) { return write_E(c, i, i.osz, i.flags & IF_MEM ? ea(c, i) : 0, get_G(c, i, i.osz)); }
int h_mov_GE(Cpu& c, const Insn& i) {
  uint64_t v, addr = 0;
  Status s = read_E(c, i, i.osz, &v, &addr);
  if (s != ST_OK) return s;
  set_G(c, i, i.osz, v);
  return ST_OK;
}
int h_mov_EI(Cpu& c, const Insn& i) { return write_E(c, i, i.osz, i.flags & IF_MEM ? ea(c, i) : 0, i.imm & size_mask(i.osz)); }
int h_mov_ri(Cpu& c, const Insn& i) {
  set_reg(c, i.rm, i.flags & IF_RM_HI, i.osz, i.imm);
  return ST_OK;
}
// Register to register at 32/64 bits (decode normalizes: rm = destination, reg = source).
int h_mov_rr64(Cpu& c, const Insn& i) { c.r[i.rm] = c.r[i.reg]; return ST_OK; }
int h_mov_rr32(Cpu& c, const Insn& i) { c.r[i.rm] = c.r[i.reg] & 0xffffffffull; return ST_OK; }

// Loads and stores at 32/64 bits between memory and a plain GPR.
template <unsigned SZ>
int h_mov_load(Cpu& c, const Insn& i) {
  uint64_t v;
  Status s = c.read(ea(c, i), SZ, &v);
  if (s != ST_OK) return s;
  c.r[i.reg] = v;  // a 4-byte read is already zero-extended
  return ST_OK;
}
template <unsigned SZ>
int h_mov_store(Cpu& c, const Insn& i) { return c.write_t<SZ>(ea(c, i), c.r[i.reg] & size_mask(SZ)); }
const Handler kMovLoad[2] = {h_mov_load<4>, h_mov_load<8>};
const Handler kMovStore[2] = {h_mov_store<4>, h_mov_store<8>};

int h_movzx(Cpu& c, const Insn& i) {
  const unsigned src = i.op == 0xB6 ? 1 : 2;
  uint64_t v, addr = 0;
  Status s = read_E(c, i, src, &v, &addr);
  if (s != ST_OK) return s;
  set_G(c, i, i.osz, v);
  return ST_OK;
}
// MOVZX/MOVSX into a 32/64-bit register (decode picks them): from memory at the constant
// source size (SRC 1 or 2), or from a register other than AH..BH. Indexed [SRC == 2].
template <unsigned SRC>
int h_movzx_load(Cpu& c, const Insn& i) {
  uint64_t v;
  Status s = c.read(ea(c, i), SRC, &v);
  if (s != ST_OK) return s;
  c.r[i.reg] = v;  // zero-extended to 64 bits, which is also the 32-bit write
  return ST_OK;
}
template <unsigned SRC>
int h_movzx_rr(Cpu& c, const Insn& i) {
  c.r[i.reg] = c.r[i.rm] & size_mask(SRC);
  return ST_OK;
}
template <unsigned SRC, unsigned SZ>
int h_movsx_load(Cpu& c, const Insn& i) {
  uint64_t v;
  Status s = c.read(ea(c, i), SRC, &v);
  if (s != ST_OK) return s;
  c.r[i.reg] = static_cast<uint64_t>(sext(v, SRC)) & size_mask(SZ);
  return ST_OK;
}
template <unsigned SRC, unsigned SZ>
int h_movsx_rr(Cpu& c, const Insn& i) {
  c.r[i.reg] = static_cast<uint64_t>(sext(c.r[i.rm] & size_mask(SRC), SRC)) & size_mask(SZ);
  return ST_OK;
}
const Handler kMovzxLoad[2] = {h_movzx_load<1>, h_movzx_load<2>};
const Handler kMovzxRR[2] = {h_movzx_rr<1>, h_movzx_rr<2>};
const Handler kMovsxLoad[2][2] = {{h_movsx_load<1, 4>, h_movsx_load<2, 4>}, {h_movsx_load<1, 8>, h_movsx_load<2, 8>}};
const Handler kMovsxRR[2][2] = {{h_movsx_rr<1, 4>, h_movsx_rr<2, 4>}, {h_movsx_rr<1, 8>, h_movsx_rr<2, 8>}};

int h_movsx(Cpu& c, const Insn& i) {
  const unsigned src = i.op == 0xBE ? 1 : 2;
  uint64_t v, addr = 0;
  Status s = read_E(c, i, src, &v, &addr);
  if (s != ST_OK) return s;
  set_G(c, i, i.osz, static_cast<uint64_t>(sext(v, src)) & size_mask(i.osz));
  return ST_OK;
}
int h_movsxd(Cpu& c, const Insn& i) {
  uint64_t v, addr = 0;
  Status s = read_E(c, i, 4, &v, &addr);
  if (s != ST_OK) return s;
  set_G(c, i, i.osz, static_cast<uint64_t>(sext(v, 4)) & size_mask(i.osz));
  return ST_OK;
}
int h_lea(Cpu& c, const Insn& i) {
  if (!(i.flags & IF_MEM)) return c.ud();
  set_G(c, i, i.osz, ea(c, i) & size_mask(i.osz));
  return ST_OK;
}

int h_xchg_EG(Cpu& c, const Insn& i) {
  uint64_t a, addr = 0;
  Status s = read_E_rmw(c, i, i.osz, &a, &addr);  // XCHG m is read-modify-write
  if (s != ST_OK) return s;
  const uint64_t b = get_G(c, i, i.osz);
  if ((s = write_E(c, i, i.osz, addr, b)) != ST_OK) return s;
  set_G(c, i, i.osz, a);
  return ST_OK;
}
int h_xchg_ax(Cpu& c, const Insn& i) {
  const uint64_t a = get_reg(c, i.rm, false, i.osz), b = get_reg(c, R_RAX, false, i.osz);
  set_reg(c, i.rm, false, i.osz, b);
  set_reg(c, R_RAX, false, i.osz, a);
  return ST_OK;
}

// ---- stack: PUSH/POP at 64 bits, or 16 under 0x66 (RSP moves by 2, the register's upper
// 48 bits are kept), as the SDM's PUSH/POP pseudocode in 64-bit mode ----
int h_push_r(Cpu& c, const Insn& i) { return c.push(c.r[i.rm] & size_mask(i.osz), i.osz); }  // PUSH SP: the old value
int h_pop_r(Cpu& c, const Insn& i) {
  uint64_t v;
  Status s = c.stack_access(c.read(c.r[R_RSP], i.osz, &v));  // #SS(0) if non-canonical
  if (s != ST_OK) return s;
  c.r[R_RSP] += i.osz;
  set_reg(c, i.rm, false, i.osz, v);  // after the increment, so POP RSP/SP loads the popped value
  return ST_OK;
}
int h_push_imm(Cpu& c, const Insn& i) { return c.push(i.imm & size_mask(i.osz), i.osz); }
int h_push_E(Cpu& c, const Insn& i) {
  uint64_t v, addr = 0;
  Status s = read_E(c, i, i.osz, &v, &addr);
  if (s != ST_OK) return s;
  return c.push(v, i.osz);
}
int h_pop_E(Cpu& c, const Insn& i) {
  uint64_t v;
  const uint64_t old = c.r[R_RSP];
  Status s = c.stack_access(c.read(old, i.osz, &v));  // #SS(0) if non-canonical
  if (s != ST_OK) return s;
  c.r[R_RSP] = old + i.osz;  // an RSP-based destination address uses the incremented RSP (SDM)
  if ((s = write_E(c, i, i.osz, i.flags & IF_MEM ? ea(c, i) : 0, v)) != ST_OK) c.r[R_RSP] = old;
  return s;
}

// LEAVE: RSP = RBP, then POP RBP (BP under 0x66). Nothing changes if the pop faults; the
// read goes through the stack segment (#SS(0) when RBP is non-canonical).
int h_leave(Cpu& c, const Insn& i) {
  uint64_t v;
  const uint64_t sp = c.r[R_RBP];
  Status s = c.stack_access(c.read(sp, i.osz, &v));
  if (s != ST_OK) return s;
  c.r[R_RSP] = sp + i.osz;
  set_reg(c, R_RBP, false, i.osz, v);
  return ST_OK;
}

// ---- flags to and from the stack and AH ----
// PUSHF pushes RFLAGS with VM and RF clear (never set here): 8 bytes, or its low 16 under 0x66.
int h_pushf(Cpu& c, const Insn& i) { return c.push(c.rflags() & size_mask(i.osz), i.osz); }
// POPF at CPL 0 loads every bit of FL_WRITABLE (cpu.h); bit 1 stays 1, the reserved bits,
// VM, VIF and VIP stay 0, RF is cleared. The 16-bit form changes only bits 15..0.
int h_popf(Cpu& c, const Insn& i) {
  uint64_t v;
  Status s = c.stack_access(c.read(c.r[R_RSP], i.osz, &v));
  if (s != ST_OK) return s;
  c.r[R_RSP] += i.osz;
  const uint64_t m = FL_WRITABLE & size_mask(i.osz);
  c.set_rflags((c.rflags() & ~m) | (v & m) | FL_FIXED);
  return ST_OK;
}
// LAHF: AH = SF ZF 0 AF 0 PF 1 CF; SAHF: those five flags from AH (bits 7 6 4 2 0).
constexpr uint64_t kAhFlags = FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF;
int h_lahf(Cpu& c, const Insn&) {
  set_reg(c, R_RAX, true, 1, (c.arith() & kAhFlags) | FL_FIXED);
  return ST_OK;
}
int h_sahf(Cpu& c, const Insn&) {
  c.set_arith((c.arith() & ~kAhFlags) | ((c.r[R_RAX] >> 8) & kAhFlags));
  return ST_OK;
}

// BSWAP r32/r64 (0F C8+r; i.rm). With 0x66 the SDM leaves the result undefined: the low 16
// bits become 0, as x86-64 hardware does.
int h_bswap(Cpu& c, const Insn& i) {
  uint64_t& d = c.r[i.rm];
  if (i.osz == 8) d = __builtin_bswap64(d);
  else if (i.osz == 4) d = __builtin_bswap32(static_cast<uint32_t>(d));
  else d &= ~0xffffull;
  return ST_OK;
}

// CMOVcc reads its source unconditionally; a 32-bit form zero-extends the destination even
// when the condition is false (as hardware does in 64-bit mode).
int h_cmov(Cpu& c, const Insn& i) {
  uint64_t v, addr = 0;
  Status s = read_E(c, i, i.osz, &v, &addr);
  if (s != ST_OK) return s;
  if (cond_a(c.afl_, i.sub)) set_G(c, i, i.osz, v);
  else if (i.osz == 4) c.r[i.reg] &= 0xffffffffull;
  return ST_OK;
}
int h_setcc(Cpu& c, const Insn& i) {
  return write_E(c, i, 1, i.flags & IF_MEM ? ea(c, i) : 0, cond_a(c.afl_, i.sub) ? 1 : 0);
}

int h_cbw(Cpu& c, const Insn& i) {  // CBW / CWDE / CDQE
  const unsigned half = i.osz / 2;
  set_reg(c, R_RAX, false, i.osz, static_cast<uint64_t>(sext(c.r[R_RAX], half)) & size_mask(i.osz));
  return ST_OK;
}
int h_cwd(Cpu& c, const Insn& i) {  // CWD / CDQ / CQO
  const bool neg = c.r[R_RAX] & sign_bit(i.osz);
  set_reg(c, R_RDX, false, i.osz, neg ? size_mask(i.osz) : 0);
  return ST_OK;
}

// ---- segment registers: flat 64-bit segments; a load checks the selector against the GDT ----
namespace {
// ModRM.reg → register-file slot (ES CS SS DS FS GS; 6 and 7 do not exist).
constexpr uint8_t kSreg[8] = {R_ES, R_CS, R_SS, R_DS, R_FS, R_GS, 0, 0};
}  // namespace

int h_mov_from_sreg(Cpu& c, const Insn& i) {
  if (i.sub > 5) return c.ud();
  const uint64_t sel = c.r[kSreg[i.sub]] & 0xffff;
  if (i.flags & IF_MEM) return c.write(ea(c, i), 2, sel);
  set_reg(c, i.rm, false, i.osz, sel);
  return ST_OK;
}

int h_mov_to_sreg(Cpu& c, const Insn& i) {
  if (i.sub > 5 || i.sub == 1) return c.ud();  // MOV to CS does not exist
  uint64_t v, addr = 0;
  Status s = read_E(c, i, 2, &v, &addr);
  if (s != ST_OK) return s;
  const uint16_t sel = static_cast<uint16_t>(v);
  const bool is_ss = i.sub == 2;
  if ((sel & ~3u) == 0) {  // null selector: fine for data segments; SS only with RPL = CPL = 0
    if (is_ss && (sel & 3)) return c.gp(0);
    c.r[kSreg[i.sub]] = sel;
    return ST_OK;
  }
  uint64_t desc;
  if ((s = read_descriptor(c, sel, &desc)) != ST_OK) return s;
  const bool present = (desc >> 47) & 1, system = !((desc >> 44) & 1), code = (desc >> 43) & 1;
  const bool rw = (desc >> 41) & 1;  // writable data / readable code
  const unsigned dpl = (desc >> 45) & 3, rpl = sel & 3;
  bool ok = present && !system;
  if (is_ss) ok = ok && !code && rw && dpl == 0 && rpl == 0;
  else ok = ok && (!code || rw) && dpl >= rpl;
  if (!ok) return c.gp(sel & 0xfffcu);
  c.r[kSreg[i.sub]] = sel;
  return ST_OK;
}

}  // namespace hv
