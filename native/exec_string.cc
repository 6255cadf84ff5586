// String handlers: MOVS, STOS, LODS, CMPS, SCAS at every operand size, with REP (REPE or
// REPNE for CMPS and SCAS) and DF = 0 / 1. 64-bit addressing: RSI, RDI, RCX. A REP instruction retires once; a fault
// part-way leaves RSI/RDI/RCX describing the iterations done and RIP on the instruction, so
// re-executing it resumes (as hardware does). Each iteration costs one unit of the run()
// budget (cpu.cc): an unfinished REP out of units returns ST_PREEMPT the same way, so the
// budget bounds the work one execution does.
#include "exec.h"

namespace hv {

namespace {
inline uint64_t step(const Cpu& c, unsigned sz) {
  return (c.r[R_RFLAGS] & FL_DF) ? static_cast<uint64_t>(-static_cast<int64_t>(sz)) : sz;
}

// The REP control shared by every string instruction: one iteration without REP; with REP,
// iterate while RCX != 0. `iter(&more)` does one iteration's accesses and register updates;
// it clears `more` to end the REP early (REPE on ZF = 0, REPNE on ZF = 1). A fault returns with RCX counting
// the iterations still to do.
// Budget (run() in cpu.cc): the instruction's own unit pays for its first iteration, every
// further one takes a unit of c.rep_spare_; with none left it returns ST_PREEMPT between two
// iterations and the run loop charges the own unit. Iterations done before a fault or a VM
// exit all come out of rep_spare_, since the own unit then pays for the delivery (or nothing
// retires). So an execution that retires or stops for the budget costs one unit per
// iteration (one if it does none); one that faults, its iterations plus the delivery.
template <typename Iter>
inline int rep_loop(Cpu& c, const Insn& i, Iter iter) {
  bool more = true;
  if (!(i.flags & IF_REP)) return iter(&more);
  const uint64_t spare = c.rep_spare_;
  uint64_t n = 0;  // iterations done
  Status s = ST_OK;
  while (c.r[R_RCX] != 0) {
    if (n > spare) { s = ST_PREEMPT; break; }  // iteration n + 1 would need n spare units
    s = iter(&more);
    if (s != ST_OK) break;
    n++;
    if (--c.r[R_RCX] == 0 || !more) break;
  }
  c.rep_spare_ = spare - (n - ((s == ST_OK || s == ST_PREEMPT) && n ? 1 : 0));
  return s;
}

// Whether a REPE (F3) / REPNE (F2) compare goes on after flags f.
inline bool rep_cond(const Insn& i, uint64_t f) { return ((f & FL_ZF) != 0) != ((i.flags & IF_REPNE) != 0); }
}  // namespace

int h_movs(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz);
  return rep_loop(c, i, [&](bool*) -> Status {
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
  return rep_loop(c, i, [&](bool*) -> Status {
    const Status s = c.write(c.r[R_RDI], sz, v);
    if (s != ST_OK) return s;
    c.r[R_RDI] += d;
    return ST_OK;
  });
}

int h_lods(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz);
  return rep_loop(c, i, [&](bool*) -> Status {
    uint64_t v;
    const Status s = c.read(c.r[R_RSI], sz, &v);
    if (s != ST_OK) return s;
    set_reg(c, R_RAX, false, sz, v);
    c.r[R_RSI] += d;
    return ST_OK;
  });
}

// CMPS compares [RSI] with [RDI] (flags of [RSI] - [RDI]); REPE stops when RCX reaches 0 or
// ZF = 0, REPNE when RCX reaches 0 or ZF = 1.
int h_cmps(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz);
  return rep_loop(c, i, [&](bool* more) -> Status {
    uint64_t a, b, f;
    Status s = c.read(c.r[R_RSI], sz, &a);
    if (s == ST_OK) s = c.read(c.r[R_RDI], sz, &b);
    if (s != ST_OK) return s;
    alu(ALU_CMP, a, b, 0, sz, &f);
    set_arith_flags(c, f);
    c.r[R_RSI] += d;
    c.r[R_RDI] += d;
    *more = rep_cond(i, f);
    return ST_OK;
  });
}

// SCAS compares rAX with [RDI] (flags of rAX - [RDI]); only RDI moves. REPE/REPNE as CMPS.
int h_scas(Cpu& c, const Insn& i) {
  const unsigned sz = i.osz;
  const uint64_t d = step(c, sz), a = c.r[R_RAX] & size_mask(sz);
  return rep_loop(c, i, [&](bool* more) -> Status {
    uint64_t b, f;
    const Status s = c.read(c.r[R_RDI], sz, &b);
    if (s != ST_OK) return s;
    alu(ALU_CMP, a, b, 0, sz, &f);
    set_arith_flags(c, f);
    c.r[R_RDI] += d;
    *more = rep_cond(i, f);
    return ST_OK;
  });
}

}  // namespace hv
