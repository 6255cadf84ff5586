// The EPT walk (Intel SDM vol. 3 ch. 29, "EPT translation mechanism"): 4 levels of 512
// 8-byte entries; bits R=0 W=1 X=2, memory type 5:3 (leaves), PS=7 at level 3 (1 GiB) and
// level 2 (2 MiB), address bits 51:12. The tables are arena frames written by TS (the EPT
// manager); every entry read is bounds-checked, so a garbage entry is reported as an
// EPT misconfiguration instead of touching memory outside the arena.
#include <cstring>

#include "mmu.h"

namespace hv {

namespace {
constexpr uint64_t kAddrMask = 0x000FFFFFFFFFF000ull;
constexpr uint64_t EPT_R = 1, EPT_W = 2, EPT_X = 4, EPT_PS = 1ull << 7;
}  // namespace

bool Mmu::ept_walk(Gpa gpa, Mapped* m, uint8_t* stop, bool* misconfig) {
  uint64_t table = cfg_.eptp & kAddrMask;
  uint8_t perm = kPermR | kPermW | kPermX;
  for (int level = 4; level >= 1; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    const uint8_t* p = arena_->ptr(Hpa(table + ((gpa.v >> shift) & 511) * 8), 8);
    if (!p) {  // the previous level pointed outside the arena
      *stop = static_cast<uint8_t>(level);
      *misconfig = true;
      return false;
    }
    counters_->v[C_walk_refs]++;
    counters_->v[C_walk_refs_ept]++;
    uint64_t e;
    std::memcpy(&e, p, 8);
    *stop = static_cast<uint8_t>(level);
    if ((e & 7) == 0) {  // not present
      *misconfig = false;
      return false;
    }
    // Write without read is a misconfiguration (SDM 29.3.3.1); so is PS in a PML4E.
    if ((e & (EPT_R | EPT_W)) == EPT_W || (level == 4 && (e & EPT_PS))) {
      *misconfig = true;
      return false;
    }
    perm &= static_cast<uint8_t>(e & 7);  // kPermR/W/X use the EPT bit positions
    const bool leaf = level == 1 || ((level == 2 || level == 3) && (e & EPT_PS));
    if (!leaf) {
      table = e & kAddrMask;
      continue;
    }
    // Memory types 2, 3 and 7 are reserved.
    const uint64_t mt = (e >> 3) & 7;
    const uint64_t size = 1ull << shift;
    const uint64_t base = e & kAddrMask & ~(size - 1);
    if (mt == 2 || mt == 3 || mt == 7 || !arena_->contains(Hpa(base), size)) {
      *misconfig = true;
      return false;
    }
    m->host = arena_->base() + base + (gpa.v & (size - 1) & ~kPageMask);
    m->size = static_cast<uint8_t>(level - 1);
    m->perm = perm;
    m->level = static_cast<uint8_t>(level);
    return true;
  }
  return false;  // unreachable: level 1 is always a leaf
}

}  // namespace hv
