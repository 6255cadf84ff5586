// TlbArray: geometry validation, LRU insertion and flushes (see tlb.h).
#include "tlb.h"

namespace hv {

const char* TlbArray::configure(TlbGeom g) {
  clock_ = 0;
  if (g.entries == 0) {
    e_.clear();
    set_mask_ = 0;
    ways_ = 0;
    return nullptr;
  }
  const uint32_t ways = g.ways == 0 ? g.entries : g.ways;
  if (g.entries > 65536) return "has more than 65536 entries";
  if (ways > g.entries || g.entries % ways != 0) return "entries is not a multiple of ways";
  if (ways > 64) return "has more than 64 ways";
  const uint32_t sets = g.entries / ways;
  if (sets & (sets - 1)) return "entries/ways (the number of sets) is not a power of two";
  e_.assign(g.entries, TlbEntry{});
  set_mask_ = sets - 1;
  ways_ = ways;
  return nullptr;
}

TlbEntry* TlbArray::insert_way(uint64_t key, uint64_t index) {
  TlbEntry* s = &e_[(index & set_mask_) * ways_];
  TlbEntry* victim = nullptr;
  for (uint32_t w = 0; w < ways_; ++w) {
    if (s[w].key == key) { victim = &s[w]; break; }  // refresh in place, never duplicate
    if (s[w].key == ~0ull) {
      if (!victim || victim->key != ~0ull) victim = &s[w];  // first invalid way wins
    } else if (!victim || (victim->key != ~0ull && s[w].stamp < victim->stamp)) {
      victim = &s[w];
    }
  }
  victim->key = key;
  victim->stamp = ++clock_;
  return victim;
}

void TlbArray::clear() {
  for (auto& e : e_) e.key = ~0ull;
}

}  // namespace hv
