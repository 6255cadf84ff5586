// The shared exit record: native writes it when run() returns, TS reads it through a
// BigUint64Array view. The addon exports the field names (exitFieldNames) and TS looks each
// field up by name, so new fields go at the end without breaking readers.
#pragma once
#include <cstdint>

namespace hv {

// Why run() returned. The addon exports the names (exitReasonNames, index = value), so TS
// checks its ExitReason table against this list.
#define HV_EXIT_REASONS(X)                                                                  \
  X(NONE)                                                                                   \
  X(HLT)            /* hlt with nothing to wake it */                                       \
  X(IO)             /* port I/O: port, size, direction, value */                            \
  X(EPT_VIOLATION)  /* gpa, access, gva_valid, gva, level */                                \
  X(MMIO)           /* guest-physical access outside guest memory (no-EPT mode) */          \
  X(SHUTDOWN)       /* triple fault: vectors, rip, cr2, error code, instruction bytes */    \
  X(BUDGET)         /* instruction budget for this run() call used up */                    \
  X(INTERNAL)       /* emulator-internal error (a bug); reserved: nothing produces it yet */  \
  /* A malformed EPT entry (W without R, reserved memory type, PS at the PML4 level, table  \
     outside the arena): KVM's EXIT_REASON_EPT_MISCONFIG. gpa, gva, access, level. */       \
  X(EPT_MISCONFIG)

enum ExitReason : uint64_t {
#define HV_X(name) EXIT_##name,
  HV_EXIT_REASONS(HV_X)
#undef HV_X
  EXIT_REASON_COUNT
};

inline const char* const kExitReasonNames[] = {
#define HV_X(name) #name,
    HV_EXIT_REASONS(HV_X)
#undef HV_X
};

// Kind of memory access, as the walker reports it and the EPT-violation / EPT-misconfig /
// MMIO exit record carries it in `access` (SDM 28.2.1 exit qualification bits 0..2 order).
// The addon exports the names (accessNames, index = value) for TS's Access table.
#define HV_ACCESS_KINDS(X) X(READ, Read) X(WRITE, Write) X(FETCH, Fetch)

enum class Access : uint8_t {
#define HV_X(name, Name) Name,
  HV_ACCESS_KINDS(HV_X)
#undef HV_X
};
inline const char* const kAccessNames[] = {
#define HV_X(name, Name) #name,
    HV_ACCESS_KINDS(HV_X)
#undef HV_X
};
constexpr unsigned kAccessCount = sizeof(kAccessNames) / sizeof(kAccessNames[0]);

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
  /* EXIT_SHUTDOWN: the whole chain of exceptions detected since the last completed       \
     delivery (SDM 6.15 classes), chain_len entries: vector0..vector7 and error0..error7    \
     (kNoErrorCode when the vector pushes none); #DF appears as its own entry.              \
     EXIT_EPT_VIOLATION / EXIT_EPT_MISCONFIG / EXIT_MMIO: vectoring_vector is the exception  \
     whose delivery the exit interrupted (VMX IDT-vectoring information; 0xFF = none) and   \
     vectoring_error its error code; the next run() re-delivers it before anything else. */ \
  X(chain_len) X(vector3) X(vector4) X(vector5) X(vector6) X(vector7)                       \
  X(error0) X(error1) X(error2) X(error3) X(error4) X(error5) X(error6) X(error7)           \
  X(vectoring_vector) X(vectoring_error)                                                    \
  /* Every exit: units of this run() call's budget used (Cpu::run, cpu.cc), <= the budget;  \
     equal to it for EXIT_BUDGET. */                                                        \
  X(budget_used)

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
