// The guest page walk, two-dimensional when EPT is on (docs/mmu-model.md): 4 guest levels with
// P/RW/US/PS/A/D/NX as in the Intel SDM (vol. 3 ch. 4.5), CR0.WP, EFER.NXE, CR4.SMEP; each
// guest table's GPA goes through the nested TLB or the EPT, and the data GPA through the
// EPT. The paging-structure caches let a walk start below the PML4. Every entry read is one
// reference (walk_refs_guest or walk_refs_ept); setting A/D is counted in ad_updates only.
#include <cstring>
#include <type_traits>

#include "ept.h"
#include "mmu.h"
#include "paging.h"

namespace hv {

namespace {
constexpr Counter kPwcHits[3] = {C_pwc_pde_hits, C_pwc_pdpte_hits, C_pwc_pml4e_hits};
constexpr Counter kStlbHits[3] = {C_stlb_4k_hits, C_stlb_2m_hits, C_stlb_1g_hits};
constexpr Counter kStlbMisses[3] = {C_stlb_4k_misses, C_stlb_2m_misses, C_stlb_1g_misses};

// A plain out-of-line function rather than a lambda capturing the walk's locals by
// reference, so the walk does not build a closure on every call for a path it rarely takes.
__attribute__((noinline)) bool page_fault(Fault* f, Access acc, uint32_t ec, Gva va) {
  *f = Fault{};
  f->kind = FaultKind::PageFault;
  f->access = acc;
  f->error_code = ec;
  f->gva = va.v;
  return false;
}

void ept_fault(Fault* f, Gpa gpa, Access acc, bool final_gpa, Gva va, uint8_t level, bool mis) {
  *f = Fault{};
  f->kind = FaultKind::EptViolation;
  f->access = acc;
  f->level = level;
  f->gva_valid = final_gpa;
  f->gva = va.v;
  f->gpa = gpa.v;
  f->misconfig = mis;
}
}  // namespace

template <bool kEpt>
__attribute__((always_inline)) inline bool Mmu::map_gpa(Gpa gpa, Access acc, bool final_gpa, Gva va, Fault* f, Mapped* m,
                  uint64_t* ept_refs) {
  if (kEpt) {
    uint8_t stop = 0;
    bool mis = false;
    if (ept_walk(gpa, m, &stop, &mis, ept_refs)) return true;
    ept_fault(f, gpa, acc, final_gpa, va, stop, mis);
    return false;
  }
  const uint64_t page = gpa.v & ~kPageMask;
  if (page >= cfg_.guest_size || !arena_->contains(Hpa(cfg_.guest_base + page), kPageSize)) {
    *f = Fault{};
    f->kind = FaultKind::Mmio;
    f->access = acc;
    f->gva_valid = final_gpa;
    f->gva = va.v;
    f->gpa = gpa.v;
    return false;
  }
  m->host = arena_->base() + cfg_.guest_base + page;
  m->size = 2;  // guest RAM is one contiguous range: never the limit on a page's size
  m->perm = kPermR | kPermW | kPermX;
  m->level = 0;
  return true;
}

namespace {
// Adds a walk's references to the counters once, on every way out of the walk.
struct RefTally {
  Counters* c;
  uint64_t guest = 0, ept = 0;
  ~RefTally() {
    c->v[C_walk_refs] += guest + ept;
    c->v[C_walk_refs_guest] += guest;
    c->v[C_walk_refs_ept] += ept;
  }
};
}  // namespace

// One copy per translation mode, so the no-EPT walk carries no nested-TLB or EPT code;
// inlined into translate_miss_t below.
// One paging-structure cache (I = 0 PDE, 1 PDPTE, 2 PML4E): on a hit, touch and count it.
template <unsigned kGeo, unsigned I>
__attribute__((always_inline)) inline TlbEntry* Mmu::pwc_probe(uint64_t v) {
  constexpr TlbStructure S = I == 0 ? TLB_pwc_pde : I == 1 ? TLB_pwc_pdpte : TLB_pwc_pml4e;
  const uint64_t key = v >> level_shift(static_cast<int>(I) + 2);
  TlbEntry* e = geo_find<kGeo, S>(pwc_[I], key, key);
  if (e) {
    geo_touch<kGeo, S>(pwc_[I], e);
    counters_->inc(kPwcHits[I]);
  }
  return e;
}

template <bool kEpt, unsigned kGeo>
__attribute__((always_inline)) inline bool Mmu::walk_t(Gva va, Access acc, Fault* f, Walked* out) {
  counters_->v[C_walks]++;
  RefTally refs{counters_};
  const bool nxe = (efer_ & EFER_NXE) != 0, wp = (cr0_ & CR0_WP) != 0;
  const bool smep = (cr4_ & CR4_SMEP) != 0;
  const uint64_t v = va.v & kVaMask;
  const uint32_t ec_acc = (acc == Access::Write ? PFEC_W : 0) |
                          (acc == Access::Fetch && (nxe || smep) ? PFEC_I : 0);

  uint64_t gpa;
  unsigned gsize;  // guest page-size class: 0 = 4K, 1 = 2M, 2 = 1G
  // R/W and U/S are ANDed over the levels, NX ORed: kept as raw entry bits (no branches).
  uint64_t all = PTE_RW | PTE_US, any = 0;
  bool dirty = true;
  // Reserved bits: NX without EFER.NXE anywhere; PS in a PML4E; 20:13 / 29:13 of large leaves.
  const uint64_t rsvd_nx = nxe ? 0 : PTE_NX;
  if (!(cr0_ & CR0_PG)) {
    gpa = va.v;  // paging off: GVA = GPA, limited only by the EPT (or guest RAM)
    gsize = 2;
    all = PTE_RW;  // no user pages without paging: SMEP does not apply
  } else {
    uint64_t table = cr3_ & kAddrMask;
    int level = 4;  // where the walk starts
    // Deepest paging-structure-cache hit first: PDE (next: PT), PDPTE (PD), PML4E (PDPT).
    TlbEntry* e;
    if ((e = pwc_probe<kGeo, 0>(v))) level = 1;
    else if ((e = pwc_probe<kGeo, 1>(v))) level = 2;
    else if ((e = pwc_probe<kGeo, 2>(v))) level = 3;
    if (e) {
      table = e->val;
      all = (e->perm & kPermW ? PTE_RW : 0) | (e->perm & kPermUser ? PTE_US : 0);
      any = e->perm & kPermX ? 0 : PTE_NX;
    }
    // One guest level L, a constant: the walk is straight-line code from the level the
    // PWCs left it at (the switch below). Returns 0 to go down, 1 at the leaf, -1 on a
    // fault (*f filled in).
    auto step = [&](auto lc) __attribute__((always_inline)) -> int {
      constexpr int L = decltype(lc)::value;
      constexpr unsigned shift = level_shift(L);
      const Gpa egpa(table + ((v >> shift) & (kTableEntries - 1)) * 8);
      // The table's own page: nested TLB, else a full EPT walk (then cached).
      Mapped tm;
      TlbEntry* ne = kEpt ? geo_find<kGeo, TLB_nested>(nested_, table >> kPageShift, table >> kPageShift) : nullptr;
      if (ne) {
        geo_touch<kGeo, TLB_nested>(nested_, ne);
        counters_->inc(C_nested_tlb_hits);
        tm = Mapped{arena_->base() + ne->val, 0, ne->perm, ne->level};
      } else {
        if (!map_gpa<kEpt>(egpa, Access::Read, false, va, f, &tm, &refs.ept)) return -1;
        if (kEpt) {
          if (TlbEntry* n = geo_insert<kGeo, TLB_nested>(nested_, table >> kPageShift, table >> kPageShift)) {  // probed above
            n->val = static_cast<uint64_t>(tm.host - arena_->base());
            n->perm = tm.perm;
            n->level = tm.level;
          }
        }
      }
      if (!(tm.perm & kPermR)) {
        ept_fault(f, egpa, Access::Read, false, va, tm.level, false);
        return -1;
      }
      uint8_t* p = tm.host + (egpa.v & kPageMask);
      ++refs.guest;
      uint64_t pte;
      std::memcpy(&pte, p, 8);
      if (!(pte & PTE_P)) { page_fault(f, acc, ec_acc, va); return -1; }
      const bool leaf = L == 1 || (L != 4 && (pte & PTE_PS));
      const uint64_t rsvd = rsvd_nx | (L == 4 ? PTE_PS : 0) |
                            (leaf ? (L == 2 ? PTE_RSVD_2M : L == 3 ? PTE_RSVD_1G : 0) : 0);
      if (pte & rsvd) { page_fault(f, acc, PFEC_P | PFEC_RSVD | ec_acc, va); return -1; }
      all &= pte;
      any |= pte;
      if (!(pte & PTE_A)) {
        // Setting A is a write to the table page: the EPT must allow it.
        if (!(tm.perm & kPermW)) {
          ept_fault(f, egpa, Access::Write, false, va, tm.level, false);
          return -1;
        }
        pte |= PTE_A;
        std::memcpy(p, &pte, 8);
        if (kEpt) ept_memo_forget();  // the store may have hit an EPT table
        counters_->inc(C_ad_updates);
        note_table_write(p);
      }
      if (leaf) {
        gsize = static_cast<unsigned>(L - 1);
        constexpr uint64_t size = 1ull << shift;
        // Permission checks (CPL 0): writes honour R/W only with CR0.WP; fetches honour
        // NX (with EFER.NXE) and SMEP (user pages).
        if (acc == Access::Write && !(all & PTE_RW) && wp) { page_fault(f, acc, PFEC_P | ec_acc, va); return -1; }
        if (acc == Access::Fetch && (((any & PTE_NX) && nxe) || (smep && (all & PTE_US)))) {
          page_fault(f, acc, PFEC_P | ec_acc, va);
          return -1;
        }
        if (acc == Access::Write && !(pte & PTE_D)) {
          if (!(tm.perm & kPermW)) {
            ept_fault(f, egpa, Access::Write, false, va, tm.level, false);
            return -1;
          }
          pte |= PTE_D;
          std::memcpy(p, &pte, 8);
          if (kEpt) ept_memo_forget();  // the store may have hit an EPT table
          counters_->inc(C_ad_updates);
          note_table_write(p);
        }
        dirty = (pte & PTE_D) != 0;
        gpa = (pte & kAddrMask & ~(size - 1)) | (v & (size - 1));
        return 1;
      }
      table = pte & kAddrMask;
      // Cache this non-leaf entry: PML4E → pwc_[2], PDPTE → pwc_[1], PDE → pwc_[0].
      const uint64_t key = v >> shift;
      // The walk started below the deepest PWC hit, so every PWC it inserts into here was
      // probed with this key above and missed: insert_absent skips the refresh scan.
      constexpr unsigned I = static_cast<unsigned>(L) - 2 < 3 ? static_cast<unsigned>(L) - 2 : 0;
      constexpr TlbStructure S = I == 0 ? TLB_pwc_pde : I == 1 ? TLB_pwc_pdpte : TLB_pwc_pml4e;
      if (TlbEntry* pe = geo_insert<kGeo, S>(pwc_[I], key, key)) {
        filled_ = true;
        pe->val = table;
        pe->perm = static_cast<uint8_t>((all & PTE_RW ? kPermW : 0) | (all & PTE_US ? kPermUser : 0) |
                                       ((any & PTE_NX) && nxe ? 0 : kPermX));
      }
      return 0;
    };
    int r;
    switch (level) {
      case 4: if ((r = step(std::integral_constant<int, 4>{}))) break; [[fallthrough]];
      case 3: if ((r = step(std::integral_constant<int, 3>{}))) break; [[fallthrough]];
      case 2: if ((r = step(std::integral_constant<int, 2>{}))) break; [[fallthrough]];
      default: r = step(std::integral_constant<int, 1>{});
    }
    if (r < 0) return false;
  }

  // The data page: one more EPT translation (reported with gva_valid = true).
  Mapped dm;
  if (!map_gpa<kEpt>(Gpa(gpa), acc, true, va, f, &dm, &refs.ept)) return false;
  const uint8_t need = static_cast<uint8_t>(1u << static_cast<unsigned>(acc));
  if (!(dm.perm & need)) {
    ept_fault(f, Gpa(gpa), acc, true, va, dm.level, false);
    return false;
  }
  const bool rw = all & PTE_RW, us = all & PTE_US, nx = nxe && (any & PTE_NX);
  unsigned size = gsize < dm.size ? gsize : dm.size;  // splinter to the smaller leaf
  if (!kEpt && size > 0) {
    // No-EPT: a large guest page must lie wholly inside guest RAM to be cached whole.
    const uint64_t bytes = 1ull << level_shift(static_cast<int>(size) + 1), base = gpa & ~(bytes - 1);
    if (base + bytes > cfg_.guest_size) size = 0;
  }
  const uint64_t bytes = 1ull << level_shift(static_cast<int>(size) + 1);
  out->host = dm.host - ((gpa & (bytes - 1)) & ~kPageMask);
  out->size = static_cast<uint8_t>(size);
  out->perm = static_cast<uint8_t>(
      (dm.perm & kPermR) | ((rw || !wp) && dirty ? (dm.perm & kPermW) : 0) |
      (!nx && !(smep && us) ? (dm.perm & kPermX) : 0));
  return true;
}

// The largest enabled array of this L1 whose page size does not exceed the translation's.
template <unsigned kGeo, bool kFetch>
__attribute__((always_inline)) inline void Mmu::fill_l1(L1& l1, Gva va, const Walked& w) {
  constexpr TlbStructure B = kFetch ? TLB_itlb_4k : TLB_dtlb_4k;
  const uint64_t v = va.v & kVaMask;
  int s = w.size;
  const bool on[3] = {geo_enabled<kGeo, B>(l1.arr[0]), geo_enabled<kGeo, TlbStructure(B + 1)>(l1.arr[1]),
                      geo_enabled<kGeo, TlbStructure(B + 2)>(l1.arr[2])};
  while (s >= 0 && !on[s]) --s;
  if (s < 0) {
    counters_->inc(l1.misses[w.size]);
    l1.forget();
    return;
  }
  counters_->inc(l1.misses[s]);
  const uint64_t key = v >> kShift[s];
  TlbEntry* e;  // translate_l1 probed it: insert_absent
  if (s == 0) e = geo_insert<kGeo, B>(l1.arr[0], key, key);
  else if (s == 1) e = geo_insert<kGeo, TlbStructure(B + 1)>(l1.arr[1], key, key);
  else e = geo_insert<kGeo, TlbStructure(B + 2)>(l1.arr[2], key, key);
  filled_ = true;
  const uint64_t off = v & ((1ull << kShift[w.size]) - 1) & ~((1ull << kShift[s]) - 1);
  e->val = reinterpret_cast<uint64_t>(w.host + off);
  e->perm = w.perm;
  e->size = static_cast<uint8_t>(s);
  if (s == 0) l1.note(key, e);
  // The new entry is the MRU way of its set: safe to memo (any eviction forgot the old memo).
  l1.memo_vpn = va.v >> kPageShift;  // unmasked: the fast path compares raw GVAs
  l1.memo_host = w.host + (v & ((1ull << kShift[w.size]) - 1) & ~kPageMask);
  l1.memo_perm = w.perm;
  l1.memo_counter = l1.hits[s];
}


// One STLB probe for page-size class s: a hit that allows the access fills *w; a hit that
// does not (e.g. a write to a clean page) drops the entry, as the L1 does.
template <unsigned kGeo, TlbStructure S>
__attribute__((always_inline)) inline bool Mmu::stlb_probe(TlbArray& a, uint64_t key, uint64_t index, unsigned s,
                                                           uint8_t need, Walked* w) {
  TlbEntry* e = geo_find<kGeo, S>(a, key, index);
  if (!e) return false;
  if (!(e->perm & need)) {
    a.kill(e);
    return false;
  }
  geo_touch<kGeo, S>(a, e);
  counters_->inc(kStlbHits[s]);
  *w = Walked{reinterpret_cast<uint8_t*>(e->val), e->perm, static_cast<uint8_t>(s)};
  return true;
}

// Kept out of line so the L1-hit path (translate_l1, mmu.cc) stays a small leaf function.
template <bool kEpt, unsigned kGeo>
__attribute__((noinline)) uint8_t* Mmu::translate_miss_t(Gva va, Access acc, Fault* f) {
  const uint64_t v = va.v & kVaMask;
  const uint8_t need = static_cast<uint8_t>(1u << static_cast<unsigned>(acc));
  // L2 STLB: 4 KiB and 2 MiB entries share one array (probed once per size), 1 GiB apart.
  // The 2 MiB probe is skipped while the STLB holds no 2 MiB entry (it could only miss).
  Walked w{nullptr, 0, 0};  // set by the hit or the walk (initialized for -Wmaybe-uninitialized)
  const bool hit = stlb_probe<kGeo, TLB_stlb>(stlb_, stlb_key(v, 0), v >> kShift[0], 0, need, &w) ||
                   (!Geo<kGeo, TLB_stlb>::off && stlb_.has_odd_key() && stlb_probe<kGeo, TLB_stlb>(stlb_, stlb_key(v, 1), v >> kShift[1], 1, need, &w)) ||
                   stlb_probe<kGeo, TLB_stlb_1g>(stlb_1g_, v >> kShift[2], v >> kShift[2], 2, need, &w);
  if (!hit) {
    if (!walk_t<kEpt, kGeo>(va, acc, f, &w)) {
      counters_->inc(C_walk_faults);
      return nullptr;
    }
    // Refill the STLB: 1 GiB into its own array, else as 2 MiB; 2 MiB / 4 KiB shared.
    int s = w.size;
    if (s == 2 && !geo_enabled<kGeo, TLB_stlb_1g>(stlb_1g_)) s = 1;
    TlbEntry* e = nullptr;
    if (s == 2) {
      e = geo_insert<kGeo, TLB_stlb_1g>(stlb_1g_, v >> kShift[2], v >> kShift[2]);  // probed above
    } else if (geo_enabled<kGeo, TLB_stlb>(stlb_)) {
      e = geo_insert<kGeo, TLB_stlb>(stlb_, stlb_key(v, s), v >> kShift[s]);  // probed above
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
  if (acc == Access::Fetch) fill_l1<kGeo, true>(l1_[1], va, w);
  else fill_l1<kGeo, false>(l1_[0], va, w);
  return w.host + (v & ((1ull << kShift[w.size]) - 1));
}

template uint8_t* Mmu::translate_miss_t<false, Mmu::kGeoRuntime>(Gva, Access, Fault*);
template uint8_t* Mmu::translate_miss_t<false, Mmu::kGeoDefault>(Gva, Access, Fault*);
template uint8_t* Mmu::translate_miss_t<false, Mmu::kGeoNone>(Gva, Access, Fault*);
template uint8_t* Mmu::translate_miss_t<true, Mmu::kGeoRuntime>(Gva, Access, Fault*);
template uint8_t* Mmu::translate_miss_t<true, Mmu::kGeoDefault>(Gva, Access, Fault*);
template uint8_t* Mmu::translate_miss_t<true, Mmu::kGeoNone>(Gva, Access, Fault*);

}  // namespace hv
