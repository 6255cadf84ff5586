// TlbArray: geometry validation, LRU insertion and flushes (see tlb.h).
#include "tlb.h"

#include <cstring>

namespace hv {

const char* TlbArray::configure(TlbGeom g, bool count_odd) {
  valid_ = 0;
  odd_ = 0;
  count_odd_ = count_odd;
  clock_ = 0;
  capacity_ = g.entries;
  if (g.entries == 0) {
    e_.clear();
    prev_.clear();
    next_.clear();
    lru_.clear();
    tags_.clear();
    set_mask_ = 0;
    way_mask_ = 0;
    ways_ = 0;
    tstride_ = 0;
    return nullptr;
  }
  const uint32_t ways = g.ways == 0 ? g.entries : g.ways;
  if (g.entries > 65536) return "has more than 65536 entries";
  if (ways > g.entries || g.entries % ways != 0) return "entries is not a multiple of ways";
  if (ways > 64) return "has more than 64 ways";
  const uint32_t sets = g.entries / ways;
  if (sets & (sets - 1)) return "entries/ways (the number of sets) is not a power of two";
  e_.assign(g.entries, TlbEntry{});
  for (uint32_t i = 0; i < g.entries; ++i) {
    e_[i].set = static_cast<uint16_t>(i / ways);
    e_[i].way = static_cast<uint8_t>(i % ways);
  }
  prev_.assign(g.entries, kNone);
  next_.assign(g.entries, kNone);
  lru_.assign(sets, Lru{});
  set_mask_ = sets - 1;
  ways_ = ways;
  way_mask_ = ways == 64 ? ~0ull : (1ull << ways) - 1;
  tstride_ = (ways + 15u) & ~15u;
  tags_.assign(static_cast<size_t>(sets) * tstride_, 0);
  return nullptr;
}

void TlbArray::clear() {
  if (valid_ == 0) return;
  for (auto& e : e_) e.key = ~0ull;
  std::memset(tags_.data(), 0, tags_.size());
  for (Lru& l : lru_) l = Lru{};
  valid_ = 0;
  odd_ = 0;
}

}  // namespace hv
