// Shared harness of the standalone MMU test driver (native/test/*.cc): a check/eq reporter
// that prints one "ok <name>" / "FAIL <name>: ..." line per check, and Env, one machine
// (arena, WalkFixture tables, counters, Mmu) per scenario.
#pragma once
#include <cstdio>
#include <cstring>
#include <memory>

#include "walk_fixture.h"

namespace hv::test {

extern int g_pass, g_fail;
void check(bool ok, const char* name, const char* fmt = "", uint64_t a = 0, uint64_t b = 0);
void eq(uint64_t got, uint64_t want, const char* name);

constexpr uint64_t CR0 = CR0_PG | CR0_WP | CR0_PE;
constexpr uint64_t CR4 = CR4_PAE;
constexpr uint64_t EFER = EFER_LME | EFER_LMA | EFER_NXE;
constexpr uint64_t K4 = kPageSize, M2 = kHugeSize, G1 = kGigSize;
// One machine: arena, tables, counters, MMU. Configure after building the tables.
struct Env {
  std::unique_ptr<Arena> arena;
  std::unique_ptr<WalkFixture> fx;
  Counters c{};
  std::unique_ptr<Mmu> mmu;
  Fault f;
  Env() {
    const char* err = nullptr;
    arena.reset(Arena::create(WalkFixture::kArenaSize, &err));
    fx.reset(new WalkFixture(arena.get()));
    c.clear();
    mmu.reset(new Mmu(arena.get(), &c));
  }
  bool start(bool ept, const TlbGeometry& g, uint64_t efer = EFER, uint64_t cr0 = CR0) {
    if (mmu->configure(fx->config(ept, g))) return false;
    mmu->set_control(cr0, fx->cr3(), CR4, efer);
    c.clear();
    return true;
  }
  uint8_t* tr(uint64_t gva, Access acc = Access::Read) {
    f = Fault{};
    return mmu->translate(Gva(gva), acc, &f);
  }
  uint64_t refs() const { return c.v[C_walk_refs]; }
};

inline TlbGeometry no_caches() { return TlbGeometry::none(); }
inline TlbGeometry only(TlbGeom TlbGeometry::*a, TlbGeom TlbGeometry::*b = nullptr) {
  TlbGeometry g = TlbGeometry::none(), d;
  g.*a = d.*a;
  if (b) g.*b = d.*b;
  return g;
}

// Where the guest's data page of each size goes (GPA), chosen aligned for every size.
constexpr uint64_t kDataGpa = G1;           // 1 GiB-aligned, inside guest RAM
constexpr uint64_t kGva1G = 0x00007f8000000000ull;  // 1 GiB aligned (PML4 index 255)

// The scenario most checks share: 4 KiB EPT over all guest RAM, 80 data pages 64 KiB apart
// plus neighbours at +4 KiB, +2 MiB and +1 GiB of kGva1G.
void main_scenario(Env& e);

// The groups of checks (mmu_test_walk.cc, mmu_test_faults.cc).
void test_2d_table();
void test_mixed_example();
void test_savings();
void test_splintering();
void test_flushes();
void test_ad_bits();
void test_l1_lines();
void test_ept_violations();
void test_page_faults();
void test_bounds();
void test_geometry();
void test_lru();             // mmu_test_lru.cc

}  // namespace hv::test
