// String handlers: MOVS, STOS, LODS, CMPS at every operand size, with REP (REPE for CMPS)
// and DF = 0 / 1. 64-bit addressing: RSI, RDI, RCX. A REP instruction retires once; a fault
// part-way leaves RSI/RDI/RCX describing the iterations done and RIP on the instruction, so
// re-executing it resumes (as hardware does). After kRepChunk iterations an unfinished REP
// returns ST_PREEMPT the same way, so one execution never runs unbounded.
#include "exec.h"

namespace hv {

namespace {
inline uint64_t step(const Cpu& c, unsigned sz) {
  return (c.r[R_RFLAGS] & FL_DF) ? static_cast<uint64_t>(-static_cast<int64_t>(sz)) : sz;
}

// The REP control shared by every string instruction: one iteration without REP; with REP,
// iterate while RCX != 0, yielding (ST_PREEMPT) after kRepChunk iterations. `iter(&more)`
// does one iteration's accesses and register updates; it clears `more` to end the REP
// early (REPE on ZF = 0). A fault returns with RCX counting the iterations still to do.
template <typename Iter>
inline int rep_loop(Cpu& c, const Insn& i, Iter iter) {
  const bool rep = i.flags & IF_REP;
  uint64_t chunk = kRepChunk;
  while (!rep || c.r[R_RCX] != 0) {
    if (rep && chunk-- == 0) return ST_PREEMPT;
    bool more = true;
    const Status s = iter(&more);
    if (s != ST_OK) return s;
    if (!rep) break;
    if (--c.r[R_RCX] == 0 || !more) break;
  }
  return ST_OK;
}
}  // namespace

int h_movs(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz);
  return rep_loop(c, i, [&](bool*) {
    uint64_t v;
    Status s = c.read(c.r[R_RSI], sz, &v);
    if (s == ST_OK) s = c.write(c.r[R_RDI], sz, v);
    if (s != ST_OK) return s;
    c.r[R_RSI] += d;
    c.r[R_RDI] += d;
    return ST_OK;
  });
}

int h_stos(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz), v = c.r[R_RAX] & size_mask(sz);
  return rep_loop(c, i, [&](bool*) {
    const Status s = c.write(c.r[R_RDI], sz, v);
    if (s != ST_OK) return s;
    c.r[R_RDI] += d;
    return ST_OK;
  });
}

int h_lods(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz);
  return rep_loop(c, i, [&](bool*) {
    uint64_t v;
    const Status s = c.read(c.r[R_RSI], sz, &v);
    if (s != ST_OK) return s;
    set_reg(c, R_RAX, false, sz, v);
    c.r[R_RSI] += d;
    return ST_OK;
  });
}

// CMPS compares [RSI] with [RDI] (flags of [RSI] - [RDI]); REPE stops when RCX reaches 0 or
// ZF = 0.
int h_cmps(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz);
  return rep_loop(c, i, [&](bool* more) {
    uint64_t a, b, f;
    Status s = c.read(c.r[R_RSI], sz, &a);
    if (s == ST_OK) s = c.read(c.r[R_RDI], sz, &b);
    if (s != ST_OK) return s;
    alu(ALU_CMP, a, b, 0, sz, &f);
    set_arith_flags(c, f);
    c.r[R_RSI] += d;
    c.r[R_RDI] += d;
    *more = (f & FL_ZF) != 0;
    return ST_OK;
  });
}

}  // namespace hv
