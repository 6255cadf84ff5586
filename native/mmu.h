// The MMU: every guest-virtual access of the vCPU goes through Mmu::translate, the one
// lookup where the modeled TLB hierarchy sits (docs/mmu-model.md). The CPU never walks tables
// itself and never caches translations outside this class, except the one fetch
// translation described under "generation" below.
//
// Contract with the CPU (native/cpu*):
//  - translate() is called for every access that stays within one 4 KiB page (the CPU
//    splits page-crossing accesses). On success it returns a host pointer to the byte,
//    valid for the rest of that 4 KiB page; on failure nullptr with *f filled in. The CPU
//    checks canonical form (#GP) before calling; the MMU uses bits 47:0. CPL is always 0.
//  - set_control() is called at run() entry and on every MOV to CR0/CR3/CR4 (CR3 writes
//    also call flush_guest()); invlpg() on INVLPG. The MMU counts invept and tlb_flushes
//    itself; the CPU counts the instructions (cr3_writes, invlpg).
//  - Fault kinds: PageFault → the CPU delivers #PF(f->error_code) with CR2 = f->gva;
//    EptViolation / Mmio → the CPU stops with that VM exit (instruction not retired, RIP
//    at the faulting instruction) so TS can fix the mapping and resume.
//  - generation(): a counter bumped by everything that can invalidate a translation the
//    CPU obtained earlier (flush_guest, invlpg, invept, configure, a set_control that
//    changes paging-relevant bits). The CPU may keep the host pointer of its current code
//    page across instructions as long as generation() still equals the value it read when
//    it called translate(Fetch); when it differs, it calls translate(Fetch) again.
//
// Hierarchy (structures and defaults: HV_TLB_STRUCTURES below): L1 ITLB and L1 DTLB, each
// one array per page size; a shared L2 STLB (4K+2M array and a 1G array); paging-structure
// caches (PML4E, PDPTE, PDE) that skip upper guest levels; a nested TLB (GPA→HPA of guest page-table
// pages). TLB entries are combined GVA→HPA with size min(guest leaf, EPT leaf); an entry is
// kept in the largest enabled array of a level whose size does not exceed that ("splinter").
//
// Counters: tlb_lookups/hits/misses are L1 totals (I+D). {itlb,dtlb,stlb}_<size>_hits count
// hits in that size's array. A miss is attributed to the size of the entry that the level
// is refilled with (so an L1 miss served by a 2M STLB entry is a dtlb_2m_miss); a miss that
// ends in a fault is counted only in tlb_misses and walk_faults. walk_refs = walk_refs_guest
// (guest-table reads) + walk_refs_ept (EPT-entry reads); A/D updates are never references.
// A cached entry whose permissions do not allow an access (e.g. a write to a page whose D
// bit is clear) is dropped and the access walks again, as hardware re-walks to set D.
//
// EPT details: guest-table reads need EPT R and are reported as reads (gva_valid = false,
// gpa = the entry's GPA); setting A/D in a guest table is a write to it (needs EPT W). The
// nested TLB holds the table pages' GPA→HPA and survives MOV CR3 and INVLPG, not INVEPT.
// Fault::misconfig marks malformed EPT entries; the vCPU reports those as EXIT_EPT_MISCONFIG
// (native/exit.h).
#pragma once
#include <string>

#include "arena.h"
#include "counters.h"
#include "exit.h"
#include "paging.h"
#include "tlb.h"
#include "types.h"

namespace hv {

enum class FaultKind : uint8_t { None = 0, PageFault, EptViolation, Mmio };

struct Fault {
  FaultKind kind = FaultKind::None;
  Access access = Access::Read;
  uint8_t level = 0;       // EPT violation: EPT level (4..1) where the walk stopped
  bool gva_valid = false;  // EPT violation on the final GPA (true) or on a guest-table access
  uint32_t error_code = 0; // #PF error code (SDM: P=1 W=2 U=4 RSVD=8 I=16)
  uint64_t gva = 0;
  uint64_t gpa = 0;
  // EPT violation caused by a malformed EPT entry rather than a missing or insufficient
  // one: an address outside the arena, W without R, a reserved memory type or PS at the
  // PML4 level (the SDM's "EPT misconfiguration"). Kind stays EptViolation so the MMU
  // has one failure path; the vCPU turns it into EXIT_EPT_MISCONFIG.
  bool misconfig = false;
};

// Every cache of the hierarchy, in configuration order: the name TS uses (a key of
// NativeMmuConfig.tlb; the addon exports the list as `tlbStructures`), the TlbGeometry
// member, and the default geometry (see TlbGeom: entries 0 disables, ways 0 = fully
// associative). The one list of structure names, native and TS.
#define HV_TLB_STRUCTURES(X)                                                     \
  X(itlb4k, itlb_4k, 64, 8)     /* L1 ITLB, one array per page size */          \
  X(itlb2m, itlb_2m, 8, 0)                                                       \
  X(itlb1g, itlb_1g, 0, 0)                                                       \
  X(dtlb4k, dtlb_4k, 64, 4)     /* L1 DTLB, one array per page size */          \
  X(dtlb2m, dtlb_2m, 32, 4)                                                      \
  X(dtlb1g, dtlb_1g, 4, 0)                                                       \
  X(stlb, stlb, 1536, 12)       /* L2 STLB: shared 4 KiB + 2 MiB entries */     \
  X(stlb1g, stlb_1g, 16, 4)     /* L2 STLB: 1 GiB entries */                    \
  X(pwcPml4e, pwc_pml4e, 4, 0)  /* paging-structure caches */                   \
  X(pwcPdpte, pwc_pdpte, 4, 0)                                                   \
  X(pwcPde, pwc_pde, 32, 0)                                                      \
  X(nested, nested, 16, 0)      /* nested TLB: GPA→HPA of guest table pages */

enum TlbStructure : unsigned {
#define HV_X(js, member, entries, ways) TLB_##member,
  HV_TLB_STRUCTURES(HV_X)
#undef HV_X
  TLB_COUNT
};

inline const char* const kTlbStructureNames[] = {
#define HV_X(js, member, entries, ways) #js,
    HV_TLB_STRUCTURES(HV_X)
#undef HV_X
};

// The default geometry as constants: TlbGeometry{} structure by structure.
inline constexpr TlbGeom kDefaultTlb[TLB_COUNT] = {
#define HV_X(js, member, entries, ways) TlbGeom{entries, ways},
    HV_TLB_STRUCTURES(HV_X)
#undef HV_X
};

struct TlbGeometry {
#define HV_X(js, member, entries, ways) TlbGeom member{entries, ways};
  HV_TLB_STRUCTURES(HV_X)
#undef HV_X
  TlbGeom& operator[](TlbStructure s) { return this->*field(s); }
  const TlbGeom& operator[](TlbStructure s) const { return this->*field(s); }
  // Every structure disabled: each access walks (the "caches disabled" configuration).
  static TlbGeometry none() {
    TlbGeometry g;
    for (unsigned s = 0; s < TLB_COUNT; ++s) g[TlbStructure(s)] = TlbGeom{0, 0};
    return g;
  }

 private:
  static TlbGeom TlbGeometry::*field(TlbStructure s) {
    static constexpr TlbGeom TlbGeometry::*kMembers[TLB_COUNT] = {
#define HV_X(js, member, entries, ways) &TlbGeometry::member,
        HV_TLB_STRUCTURES(HV_X)
#undef HV_X
    };
    return kMembers[s];
  }
};

struct MmuConfig {
  bool ept = false;        // two-dimensional (guest x EPT) translation
  uint64_t eptp = 0;       // EPT mode: HPA of the EPT PML4 (bits 11:0 ignored, as EPTP flags)
  uint64_t guest_base = 0; // no-EPT mode: HPA of GPA 0
  uint64_t guest_size = 0; // no-EPT mode: bytes of guest-physical memory
  TlbGeometry tlb;
};

class Mmu {
 public:
  Mmu(Arena* arena, Counters* counters);

  // Returns nullptr on success, else a message naming the problem (nothing changes then).
  const char* configure(const MmuConfig& cfg);

  void set_control(uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer);
  void flush_guest();   // MOV to CR3 (no PCID): drop every guest-derived translation
  void invlpg(Gva va);  // one page's translations and the paging-structure caches
  void invept();        // any EPT change: drop everything that depended on the EPT
  uint64_t generation() const { return gen_; }
  // Self-modifying-code tracking of the vCPU (Cpu::code_frames_, Cpu::code_epoch_).
  // An A/D update the walker writes into a frame that holds decoded code advances the
  // epoch (so cached blocks re-check their bytes); one into any other frame cannot change
  // decoded code and leaves it alone. frames == nullptr: every A/D update advances it.
  void set_code_tracking(const uint8_t* frames, uint64_t* epoch) { code_frames_ = frames; code_epoch_ = epoch; }

  uint8_t* translate(Gva va, Access acc, Fault* f) {
    // Fast path: the last L1 entry hit by this kind of access. It is then the MRU way of
    // its set, so skipping the LRU touch leaves replacement exactly as a full lookup would.
    L1& l1 = l1_[acc == Access::Fetch];
    const uint64_t vpn = va.v >> kPageShift;
    if (vpn == l1.memo_vpn && ((l1.memo_perm >> static_cast<unsigned>(acc)) & 1)) {
      counters_->v[C_tlb_lookups]++;
      counters_->v[C_tlb_hits]++;
      counters_->v[l1.memo_counter]++;
      return l1.memo_host + (va.v & kPageMask);
    }
    return translate_l1(va, acc, f);
  }

 private:
  // One L1 TLB (instruction or data): one array per page size plus the fast-path memo.
  struct L1 {
    TlbArray arr[3];
    Counter hits[3], misses[3];
    uint64_t memo_vpn = ~0ull;   // 4 KiB page number of the last hit
    uint8_t* memo_host = nullptr;
    uint8_t memo_perm = 0;
    Counter memo_counter = C_tlb_hits;
    void forget() { memo_vpn = ~0ull; }
    // Where the 4 KiB array keeps a page's entry, direct-mapped by page number (the softmmu
    // idea: one lookup finds the host pointer). A pure accelerator: a line is used only
    // while its entry still holds the same key (eviction, kill and flush change the key),
    // and the 4 KiB array is the first one a lookup probes, so a valid line's entry is the
    // one the full lookup would hit; the hit then touches it and counts exactly as that
    // lookup. Only 4 KiB entries are cached: a larger entry could be shadowed by a smaller
    // one inserted later for another page. Cleared when the arrays are reconfigured.
    static constexpr unsigned kLines = 256;
    struct Line {
      uint64_t key = ~0ull;  // 4 KiB page number (bits 47:12)
      TlbEntry* e = nullptr;
    };
    Line lines[kLines];
    void note(uint64_t key, TlbEntry* e) { lines[key & (kLines - 1)] = Line{key, e}; }
  };
  // Result of a successful walk: a combined translation of 2^shift bytes.
  struct Walked {
    uint8_t* host;  // host pointer of the first byte of the combined page
    uint8_t perm;
    uint8_t size;   // 0 = 4K, 1 = 2M, 2 = 1G
  };

  // Size shift of each page-size class (0 = 4K, 1 = 2M, 2 = 1G).
  static constexpr unsigned kShift[3] = {kPageShift, kHugeShift, kGigShift};
  // STLB keys tag the page size so 4 KiB and 2 MiB entries can share one array.
  static uint64_t stlb_key(uint64_t va, unsigned size) { return ((va >> kShift[size]) << 1) | size; }
  // The lookup below has one copy per kGeo: kGeoRuntime reads every structure's geometry
  // at run time (any --tlb), kGeoDefault knows the default TlbGeometry{} and kGeoNone
  // TlbGeometry::none() (every structure off) as constants. geo_ chooses, once per
  // configure(). Geo gives structure S's ways and sets as TlbArray's template arguments
  // (0 = read at run time) and whether it is known to be off.
  enum : unsigned { kGeoRuntime = 0, kGeoDefault = 1, kGeoNone = 2 };
  template <unsigned kGeo, TlbStructure S>
  struct Geo {
    static constexpr bool off = kGeo == kGeoNone || (kGeo == kGeoDefault && kDefaultTlb[S].entries == 0);
    static constexpr uint32_t ways = kGeo != kGeoDefault || off ? 0
                                     : kDefaultTlb[S].ways ? kDefaultTlb[S].ways : kDefaultTlb[S].entries;
    static constexpr uint32_t sets = ways ? kDefaultTlb[S].entries / ways : 0;
    static constexpr bool odd = S == TLB_stlb;  // counts odd keys (TlbArray::has_odd_key)
  };
  // TlbArray's find, touch, insert_absent and enabled on structure S's array, with Geo's
  // constants (a structure known to be off finds nothing and takes nothing).
  template <unsigned kGeo, TlbStructure S>
  static TlbEntry* geo_find(TlbArray& a, uint64_t key, uint64_t index) {
    if (Geo<kGeo, S>::off) return nullptr;
    return a.find<Geo<kGeo, S>::ways, Geo<kGeo, S>::sets>(key, index);
  }
  template <unsigned kGeo, TlbStructure S>
  static void geo_touch(TlbArray& a, TlbEntry* e) { a.touch<Geo<kGeo, S>::ways>(e); }
  template <unsigned kGeo, TlbStructure S>
  static TlbEntry* geo_insert(TlbArray& a, uint64_t key, uint64_t index) {
    if (Geo<kGeo, S>::off) return nullptr;
    return a.insert_absent<Geo<kGeo, S>::ways, Geo<kGeo, S>::sets, Geo<kGeo, S>::odd>(key, index);
  }
  template <unsigned kGeo, TlbStructure S>
  static bool geo_enabled(const TlbArray& a) {
    return Geo<kGeo, S>::off ? false : kGeo == kGeoDefault ? true : a.enabled();
  }
  uint8_t* translate_l1(Gva va, Access acc, Fault* f);    // full L1 lookup: the 4 KiB line,
  template <unsigned kGeo, bool kFetch>
  uint8_t* translate_sets(Gva va, Access acc, Fault* f);  // then each array's set
  template <unsigned S, unsigned kGeo, bool kFetch> uint8_t* l1_probe(L1& l1, Gva va, uint8_t need);  // one array (mmu.cc)
  // L1 missed: the STLB, then the walk: one copy per translation mode and geometry with
  // the walk inlined, so a miss costs one call frame (native/walk.cc).
  template <bool kEpt, unsigned kGeo> uint8_t* translate_miss_t(Gva va, Access acc, Fault* f);
  template <unsigned kGeo, TlbStructure S>
  bool stlb_probe(TlbArray& a, uint64_t key, uint64_t index, unsigned s, uint8_t need, Walked* w);
  template <unsigned kGeo, bool kFetch> void fill_l1(L1& l1, Gva va, const Walked& w);
  template <unsigned kGeo, unsigned I> TlbEntry* pwc_probe(uint64_t v);  // pwc_[I]: find, touch, count
  const char* configure_arrays(const TlbGeometry& g);
  TlbArray* array_of(TlbStructure s);  // the array that structure's geometry configures
  template <bool kEpt, unsigned kGeo> bool walk_t(Gva va, Access acc, Fault* f, Walked* out);  // native/walk.cc
  // Where a guest-physical page lives: host pointer of its 4 KiB page, the size class and
  // permissions (kPerm*) of the mapping, and the EPT level of its leaf (1..3; 0 no-EPT).
  struct Mapped {
    uint8_t* host;
    uint8_t size;
    uint8_t perm;
    uint8_t level;
  };
  // EPT paging-structure memo: the non-leaf EPT entries earlier walks read, so an EPT walk
  // in a known 2 MiB (PDE) or 1 GiB (PDPTE) GPA region starts below them. Direct-mapped,
  // tagged with ept_epoch_: pde[] by GPA >> 21, pdpte[] by GPA >> 30; table = the next
  // level's table HPA with R/W/X (ANDed down to that entry) in its low 3 bits. Host-side
  // only: the skipped entries still count as references, and they are the values memory
  // holds because everything that may change a cached EPT entry bumps the epoch: invept()
  // (the hypervisor's rule for any EPT change that can leave something stale, the nested
  // TLB's assumption too), configure(), and an A/D store of the walker (it may hit an EPT
  // table). Filling an empty EPT entry needs none: no walk went through it. The rule is
  // the hypervisor's, whatever the TLB geometry, so the memo serves every EPT
  // configuration, TlbGeometry::none() included.
  struct EptMemoEntry {
    uint64_t tag = 0;    // region + (epoch << 28); 0 never matches (the epoch is >= 1)
    uint64_t table = 0;  // next table's HPA | R/W/X
  };
  static constexpr unsigned kEptMemoPde = 1024, kEptMemoPdpte = 64;
  void ept_memo_forget() {
    // The tag keeps 36 bits of epoch: before they wrap, empty the memo and start again.
    if (__builtin_expect(++ept_epoch_ == (1ull << 36), 0)) ept_memo_clear();
  }
  void ept_memo_clear();  // mmu.cc
  // Map a GPA in either mode, filling *f for an absent/malformed EPT entry or (no-EPT) a
  // GPA outside guest memory. Permissions are the caller's to check. native/walk.cc
  // *ept_refs accumulates the EPT entries read (the caller adds them to the counters once
  // per walk: a memory increment per reference would serialize the walk on the counter).
  template <bool kEpt>
  bool map_gpa(Gpa gpa, Access acc, bool final_gpa, Gva va, Fault* f, Mapped* m,
               uint64_t* ept_refs);
  // The EPT walk proper, adding one to *refs per entry read. On failure returns false
  // with *stop = the level where it stopped and *misconfig set for a malformed entry.
  // It starts below the deepest EPT memo hit and records the non-leaf entries it reads.
  bool ept_walk(Gpa gpa, Mapped* m, uint8_t* stop, bool* misconfig, uint64_t* refs);  // ept.h
  void flush_tlbs();
  void bump() { gen_++; l1_[0].forget(); l1_[1].forget(); }
  void note_table_write(const uint8_t* p) {
    if (!code_epoch_) return;  // no vCPU attached (native tests)
    const uint64_t fr = static_cast<uint64_t>(p - arena_->base()) >> kPageShift;
    if (code_frames_ && !((code_frames_[fr >> 3] >> (fr & 7)) & 1)) return;
    ++*code_epoch_;
  }

  Arena* arena_;
  Counters* counters_;
  MmuConfig cfg_;
  uint64_t cr0_ = 0, cr3_ = 0, cr4_ = 0, efer_ = 0;
  uint64_t gen_ = 1;
  bool filled_ = true;      // anything inserted into the L1s, STLB or PWCs since the last flush
  unsigned geo_ = kGeoDefault;  // which copy of the lookup serves this geometry (Geo)
  L1 l1_[2];                // [0] = DTLB, [1] = ITLB
  TlbArray stlb_, stlb_1g_;
  TlbArray pwc_[3];         // [0] = PDE (key va>>21), [1] = PDPTE (va>>30), [2] = PML4E (va>>39)
  TlbArray nested_;
  std::string err_;         // storage for the message configure() returns
  const uint8_t* code_frames_ = nullptr;  // set_code_tracking()
  uint64_t* code_epoch_ = nullptr;
  uint64_t ept_epoch_ = 1;  // EptMemoEntry
  EptMemoEntry ept_memo_pde_[kEptMemoPde];
  EptMemoEntry ept_memo_pdpte_[kEptMemoPdpte];
};

}  // namespace hv
