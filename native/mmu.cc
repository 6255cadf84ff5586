// MMU state changes (configure, control registers, flushes) and the TLB-hierarchy lookup
// that runs when the inline fast path in mmu.h misses. The STLB lookup and the walk are
// native/walk.cc, the EPT walk native/ept.h.
#include "mmu.h"

#include <string>

#include "paging.h"

namespace hv {

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
  bool is_default = true, is_none = true;
  for (unsigned s = 0; s < TLB_COUNT; ++s) {
    const TlbGeom& gs = g[TlbStructure(s)];
    array_of(TlbStructure(s))->configure(gs, s == TLB_stlb);  // has_odd_key(): the STLB's
    is_default &= gs.entries == kDefaultTlb[s].entries && gs.ways == kDefaultTlb[s].ways;
    is_none &= gs.entries == 0;
  }
  geo_ = is_default ? kGeoDefault : is_none ? kGeoNone : kGeoRuntime;
  for (L1& l1 : l1_)
    for (L1::Line& line : l1.lines) line = L1::Line{};  // their entries were reallocated
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
  ept_memo_forget();  // a new EPTP: nothing read under the old one applies
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
  ept_memo_forget();
  bump();
}

void Mmu::ept_memo_clear() {
  for (EptMemoEntry& e : ept_memo_pde_) e = EptMemoEntry{};
  for (EptMemoEntry& e : ept_memo_pdpte_) e = EptMemoEntry{};
  ept_epoch_ = 1;
}

// One L1 array: a hit that allows the access returns the host pointer (and becomes the
// memo); nullptr otherwise. A hit that does not allow it (e.g. a write to a clean page)
// drops the entry so the access walks again to set D. S is the page-size class.
template <unsigned S, unsigned kGeo, bool kFetch>
__attribute__((always_inline)) inline uint8_t* Mmu::l1_probe(L1& l1, Gva va, uint8_t need) {
  constexpr TlbStructure T = TlbStructure((kFetch ? TLB_itlb_4k : TLB_dtlb_4k) + S);
  constexpr unsigned shift = kShift[S];
  const uint64_t v = va.v & kVaMask;
  const uint64_t key = v >> shift;
  TlbEntry* e = geo_find<kGeo, T>(l1.arr[S], key, key);
  if (!e) return nullptr;
  if (!(e->perm & need)) {
    l1.arr[S].kill(e);
    l1.forget();
    return nullptr;
  }
  geo_touch<kGeo, T>(l1.arr[S], e);
  if (S == 0) l1.note(key, e);
  counters_->v[C_tlb_hits]++;
  counters_->v[l1.hits[S]]++;
  l1.memo_vpn = va.v >> kPageShift;
  l1.memo_host = reinterpret_cast<uint8_t*>(e->val) + (v & ((1ull << shift) - 1) & ~kPageMask);
  l1.memo_perm = e->perm;
  l1.memo_counter = l1.hits[S];
  return l1.memo_host + (v & kPageMask);
}

uint8_t* Mmu::translate_l1(Gva va, Access acc, Fault* f) {
  L1& l1 = l1_[acc == Access::Fetch];
  const uint8_t need = static_cast<uint8_t>(1u << static_cast<unsigned>(acc));
  counters_->v[C_tlb_lookups]++;
  // The 4 KiB entry through its line (L1::Line): the same hit as l1_probe<0>, without the set search.
  const uint64_t key = (va.v & kVaMask) >> kPageShift;
  const L1::Line& line = l1.lines[key & (L1::kLines - 1)];
  if (line.key == key && line.e->key == key && (line.e->perm & need)) {
    TlbEntry* e = line.e;
    l1.arr[0].touch(e);
    counters_->v[C_tlb_hits]++;
    counters_->v[l1.hits[0]]++;
    l1.memo_vpn = va.v >> kPageShift;
    l1.memo_host = reinterpret_cast<uint8_t*>(e->val);
    l1.memo_perm = e->perm;
    l1.memo_counter = l1.hits[0];
    return l1.memo_host + (va.v & kPageMask);
  }
  const bool fetch = acc == Access::Fetch;
  switch (geo_) {
    case kGeoDefault:
      return fetch ? translate_sets<kGeoDefault, true>(va, acc, f) : translate_sets<kGeoDefault, false>(va, acc, f);
    case kGeoNone:
      return fetch ? translate_sets<kGeoNone, true>(va, acc, f) : translate_sets<kGeoNone, false>(va, acc, f);
    default:
      return fetch ? translate_sets<kGeoRuntime, true>(va, acc, f) : translate_sets<kGeoRuntime, false>(va, acc, f);
  }
}

// The set search, kept out of line so a line hit above needs no saved registers.
// kFetch: the access is a fetch (ITLB), i.e. acc == Access::Fetch.
template <unsigned kGeo, bool kFetch>
__attribute__((noinline)) uint8_t* Mmu::translate_sets(Gva va, Access acc, Fault* f) {
  L1& l1 = l1_[kFetch];
  const uint8_t need = static_cast<uint8_t>(1u << static_cast<unsigned>(acc));
  // 4 KiB, then 2 MiB, then 1 GiB, each with its shift known at compile time.
  if (uint8_t* p = l1_probe<0, kGeo, kFetch>(l1, va, need)) return p;
  if (uint8_t* p = l1_probe<1, kGeo, kFetch>(l1, va, need)) return p;
  if (uint8_t* p = l1_probe<2, kGeo, kFetch>(l1, va, need)) return p;
  counters_->v[C_tlb_misses]++;
  return cfg_.ept ? translate_miss_t<true, kGeo>(va, acc, f) : translate_miss_t<false, kGeo>(va, acc, f);
}

}  // namespace hv
