// Builds guest page tables and EPT tables in an arena, for the MMU test driver
// (native/test/mmu_test*.cc) and the walk benchmark (native/bench/walk_bench.cc). Test
// support only: neither the production addon nor the vCPU links it; in a running VM the
// tables come from the guest and from the TS EPT manager.
//
// Layout: HPA [0, 1 GiB) holds EPT tables, bump-allocated from 1 MiB. Guest RAM is GPA
// [0, 2 GiB) at HPA [1 GiB, 3 GiB): the EPT maps it linearly (GPA g → HPA 1 GiB + g) with
// whatever leaf sizes a test asks for, and no-EPT mode uses guest_base = 1 GiB. Guest page
// tables are bump-allocated from GPA 1 MiB; tests place data pages elsewhere.
#pragma once
#include "../arena.h"
#include "../mmu.h"
#include "../paging.h"

namespace hv {

class WalkFixture {
 public:
  static constexpr uint64_t kGuestBase = 1ull << 30;
  static constexpr uint64_t kGuestSize = 2ull << 30;
  static constexpr uint64_t kArenaSize = 3ull << 30;

  explicit WalkFixture(Arena* a);

  uint64_t eptp() const { return eptp_; }
  uint64_t cr3() const { return cr3_; }
  MmuConfig config(bool ept, const TlbGeometry& g) const;

  // EPT: the entry of `level` (4..1) on gpa's walk, creating missing tables above it.
  uint64_t* ept_entry(uint64_t gpa, int level);
  // Map [gpa, gpa+len) linearly to HPA kGuestBase+gpa with leaves of `leaf_level`
  // (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB), permission bits `perm` (EPT_R/W/X), type WB.
  void ept_map(uint64_t gpa, uint64_t len, int leaf_level, uint64_t perm = EPT_RWX);

  // Guest: the entry of `level` on gva's walk, creating missing tables (P|RW) above it.
  uint64_t* guest_entry(uint64_t gva, int level);
  // Map one guest page of `leaf_level` at gva → gpa with `flags` (PS added for large leaves).
  void guest_map(uint64_t gva, uint64_t gpa, int leaf_level, uint64_t flags = PTE_P | PTE_RW);
  uint64_t alloc_guest_table();  // GPA of a zeroed guest table

  // Host pointer of a guest-physical byte (through the linear layout, not the EPT).
  uint8_t* gpa_host(uint64_t gpa) const { return arena_->base() + kGuestBase + gpa; }

 private:
  uint64_t alloc_ept_table();
  Arena* arena_;
  uint64_t ept_next_ = 1ull << 20;
  uint64_t guest_next_ = 1ull << 20;
  uint64_t eptp_ = 0, cr3_ = 0;
};

}  // namespace hv
