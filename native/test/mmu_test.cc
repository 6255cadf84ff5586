// Standalone MMU test driver (no Node): builds guest and EPT tables in an arena with
// WalkFixture and checks the exact reference counts of the 2D walk (docs/mmu-model.md), the savings of each
// cache, splintering, flush semantics, fault reports and bounds. test/mmu-walk.test.ts
// compiles native/test/*.cc with g++ against the core sources and asserts the output and
// exit status. Output: one "ok <name>" or "FAIL <name>: ..." line per check, then
// "passed N failed M".
#include "mmu_test.h"

namespace hv::test {

int g_pass = 0, g_fail = 0;

void check(bool ok, const char* name, const char* fmt, uint64_t a, uint64_t b) {
  if (ok) {
    g_pass++;
    std::printf("ok %s\n", name);
  } else {
    g_fail++;
    std::printf("FAIL %s: ", name);
    std::printf(fmt, static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
    std::printf("\n");
  }
}
void eq(uint64_t got, uint64_t want, const char* name) {
  check(got == want, name, "got %llu want %llu", got, want);
}

}  // namespace hv::test

int main() {
  using namespace hv::test;
  test_2d_table();
  test_mixed_example();
  test_savings();
  test_splintering();
  test_flushes();
  test_ept_violations();
  test_ad_bits();
  test_l1_lines();
  test_page_faults();
  test_bounds();
  test_geometry();
  test_lru();
  std::printf("passed %d failed %d\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

