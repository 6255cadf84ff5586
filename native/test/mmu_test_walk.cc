// MMU checks of the walk and the caches: the 2D reference table, the mixed example, the
// exact savings of each cache, splintering, flushes, A/D updates.
#include "mmu_test.h"

namespace hv::test {

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

  {  // A CR3 that changed behind the MMU's back (TS between runs) drops guest entries.
    Env h;
    main_scenario(h);
    h.start(true, TlbGeometry{});
    h.tr(kGva1G);
    const uint64_t other = h.fx->alloc_guest_table();  // an empty PML4: everything unmapped
    h.mmu->set_control(CR0, other, CR4, EFER);
    check(!h.tr(kGva1G) && h.f.kind == FaultKind::PageFault, "set_control with a new CR3 drops the TLB");
    eq(h.c.v[C_tlb_flushes], 0, "that implicit flush is not a counted tlb_flush");
    h.mmu->set_control(CR0, h.fx->cr3(), CR4, EFER);  // MOV CR3 = set_control + flush_guest
    h.mmu->flush_guest();
    eq(h.c.v[C_tlb_flushes], 1, "MOV CR3 counts one flush");
    check(h.tr(kGva1G) != nullptr, "back on the first CR3: mapped again");
  }

  const uint64_t g1 = e.mmu->generation();
  e.mmu->set_control(CR0, e.fx->cr3(), CR4, EFER);
  eq(e.mmu->generation(), g1, "set_control with unchanged bits keeps the generation");
  e.mmu->set_control(CR0 & ~CR0_WP, e.fx->cr3(), CR4, EFER);
  check(e.mmu->generation() != g1, "clearing CR0.WP bumps the generation");
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

}  // namespace hv::test

namespace hv::test {

// The 4 KiB line of each L1 (Mmu::L1::Line) only speeds up a hit the set search would find:
// it never serves an entry that was evicted, killed for its permissions or invalidated.
void test_l1_lines() {
  Env e;
  main_scenario(e);
  TlbGeometry g;
  g.dtlb_4k = TlbGeom{8, 2};  // 4 sets of 2: pages 16 apart share set 0
  e.start(true, g);
  const uint64_t p0 = kGva1G, p1 = kGva1G + 16 * K4, p2 = kGva1G + 32 * K4;
  e.tr(p0);
  e.tr(p1);  // set 0: p0, p1
  const uint64_t h0 = e.c.v[C_dtlb_4k_hits];
  check(e.tr(p0) == e.fx->gpa_host(kDataGpa), "line hit returns the page's host pointer");
  eq(e.c.v[C_dtlb_4k_hits] - h0, 1, "line hit counted as a 4K L1 hit");
  e.tr(p2);  // evicts p1, the LRU way (p0 was touched by the line hit)
  const uint64_t m0 = e.c.v[C_tlb_misses], s0 = e.c.v[C_stlb_4k_hits];
  check(e.tr(p1) == e.fx->gpa_host(kDataGpa + K4), "evicted page: right pointer");
  eq(e.c.v[C_tlb_misses] - m0, 1, "a line whose way was refilled is not a hit");
  eq(e.c.v[C_stlb_4k_hits] - s0, 1, "the evicted page comes back from the STLB");
  const uint64_t m1 = e.c.v[C_tlb_misses];
  e.tr(p2);  // p1's refill evicted p0 (LRU), not p2
  eq(e.c.v[C_tlb_misses] - m1, 0, "LRU order kept through line hits: p2 still cached");
  e.tr(p0);
  eq(e.c.v[C_tlb_misses] - m1, 1, "LRU order kept through line hits: p0 was the victim");

  // A write to a page cached clean (D = 0) walks again to set D, line or not.
  const uint64_t w0 = e.c.v[C_walks], a0 = e.c.v[C_ad_updates];
  e.tr(p2, Access::Write);
  eq(e.c.v[C_walks] - w0, 1, "write to a clean page cached by a read: one walk");
  eq(e.c.v[C_ad_updates] - a0, 1, "that walk sets D");
  const uint64_t h1 = e.c.v[C_dtlb_4k_hits];
  e.tr(p0);  // leaves the memo
  e.tr(p2, Access::Write);
  eq(e.c.v[C_dtlb_4k_hits] - h1, 2, "then writes hit");

  // INVLPG drops the entry the line points at.
  e.tr(p0);
  e.mmu->invlpg(Gva(p2));
  const uint64_t w1 = e.c.v[C_walks];
  e.tr(p2);
  eq(e.c.v[C_walks] - w1, 1, "after INVLPG the page walks again");

  // Reconfiguring reallocates the arrays: no line survives it.
  e.start(true, g);
  const uint64_t w2 = e.c.v[C_walks];
  e.tr(p0);
  e.tr(p2);
  eq(e.c.v[C_walks] - w2, 2, "after configure every page walks again");
}

}  // namespace hv::test
