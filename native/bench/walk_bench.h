// The walk benchmark's native half: runs N translations in C++ (no N-API crossing per
// walk) over tables built with WalkFixture, and returns the elapsed nanoseconds and the
// counters, so bench/walk.ts can print rates and check it measured what it claims. Built
// into the bench addon (hugevisor_bench.node, native/bench/bench_addon.cc), never into the
// production addon.
#pragma once
#include <cstdint>

namespace hv {

enum class WalkBenchKind : uint32_t {
  Cold2D = 0,       // 4K guest x 4K EPT, every cache disabled: each translation is a 24-ref walk
  ColdNative = 1,   // 4K guest pages, no EPT, caches disabled: 4-ref walks
  L1HitSame = 2,    // default hierarchy, the same page again and again (fast-path memo)
  L1HitRotate = 3,  // default hierarchy, 32 pages round robin (full L1 DTLB lookup)
  Miss2D = 4,       // default hierarchy, random 4K pages over 1 GiB: STLB misses, warm PWC/nested
};
constexpr uint32_t kWalkBenchKinds = 5;

struct WalkBenchResult {
  uint64_t ns;       // elapsed wall time of the N translations
  uint64_t cpu_ns;   // CPU time of this thread meanwhile (robust to a shared, loaded machine)
  uint64_t walks;    // walks performed
  uint64_t refs;     // walk references
  uint64_t hits;     // L1 TLB hits
  const char* error; // nullptr, or why the bench could not run
};

WalkBenchResult run_walk_bench(WalkBenchKind kind, uint64_t n);

}  // namespace hv
