// Fused compare-and-branch handlers: a flag-setting register instruction (ADD, SUB, CMP, AND
// r, r or r, imm; TEST r, r; INC/DEC r; 32 or 64 bits) followed by the Jcc that ends its
// block runs as one handler (Cpu::build_block pairs them). It does exactly what the two
// handlers do one after the other: the first instruction's result and flags, then the
// branch on those flags, and it reports ST_FUSED so the run loop retires both (two
// instructions, two decode-cache hits).
//
// The pair is not run as a whole in two cases. When the run's budget ends between the two,
// the run loop runs the first instruction alone with the handler it had before it was fused
// (Block::unfused) and stops. When the branch is taken to a non-canonical target, the
// handler retires only the first instruction and returns ST_OK, and the Jcc (still the
// block's next instruction, unchanged) runs on its own and raises #GP, with the first
// instruction retired.
#include <array>
#include <utility>

#include "exec.h"

namespace hv {

namespace {
enum FuseKind : uint8_t { FK_RR, FK_RI, FK_TEST, FK_INC, FK_DEC };

// i.disp holds the Jcc's displacement, i.base the Jcc's length (cpu.cc build_block; unused
// by the register forms fused here).
template <uint8_t KIND, uint8_t OP, unsigned SZ, uint8_t CC>
int h_fused(Cpu& c, const Insn& i) {
  const uint64_t m = size_mask(SZ);
  const uint64_t a = c.r[i.rm] & m;
  uint16_t fl;
  if (KIND == FK_TEST) {  // AND without the result (h_test_EG: CF = OF = AF = 0)
    alu_a<ALU_AND, SZ>(a, c.r[i.reg] & m, 0, &fl);
  } else if (KIND == FK_INC || KIND == FK_DEC) {  // CF is kept (h_incdec_r)
    c.r[i.rm] = alu_a<KIND == FK_DEC ? ALU_SUB : ALU_ADD, SZ>(a, 1, 0, &fl);
    fl = static_cast<uint16_t>((fl & ~Cpu::kAflCF) | (c.afl_ & Cpu::kAflCF));
  } else {
    const uint64_t b = KIND == FK_RR ? c.r[i.reg] & m : i.imm & m;
    const uint64_t r = alu_a<OP, SZ>(a, b, 0, &fl);
    if (OP != ALU_CMP) c.r[i.rm] = r;
  }
  c.afl_ = fl;
  const uint64_t next = c.r[R_RIP] + i.base;  // past the Jcc
  if (!cond_a(fl, CC)) {
    c.r[R_RIP] = next;
    return ST_FUSED;
  }
  const uint64_t t = next + static_cast<uint64_t>(static_cast<int64_t>(i.disp));
  if (__builtin_expect(!Cpu::canonical(t), 0)) return ST_OK;  // the Jcc raises #GP itself
  c.r[R_RIP] = t;
  return ST_FUSED;
}

template <uint8_t KIND, uint8_t OP, unsigned SZ, size_t... CC>
constexpr std::array<Handler, 16> row(std::index_sequence<CC...>) {
  return {h_fused<KIND, OP, SZ, static_cast<uint8_t>(CC)>...};
}
template <uint8_t KIND, uint8_t OP, unsigned SZ>
constexpr std::array<Handler, 16> row() { return row<KIND, OP, SZ>(std::make_index_sequence<16>()); }

// [64-bit][operation ADD SUB CMP AND][condition]
constexpr std::array<Handler, 16> kRR[2][4] = {
    {row<FK_RR, ALU_ADD, 4>(), row<FK_RR, ALU_SUB, 4>(), row<FK_RR, ALU_CMP, 4>(), row<FK_RR, ALU_AND, 4>()},
    {row<FK_RR, ALU_ADD, 8>(), row<FK_RR, ALU_SUB, 8>(), row<FK_RR, ALU_CMP, 8>(), row<FK_RR, ALU_AND, 8>()}};
constexpr std::array<Handler, 16> kRI[2][4] = {
    {row<FK_RI, ALU_ADD, 4>(), row<FK_RI, ALU_SUB, 4>(), row<FK_RI, ALU_CMP, 4>(), row<FK_RI, ALU_AND, 4>()},
    {row<FK_RI, ALU_ADD, 8>(), row<FK_RI, ALU_SUB, 8>(), row<FK_RI, ALU_CMP, 8>(), row<FK_RI, ALU_AND, 8>()}};
constexpr std::array<Handler, 16> kTest[2] = {row<FK_TEST, 0, 4>(), row<FK_TEST, 0, 8>()};
constexpr std::array<Handler, 16> kIncDec[2][2] = {{row<FK_INC, 0, 4>(), row<FK_DEC, 0, 4>()},
                                                   {row<FK_INC, 0, 8>(), row<FK_DEC, 0, 8>()}};
constexpr uint8_t kOps[4] = {ALU_ADD, ALU_SUB, ALU_CMP, ALU_AND};
}  // namespace

Handler fused_handler(const Insn& x, uint8_t cc) {
  if ((x.flags & IF_MEM) || (x.osz != 4 && x.osz != 8) || cc > 15) return nullptr;
  const bool q = x.osz == 8;
  for (unsigned o = 0; o < 4; o++) {
    if (x.fn == kAluRR[q][kOps[o]]) return kRR[q][o][cc];
    if (x.fn == kAluRI[q][kOps[o]]) return kRI[q][o][cc];
  }
  if (x.fn == kIncDecR[q][0]) return kIncDec[q][0][cc];
  if (x.fn == kIncDecR[q][1]) return kIncDec[q][1][cc];
  if (x.fn == h_test_EG && !(x.flags & (IF_REG_HI | IF_RM_HI))) return kTest[q][cc];
  return nullptr;
}

bool is_jcc(const Insn& j) { return j.sub < 16 && j.fn == kJccHandlers[j.sub] && (j.flags & IF_END); }

}  // namespace hv
