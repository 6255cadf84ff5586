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
  X(vector0) X(vector1) X(vector2) X(cr2) X(error_code) X(insn_lo) X(insn_hi) X(insn_len)

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

struct ExitRecord {
  uint64_t f[EF_COUNT];
};

}  // namespace hv
