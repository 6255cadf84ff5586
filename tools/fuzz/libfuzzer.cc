// libFuzzer entry for long coverage-guided campaigns on the vCPU fuzz harness (harness.h).
// Build and run (clang with libclang-rt; see docs/testing.md "Fuzzing the native core"):
//   tools/fuzz/libfuzzer.sh [libFuzzer flags...]
#include <cstddef>
#include <cstdint>

#include "harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static hvfuzz::Stats stats;
  hvfuzz::fuzz_one(data, size, &stats);
  return 0;
}
