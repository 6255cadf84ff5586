// Control-transfer handlers: JMP, Jcc, CALL, RET, LOOP, NOP/PAUSE. r[R_RIP] already holds
// the next instruction's address, so relative targets are r[R_RIP] + imm. A non-canonical
// target raises #GP with nothing changed (no push, no RSP or RCX update).
#include "exec.h"

namespace hv {

int h_jmp_rel(Cpu& c, const Insn& i) { return jump_to(c, c.r[R_RIP] + i.imm); }
int h_jcc(Cpu& c, const Insn& i) {
  if (!cond_a(c.afl_, i.sub)) return ST_OK;
  return jump_to(c, c.r[R_RIP] + i.imm);
}
template <uint8_t CC>
int h_jcc_t(Cpu& c, const Insn& i) {
  if (!cond_a(c.afl_, CC)) return ST_OK;
  return jump_to(c, c.r[R_RIP] + i.imm);
}
const Handler kJccHandlers[16] = {h_jcc_t<0>, h_jcc_t<1>, h_jcc_t<2>, h_jcc_t<3>, h_jcc_t<4>, h_jcc_t<5>,
                                  h_jcc_t<6>, h_jcc_t<7>, h_jcc_t<8>, h_jcc_t<9>, h_jcc_t<10>, h_jcc_t<11>,
                                  h_jcc_t<12>, h_jcc_t<13>, h_jcc_t<14>, h_jcc_t<15>};

int h_jmp_E(Cpu& c, const Insn& i) {
  uint64_t t, addr = 0;
  Status s = read_E(c, i, 8, &t, &addr);
  if (s != ST_OK) return s;
  return jump_to(c, t);
}

namespace {
int call_to(Cpu& c, uint64_t target) {
  if (!Cpu::canonical(target)) return c.gp();
  Status s = c.push64(c.r[R_RIP]);
  if (s != ST_OK) return s;
  c.r[R_RIP] = target;
  return ST_OK;
}
}  // namespace
int h_call_rel(Cpu& c, const Insn& i) { return call_to(c, c.r[R_RIP] + i.imm); }
int h_call_E(Cpu& c, const Insn& i) {
  uint64_t t, addr = 0;
  Status s = read_E(c, i, 8, &t, &addr);  // address computed with the RSP before the push
  if (s != ST_OK) return s;
  return call_to(c, t);
}

// RET and RET imm16 (C2: also releases imm16 bytes of arguments).
int h_ret(Cpu& c, const Insn& i) {
  uint64_t t;
  Status s = c.stack_access(c.read(c.r[R_RSP], 8, &t));  // #SS(0) if non-canonical
  if (s != ST_OK) return s;
  if (!Cpu::canonical(t)) return c.gp();
  c.r[R_RSP] += 8 + (i.op == 0xC2 ? i.imm : 0);
  c.r[R_RIP] = t;
  return ST_OK;
}

// LOOP: decrement RCX (no flags), branch while it is not zero.
int h_loop(Cpu& c, const Insn& i) {
  const uint64_t n = c.r[R_RCX] - 1;
  if (n != 0) {
    const uint64_t t = c.r[R_RIP] + i.imm;
    if (!Cpu::canonical(t)) return c.gp();
    c.r[R_RIP] = t;
  }
  c.r[R_RCX] = n;
  return ST_OK;
}

// NOP, multi-byte NOP (0F 1F /0, no memory access) and PAUSE (F3 90).
int h_nop(Cpu&, const Insn&) { return ST_OK; }

}  // namespace hv
