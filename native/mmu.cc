// MMU slow path: the guest page walk (one-dimensional, no-EPT mode).
#include "mmu.h"

#include <cstring>

namespace hv {

namespace {
constexpr uint64_t PTE_P = 1ull << 0, PTE_RW = 1ull << 1, PTE_A = 1ull << 5, PTE_D = 1ull << 6,
                   PTE_PS = 1ull << 7, PTE_NX = 1ull << 63;
constexpr uint64_t kAddrMask = 0x000FFFFFFFFFF000ull;
constexpr uint64_t CR0_WP = 1ull << 16;
constexpr uint64_t EFER_NXE = 1ull << 11;
constexpr uint32_t PFEC_P = 1, PFEC_W = 2, PFEC_I = 16;
}  // namespace

Mmu::Mmu(Arena* arena, Counters* counters) : arena_(arena), counters_(counters) {}

const char* Mmu::configure(const MmuConfig& cfg) {
  if (cfg.ept) return "EPT translation is not implemented in this build";
  if (!arena_->contains(Hpa(cfg.guest_base), cfg.guest_size) || cfg.guest_size == 0)
    return "guest memory range lies outside the host-physical arena";
  cfg_ = cfg;
  flush_guest();
  return nullptr;
}

void Mmu::set_control(uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer) {
  if (cr0 != cr0_ || cr4 != cr4_ || efer != efer_) flush_guest();
  cr0_ = cr0; cr3_ = cr3; cr4_ = cr4; efer_ = efer;
}

void Mmu::flush_guest() {
  counters_->inc(C_tlb_flushes);
  for (auto& e : tlb_) e = TlbEntry{};
}

void Mmu::invlpg(Gva va) {
  TlbEntry& e = tlb_[(va.v >> kPageShift) & (kTlbSize - 1)];
  if (e.vpn == (va.v >> kPageShift)) e = TlbEntry{};
}

void Mmu::invept() { flush_guest(); }

uint8_t* Mmu::gpa_ptr(Gpa gpa, uint64_t len) {
  if (gpa.v >= cfg_.guest_size || len > cfg_.guest_size - gpa.v) return nullptr;
  return arena_->ptr(Hpa(cfg_.guest_base + gpa.v), len);
}

uint8_t* Mmu::translate_slow(Gva va, Access acc, Fault* f) {
  counters_->inc(C_walks);
  uint64_t table = cr3_ & kAddrMask;
  bool writable = true, executable = true;
  uint64_t leaf_size = 0, leaf_base = 0;
  uint64_t* leaf_entry = nullptr;
  for (int level = 4; level >= 1; --level) {
    const unsigned shift = 12 + 9 * (level - 1);
    const Gpa egpa(table + ((va.v >> shift) & 511) * 8);
    uint8_t* p = gpa_ptr(egpa, 8);
    counters_->inc(C_walk_refs);
    counters_->inc(C_walk_refs_guest);
    if (!p) {
      *f = Fault{FaultKind::Mmio, acc, 0, false, 0, va.v, egpa.v};
      return nullptr;
    }
    uint64_t pte;
    std::memcpy(&pte, p, 8);
    if (!(pte & PTE_P)) {
      uint32_t ec = (acc == Access::Write ? PFEC_W : 0) | (acc == Access::Fetch && (efer_ & EFER_NXE) ? PFEC_I : 0);
      *f = Fault{FaultKind::PageFault, acc, 0, false, ec, va.v, 0};
      return nullptr;
    }
    writable &= (pte & PTE_RW) != 0;
    if (efer_ & EFER_NXE) executable &= (pte & PTE_NX) == 0;
    if (!(pte & PTE_A)) {
      pte |= PTE_A;
      std::memcpy(p, &pte, 8);
      counters_->inc(C_ad_updates);
    }
    if (level == 1 || ((level == 2 || level == 3) && (pte & PTE_PS))) {
      leaf_size = 1ull << shift;
      leaf_base = pte & kAddrMask & ~(leaf_size - 1);
      leaf_entry = reinterpret_cast<uint64_t*>(p);
      break;
    }
    table = pte & kAddrMask;
  }
  const bool wp = (cr0_ & CR0_WP) != 0;
  if ((acc == Access::Write && !writable && wp) || (acc == Access::Fetch && !executable)) {
    uint32_t ec = PFEC_P | (acc == Access::Write ? PFEC_W : 0) | (acc == Access::Fetch ? PFEC_I : 0);
    *f = Fault{FaultKind::PageFault, acc, 0, false, ec, va.v, 0};
    return nullptr;
  }
  uint64_t pte;
  std::memcpy(&pte, leaf_entry, 8);
  if (acc == Access::Write && !(pte & PTE_D)) {
    pte |= PTE_D;
    std::memcpy(leaf_entry, &pte, 8);
    counters_->inc(C_ad_updates);
  }
  const Gpa gpa(leaf_base + (va.v & (leaf_size - 1)));
  uint8_t* host = gpa_ptr(Gpa(gpa.v & ~kPageMask), kPageSize);
  if (!host) {
    *f = Fault{FaultKind::Mmio, acc, 0, true, 0, va.v, gpa.v};
    return nullptr;
  }
  const uint64_t vpn = va.v >> kPageShift;
  TlbEntry& e = tlb_[vpn & (kTlbSize - 1)];
  e.vpn = vpn;
  e.host = host;
  e.writable = (writable || !wp) && (pte & PTE_D);
  e.executable = executable;
  return host + (va.v & kPageMask);
}

}  // namespace hv
