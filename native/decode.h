// Instruction decoding: the real x86-64 encodings of the guests' subset (docs/guest-abi.md "The x86-64 subset") (prefixes 0x66,
// 0xF3, 0xF2 and LOCK, REX, ModRM/SIB, disp8/disp32, RIP-relative, immediates) into a fixed-size Insn
// whose handler comes from one table indexed by opcode (unknown → the #UD handler).
// Decoded instructions are cached by host-physical address and re-validated against the raw
// bytes on every hit, so self-modifying code and TS writes to the arena are always seen.
#pragma once
#include <memory>
#include <cstdint>
#include <cstring>

namespace hv {

class Cpu;
struct Insn;
// Every instruction handler has this signature (returns a Status, cpu.h).
using Handler = int (*)(Cpu&, const Insn&);

// Insn::flags
constexpr uint8_t IF_MEM = 1;     // ModRM names memory (mod != 3)
constexpr uint8_t IF_REG_HI = 2;  // 8-bit `reg` operand is AH/CH/DH/BH (bits 8..15 of reg)
constexpr uint8_t IF_RM_HI = 4;   // 8-bit `rm` register operand is AH/CH/DH/BH
constexpr uint8_t IF_REP = 8;     // F3 prefix
constexpr uint8_t IF_REX = 16;    // any REX prefix present
constexpr uint8_t IF_REXW = 32;
constexpr uint8_t IF_END = 64;    // ends a block: may change RIP, translations or stop the vCPU
constexpr uint8_t IF_REPNE = 128; // F2 prefix on CMPS/SCAS (IF_REP is set too)

struct Insn {
  Handler fn;
  uint64_t imm;    // immediate, sign- or zero-extended as the form requires
  int32_t disp;    // displacement of a memory operand
  uint8_t len;     // total length in bytes (1..15)
  uint8_t osz;     // operand size in bytes: 1, 2, 4 or 8
  uint8_t op;      // opcode byte (the second byte for 0F xx)
  uint8_t sub;     // ModRM.reg (0..7) of group opcodes, or the condition code (Jcc/SETcc/CMOVcc)
  uint8_t reg;     // ModRM.reg register (REX.R applied; for IF_REG_HI the GPR 0..3 holding it)
  uint8_t rm;      // ModRM.rm register when mod == 3 (REX.B applied; IF_RM_HI as above)
  uint8_t base;    // memory: base register, R_RIP for RIP-relative, R_ZERO for none
  uint8_t index;   // memory: index register or R_ZERO
  uint8_t scale;   // memory: index shift 0..3
  uint8_t flags;
  uint8_t end;     // byte offset just past this instruction in its block (so the next RIP
                   // is one add from the block start)
  uint8_t idx;     // index of this instruction in its block
};

constexpr unsigned kMaxInsnLen = 15;

// Decode `avail` bytes at `p` (fewer than 15 only at the end of readable memory). Returns
// the length on success, 0 when more bytes than `avail` are needed; an encoding outside the
// subset decodes to the #UD handler (that is not an error for the decoder).
unsigned decode(const uint8_t* p, unsigned avail, Insn* out);

// Decoded straight-line blocks: up to kMaxInsns instructions from one 4 KiB page, ending at
// the first instruction with IF_END. Direct-mapped by the host-physical address of the first
// byte; each block keeps a copy of its raw bytes, compared before every execution, so
// self-modifying code and writes from TS are always seen.
struct Block {
  static constexpr unsigned kMaxInsns = 16;
  static constexpr unsigned kMaxBytes = 128;
  uint64_t tag = ~0ull;      // HPA of the first byte
  uint64_t epoch = 0;        // Cpu::code_epoch_ when the bytes were last known to match
  uint16_t nbytes = 0;
  uint8_t n = 0;             // instructions
  bool has_rep = false;      // holds a REP string instruction (it may take budget beyond one unit)
  // The handler insn[n - 2] had before build_block fused it with the closing Jcc (nullptr if
  // the block ends in no fused pair): it runs alone when the budget ends between the two.
  Handler unfused = nullptr;
  uint64_t raw[kMaxBytes / 8] = {};  // the bytes, zero past nbytes
  Insn insn[kMaxInsns];
};

class BlockCache {
 public:
  static constexpr unsigned kBits = 12;
  static constexpr uint64_t kEntries = 1ull << kBits;
  BlockCache() : blocks_(new Block[kEntries]) {}
  Block& slot(uint64_t hpa) { return blocks_[(hpa ^ (hpa >> kBits)) & (kEntries - 1)]; }
  // Frees the ~2.7 MiB of blocks now (Cpu::release): a released cache is never used again.
  void release() { blocks_.reset(); }

 private:
  std::unique_ptr<Block[]> blocks_;  // ~2.7 MiB, apart so a closed VM returns it at once
};

}  // namespace hv
