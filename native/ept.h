// The EPT walk, inline so the 2D walker (native/walk.cc) runs it without a call per guest
// level (Intel SDM vol. 3 ch. 29, "EPT translation mechanism"): 4 levels of 512
// 8-byte entries; bits R=0 W=1 X=2, memory type 5:3 (leaves), PS=7 at level 3 (1 GiB) and
// level 2 (2 MiB), address bits 51:12. The tables are arena frames written by TS (the EPT
// manager); every entry read is bounds-checked, so a garbage entry is reported as an
// EPT misconfiguration instead of touching memory outside the arena.
#pragma once
#include <cstring>

#include "mmu.h"
#include "paging.h"

namespace hv {

namespace ept {
// Bit k set when R/W/X = k is not a usable entry: 000 (not present), 010 and 110 (W without R).
constexpr uint64_t kBadRwx = (1u << 0) | (1u << EPT_W) | (1u << (EPT_W | EPT_X));
static_assert(kBadRwx == 0x45, "R/W/X = 000, 010, 110");
}  // namespace ept
// A mapping's permissions are the AND of its EPT entries' R/W/X bits, kept as they are.
static_assert(kPermR == EPT_R && kPermW == EPT_W && kPermX == EPT_X, "kPerm* use the EPT bit positions");

__attribute__((always_inline)) inline bool Mmu::ept_walk(Gpa gpa, Mapped* m, uint8_t* stop, bool* misconfig,
                                                         uint64_t* refs) {
  // Hot loop: a cold 2D walk is 24 dependent loads, so keep the path from one entry to the
  // next short. Tables are 4 KiB-aligned and the arena is a whole number of pages, so one
  // check that a table starts inside the arena covers all 512 of its entries.
  uint8_t* const base = arena_->base();
  const uint64_t limit = arena_->size();
  uint64_t table = cfg_.eptp & kAddrMask;
  uint64_t perm = kPermR | kPermW | kPermX;
  int level = 4;
  uint64_t e = 0;
  // 4-level EPT translates bits 47:0 only: a wider GPA (a guest PTE or CR3 with bits 51:48
  // set) maps nothing, like a GPA outside guest RAM without EPT, instead of aliasing a low one.
  if (__builtin_expect(gpa.v >> kVaBits, 0)) {
    *stop = 4;
    *misconfig = false;
    return false;
  }
  // Start below the upper entries an earlier walk read for the same region (EptMemoEntry,
  // mmu.h): they are the same entries at the same addresses, and still count as references
  // below. The levels are written out (HV_EPT_LEVEL) so a walk can enter at level 2 or 1.
  const uint64_t epoch = ept_epoch_ << 28;
  const uint64_t r2 = gpa.v >> kHugeShift, r3 = gpa.v >> kGigShift;
  EptMemoEntry& m2 = ept_memo_pde_[r2 & (kEptMemoPde - 1)];
  EptMemoEntry& m3 = ept_memo_pdpte_[r3 & (kEptMemoPdpte - 1)];
  if (m2.tag == r2 + epoch) {
    table = m2.table & kAddrMask;
    perm = m2.table & EPT_RWX;
    goto pt;
  }
  if (m3.tag == r3 + epoch) {
    table = m3.table & kAddrMask;
    perm = m3.table & EPT_RWX;
    goto pd;
  }
// One level: bounds-check the table (4 KiB-aligned, so one check covers its 512 entries),
// read the entry, reject R/W/X = 000 (not present) and 010/110 (W without R: a
// misconfiguration, SDM 29.3.3.1; one shift of a constant tests all three).
#define HV_EPT_LEVEL(L)                                                                   \
  level = L;                                                                              \
  if (__builtin_expect(table >= limit, 0)) { /* the previous level pointed outside */     \
    *refs += static_cast<uint64_t>(4 - L);                                                \
    *stop = L;                                                                            \
    *misconfig = true;                                                                    \
    return false;                                                                         \
  }                                                                                       \
  std::memcpy(&e, base + table + ((gpa.v >> level_shift(L)) & (kTableEntries - 1)) * 8, 8); \
  if (__builtin_expect((ept::kBadRwx >> (e & EPT_RWX)) & 1, 0)) {                         \
    *refs += static_cast<uint64_t>(5 - L);                                                \
    *stop = L;                                                                            \
    *misconfig = (e & EPT_RWX) != 0;                                                      \
    return false;                                                                         \
  }                                                                                       \
  perm &= e;
  HV_EPT_LEVEL(4)
  if (e & EPT_PS) goto leaf;  // reserved in a PML4E: a misconfiguration below
  table = e & kAddrMask;
  HV_EPT_LEVEL(3)
  if (e & EPT_PS) goto leaf;  // 1 GiB page
  table = e & kAddrMask;
  m3 = EptMemoEntry{r3 + epoch, table | (perm & EPT_RWX)};  // a PDPTE that points to a table
pd:
  HV_EPT_LEVEL(2)
  if (e & EPT_PS) goto leaf;  // 2 MiB page
  table = e & kAddrMask;
  m2 = EptMemoEntry{r2 + epoch, table | (perm & EPT_RWX)};  // a PDE that points to a table
pt:
  HV_EPT_LEVEL(1)  // always a leaf (PS at level 1 is ignored)
#undef HV_EPT_LEVEL
leaf:
  *refs += static_cast<uint64_t>(5 - level);  // entries read: levels 4 down to this one
  *stop = static_cast<uint8_t>(level);
  if (level == 4) {  // PS is reserved in a PML4E
    *misconfig = true;
    return false;
  }
  // Leaf. Memory types 2, 3 and 7 are reserved; the whole leaf must lie inside the arena.
  const uint64_t mt = (e >> EPT_MT_SHIFT) & 7;
  const uint64_t size = 1ull << level_shift(level);
  const uint64_t leaf = e & kAddrMask & ~(size - 1);
  if (mt == 2 || mt == 3 || mt == 7 || !arena_->contains(Hpa(leaf), size)) {
    *misconfig = true;
    return false;
  }
  m->host = base + leaf + (gpa.v & (size - 1) & ~kPageMask);
  m->size = static_cast<uint8_t>(level - 1);
  m->perm = static_cast<uint8_t>(perm & EPT_RWX);  // kPermR/W/X use the EPT bit positions
  m->level = static_cast<uint8_t>(level);
  return true;
}

}  // namespace hv
