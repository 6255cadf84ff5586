// MMU state changes (configure, control registers, flushes) and the TLB-hierarchy lookup
// that runs when the inline fast path in mmu.h misses. The walk itself is native/walk.cc,
// the EPT walk native/ept.h.
#include "mmu.h"

#include <string>

#include "paging.h"

namespace hv {

namespace {
// Size shift of each page-size class (0 = 4K, 1 = 2M, 2 = 1G).
constexpr unsigned kShift[3] = {kPageShift, kHugeShift, kGigShift};
constexpr Counter kStlbHits[3] = {C_stlb_4k_hits, C_stlb_2m_hits, C_stlb_1g_hits};
constexpr Counter kStlbMisses[3] = {C_stlb_4k_misses, C_stlb_2m_misses, C_stlb_1g_misses};
// STLB keys tag the page size so 4 KiB and 2 MiB entries can share one array.
uint64_t stlb_key(uint64_t va, unsigned size) { return ((va >> kShift[size]) << 1) | size; }
}  // namespace

Mmu::Mmu(Arena* arena, Counters* counters) : arena_(arena), counters_(counters) {
  const Counter dh[3] = {C_dtlb_4k_hits, C_dtlb_2m_hits, C_dtlb_1g_hits};
  const Counter dm[3] = {C_dtlb_4k_misses, C_dtlb_2m_misses, C_dtlb_1g_misses};
  const Counter ih[3] = {C_itlb_4k_hits, C_itlb_2m_hits, C_itlb_1g_hits};
  const Counter im[3] = {C_itlb_4k_misses, C_itlb_2m_misses, C_itlb_1g_misses};
  for (int s = 0; s < 3; ++s) {
    l1_[0].hits[s] = dh[s]; l1_[0].misses[s] = dm[s];
    l1_[1].hits[s] = ih[s]; l1_[1].misses[s] = im[s];
  }
  // A usable default until configure(): the whole hierarchy, nothing mapped.
  configure_arrays(TlbGeometry{});
}

TlbArray* Mmu::array_of(TlbStructure s) {
  switch (s) {
    case TLB_itlb_4k: return &l1_[1].arr[0];
    case TLB_itlb_2m: return &l1_[1].arr[1];
    case TLB_itlb_1g: return &l1_[1].arr[2];
    case TLB_dtlb_4k: return &l1_[0].arr[0];
    case TLB_dtlb_2m: return &l1_[0].arr[1];
    case TLB_dtlb_1g: return &l1_[0].arr[2];
    case TLB_stlb: return &stlb_;
    case TLB_stlb_1g: return &stlb_1g_;
    case TLB_pwc_pde: return &pwc_[0];
    case TLB_pwc_pdpte: return &pwc_[1];
    case TLB_pwc_pml4e: return &pwc_[2];
    case TLB_nested: return &nested_;
    case TLB_COUNT: break;
  }
  return nullptr;
}

const char* Mmu::configure_arrays(const TlbGeometry& g) {
  // Validate everything before changing anything. Names are NativeMmuConfig.tlb's (TS).
  for (unsigned s = 0; s < TLB_COUNT; ++s) {
    TlbArray probe;
    if (const char* e = probe.configure(g[TlbStructure(s)])) {
      err_ = std::string("tlb.") + kTlbStructureNames[s] + " " + e;
      return err_.c_str();
    }
  }
  for (unsigned s = 0; s < TLB_COUNT; ++s) array_of(TlbStructure(s))->configure(g[TlbStructure(s)]);
  return nullptr;
}

const char* Mmu::configure(const MmuConfig& cfg) {
  if (cfg.ept) {
    if (!arena_->contains(Hpa(cfg.eptp & kAddrMask), kPageSize))
      return "eptp: the EPT PML4 lies outside the host-physical arena";
  } else if (cfg.guest_size == 0 || !arena_->contains(Hpa(cfg.guest_base), cfg.guest_size)) {
    return "guest memory range lies outside the host-physical arena";
  } else if (cfg.guest_base & kPageMask) {
    return "guestBase must be 4096-aligned";
  }
  if (const char* e = configure_arrays(cfg.tlb)) return e;
  cfg_ = cfg;
  bump();
  return nullptr;
}

void Mmu::set_control(uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer) {
  // Bits that change how an entry is interpreted invalidate what was cached under them.
  constexpr uint64_t cr0_bits = CR0_WP | CR0_PG, cr4_bits = CR4_PSE | CR4_PAE | CR4_SMEP,
                     efer_bits = EFER_NXE | EFER_LMA;
  if (((cr0 ^ cr0_) & cr0_bits) || ((cr4 ^ cr4_) & cr4_bits) || ((efer ^ efer_) & efer_bits)) {
    cr0_ = cr0; cr4_ = cr4; efer_ = efer;
    flush_guest();
  } else if (cr3 != cr3_) {
    // A CR3 the CPU did not write (TS set it between runs): nothing cached under the old
    // one may survive. Not counted: a MOV to CR3 also calls flush_guest(), which counts,
    // and then finds nothing to clear.
    flush_tlbs();
    bump();
  }
  cr0_ = cr0; cr3_ = cr3; cr4_ = cr4; efer_ = efer;
}

void Mmu::flush_tlbs() {
  if (!filled_) return;  // nothing inserted since the last flush: clearing is a no-op
  filled_ = false;
  for (L1& l1 : l1_)
    for (TlbArray& a : l1.arr) a.clear();
  stlb_.clear();
  stlb_1g_.clear();
  for (TlbArray& p : pwc_) p.clear();
}

void Mmu::flush_guest() {
  counters_->inc(C_tlb_flushes);
  flush_tlbs();  // the nested TLB holds GPA→HPA only: it survives a CR3 write
  bump();
}

void Mmu::invlpg(Gva va) {
  const uint64_t v = va.v & kVaMask;
  for (L1& l1 : l1_)
    for (unsigned s = 0; s < 3; ++s) l1.arr[s].invalidate(v >> kShift[s], v >> kShift[s]);
  stlb_.invalidate(stlb_key(v, 0), v >> kShift[0]);
  stlb_.invalidate(stlb_key(v, 1), v >> kShift[1]);
  stlb_1g_.invalidate(v >> kShift[2], v >> kShift[2]);
  for (TlbArray& p : pwc_) p.clear();
  bump();
}

void Mmu::invept() {
  counters_->inc(C_invept);
  flush_tlbs();
  nested_.clear();
  bump();
}

// The largest enabled array of this L1 whose page size does not exceed the translation's.
__attribute__((always_inline)) inline void Mmu::fill_l1(L1& l1, Gva va, const Walked& w) {
  const uint64_t v = va.v & kVaMask;
  int s = w.size;
  while (s >= 0 && !l1.arr[s].enabled()) --s;
  if (s < 0) {
    counters_->inc(l1.misses[w.size]);
    l1.forget();
    return;
  }
  counters_->inc(l1.misses[s]);
  const uint64_t key = v >> kShift[s];
  TlbEntry* e = l1.arr[s].insert_absent(key, key);  // translate_l1 probed it
  filled_ = true;
  const uint64_t off = v & ((1ull << kShift[w.size]) - 1) & ~((1ull << kShift[s]) - 1);
  e->val = reinterpret_cast<uint64_t>(w.host + off);
  e->perm = w.perm;
  e->size = static_cast<uint8_t>(s);
  // The new entry is the MRU way of its set: safe to memo (any eviction forgot the old memo).
  l1.memo_vpn = va.v >> kPageShift;  // unmasked: the fast path compares raw GVAs
  l1.memo_host = w.host + (v & ((1ull << kShift[w.size]) - 1) & ~kPageMask);
  l1.memo_perm = w.perm;
  l1.memo_counter = l1.hits[s];
}

uint8_t* Mmu::translate_l1(Gva va, Access acc, Fault* f) {
  L1& l1 = l1_[acc == Access::Fetch];
  const uint64_t v = va.v & kVaMask;
  const uint8_t need = static_cast<uint8_t>(1u << static_cast<unsigned>(acc));
  counters_->v[C_tlb_lookups]++;
  for (unsigned s = 0; s < 3; ++s) {
    const uint64_t key = v >> kShift[s];
    TlbEntry* e = l1.arr[s].find(key, key);
    if (!e) continue;
    if (!(e->perm & need)) {  // e.g. a write to a clean page: re-walk to set D
      l1.arr[s].kill(e);
      l1.forget();
      continue;
    }
    l1.arr[s].touch(e);
    counters_->v[C_tlb_hits]++;
    counters_->v[l1.hits[s]]++;
    l1.memo_vpn = va.v >> kPageShift;
    l1.memo_host = reinterpret_cast<uint8_t*>(e->val) + (v & ((1ull << kShift[s]) - 1) & ~kPageMask);
    l1.memo_perm = e->perm;
    l1.memo_counter = l1.hits[s];
    return l1.memo_host + (v & kPageMask);
  }
  counters_->v[C_tlb_misses]++;
  return translate_miss(va, acc, f);
}

// Kept out of line so the L1-hit path above stays a small leaf function.
__attribute__((noinline)) uint8_t* Mmu::translate_miss(Gva va, Access acc, Fault* f) {
  L1& l1 = l1_[acc == Access::Fetch];
  const uint64_t v = va.v & kVaMask;
  const uint8_t need = static_cast<uint8_t>(1u << static_cast<unsigned>(acc));
  // L2 STLB: 4 KiB and 2 MiB entries share one array (probed once per size), 1 GiB apart.
  Walked w;
  bool hit = false;
  for (unsigned s = 0; s < 3 && !hit; ++s) {
    TlbArray& a = s == 2 ? stlb_1g_ : stlb_;
    const uint64_t key = s == 2 ? v >> kShift[2] : stlb_key(v, s);
    TlbEntry* e = a.find(key, v >> kShift[s]);
    if (!e) continue;
    if (!(e->perm & need)) {
      a.kill(e);
      continue;
    }
    a.touch(e);
    counters_->inc(kStlbHits[s]);
    w = Walked{reinterpret_cast<uint8_t*>(e->val), e->perm, static_cast<uint8_t>(s)};
    hit = true;
  }
  if (!hit) {
    if (!walk(va, acc, f, &w)) {
      counters_->inc(C_walk_faults);
      return nullptr;
    }
    // Refill the STLB: 1 GiB into its own array, else as 2 MiB; 2 MiB / 4 KiB shared.
    int s = w.size;
    if (s == 2 && !stlb_1g_.enabled()) s = 1;
    TlbEntry* e = nullptr;
    if (s == 2) {
      e = stlb_1g_.insert_absent(v >> kShift[2], v >> kShift[2]);  // probed above
    } else if (stlb_.enabled()) {
      e = stlb_.insert_absent(stlb_key(v, s), v >> kShift[s]);  // probed above
    }
    if (e) {
      filled_ = true;
      const uint64_t off = v & ((1ull << kShift[w.size]) - 1) & ~((1ull << kShift[s]) - 1);
      e->val = reinterpret_cast<uint64_t>(w.host + off);
      e->perm = w.perm;
      e->size = static_cast<uint8_t>(s);
      counters_->inc(kStlbMisses[s]);
      // What the L1 sees from now on is what the STLB holds.
      w = Walked{w.host + off, w.perm, static_cast<uint8_t>(s)};
    } else {
      counters_->inc(kStlbMisses[w.size]);
    }
  }
  fill_l1(l1, va, w);
  return w.host + (v & ((1ull << kShift[w.size]) - 1));
}

}  // namespace hv
