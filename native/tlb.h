// One set-associative translation cache with deterministic LRU replacement. Every cache of
// the modeled MMU is one of these (MMU-MODEL.md "TLB hierarchy"): the L1 ITLB/DTLB arrays,
// the shared STLB, the three paging-structure caches and the nested TLB. They differ only
// in what `key` and `val` mean, so the replacement policy is written once.
//
// LRU is exact per set: every touch stores a strictly increasing stamp; the victim is an
// invalid way if there is one, else the way with the smallest stamp (lowest way on ties,
// which cannot happen since stamps are unique). Nothing depends on host state, so the same
// access sequence always evicts the same entries.
#pragma once
#include <cstdint>
#include <vector>

namespace hv {

// Geometry of one structure: `entries` total (0 = structure disabled), `ways` per set
// (0 = fully associative). entries/ways must be a power of two.
struct TlbGeom {
  uint32_t entries = 0;
  uint32_t ways = 0;
};

// Permission bits of a cached translation: what an access needs to hit without a walk.
// R/W/X are the AND of every level of both dimensions; W also requires the guest leaf's
// D bit to be set already (a write to a clean page walks again to set D, as hardware does).
enum : uint8_t { kPermR = 1, kPermW = 2, kPermX = 4,
                 kPermUser = 8 };  // paging-structure caches only: U/S of every level so far

struct TlbEntry {
  uint64_t key = ~0ull;  // ~0 = invalid; otherwise structure-specific (page number etc.)
  uint64_t val = 0;      // host pointer (TLBs), next-table GPA (PWCs) or table HPA (nested)
  uint64_t stamp = 0;    // LRU: larger = more recently used
  uint8_t perm = 0;      // kPerm* bits
  uint8_t size = 0;      // page-size class of the translation (0 = 4K, 1 = 2M, 2 = 1G)
  uint8_t level = 0;     // nested TLB: EPT leaf level of the table page (for violations)
};

class TlbArray {
 public:
  // Returns nullptr, or a message naming what is wrong with the geometry.
  const char* configure(TlbGeom g);
  bool enabled() const { return !e_.empty(); }
  uint32_t entries() const { return static_cast<uint32_t>(e_.size()); }

  // `index` selects the set (taken modulo the number of sets); `key` must match exactly.
  TlbEntry* find(uint64_t key, uint64_t index) {
    if (e_.empty()) return nullptr;
    TlbEntry* s = &e_[(index & set_mask_) * ways_];
    for (uint32_t w = 0; w < ways_; ++w)
      if (s[w].key == key) return &s[w];
    return nullptr;
  }
  void touch(TlbEntry* e) { e->stamp = ++clock_; }

  // Insert (or refresh) key in its set, evicting the LRU way; returns the entry to fill,
  // or nullptr when the structure is disabled.
  TlbEntry* insert(uint64_t key, uint64_t index) {
    return e_.empty() ? nullptr : insert_way(key, index);
  }

  void invalidate(uint64_t key, uint64_t index) {
    if (TlbEntry* e = find(key, index)) e->key = ~0ull;
  }
  void clear();

 private:
  TlbEntry* insert_way(uint64_t key, uint64_t index);
  std::vector<TlbEntry> e_;
  uint64_t set_mask_ = 0;
  uint32_t ways_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace hv
