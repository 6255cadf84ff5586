// Exact event counters, one u64 each, in one flat array that TS reads through a
// BigUint64Array view (no allocation per read). The X-macro list below is the single source
// of truth for names and order; the addon exports the names so TS never hard-codes indices.
// Add new counters at the end of the group they belong to; names are snake_case and use the
// kernel/KVM name where one exists.
#pragma once
#include <cstdint>

namespace hv {

#define HV_COUNTERS(X)                                                                    \
  /* execution */                                                                         \
  X(instructions) X(loads) X(stores) X(fetch_lookups)                                     \
  /* VM exits by reason (KVM stat names where they exist) */                              \
  X(exits) X(exits_io) X(exits_hlt) X(exits_ept_violation) X(exits_mmio)                  \
  X(exits_shutdown) X(exits_budget)                                                       \
  /* guest exceptions by vector (delivered through the guest IDT) */                      \
  X(exc_de) X(exc_ud) X(exc_df) X(exc_gp) X(exc_pf)                                       \
  /* system instructions touching translation */                                          \
  X(cr3_writes) X(invlpg) X(invept) X(tlb_flushes)                                        \
  /* TLB (totals; per-level / per-size counters follow in the MMU group) */               \
  X(tlb_lookups) X(tlb_hits) X(tlb_misses)                                                \
  /* page walks */                                                                        \
  X(walks) X(walk_refs) X(walk_refs_guest) X(walk_refs_ept) X(ad_updates)                 \
  /* decode cache */                                                                      \
  X(decode_cache_hits) X(decode_cache_misses) X(decode_cache_invalidations)

enum Counter : uint32_t {
#define HV_X(name) C_##name,
  HV_COUNTERS(HV_X)
#undef HV_X
  C_COUNT
};

inline const char* const kCounterNames[] = {
#define HV_X(name) #name,
    HV_COUNTERS(HV_X)
#undef HV_X
};

struct Counters {
  uint64_t v[C_COUNT];
  void inc(Counter c, uint64_t n = 1) { v[c] += n; }
  void clear() {
    for (auto& x : v) x = 0;
  }
};

}  // namespace hv
