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
  X(exits_ept_misconfig)                                                                  \
  /* guest exceptions by vector (delivered through the guest IDT) */                      \
  X(exc_de) X(exc_ud) X(exc_df) X(exc_gp) X(exc_pf)                                       \
  X(exc_np) X(exc_ss) X(exc_bp) /* counted when delivery completes */                             \
  /* system instructions touching translation */                                          \
  X(cr3_writes) X(invlpg) X(invept) X(tlb_flushes)                                        \
  /* TLB (totals; per-level / per-size counters follow in the MMU group) */               \
  X(tlb_lookups) X(tlb_hits) X(tlb_misses)                                                \
  /* MMU: L1 ITLB / L1 DTLB / L2 STLB hits and misses by page size (native/mmu.h says how  \
     a miss is attributed to a size) */                                                   \
  X(itlb_4k_hits) X(itlb_4k_misses) X(itlb_2m_hits) X(itlb_2m_misses)                     \
  X(itlb_1g_hits) X(itlb_1g_misses)                                                       \
  X(dtlb_4k_hits) X(dtlb_4k_misses) X(dtlb_2m_hits) X(dtlb_2m_misses)                     \
  X(dtlb_1g_hits) X(dtlb_1g_misses)                                                       \
  X(stlb_4k_hits) X(stlb_4k_misses) X(stlb_2m_hits) X(stlb_2m_misses)                     \
  X(stlb_1g_hits) X(stlb_1g_misses)                                                       \
  /* page walks */                                                                        \
  X(walks) X(walk_refs) X(walk_refs_guest) X(walk_refs_ept) X(ad_updates)                 \
  /* MMU: paging-structure-cache and nested-TLB hits; walks that ended in a fault */       \
  X(pwc_pml4e_hits) X(pwc_pdpte_hits) X(pwc_pde_hits) X(nested_tlb_hits)                  \
  X(walk_faults)                                                                          \
  /* decode cache */                                                                      \
  X(decode_cache_hits) X(decode_cache_misses) X(decode_cache_invalidations)             \
  /* mmio: data accesses completed without a device (reads all-ones, writes dropped) */ \
  X(mmio_accesses)

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
