// The MMU: every guest-virtual access of the vCPU goes through Mmu::translate, the one
// lookup where the modeled TLB hierarchy sits (MMU-MODEL.md). The CPU never walks tables
// itself and never caches translations outside this class.
//
// Contract with the CPU (native/cpu*):
//  - translate() is called for every access that stays within one 4 KiB page (the CPU
//    splits page-crossing accesses). On success it returns a host pointer to the byte,
//    valid for the rest of that 4 KiB page; on failure nullptr with *f filled in.
//  - set_control() is called at run() entry and on every MOV to CR0/CR3/CR4 (CR3 writes
//    also call flush_guest()); invlpg() on INVLPG.
//  - Fault kinds: PageFault → the CPU delivers #PF(f->error_code) with CR2 = f->gva;
//    EptViolation / Mmio → the CPU stops with that VM exit (instruction not retired, RIP
//    at the faulting instruction) so TS can fix the mapping and resume.
#pragma once
#include "arena.h"
#include "counters.h"
#include "types.h"

namespace hv {

enum class FaultKind : uint8_t { None = 0, PageFault, EptViolation, Mmio };

struct Fault {
  FaultKind kind = FaultKind::None;
  Access access = Access::Read;
  uint8_t level = 0;       // EPT violation: EPT level (4..1) where the walk stopped
  bool gva_valid = false;  // EPT violation on the final GPA (true) or on a guest-table read
  uint32_t error_code = 0; // #PF error code (SDM: P=1 W=2 U=4 RSVD=8 I=16)
  uint64_t gva = 0;
  uint64_t gpa = 0;
};

struct MmuConfig {
  bool ept = false;        // two-dimensional (guest x EPT) translation
  uint64_t eptp = 0;       // EPT mode: HPA of the EPT PML4
  uint64_t guest_base = 0; // no-EPT mode: HPA of GPA 0
  uint64_t guest_size = 0; // no-EPT mode: bytes of guest-physical memory
};

class Mmu {
 public:
  Mmu(Arena* arena, Counters* counters);

  // Returns nullptr on success, else a message naming the problem.
  const char* configure(const MmuConfig& cfg);
  const MmuConfig& config() const { return cfg_; }

  void set_control(uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer);
  void flush_guest();   // MOV to CR3 (no PCID): drop every guest-derived translation
  void invlpg(Gva va);  // one page's translations and the paging-structure caches
  void invept();        // any EPT change: drop everything that depended on the EPT

  uint8_t* translate(Gva va, Access acc, Fault* f) {
    counters_->inc(C_tlb_lookups);
    const uint64_t vpn = va.v >> kPageShift;
    TlbEntry& e = tlb_[vpn & (kTlbSize - 1)];
    if (e.vpn == vpn && (acc != Access::Write || e.writable) && (acc != Access::Fetch || e.executable)) {
      counters_->inc(C_tlb_hits);
      return e.host + (va.v & kPageMask);
    }
    counters_->inc(C_tlb_misses);
    return translate_slow(va, acc, f);
  }

 private:
  // Minimal direct-mapped TLB of 4 KiB translations (the full hierarchy replaces it).
  struct TlbEntry {
    uint64_t vpn = ~0ull;
    uint8_t* host = nullptr;
    bool writable = false;    // write allowed and the leaf's D bit already set
    bool executable = false;
  };
  static constexpr uint64_t kTlbSize = 64;

  uint8_t* translate_slow(Gva va, Access acc, Fault* f);
  // Guest-physical → host pointer for `len` bytes (no-EPT mode); nullptr when outside memory.
  uint8_t* gpa_ptr(Gpa gpa, uint64_t len);

  Arena* arena_;
  Counters* counters_;
  MmuConfig cfg_;
  uint64_t cr0_ = 0, cr3_ = 0, cr4_ = 0, efer_ = 0;
  TlbEntry tlb_[kTlbSize];
};

}  // namespace hv
