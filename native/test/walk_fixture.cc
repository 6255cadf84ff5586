// WalkFixture: page-table and EPT builders over the arena (see walk_fixture.h).
#include "walk_fixture.h"

#include <cstring>

namespace hv {

WalkFixture::WalkFixture(Arena* a) : arena_(a) {
  eptp_ = alloc_ept_table();
  cr3_ = alloc_guest_table();
}

MmuConfig WalkFixture::config(bool ept, const TlbGeometry& g) const {
  MmuConfig c;
  c.ept = ept;
  c.eptp = eptp_;
  c.guest_base = kGuestBase;
  c.guest_size = kGuestSize;
  c.tlb = g;
  return c;
}

uint64_t WalkFixture::alloc_ept_table() {
  const uint64_t t = ept_next_;
  ept_next_ += kPageSize;
  std::memset(arena_->base() + t, 0, kPageSize);
  return t;
}

uint64_t WalkFixture::alloc_guest_table() {
  const uint64_t t = guest_next_;
  guest_next_ += kPageSize;
  std::memset(gpa_host(t), 0, kPageSize);
  return t;
}

uint64_t* WalkFixture::ept_entry(uint64_t gpa, int level) {
  uint64_t table = eptp_;
  for (int l = 4;; --l) {
    uint64_t* e = reinterpret_cast<uint64_t*>(arena_->base() + table) + ((gpa >> level_shift(l)) & (kTableEntries - 1));
    if (l == level) return e;
    if (!(*e & EPT_RWX)) *e = alloc_ept_table() | EPT_RWX;
    table = *e & kAddrMask;
  }
}

void WalkFixture::ept_map(uint64_t gpa, uint64_t len, int leaf_level, uint64_t perm) {
  const uint64_t size = 1ull << level_shift(leaf_level);
  for (uint64_t g = gpa & ~(size - 1); g < gpa + len; g += size)
    *ept_entry(g, leaf_level) = (kGuestBase + g) | perm | (EPT_MT_WB << EPT_MT_SHIFT) | (leaf_level > 1 ? EPT_PS : 0);
}

uint64_t* WalkFixture::guest_entry(uint64_t gva, int level) {
  uint64_t table = cr3_;
  for (int l = 4;; --l) {
    uint64_t* e = reinterpret_cast<uint64_t*>(gpa_host(table)) + ((gva >> level_shift(l)) & (kTableEntries - 1));
    if (l == level) return e;
    if (!(*e & PTE_P)) *e = alloc_guest_table() | PTE_P | PTE_RW;
    table = *e & kAddrMask;
  }
}

void WalkFixture::guest_map(uint64_t gva, uint64_t gpa, int leaf_level, uint64_t flags) {
  *guest_entry(gva, leaf_level) = gpa | flags | (leaf_level > 1 ? PTE_PS : 0);
}

}  // namespace hv
