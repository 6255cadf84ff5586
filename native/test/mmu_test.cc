// Standalone MMU test driver (no Node): builds guest and EPT tables in an arena with
// WalkFixture and checks the exact reference counts of MMU-MODEL.md, the savings of each
// cache, splintering, flush semantics, fault reports and bounds. test/mmu-walk.test.ts
// compiles it with g++ against the core sources and asserts its output and exit status.
// Output: one "ok <name>" or "FAIL <name>: ..." line per check, then "passed N failed M".
#include <cstdio>
#include <cstring>
#include <memory>

#include "../walk_fixture.h"

using namespace hv;

namespace {

int g_pass = 0, g_fail = 0;

void check(bool ok, const char* name, const char* fmt = "", uint64_t a = 0, uint64_t b = 0) {
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

constexpr uint64_t CR0 = (1ull << 31) | (1ull << 16) | 1;  // PG | WP | PE
constexpr uint64_t CR4 = 1ull << 5;                         // PAE
constexpr uint64_t EFER = (1ull << 8) | (1ull << 10) | (1ull << 11);  // LME | LMA | NXE
constexpr uint64_t K4 = 4096, M2 = 2ull << 20, G1 = 1ull << 30;

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

TlbGeometry no_caches() { return TlbGeometry::none(); }
TlbGeometry only(TlbGeom TlbGeometry::*a, TlbGeom TlbGeometry::*b = nullptr) {
  TlbGeometry g = TlbGeometry::none(), d;
  g.*a = d.*a;
  if (b) g.*b = d.*b;
  return g;
}

// Where the guest's data page of each size goes (GPA), chosen aligned for every size.
constexpr uint64_t kDataGpa = G1;           // 1 GiB-aligned, inside guest RAM
constexpr uint64_t kGva1G = 0x00007f8000000000ull;  // 1 GiB aligned (PML4 index 255)

// The 2D table: every guest x EPT page-size combination, caches disabled and cold.
void test_2d_table() {
  const uint64_t want[3][4] = {{24, 19, 14, 4}, {19, 15, 11, 3}, {14, 11, 8, 2}};
  const char* gname[3] = {"4K", "2M", "1G"};
  const char* hname[4] = {"4K", "2M", "1G", "none"};
  for (int g = 0; g < 3; ++g) {
    for (int h = 0; h < 4; ++h) {
      for (int cold = 0; cold < 2; ++cold) {
        Env e;
        if (h < 3) e.fx->ept_map(0, WalkFixture::kGuestSize, h + 1);
        e.fx->guest_map(kGva1G, kDataGpa, g + 1);
        e.start(h < 3, cold ? TlbGeometry{} : no_caches());
        char name[128];
        std::snprintf(name, sizeof name, "2d table guest %s x EPT %s (%s): refs", gname[g], hname[h],
                      cold ? "cold caches" : "caches disabled");
        uint8_t* p = e.tr(kGva1G + 0x123);
        check(p == e.fx->gpa_host(kDataGpa + 0x123), name, "wrong host pointer");
        eq(e.refs(), want[g][h], name);
        std::snprintf(name, sizeof name, "2d table guest %s x EPT %s (%s): guest/ept split", gname[g],
                      hname[h], cold ? "cold caches" : "caches disabled");
        check(e.c.v[C_walk_refs_guest] == uint64_t(4 - g) &&
                  e.c.v[C_walk_refs_ept] == want[g][h] - (4 - g),
              name, "guest %llu ept %llu", e.c.v[C_walk_refs_guest], e.c.v[C_walk_refs_ept]);
        if (!cold) {
          // Disabled caches: the same access walks again at the same cost (A bits now set).
          e.tr(kGva1G + 0x456);
          std::snprintf(name, sizeof name, "2d table guest %s x EPT %s: second walk same refs",
                        gname[g], hname[h]);
          eq(e.refs(), 2 * want[g][h], name);
          eq(e.c.v[C_walks], 2, "caches disabled: every access walks");
        }
      }
    }
  }
}

// 4 KiB guest pages, tables in 4 KiB EPT mappings, data in a 2 MiB EPT mapping: 4·5+3.
void test_mixed_example() {
  Env e;
  e.fx->ept_map(0, M2, 1);            // guest tables live in GPA [1 MiB, 2 MiB)
  e.fx->ept_map(4 * M2, M2, 2);       // the data page's 2 MiB
  e.fx->guest_map(kGva1G, 4 * M2 + 5 * K4, 1);
  e.start(true, no_caches());
  e.tr(kGva1G);
  eq(e.refs(), 23, "mixed example: 4K guest, tables in 4K EPT, data in 2M EPT = 23");
  eq(e.c.v[C_walk_refs_ept], 19, "mixed example: 19 EPT references");
}

void main_scenario(Env& e) {
  e.fx->ept_map(0, WalkFixture::kGuestSize, 1);
  // Data pages: kGva1G + i*4K → GPA 1 GiB + i*4K; also +2M, +1G neighbours.
  for (uint64_t i = 0; i < 80; ++i) e.fx->guest_map(kGva1G + i * 16 * K4, kDataGpa + i * K4, 1);
  e.fx->guest_map(kGva1G + K4, kDataGpa + 100 * K4, 1);
  e.fx->guest_map(kGva1G + M2, kDataGpa + 101 * K4, 1);
  e.fx->guest_map(kGva1G + G1, kDataGpa + 102 * K4, 1);
}

// Each cache saves exactly the references it skips.
void test_savings() {
  {  // PDE cache alone: the second page of the same PT skips 3 guest levels × (4+1).
    Env e;
    main_scenario(e);
    e.start(true, only(&TlbGeometry::pwc_pde));
    e.tr(kGva1G);
    e.tr(kGva1G + K4);
    eq(e.refs(), 24 + 9, "PDE cache hit saves 3x(4+1): 9 refs");
    eq(e.c.v[C_pwc_pde_hits], 1, "PDE cache hit counted");
  }
  {  // PDPTE cache alone: same PD, other PT: skips 2 levels.
    Env e;
    main_scenario(e);
    e.start(true, only(&TlbGeometry::pwc_pdpte));
    e.tr(kGva1G);
    e.tr(kGva1G + M2);
    eq(e.refs(), 24 + 14, "PDPTE cache hit saves 2x(4+1): 14 refs");
    eq(e.c.v[C_pwc_pdpte_hits], 1, "PDPTE cache hit counted");
  }
  {  // PML4E cache alone: same PDPT, other PD: skips 1 level.
    Env e;
    main_scenario(e);
    e.start(true, only(&TlbGeometry::pwc_pml4e));
    e.tr(kGva1G);
    e.tr(kGva1G + G1);
    eq(e.refs(), 24 + 19, "PML4E cache hit saves 1x(4+1): 19 refs");
    eq(e.c.v[C_pwc_pml4e_hits], 1, "PML4E cache hit counted");
  }
  {  // Nested TLB alone: all four table pages cached, each saves its 4 EPT reads.
    Env e;
    main_scenario(e);
    e.start(true, only(&TlbGeometry::nested));
    e.tr(kGva1G);
    e.tr(kGva1G + K4);
    eq(e.refs(), 24 + 8, "nested TLB hits save 4 EPT reads per table: 8 refs");
    eq(e.c.v[C_nested_tlb_hits], 4, "nested TLB hits counted");
  }
  {  // Default hierarchy, cold, then a neighbour page: PDE hit + nested hit for the PT.
    Env e;
    main_scenario(e);
    e.start(true, TlbGeometry{});
    e.tr(kGva1G);
    eq(e.refs(), 24, "default hierarchy cold: 24");
    e.tr(kGva1G + K4);
    eq(e.refs(), 24 + 5, "PDE cache + nested TLB: PT read + data EPT = 5");
    e.tr(kGva1G);
    eq(e.refs(), 29, "L1 DTLB hit: no references");
    eq(e.c.v[C_dtlb_4k_hits], 1, "L1 DTLB 4K hit counted");
    eq(e.c.v[C_dtlb_4k_misses], 2, "L1 DTLB 4K misses counted");
    eq(e.c.v[C_stlb_4k_misses], 2, "STLB 4K misses counted");
  }
  {  // STLB: five pages in one 4-way DTLB set evict the first from L1, not from the STLB.
    Env e;
    main_scenario(e);
    e.start(true, TlbGeometry{});
    for (uint64_t i = 0; i < 5; ++i) e.tr(kGva1G + i * 16 * K4);
    const uint64_t refs = e.refs(), walks = e.c.v[C_walks];
    e.tr(kGva1G);
    eq(e.refs() - refs, 0, "STLB hit: no references");
    eq(e.c.v[C_walks] - walks, 0, "STLB hit: no walk");
    eq(e.c.v[C_stlb_4k_hits], 1, "STLB 4K hit counted");
    eq(e.c.v[C_dtlb_4k_misses], 6, "the L1 refill from the STLB is a DTLB miss");
    // LRU: page 1 is now the oldest in the set; page 0 was just refilled.
    e.tr(kGva1G + 16 * K4);
    eq(e.c.v[C_stlb_4k_hits], 2, "LRU evicted the least recently used way");
  }
}

// Splintering: the combined entry is min(guest leaf, EPT leaf).
void test_splintering() {
  {
    Env e;
    e.fx->ept_map(0, WalkFixture::kGuestSize, 1);
    e.fx->guest_map(kGva1G, kDataGpa, 2);
    e.start(true, TlbGeometry{});
    e.tr(kGva1G);
    e.tr(kGva1G + K4);
    eq(e.c.v[C_walks], 2, "2M guest over 4K EPT: each 4K page walks");
    eq(e.c.v[C_dtlb_4k_misses], 2, "2M guest over 4K EPT: 4K DTLB entries");
    eq(e.c.v[C_dtlb_2m_misses] + e.c.v[C_dtlb_2m_hits], 0, "2M guest over 4K EPT: no 2M entries");
    check(e.tr(kGva1G + K4 + 8) == e.fx->gpa_host(kDataGpa + K4 + 8), "splintered entry maps the right bytes");
  }
  {
    Env e;
    e.fx->ept_map(0, WalkFixture::kGuestSize, 2);
    e.fx->guest_map(kGva1G, kDataGpa, 2);
    e.start(true, TlbGeometry{});
    e.tr(kGva1G);
    uint8_t* p = e.tr(kGva1G + 77 * K4 + 3);
    eq(e.c.v[C_walks], 1, "2M guest over 2M EPT: one walk covers the 2M page");
    eq(e.c.v[C_dtlb_2m_hits], 1, "2M guest over 2M EPT: 2M DTLB hit");
    check(p == e.fx->gpa_host(kDataGpa + 77 * K4 + 3), "2M entry maps the right bytes");
  }
  {
    Env e;
    e.fx->ept_map(0, WalkFixture::kGuestSize, 3);
    e.fx->guest_map(kGva1G, kDataGpa, 3);
    e.start(true, TlbGeometry{});
    e.tr(kGva1G, Access::Fetch);
    e.tr(kGva1G + 5 * M2, Access::Fetch);
    eq(e.c.v[C_walks], 1, "1G fetches: the STLB keeps the 1G entry");
    eq(e.c.v[C_itlb_2m_misses], 2, "ITLB has no 1G array: 1G pages become 2M ITLB entries");
    eq(e.c.v[C_stlb_1g_hits], 1, "second 2M of the 1G page: STLB 1G hit");
  }
}

// INVLPG, MOV CR3 and INVEPT drop exactly what they should.
void test_flushes() {
  Env e;
  main_scenario(e);
  e.start(true, TlbGeometry{});
  e.tr(kGva1G);
  e.tr(kGva1G + 16 * K4);
  // Remap page 0 behind the TLB's back: hardware keeps using the stale entry.
  *e.fx->guest_entry(kGva1G, 1) = (kDataGpa + 50 * K4) | 0x63;
  check(e.tr(kGva1G) == e.fx->gpa_host(kDataGpa), "stale entry used until INVLPG");
  const uint64_t g0 = e.mmu->generation();
  e.mmu->invlpg(Gva(kGva1G));
  check(e.mmu->generation() != g0, "INVLPG bumps the generation");
  const uint64_t r0 = e.refs();
  check(e.tr(kGva1G) == e.fx->gpa_host(kDataGpa + 50 * K4), "INVLPG: new mapping seen");
  eq(e.refs() - r0, 8, "INVLPG flushed the PWCs, kept the nested TLB: 4 reads + 4 data EPT");
  const uint64_t w0 = e.c.v[C_walks];
  e.tr(kGva1G + 16 * K4);
  eq(e.c.v[C_walks] - w0, 0, "INVLPG kept other pages");
  eq(e.c.v[C_invlpg], 0, "invlpg is the CPU's to count (one per instruction)");

  e.mmu->flush_guest();
  const uint64_t r1 = e.refs();
  e.tr(kGva1G + 16 * K4);
  eq(e.refs() - r1, 8, "CR3 write: TLBs and PWCs gone, nested TLB kept");
  eq(e.c.v[C_tlb_flushes], 1, "tlb_flushes counted");

  e.mmu->invept();
  const uint64_t r2 = e.refs();
  e.tr(kGva1G + 16 * K4);
  eq(e.refs() - r2, 24, "INVEPT: everything EPT-derived gone, full 2D walk");
  eq(e.c.v[C_invept], 1, "invept counted");

  {  // INVLPG of any address inside a 2 MiB entry drops the whole entry.
    Env h;
    h.fx->ept_map(0, WalkFixture::kGuestSize, 2);
    h.fx->guest_map(kGva1G, kDataGpa, 2);
    h.start(true, TlbGeometry{});
    h.tr(kGva1G);
    h.tr(kGva1G + 300 * K4);
    eq(h.c.v[C_walks], 1, "2M entry covers the page before INVLPG");
    h.mmu->invlpg(Gva(kGva1G + 300 * K4 + 5));
    h.tr(kGva1G);
    eq(h.c.v[C_walks], 2, "INVLPG inside a 2M page drops the 2M entry (L1 and STLB)");
  }

  const uint64_t g1 = e.mmu->generation();
  e.mmu->set_control(CR0, e.fx->cr3(), CR4, EFER);
  eq(e.mmu->generation(), g1, "set_control with unchanged bits keeps the generation");
  e.mmu->set_control(CR0 & ~(1ull << 16), e.fx->cr3(), CR4, EFER);
  check(e.mmu->generation() != g1, "clearing CR0.WP bumps the generation");
}

// EPT violations report gpa, access, gva_valid and the level where the walk stopped.
void test_ept_violations() {
  for (int level = 1; level <= 4; ++level) {
    // Data page missing at EPT `level`: map the tables' 2 MiB and nothing around the data.
    // Level 4: a GPA whose EPT PML4E is empty (the tables' PML4E covers GPA [0, 512 GiB)).
    const uint64_t data = level == 4 ? 600 * G1 : kDataGpa;
    Env e;
    e.fx->ept_map(0, M2, 1);
    e.fx->guest_map(kGva1G, data + 3 * K4, 1);
    // Build the EPT path to the data down to `level`+1, leave `level` empty.
    if (level < 4) *e.fx->ept_entry(data, level) = 0;
    e.start(true, no_caches());
    const Access accs[3] = {Access::Read, Access::Write, Access::Fetch};
    for (Access a : accs) {
      uint8_t* p = e.tr(kGva1G + 8, a);
      char name[96];
      std::snprintf(name, sizeof name, "EPT violation on data at level %d, access %d", level, int(a));
      check(!p && e.f.kind == FaultKind::EptViolation && e.f.gpa == data + 3 * K4 + 8 &&
                e.f.access == a && e.f.gva_valid && e.f.level == level && !e.f.misconfig &&
                e.f.gva == kGva1G + 8,
            name, "kind/level %llu/%llu", uint64_t(e.f.kind), e.f.level);
    }
  }
  {  // A guest table (the PT) whose EPT PTE is missing: stops at EPT level 1.
    Env e;
    e.fx->guest_map(kGva1G, kDataGpa, 1);
    const uint64_t pt = *e.fx->guest_entry(kGva1G, 2) & 0x000FFFFFFFFFF000ull;
    e.fx->ept_map(0, M2, 1);
    e.fx->ept_map(kDataGpa, K4, 1);
    *e.fx->ept_entry(pt, 1) = 0;
    e.start(true, no_caches());
    uint8_t* p = e.tr(kGva1G, Access::Write);
    const uint64_t egpa = pt + ((kGva1G >> 12) & 511) * 8;
    check(!p && e.f.kind == FaultKind::EptViolation && e.f.gpa == egpa && !e.f.gva_valid &&
              e.f.access == Access::Read && e.f.level == 1,
          "EPT violation on a guest-table read: gva_valid=0, access read, level 1");
  }
  {  // Guest table in GPA space reached only through missing EPT levels 2..4.
    for (int level = 2; level <= 4; ++level) {
      Env e;
      e.fx->ept_map(0, M2, 1);
      e.fx->ept_map(kDataGpa, K4, 1);
      // Point the guest PDE at a PT whose EPT path stops at `level`: 600 GiB has no EPT
      // PML4E; 512 GiB gets a PML4E but no PDPTE; 1.5 GiB has a PD but no PDE.
      uint64_t target = 600ull * G1;
      if (level == 3) { target = 512ull * G1; e.fx->ept_entry(target, 3); }
      if (level == 2) { target = 1536ull << 20; e.fx->ept_entry(target, 2); }
      *e.fx->guest_entry(kGva1G, 2) = target | 3;
      e.start(true, no_caches());
      uint8_t* p = e.tr(kGva1G);
      char name[96];
      std::snprintf(name, sizeof name, "EPT violation on a guest table stops at EPT level %d", level);
      check(!p && e.f.kind == FaultKind::EptViolation && !e.f.gva_valid && e.f.level == level &&
                e.f.gpa == target + ((kGva1G >> 12) & 511) * 8 && !e.f.misconfig,
            name, "level %llu gpa %llx", e.f.level, e.f.gpa);
    }
  }
  {  // Insufficient permissions: read-only data page, non-executable data page.
    Env e;
    e.fx->ept_map(0, M2, 1);
    e.fx->ept_map(kDataGpa, M2, 2, 1);  // R only
    e.fx->guest_map(kGva1G, kDataGpa, 1);
    e.start(true, TlbGeometry{});
    check(e.tr(kGva1G) != nullptr, "read of an R-only EPT page succeeds");
    check(!e.tr(kGva1G, Access::Write) && e.f.kind == FaultKind::EptViolation &&
              e.f.access == Access::Write && e.f.gva_valid && e.f.level == 2,
          "write to an R-only EPT page: violation, access write, level 2");
    check(!e.tr(kGva1G, Access::Fetch) && e.f.kind == FaultKind::EptViolation &&
              e.f.access == Access::Fetch && e.f.gva_valid,
          "fetch from a non-X EPT page: violation, access fetch");
  }
  {  // Setting A in a guest table whose EPT mapping is read-only is a write.
    Env e;
    e.fx->ept_map(0, M2, 1, 5);  // tables R+X only
    e.fx->ept_map(kDataGpa, K4, 1);
    e.fx->guest_map(kGva1G, kDataGpa, 1);
    e.start(true, no_caches());
    check(!e.tr(kGva1G) && e.f.kind == FaultKind::EptViolation && e.f.access == Access::Write &&
              !e.f.gva_valid && e.f.gpa == e.fx->cr3() + ((kGva1G >> 39) & 511) * 8,
          "A-bit update on an EPT read-only table: violation, access write, gva_valid=0");
  }
}

// A/D updates are counted apart from references, set as hardware does.
void test_ad_bits() {
  Env e;
  main_scenario(e);
  e.start(true, TlbGeometry{});
  e.tr(kGva1G);
  eq(e.refs(), 24, "A updates are not references");
  eq(e.c.v[C_ad_updates], 4, "A set once per level");
  uint64_t pte = *e.fx->guest_entry(kGva1G, 1);
  check((pte & 0x60) == 0x20, "read sets A, not D");
  const uint64_t w0 = e.c.v[C_walks];
  e.tr(kGva1G, Access::Write);
  pte = *e.fx->guest_entry(kGva1G, 1);
  check((pte & 0x60) == 0x60, "write sets D");
  eq(e.c.v[C_ad_updates], 5, "D update counted");
  eq(e.c.v[C_walks] - w0, 1, "write to a clean cached page walks again to set D");
  e.tr(kGva1G, Access::Write);
  eq(e.c.v[C_walks] - w0, 1, "second write hits the TLB");
  eq(e.c.v[C_ad_updates], 5, "no further A/D updates");
}

// #PF error codes per the SDM (CPL 0: U=0).
void test_page_faults() {
  Env e;
  e.fx->ept_map(0, WalkFixture::kGuestSize, 2);
  e.fx->guest_map(kGva1G, kDataGpa, 1, WalkFixture::P);                       // read-only
  e.fx->guest_map(kGva1G + K4, kDataGpa, 1, WalkFixture::P | WalkFixture::RW | WalkFixture::NX);
  e.fx->guest_map(kGva1G + 3 * K4, kDataGpa, 1, WalkFixture::P | (1ull << 16) | WalkFixture::RW);
  e.start(true, TlbGeometry{});
  auto ec = [&](uint64_t gva, Access a) -> uint64_t {
    return e.tr(gva, a) ? 0xFFFF : (e.f.kind == FaultKind::PageFault ? e.f.error_code : 0xEEEE);
  };
  eq(ec(kGva1G + 2 * K4, Access::Read), 0, "#PF not present read: 0");
  eq(ec(kGva1G + 2 * K4, Access::Write), 2, "#PF not present write: W");
  eq(ec(kGva1G + 2 * K4, Access::Fetch), 16, "#PF not present fetch (NXE): I");
  eq(ec(kGva1G, Access::Write), 3, "#PF write to read-only with CR0.WP: P|W");
  eq(ec(kGva1G + K4, Access::Fetch), 17, "#PF fetch from NX page: P|I");
  check(e.tr(kGva1G + K4, Access::Write) != nullptr, "write to RW NX page works");
  eq(e.f.gva, 0, "no fault recorded on success");
  e.tr(kGva1G + 2 * K4 + 5);
  eq(e.f.gva, kGva1G + 2 * K4 + 5, "#PF reports the GVA");
  // Bit 16 in a 4K PTE is an ignored bit; a 2M PDE with bit 13 set is reserved.
  check(e.tr(kGva1G + 3 * K4) != nullptr, "ignored PTE bit is no fault");
  e.fx->guest_map(kGva1G + 8 * M2, kDataGpa | (1ull << 13), 2);
  eq(ec(kGva1G + 8 * M2, Access::Read), 9, "#PF reserved bit in a 2M PDE: P|RSVD");
  *e.fx->guest_entry(kGva1G + 16 * G1, 4) |= WalkFixture::PS;
  e.mmu->invlpg(Gva(kGva1G + 16 * G1));  // the PML4E cache still holds the old entry
  eq(ec(kGva1G + 16 * G1, Access::Read), 9, "#PF PS in a PML4E: P|RSVD");

  // CR0.WP=0: supervisor writes ignore R/W. EFER.NXE=0: NX is reserved, no I bit.
  Env w;
  w.fx->ept_map(0, WalkFixture::kGuestSize, 2);
  w.fx->guest_map(kGva1G, kDataGpa, 1, WalkFixture::P);
  w.fx->guest_map(kGva1G + K4, kDataGpa, 1, WalkFixture::P | WalkFixture::NX);
  w.start(true, TlbGeometry{}, EFER & ~(1ull << 11), CR0 & ~(1ull << 16));
  check(w.tr(kGva1G, Access::Write) != nullptr, "CR0.WP=0: write to read-only page allowed");
  check(!w.tr(kGva1G + K4) && w.f.error_code == 9, "EFER.NXE=0: NX bit is reserved (P|RSVD)");
  check(!w.tr(kGva1G + 2 * K4, Access::Fetch) && w.f.error_code == 0, "EFER.NXE=0: no I bit");

  // CR4.SMEP: a supervisor fetch from a user page faults (P|I); data reads still work.
  Env u;
  u.fx->ept_map(0, WalkFixture::kGuestSize, 2);
  u.fx->guest_map(kGva1G, kDataGpa, 1, WalkFixture::P | WalkFixture::US);
  for (int l = 4; l >= 2; --l) *u.fx->guest_entry(kGva1G, l) |= WalkFixture::US;
  u.start(true, TlbGeometry{});
  u.mmu->set_control(CR0, u.fx->cr3(), CR4 | (1ull << 20), EFER);
  check(u.tr(kGva1G) != nullptr, "SMEP: supervisor read of a user page works");
  check(!u.tr(kGva1G, Access::Fetch) && u.f.error_code == 17, "SMEP: supervisor fetch from a user page: P|I");
  u.mmu->set_control(CR0, u.fx->cr3(), CR4, EFER);
  check(u.tr(kGva1G, Access::Fetch) != nullptr, "without SMEP the fetch works");

  // Paging off (CR0.PG=0): GVA = GPA, only the EPT translates.
  Env q;
  q.fx->ept_map(0, WalkFixture::kGuestSize, 1);
  q.start(true, no_caches(), EFER, 1);
  check(q.tr(kDataGpa + 12) == q.fx->gpa_host(kDataGpa + 12), "CR0.PG=0: GVA = GPA through the EPT");
  eq(q.refs(), 4, "CR0.PG=0: only the 4 EPT references");
}

// Garbage entries never crash: out-of-arena EPT addresses are reported as misconfigurations,
// garbage guest entries as faults or violations.
void test_bounds() {
  {
    Env e;
    e.fx->guest_map(kGva1G, kDataGpa, 1);
    e.fx->ept_map(0, M2, 1);
    *e.fx->ept_entry(kDataGpa, 4) = 0x000FFFFFFFFFF000ull | 7;  // next table far outside
    e.start(true, no_caches());
    check(!e.tr(kGva1G) && e.f.kind == FaultKind::EptViolation && e.f.misconfig && e.f.level == 3,
          "EPT table pointer outside the arena: misconfig at the next level");
  }
  {
    Env e;
    e.fx->guest_map(kGva1G, kDataGpa, 1);
    e.fx->ept_map(0, M2, 1);
    e.fx->ept_map(kDataGpa, K4, 1);
    *e.fx->ept_entry(kDataGpa, 1) = 0x0000FFFFFFFF0000ull | 7 | (6 << 3);  // leaf outside
    e.start(true, no_caches());
    check(!e.tr(kGva1G) && e.f.misconfig && e.f.level == 1 && e.f.gva_valid,
          "EPT leaf outside the arena: misconfig, level 1");
    *e.fx->ept_entry(kDataGpa, 1) = (WalkFixture::kGuestBase + kDataGpa) | 2;  // W without R
    check(!e.tr(kGva1G) && e.f.misconfig, "EPT entry W without R: misconfig");
    *e.fx->ept_entry(kDataGpa, 1) = (WalkFixture::kGuestBase + kDataGpa) | 7 | (2 << 3);
    check(!e.tr(kGva1G) && e.f.misconfig, "EPT leaf with reserved memory type: misconfig");
  }
  {  // No-EPT: a guest entry pointing beyond guest RAM is an MMIO exit.
    Env e;
    e.fx->guest_map(kGva1G, 0x000FFFFFFFFFF000ull, 1);
    e.start(false, no_caches());
    check(!e.tr(kGva1G) && e.f.kind == FaultKind::Mmio && e.f.gva_valid &&
              e.f.gpa == 0x000FFFFFFFFFF000ull,
          "no-EPT: data GPA outside guest RAM is MMIO");
    *e.fx->guest_entry(kGva1G, 4) = 0x0000800000000000ull | 3;
    check(!e.tr(kGva1G) && e.f.kind == FaultKind::Mmio && !e.f.gva_valid,
          "no-EPT: guest table outside guest RAM is MMIO");
  }
  {  // Fuzz: random guest and EPT tables, random GVAs; every result is a pointer or a fault.
    Env e;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    auto rnd = [&]() { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; };
    e.fx->ept_map(0, 4 * M2, 1);
    for (int t = 0; t < 2000; ++t) {
      // Scribble over guest tables (GPA [1 MiB, 1 MiB + 64 KiB)) and EPT tables.
      uint64_t* gt = reinterpret_cast<uint64_t*>(e.fx->gpa_host(1ull << 20));
      gt[rnd() % (16 * 512)] = rnd() & (t % 2 ? 0x8000FFFFFFFFFFFFull : 0x000000007FFFFFFFull);
      uint64_t* et = reinterpret_cast<uint64_t*>(e.arena->base() + (1ull << 20));
      if (t % 7 == 0) et[rnd() % (8 * 512)] = rnd() & 0x00000000FFFFFFFFull;
    }
    e.start(true, TlbGeometry{});
    uint64_t ok = 0, faults = 0;
    for (int t = 0; t < 20000; ++t) {
      uint8_t* p = e.tr(rnd() & 0x0000FFFFFFFFF000ull, Access(rnd() % 3));
      if (p) {
        ok += e.arena->contains(Hpa(uint64_t(p - e.arena->base())), 1);
      } else {
        faults += e.f.kind != FaultKind::None;
      }
      if (t % 1000 == 0) e.mmu->invept();
    }
    eq(ok + faults, 20000, "fuzzed tables: every translation is an in-arena pointer or a fault");
  }
}

void test_geometry() {
  Env e;
  TlbGeometry g;
  g.stlb = TlbGeom{1000, 12};
  MmuConfig c = e.fx->config(true, g);
  const char* err = e.mmu->configure(c);
  check(err && std::strstr(err, "tlb.stlb"), "bad geometry is rejected naming the structure");
  g = TlbGeometry{};
  g.dtlb_4k = TlbGeom{16, 2};
  check(e.mmu->configure(e.fx->config(true, g)) == nullptr, "custom geometry accepted");
  MmuConfig bad = e.fx->config(true, g);
  bad.eptp = 1ull << 40;
  check(e.mmu->configure(bad) != nullptr, "EPTP outside the arena is rejected");
}

}  // namespace

int main() {
  test_2d_table();
  test_mixed_example();
  test_savings();
  test_splintering();
  test_flushes();
  test_ept_violations();
  test_ad_bits();
  test_page_faults();
  test_bounds();
  test_geometry();
  std::printf("passed %d failed %d\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
