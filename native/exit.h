// The shared exit record: native writes it when run() returns, TS reads it through a
// BigUint64Array view. Field order is the contract with src/native/types.ts (EXIT_FIELDS).
#pragma once
#include <cstdint>

namespace hv {

enum ExitReason : uint64_t {
  EXIT_NONE = 0,
  EXIT_HLT = 1,           // hlt with nothing to wake it
  EXIT_IO = 2,            // port I/O: port, size, direction, value
  EXIT_EPT_VIOLATION = 3, // gpa, access, gva_valid, gva, level
  EXIT_MMIO = 4,          // guest-physical access outside guest memory (no-EPT mode)
  EXIT_SHUTDOWN = 5,      // triple fault: vectors, rip, cr2, error code, instruction bytes
  EXIT_BUDGET = 6,        // instruction budget for this run() call used up
  EXIT_INTERNAL = 7,      // emulator-internal error (a bug): message in exit record code
  // cpufix: a malformed EPT entry (W without R, reserved memory type, PS at the PML4 level,
  // table outside the arena): KVM's EXIT_REASON_EPT_MISCONFIG. gpa, gva, access, level.
  EXIT_EPT_MISCONFIG = 8,
};

#define HV_EXIT_FIELDS(X)                                                                   \
  X(reason) X(rip)                                                                          \
  /* EXIT_IO: direction 0 = out, 1 = in. For IN, TS stores the value in `value` and the     \
     next run() completes the instruction (writes AL/AX/EAX) before executing further. */   \
  X(io_port) X(io_size) X(io_direction) X(value)                                            \
  /* EXIT_EPT_VIOLATION / EXIT_MMIO */                                                      \
  X(gpa) X(gva) X(access) X(gva_valid) X(level)                                             \
  /* EXIT_SHUTDOWN: up to 3 vectors of the chain (0xFF = none), cr2, error code, and up    \
     to 16 instruction bytes at rip (little-endian in two words), their count */            \
  X(vector0) X(vector1) X(vector2) X(cr2) X(error_code) X(insn_lo) X(insn_hi) X(insn_len)   \
  /* cpufix. EXIT_SHUTDOWN: the whole chain of exceptions detected since the last completed \
     delivery (SDM 6.15 classes), chain_len entries: vector0..vector7 and error0..error7    \
     (kNoErrorCode when the vector pushes none); #DF appears as its own entry.              \
     EXIT_EPT_VIOLATION / EXIT_EPT_MISCONFIG / EXIT_MMIO: vectoring_vector is the exception  \
     whose delivery the exit interrupted (VMX IDT-vectoring information; 0xFF = none) and   \
     vectoring_error its error code; the next run() re-delivers it before anything else. */ \
  X(chain_len) X(vector3) X(vector4) X(vector5) X(vector6) X(vector7)                       \
  X(error0) X(error1) X(error2) X(error3) X(error4) X(error5) X(error6) X(error7)           \
  X(vectoring_vector) X(vectoring_error)

enum ExitField : uint32_t {
#define HV_X(name) EF_##name,
  HV_EXIT_FIELDS(HV_X)
#undef HV_X
  EF_COUNT
};

inline const char* const kExitFieldNames[] = {
#define HV_X(name) #name,
    HV_EXIT_FIELDS(HV_X)
#undef HV_X
};

constexpr unsigned kChainMax = 8;             // vector0..vector7
constexpr uint64_t kNoErrorCode = ~0ull;        // error<k> of a vector without an error code

struct ExitRecord {
  uint64_t f[EF_COUNT];
};

}  // namespace hv
