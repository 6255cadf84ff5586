// One set-associative translation cache with deterministic LRU replacement. Every cache of
// the modeled MMU is one of these (docs/mmu-model.md; the list is HV_TLB_STRUCTURES in mmu.h): the L1 ITLB/DTLB arrays,
// the shared STLB, the three paging-structure caches and the nested TLB. They differ only
// in what `key` and `val` mean, so the replacement policy is written once.
//
// LRU is exact per set: the victim is an invalid way if there is one (the lowest), else the
// least recently inserted-or-touched valid way. Sets of up to kStampWays ways (the L1 arrays,
// touched on every L1 hit) keep a strictly increasing stamp per way: a touch is one store
// and the victim the smallest stamp. Wider sets (the 12-way STLB and the 32-entry fully
// associative PDE cache, inserted into on most walks) keep their valid ways in a recency list with
// one-byte links instead, so the victim is the list's tail without a scan. Both orders are
// the same exact LRU.
// Nothing depends on host state, so the same access sequence always evicts the same entries.
//
// Speed (docs/performance.md, the gups bench): a TLB miss probes ~10 sets, most of them missing, so the
// probe must not walk every way's 40-byte entry. Each way has a one-byte tag (0 = invalid,
// else 0x80 | 7 bits of a hash of the key) stored contiguously per set, 16-byte padded: one
// SSE2 compare tests 16 ways, and only ways whose tag matches compare the full key. An
// array with no valid entry answers every probe without touching memory. The tags are a
// pure accelerator: hits, misses and victims are exactly those of a plain way-by-way scan.
#pragma once
#include <cstdint>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
  uint8_t perm = 0;      // kPerm* bits
  uint8_t size = 0;      // page-size class of the translation (0 = 4K, 1 = 2M, 2 = 1G)
  uint8_t level = 0;     // nested TLB: EPT leaf level of the table page (for violations)
  uint8_t way = 0;       // position in the array (set by configure): touch/kill need no division
  uint16_t set = 0;
  uint64_t stamp = 0;    // LRU stamp (sets of up to TlbArray::kStampWays ways)
};

// Compile-time geometry for TlbArray's hot operations: kWays ways and kSets sets, both
// nonzero, or 0 for the geometry configure() was given (read at run time). The MMU passes
// constants only for its default TlbGeometry (Mmu::geo), where they equal the configured
// values; the code is then the same but for the loads and branches they replace.
class TlbArray {
 public:
  static constexpr uint32_t kStampWays = 8;
  // Returns nullptr, or a message naming what is wrong with the geometry. count_odd: keep
  // has_odd_key() (the STLB's; every other array skips the count).
  const char* configure(TlbGeom g, bool count_odd = false);
  bool enabled() const { return capacity_ != 0; }

  // `index` selects the set (taken modulo the number of sets); `key` must match exactly.
  template <uint32_t kWays = 0, uint32_t kSets = 0>
  TlbEntry* find(uint64_t key, uint64_t index) {
    if (valid_ == 0) return nullptr;  // also covers a disabled structure
    const uint32_t set = static_cast<uint32_t>(index & set_mask<kSets>());
    uint64_t m = match<kWays>(&tags_[set * tstride<kWays>()], tag_of(key));
    TlbEntry* s = &e_[set * ways<kWays>()];
    while (m) {
      const unsigned w = static_cast<unsigned>(__builtin_ctzll(m));
      if (s[w].key == key) return &s[w];
      m &= m - 1;
    }
    return nullptr;
  }
  template <uint32_t kWays = 0>
  void touch(TlbEntry* e) {
    if (ways<kWays>() <= kStampWays) {
      e->stamp = ++clock_;
      return;
    }
    if (lru_[e->set].head == e->way) return;
    unlink<kWays>(e->set, e->way);
    push_front<kWays>(e->set, e->way);
  }

  // Insert (or refresh) key in its set, evicting the LRU way; returns the entry to fill,
  // or nullptr when the structure is disabled.
  TlbEntry* insert(uint64_t key, uint64_t index) {
    return capacity_ == 0 ? nullptr : insert_way<true, 0, 0, true>(key, index);
  }
  // insert() for a key the caller has just probed with find() and not found (or
  // killed) with no insert into this array since: the refresh-in-place scan could only
  // come up empty, so it is skipped. Victims and LRU order are exactly insert()'s.
  // kOdd: whether this array counts odd keys, when the geometry is constant (else count_odd_).
  template <uint32_t kWays = 0, uint32_t kSets = 0, bool kOdd = true>
  TlbEntry* insert_absent(uint64_t key, uint64_t index) {
    // A constant geometry is an enabled structure's (Mmu::Geo): no check.
    return kWays == 0 && capacity_ == 0 ? nullptr : insert_way<false, kWays, kSets, kOdd>(key, index);
  }

  // Whether any valid entry has an odd key (counted only when configured with count_odd).
  // The STLB keys its 2 MiB entries odd (Mmu::stlb_key), so while this is false a 2 MiB
  // probe can only miss and is skipped.
  bool has_odd_key() const { return odd_ != 0; }

  // Drop one entry (found by find()): its way becomes invalid.
  void kill(TlbEntry* e) {
    if (count_odd_) odd_ -= static_cast<uint32_t>(e->key & 1);
    e->key = ~0ull;
    tags_[e->set * tstride_ + e->way] = 0;
    if (ways_ > kStampWays) unlink<0>(e->set, e->way);
    --valid_;
  }
  void invalidate(uint64_t key, uint64_t index) {
    if (TlbEntry* e = find(key, index)) kill(e);
  }
  void clear();

 private:
  template <uint32_t kWays> uint32_t ways() const { return kWays ? kWays : ways_; }
  template <uint32_t kWays> uint32_t tstride() const { return kWays ? (kWays + 15u) & ~15u : tstride_; }
  template <uint32_t kWays> uint64_t way_mask() const {
    return kWays ? (kWays == 64 ? ~0ull : (1ull << (kWays & 63)) - 1) : way_mask_;
  }
  template <uint32_t kSets> uint64_t set_mask() const { return kSets ? kSets - 1 : set_mask_; }
  static uint8_t tag_of(uint64_t key) {
    return static_cast<uint8_t>(0x80u | ((key * 0x9E3779B97F4A7C15ull) >> 57));
  }
  // Bit w set when way w's tag equals t (t = 0 finds the invalid ways).
  template <uint32_t kWays>
  uint64_t match(const uint8_t* tags, uint8_t t) const {
    uint64_t m = 0;
    const uint32_t stride = tstride<kWays>();
#if defined(__SSE2__)
    const __m128i needle = _mm_set1_epi8(static_cast<char>(t));
    if (stride == 16)  // up to 16 ways (every default set-associative array): one compare
      return static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(
                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(tags)), needle))) & way_mask<kWays>();
    for (uint32_t w = 0; w < stride; w += 16) {
      const __m128i row = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tags + w));
      m |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(row, needle)))) << w;
    }
#else
    for (uint32_t w = 0; w < stride; ++w) m |= static_cast<uint64_t>(tags[w] == t) << w;
#endif
    return m & way_mask<kWays>();
  }
  template <bool kMayExist, uint32_t kWays, uint32_t kSets, bool kOdd>
  TlbEntry* insert_way(uint64_t key, uint64_t index);
  // Recency list of one set's valid ways: head = most recent, tail = the LRU victim.
  static constexpr uint8_t kNone = 0xFF;
  struct Lru { uint8_t head = kNone, tail = kNone; };
  template <uint32_t kWays>
  void unlink(uint32_t set, uint8_t w) {
    const uint32_t b = set * ways<kWays>();
    Lru& l = lru_[set];
    const uint8_t p = prev_[b + w], n = next_[b + w];
    if (p != kNone) next_[b + p] = n; else l.head = n;
    if (n != kNone) prev_[b + n] = p; else l.tail = p;
  }
  template <uint32_t kWays>
  void push_front(uint32_t set, uint8_t w) {
    const uint32_t b = set * ways<kWays>();
    Lru& l = lru_[set];
    prev_[b + w] = kNone;
    next_[b + w] = l.head;
    if (l.head != kNone) prev_[b + l.head] = w; else l.tail = w;
    l.head = w;
  }
  std::vector<TlbEntry> e_;
  std::vector<uint8_t> prev_, next_;  // recency-list links per way (parallel to e_)
  std::vector<Lru> lru_;              // per set
  std::vector<uint8_t> tags_;     // per set: tstride_ bytes, ways_ used, padding 0
  uint64_t set_mask_ = 0;
  uint64_t way_mask_ = 0;         // the low ways_ bits
  uint32_t ways_ = 0;
  uint32_t tstride_ = 0;
  uint32_t valid_ = 0;            // valid entries in the whole array
  uint32_t capacity_ = 0;         // entries in the whole array
  uint32_t odd_ = 0;              // valid entries whose key is odd (has_odd_key)
  bool count_odd_ = false;        // odd_ is kept (configure's count_odd)
  uint64_t clock_ = 0;            // last stamp handed out
};

// Out of line (noinline): inlined into the walk it costs more in register pressure than
// the call (docs/performance.md).
template <bool kMayExist, uint32_t kWays, uint32_t kSets, bool kOdd>
__attribute__((noinline)) TlbEntry* TlbArray::insert_way(uint64_t key, uint64_t index) {
  const uint32_t nways = ways<kWays>();
  const bool odd = kWays ? kOdd : count_odd_;
  const uint32_t set = static_cast<uint32_t>(index & set_mask<kSets>());
  uint8_t* tags = &tags_[set * tstride<kWays>()];
  TlbEntry* s = &e_[set * nways];
  const uint8_t t = tag_of(key);
  unsigned victim = nways;
  // Refresh in place, never duplicate.
  for (uint64_t m = kMayExist && valid_ ? match<kWays>(tags, t) : 0; m; m &= m - 1) {
    const unsigned w = static_cast<unsigned>(__builtin_ctzll(m));
    if (s[w].key == key) { victim = w; break; }
  }
  if (victim != nways) {
    touch<kWays>(&s[victim]);
  } else {
    // The lowest invalid way, if the set has one (none once the whole array is full).
    if (const uint64_t inv = valid_ < capacity_ ? match<kWays>(tags, 0) : 0) {
      victim = static_cast<unsigned>(__builtin_ctzll(inv));
      ++valid_;
    } else {
      if (nways <= kStampWays) {  // the least recently used way: smallest stamp
        victim = 0;
        uint64_t best = s[0].stamp;
        for (unsigned w = 1; w < nways; ++w)
          if (s[w].stamp < best) { best = s[w].stamp; victim = w; }
      } else {  // the least recently used way: the recency list's tail
        // The set is full and has more than kStampWays ways, so the tail is not the head:
        // unlinking it and pushing it to the front is one rotation of the list.
        const uint32_t b = set * nways;
        Lru& l = lru_[set];
        victim = l.tail;
        const uint8_t p = prev_[b + victim];
        next_[b + p] = kNone;
        l.tail = p;
        prev_[b + victim] = kNone;
        next_[b + victim] = l.head;
        prev_[b + l.head] = static_cast<uint8_t>(victim);
        l.head = static_cast<uint8_t>(victim);
      }
      if (odd) odd_ += static_cast<uint32_t>(key & 1) - static_cast<uint32_t>(s[victim].key & 1);  // evicted
      if (nways <= kStampWays) s[victim].stamp = ++clock_;
      tags[victim] = t;
      s[victim].key = key;
      return &s[victim];
    }
    if (odd) odd_ += static_cast<uint32_t>(key & 1);
    if (nways <= kStampWays) s[victim].stamp = ++clock_;
    else push_front<kWays>(set, static_cast<uint8_t>(victim));
    tags[victim] = t;
    s[victim].key = key;
  }
  return &s[victim];
}

}  // namespace hv
