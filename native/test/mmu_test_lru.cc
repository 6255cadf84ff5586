// TlbArray replacement against a plain model of exact LRU: for every replacement scheme
// (per-way stamps up to TlbArray::kStampWays ways, the recency list above) and both
// entry points (the geometry read at run time, and as template constants, which the MMU
// uses for its default TlbGeometry), a pseudo-random sequence of probes, fills, refreshes,
// kills and clears must hit, miss and pick victim ways exactly as the model does: the
// lowest invalid way of the set, else its least recently inserted-or-touched way.
#include <vector>

#include "mmu_test.h"

namespace hv::test {

namespace {
struct ModelSet {
  std::vector<uint64_t> key;   // per way, ~0 = invalid
  std::vector<unsigned> order; // valid ways, most recent first
  void use(unsigned w) {
    for (size_t i = 0; i < order.size(); ++i)
      if (order[i] == w) { order.erase(order.begin() + static_cast<long>(i)); break; }
    order.insert(order.begin(), w);
  }
  int find(uint64_t k) const {
    for (size_t w = 0; w < key.size(); ++w) if (key[w] == k) return static_cast<int>(w);
    return -1;
  }
};

// kOdd: the array counts odd keys (the STLB's has_odd_key), checked after every step.
template <uint32_t kWays, uint32_t kSets, bool kOdd = false>
bool run_lru(uint32_t entries, uint32_t ways, uint64_t seed, uint64_t ops, uint64_t key_range) {
  TlbArray a;
  if (a.configure(TlbGeom{entries, ways}, kOdd)) return false;
  const uint32_t w = ways ? ways : entries, sets = entries / w;
  std::vector<ModelSet> m(sets);
  for (ModelSet& s : m) s.key.assign(w, ~0ull);
  uint64_t x = seed;
  for (uint64_t i = 0; i < ops; ++i) {
    if (kOdd) {
      bool any_odd = false;
      for (const ModelSet& ms : m)
        for (uint64_t k : ms.key) any_odd |= k != ~0ull && (k & 1);
      if (a.has_odd_key() != any_odd) return false;
    }
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    // With kOdd, few keys are odd (raw a multiple of 997) and nothing flushes, so the set of
    // odd keys empties again by eviction and kill, and the count must follow.
    const uint64_t raw = (x >> 8) % key_range;
    // The set comes from raw, the key adds the bit (the STLB's 2 MiB keys: Mmu::stlb_key).
    const uint64_t key = kOdd ? (raw << 1) | (raw % 997 == 0 ? 1 : 0) : raw, set = raw & (sets - 1);
    ModelSet& ms = m[set];
    const unsigned op = static_cast<unsigned>(x & 63);
    if (op == 0 && !kOdd) {  // flush
      a.clear();
      for (ModelSet& s : m) { s.key.assign(w, ~0ull); s.order.clear(); }
      continue;
    }
    TlbEntry* e = a.find<kWays, kSets>(key, raw);
    const int mw = ms.find(key);
    if ((e != nullptr) != (mw >= 0) || (e && e->way != mw)) return false;
    if (e) {
      if (op < 6) {  // kill
        a.kill(e);
        ms.key[static_cast<size_t>(mw)] = ~0ull;
        for (size_t j = 0; j < ms.order.size(); ++j)
          if (ms.order[j] == static_cast<unsigned>(mw)) { ms.order.erase(ms.order.begin() + static_cast<long>(j)); break; }
      } else if (op < 12) {  // refresh through insert()
        if (a.insert(key, raw) != e) return false;
        ms.use(static_cast<unsigned>(mw));
      } else {
        a.touch<kWays>(e);
        ms.use(static_cast<unsigned>(mw));
      }
      continue;
    }
    // Miss: fill, as the MMU does after a probe.
    TlbEntry* n = a.insert_absent<kWays, kSets, kOdd>(key, raw);
    int vw = ms.find(~0ull);
    if (vw < 0) vw = static_cast<int>(ms.order.back());
    if (!n || n->way != vw || n->key != key) return false;
    ms.key[static_cast<size_t>(vw)] = key;
    ms.use(static_cast<unsigned>(vw));
  }
  return true;
}
}  // namespace

void test_lru() {
  // The default geometries (mmu.h) as constants and at run time, and a 64-way array.
  check(run_lru<4, 16>(64, 4, 1, 200000, 300), "LRU stamps, 4-way x 16 sets (constant geometry)");
  check(run_lru<0, 0>(64, 4, 1, 200000, 300), "LRU stamps, 4-way x 16 sets (run-time geometry)");
  check(run_lru<8, 8>(64, 8, 2, 200000, 300), "LRU stamps, 8-way x 8 sets (constant geometry)");
  check(run_lru<4, 1>(4, 0, 3, 100000, 9), "LRU stamps, 4 entries fully associative");
  check(run_lru<12, 128>(1536, 12, 4, 400000, 4000), "LRU list, 12-way x 128 sets (constant geometry)");
  check(run_lru<0, 0>(1536, 12, 4, 400000, 4000), "LRU list, 12-way x 128 sets (run-time geometry)");
  check(run_lru<12, 128, true>(1536, 12, 8, 100000, 4000), "LRU list, 12-way x 128 sets, odd keys counted (constant)");
  check(run_lru<0, 0, true>(1536, 12, 8, 100000, 4000), "LRU list, 12-way x 128 sets, odd keys counted (run-time)");
  check(run_lru<16, 1>(16, 0, 5, 200000, 40), "LRU list, 16 entries fully associative (constant)");
  check(run_lru<32, 1>(32, 0, 6, 200000, 70), "LRU list, 32 entries fully associative (constant)");
  check(run_lru<0, 0>(32, 0, 6, 200000, 70), "LRU list, 32 entries fully associative (run-time)");
  check(run_lru<0, 0>(64, 0, 7, 200000, 150), "LRU list, 64 entries fully associative (run-time)");
}

}  // namespace hv::test
