// MMU checks of what goes wrong: EPT violations and their fields, #PF error codes,
// garbage entries (bounds), geometry validation.
#include "mmu_test.h"

namespace hv::test {

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
    const uint64_t pt = *e.fx->guest_entry(kGva1G, 2) & kAddrMask;
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

// #PF error codes per the SDM (CPL 0: U=0).
void test_page_faults() {
  Env e;
  e.fx->ept_map(0, WalkFixture::kGuestSize, 2);
  e.fx->guest_map(kGva1G, kDataGpa, 1, PTE_P);                       // read-only
  e.fx->guest_map(kGva1G + K4, kDataGpa, 1, PTE_P | PTE_RW | PTE_NX);
  e.fx->guest_map(kGva1G + 3 * K4, kDataGpa, 1, PTE_P | (1ull << 16) | PTE_RW);
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
  *e.fx->guest_entry(kGva1G + 16 * G1, 4) |= PTE_PS;
  e.mmu->invlpg(Gva(kGva1G + 16 * G1));  // the PML4E cache still holds the old entry
  eq(ec(kGva1G + 16 * G1, Access::Read), 9, "#PF PS in a PML4E: P|RSVD");

  // CR0.WP=0: supervisor writes ignore R/W. EFER.NXE=0: NX is reserved, no I bit.
  Env w;
  w.fx->ept_map(0, WalkFixture::kGuestSize, 2);
  w.fx->guest_map(kGva1G, kDataGpa, 1, PTE_P);
  w.fx->guest_map(kGva1G + K4, kDataGpa, 1, PTE_P | PTE_NX);
  w.start(true, TlbGeometry{}, EFER & ~EFER_NXE, CR0 & ~CR0_WP);
  check(w.tr(kGva1G, Access::Write) != nullptr, "CR0.WP=0: write to read-only page allowed");
  check(!w.tr(kGva1G + K4) && w.f.error_code == 9, "EFER.NXE=0: NX bit is reserved (P|RSVD)");
  check(!w.tr(kGva1G + 2 * K4, Access::Fetch) && w.f.error_code == 0, "EFER.NXE=0: no I bit");

  // CR4.SMEP: a supervisor fetch from a user page faults (P|I); data reads still work.
  Env u;
  u.fx->ept_map(0, WalkFixture::kGuestSize, 2);
  u.fx->guest_map(kGva1G, kDataGpa, 1, PTE_P | PTE_US);
  for (int l = 4; l >= 2; --l) *u.fx->guest_entry(kGva1G, l) |= PTE_US;
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
    *e.fx->ept_entry(kDataGpa, 4) = kAddrMask | EPT_RWX;  // next table far outside
    e.start(true, no_caches());
    check(!e.tr(kGva1G) && e.f.kind == FaultKind::EptViolation && e.f.misconfig && e.f.level == 3,
          "EPT table pointer outside the arena: misconfig at the next level");
  }
  {
    Env e;
    e.fx->guest_map(kGva1G, kDataGpa, 1);
    e.fx->ept_map(0, M2, 1);
    e.fx->ept_map(kDataGpa, K4, 1);
    *e.fx->ept_entry(kDataGpa, 1) = 0x0000FFFFFFFF0000ull | EPT_RWX | (EPT_MT_WB << EPT_MT_SHIFT);  // leaf outside
    e.start(true, no_caches());
    check(!e.tr(kGva1G) && e.f.misconfig && e.f.level == 1 && e.f.gva_valid,
          "EPT leaf outside the arena: misconfig, level 1");
    *e.fx->ept_entry(kDataGpa, 1) = (WalkFixture::kGuestBase + kDataGpa) | EPT_W;  // W without R
    check(!e.tr(kGva1G) && e.f.misconfig, "EPT entry W without R: misconfig");
    *e.fx->ept_entry(kDataGpa, 1) = (WalkFixture::kGuestBase + kDataGpa) | EPT_RWX | (2 << EPT_MT_SHIFT);  // MT 2 is reserved
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

}  // namespace hv::test
