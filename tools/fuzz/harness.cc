// The vCPU fuzz harness (see harness.h for the input layout). One fresh machine per input,
// so every finding reproduces from its bytes alone.
//
// Arena (8 MiB): EPT tables at HPA [1 MiB, +64 KiB); guest RAM (4 MiB) at HPA 2 MiB
// (layout A) or at the arena's last 4 MiB (layout B, so guest accesses run into the arena
// end). Every other byte of the arena is PROT_NONE during run(), the EPT tables are
// read-only (nothing in the core may write them), and the page after the arena end is
// PROT_NONE too (it lies in Arena::create's 2 MiB over-reservation): any stray native
// access faults at the instruction that made it. Guest page tables can only name guest RAM
// (no-EPT) or go through the harness's EPT, so a legitimate access never touches a guard;
// inputs that write EPT entries or the EPTP keep only the after-the-end guard (protect()).
//
// Guest physical layout (identity-mapped, the boot state of src/guest/boot.ts): GDT 0x1000, IDT 0x2000
// (32 interrupt gates), handlers 0x3000 (pop the error code, skip one byte, iretq), page
// tables 0x10000.., stack top 0x80000, code at 0x100000, 0x3FE000 (end of RAM) or 0x1FF000
// (across the 2 MiB boundary).
#include "harness.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "arena.h"
#include "cpu.h"
#include "paging.h"

namespace hvfuzz {
namespace {

using namespace hv;

constexpr uint64_t kArena = 8ull << 20, kRam = 4ull << 20;
constexpr uint64_t kEpt = 1ull << 20, kEptLen = 64ull << 10;  // 16 tables
constexpr uint64_t kGdt = 0x1000, kIdt = 0x2000, kHandlers = 0x3000, kPml4 = 0x10000;
constexpr uint64_t kStackTop = 0x80000;
constexpr uint64_t kCodeAt[4] = {0x100000, 0x3FE000, 0x1FF000, 0x100000};
constexpr uint64_t kCodeMax = 8192;
constexpr uint64_t kMaxRuns = 96, kMaxFixups = 16;

[[noreturn]] void fail(const char* what, uint64_t a = 0, uint64_t b = 0) {
  std::fprintf(stderr, "FUZZ INVARIANT: %s (0x%llx, 0x%llx)\n", what,
               static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  std::fflush(stderr);
  std::abort();
}

// Reads the input front to back; past the end every byte is zero.
struct Reader {
  const uint8_t* p;
  size_t n, pos = 0;
  uint8_t u8() { return pos < n ? p[pos++] : 0; }
  uint64_t le(unsigned k) {
    uint64_t v = 0;
    for (unsigned i = 0; i < k; i++) v |= static_cast<uint64_t>(u8()) << (8 * i);
    return v;
  }
};

uint64_t splitmix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Header {
  bool ept, tlb_none, layout_b, idt, ept_2m, sparse, diff, geom;
  unsigned gpage;  // 0 = 4K, 1 = 2M, 2 = 1G guest leaves
  unsigned place;  // code placement (kCodeAt)
  uint64_t rip_off, total, per_run, action_rate, seed;
  uint8_t rcx;
};

Header parse_header(Reader& in) {
  Header h{};
  const uint8_t m = in.u8(), r = in.u8(), p = in.u8();
  h.ept = m & 1;
  h.gpage = (m >> 1) & 3;
  if (h.gpage == 3) h.gpage = 0;
  h.tlb_none = m & 8;
  h.layout_b = m & 16;
  h.idt = m & 32;
  h.ept_2m = m & 64;
  h.sparse = m & 128;
  h.place = p & 3;
  h.diff = p & 4;
  h.geom = p & 8;
  // RIP: near the start of the code, or in the last 16 bytes of its first or second page.
  h.rip_off = r < 0x80 ? r : ((r & 0x40) ? 8192 : 4096) - 1 - (r & 0x0F);
  h.rcx = in.u8();
  h.total = 1 + in.le(2) % 4096;
  const uint8_t pr = in.u8();
  h.per_run = 1 + (pr & 63) * ((pr & 64) ? 16 : 1);
  h.action_rate = in.u8();
  h.seed = in.le(8);
  return h;
}

class Machine {
 public:
  Machine(const Header& h, bool ept) : h_(h), ept_(ept) {
    const char* err = nullptr;
    arena_ = Arena::create(kArena, &err);
    if (!arena_) fail("Arena::create failed");
    // Small pages: every input touches a few pages, not a 2 MiB THP to zero.
    madvise(arena_->base(), kArena, MADV_NOHUGEPAGE);
    gbase_ = h.layout_b ? kArena - kRam : 2ull << 20;
    cpu_ = new Cpu(arena_);
    build_guest();
    if (ept_) build_ept();
    prng_ = h.seed;
  }
  ~Machine() {
    delete cpu_;
    protect(false);
    delete arena_;
  }
  uint8_t* ram(uint64_t gpa) { return arena_->base() + gbase_ + gpa; }
  uint64_t* q(uint64_t gpa) { return reinterpret_cast<uint64_t*>(ram(gpa & ~7ull)); }
  uint64_t* eptq(unsigned table, unsigned idx) {
    return reinterpret_cast<uint64_t*>(arena_->base() + kEpt + table * 4096ull + idx * 8ull);
  }

  void apply_patch(uint8_t kind, uint16_t idx, uint64_t v);
  void place_code(const uint8_t* code, size_t n) {
    std::memcpy(ram(kCodeAt[h_.place]), code, n < kCodeMax ? n : kCodeMax);
  }
  bool configure(bool new_geometry = false);
  uint64_t run_all(Stats* st, uint64_t* trace_hash, bool want_hash);
  uint64_t state_hash();

  bool ept_patched = false, rflags_patched = false, rip_garbage = false;

 private:
  void build_guest();
  void build_ept();
  void ept_map_page(uint64_t gpa);  // the canonical EPT path to gpa's 4 KiB page (RWX, WB)
  void protect(bool on);
  uint64_t steer(uint64_t v) const;
  void check_run(ExitReason why, uint64_t budget, const uint64_t* before);
  void vmm_action();

  Header h_;
  bool ept_;
  Arena* arena_ = nullptr;
  Cpu* cpu_ = nullptr;
  uint64_t gbase_ = 0, eptp_ = kEpt, prng_ = 0;
  uint64_t cr3_override_ = 0;
  bool have_cr3_override_ = false;
};

void Machine::build_guest() {
  uint64_t* gdt = q(kGdt);
  gdt[1] = 0x00209A0000000000ull;
  gdt[2] = 0x0000920000000000ull;
  if (h_.idt) {
    static const uint8_t kErrVecs[] = {8, 10, 11, 12, 13, 14, 17};
    for (unsigned v = 0; v < 32; v++) {
      const uint64_t off = kHandlers + v * 16;
      q(kIdt + v * 16)[0] = (off & 0xFFFF) | (0x08ull << 16) | (0x8Eull << 40) | ((off >> 16) << 48);
      q(kIdt + v * 16)[1] = off >> 32;
      uint8_t* hp = ram(off);
      if (std::memchr(kErrVecs, static_cast<int>(v), sizeof kErrVecs)) {
        static const uint8_t pop[] = {0x48, 0x83, 0xC4, 0x08};  // add rsp, 8
        std::memcpy(hp, pop, 4);
        hp += 4;
      }
      static const uint8_t body[] = {0x48, 0x83, 0x04, 0x24, 0x01, 0x48, 0xCF};  // add qword [rsp],1; iretq
      std::memcpy(hp, body, sizeof body);
    }
  }
  // Boot page tables: PML4 0x10000, PDPT 0x11000, PD 0x12000, PTs 0x13000 and 0x14000.
  constexpr uint64_t kRw = PTE_P | PTE_RW;
  q(kPml4)[0] = (kPml4 + 0x1000) | kRw;
  if (h_.gpage == 2) {
    q(kPml4 + 0x1000)[0] = PTE_PS | kRw;
  } else {
    q(kPml4 + 0x1000)[0] = (kPml4 + 0x2000) | kRw;
    for (uint64_t c = 0; c < 2; c++) {
      if (h_.gpage == 1) {
        q(kPml4 + 0x2000)[c] = (c << kHugeShift) | PTE_PS | kRw;
        continue;
      }
      q(kPml4 + 0x2000)[c] = (kPml4 + 0x3000 + c * 0x1000) | kRw;
      for (uint64_t e = 0; e < kTableEntries; e++)
        q(kPml4 + 0x3000 + c * 0x1000)[e] = ((c << kHugeShift) | (e << kPageShift)) | kRw;
    }
  }
  uint64_t* r = cpu_->regs();
  r[R_CR0] = 0x80010031;  // PE|ET|NE|WP|PG
  r[R_CR4] = 0x20;
  r[R_EFER] = 0xD00;
  r[R_CR3] = kPml4;
  r[R_CS] = 0x08;
  r[R_DS] = r[R_ES] = r[R_SS] = r[R_FS] = r[R_GS] = 0x10;
  r[R_RFLAGS] = 2;
  r[R_GDTR_BASE] = kGdt;
  r[R_GDTR_LIMIT] = 23;
  r[R_IDTR_BASE] = h_.idt ? kIdt : 0;
  r[R_IDTR_LIMIT] = h_.idt ? 32 * 16 - 1 : 0;
  r[R_RSP] = kStackTop;
  r[R_RIP] = kCodeAt[h_.place] + h_.rip_off;
  // Pointer registers aimed at interesting places: another 2 MiB page, the end of RAM, a
  // 2 MiB boundary, the code itself (self-modifying code), the page tables and the IDT.
  r[R_RBX] = 0x200000; r[R_RSI] = 0xA0000; r[R_RDI] = 0x90000; r[R_RBP] = kRam - 8;
  r[R_RCX] = h_.rcx; r[R_RDX] = 0x3F8; r[R_R8] = 0x1FFFFC; r[R_R9] = kCodeAt[h_.place];
  r[R_R10] = kPml4; r[R_R11] = kIdt;
}

void Machine::ept_map_page(uint64_t gpa) {
  // Tables: 0 PML4, 1 PDPT, 2 PD, 3-4 PTs of the two 2 MiB chunks.
  const uint64_t t = kEpt;
  constexpr uint64_t kWbLeaf = (EPT_MT_WB << EPT_MT_SHIFT) | EPT_RWX;
  *eptq(0, 0) = (t + 0x1000) | EPT_RWX;
  *eptq(1, 0) = (t + 0x2000) | EPT_RWX;
  const unsigned c = static_cast<unsigned>(gpa >> kHugeShift) & 1;
  if (h_.ept_2m) {
    *eptq(2, c) = (gbase_ + (static_cast<uint64_t>(c) << kHugeShift)) | EPT_PS | kWbLeaf;
    return;
  }
  *eptq(2, c) = (t + 0x3000 + c * 0x1000ull) | EPT_RWX;
  *eptq(3 + c, static_cast<unsigned>(gpa >> kPageShift) & (kTableEntries - 1)) = (gbase_ + (gpa & ~kPageMask)) | kWbLeaf;
}

void Machine::build_ept() {
  uint64_t s = h_.seed;
  for (uint64_t gpa = 0; gpa < kRam; gpa += kPageSize) {
    // Sparse: about a third of the pages start unmapped; the VMM maps them on violation.
    if (h_.sparse && !h_.ept_2m && splitmix(&s) % 3 == 0) continue;
    ept_map_page(gpa);
  }
  if (h_.sparse && h_.ept_2m) *eptq(2, 1) = 0;
}

// Values that name arena memory are steered into guest RAM (see the file comment).
uint64_t Machine::steer(uint64_t v) const {
  uint64_t addr = v & kAddrMask;
  if (addr < kArena) addr = gbase_ + addr % kRam;
  return (v & ~kAddrMask) | addr;
}

void Machine::apply_patch(uint8_t kind, uint16_t idx, uint64_t v) {
  static const uint64_t kTables[5] = {kPml4, kPml4 + 0x1000, kPml4 + 0x2000, kPml4 + 0x3000, kPml4 + 0x4000};
  const unsigned e = (idx >> 3) % 512;
  uint64_t* r = cpu_->regs();
  switch (kind % 8) {
    case 0: q(kTables[idx % 5])[e] = v; break;
    case 1: q(kTables[idx % 5])[e] ^= v & 0x80000000000001FFull; break;
    case 2: q(kIdt + (idx % 512) * 8)[0] = v; break;
    case 3: q(kGdt + (idx % 512) * 8)[0] = v; break;
    case 4:
      if (!ept_) break;
      *eptq(idx % 5, e) = steer(v);
      ept_patched = true;
      break;
    case 5: {
      const unsigned reg = idx % R_COUNT;
      uint64_t val = (idx & 0x8000) ? v % kRam : v;
      if (reg == R_RIP) {
        if (!Cpu::canonical(val)) rip_garbage = true;
      }
      if (reg == R_RFLAGS) rflags_patched = true;
      r[reg] = val;
      break;
    }
    case 6: *q(((static_cast<uint64_t>(idx) << 6) ^ (v >> 40)) % kRam) = v; break;
    default:
      if (idx & 1) r[R_CR3] = (idx & 2) ? v : v % kRam;
      else if (ept_) {
        eptp_ = (idx & 2) ? steer(v) : kEpt + (v % kEptLen);
        ept_patched = true;
      }
      break;
  }
}

// A random TLB geometry (what TS passes through configureMmu's `tlb`): entries and ways
// from 0 to 65536, mostly powers of two; configure() must refuse the rest with a message.
TlbGeometry random_geometry(uint64_t* s) {
  TlbGeometry g;
  for (unsigned st = 0; st < TLB_COUNT; ++st) {  // configuration order: inputs replay alike
    TlbGeom* p = &g[TlbStructure(st)];
    const uint64_t z = splitmix(s);
    const uint32_t e = (z & 7) == 0 ? 0 : 1u << ((z >> 3) % 17);
    const uint32_t w = (z >> 8) % 4 == 0 ? 0 : 1u << ((z >> 10) % 17);
    *p = TlbGeom{e, w};
    if ((z >> 20) % 64 == 0) p->entries = static_cast<uint32_t>((z >> 32) % 65537);
  }
  return g;
}

bool Machine::configure(bool new_geometry) {
  MmuConfig cfg;
  cfg.ept = ept_;
  cfg.eptp = eptp_;
  cfg.guest_base = gbase_;
  cfg.guest_size = kRam;
  if (h_.tlb_none) cfg.tlb = TlbGeometry::none();
  if (h_.geom || new_geometry) {
    uint64_t s = h_.seed ^ (new_geometry ? splitmix(&prng_) : 0);
    cfg.tlb = random_geometry(&s);
    if (cpu_->configure_mmu(cfg) == nullptr) return true;
    cfg.tlb = h_.tlb_none ? TlbGeometry::none() : TlbGeometry{};
  }
  if (cpu_->configure_mmu(cfg)) {  // refused (garbage EPTP): the VMM keeps the sane one
    cfg.eptp = kEpt;
    if (cpu_->configure_mmu(cfg)) fail("configure_mmu refused a valid configuration");
  }
  return true;
}

// Once the input has written EPT entries or the EPTP, an EPT table may sit in guest RAM
// and name any arena byte: every byte of the arena is then legitimately reachable, and only
// the page after the arena end stays a guard.
void Machine::protect(bool on) {
  uint8_t* b = arena_->base();
  const int none = on ? PROT_NONE : PROT_READ | PROT_WRITE;
  auto prot = [&](uint64_t lo, uint64_t hi, int p) {
    if (hi > lo && mprotect(b + lo, hi - lo, p) != 0) fail("mprotect", lo, hi);
  };
  prot(kArena, kArena + kPageSize, none);
  if (ept_patched) return;
  prot(0, kEpt, none);
  prot(kEpt, kEpt + kEptLen, on ? PROT_READ : PROT_READ | PROT_WRITE);
  prot(kEpt + kEptLen, gbase_, none);
  prot(gbase_ + kRam, kArena, none);
}

void Machine::check_run(ExitReason why, uint64_t budget, const uint64_t* before) {
  const uint64_t* c = cpu_->counters();
  const uint64_t* x = cpu_->exit_record();
  const uint64_t* r = cpu_->regs();
  if (x[EF_reason] != why) fail("run() result differs from exit.reason", why, x[EF_reason]);
  if (why == EXIT_NONE || why == EXIT_INTERNAL || why > 15) fail("bad exit reason", why);
  for (unsigned k = 0; k < C_COUNT; k++)
    if (c[k] < before[k]) fail(kCounterNames[k], before[k], c[k]);
  // The budget bounds the work (a REP iteration is a unit, cpu.cc): used <= budget, all of it
  // on a budget exit, and every retired instruction took at least one unit.
  if (x[EF_budget_used] > budget) fail("more budget used than given", x[EF_budget_used], budget);
  if (why == EXIT_BUDGET && x[EF_budget_used] != budget) fail("budget exit before the budget was used", x[EF_budget_used], budget);
  if (c[C_instructions] - before[C_instructions] > x[EF_budget_used])
    fail("more instructions than budget units used", c[C_instructions] - before[C_instructions], x[EF_budget_used]);
  if (c[C_walk_refs] != c[C_walk_refs_guest] + c[C_walk_refs_ept]) fail("walk_refs != guest + ept");
  if (c[C_tlb_lookups] != c[C_tlb_hits] + c[C_tlb_misses]) fail("tlb_lookups != hits + misses");
  // RIP may be non-canonical only right after delivery through a gate whose target is
  // (the fetch there raises #GP with that RIP pushed, as QEMU and KVM do); no
  // instruction may ever retire there: run_all() probes that with run(1).
  if (!rip_garbage && !Cpu::canonical(r[R_RIP]) && why != EXIT_BUDGET && why != EXIT_SHUTDOWN)
    fail("non-canonical RIP at a VM exit", r[R_RIP], x[EF_rip]);
  if (!rflags_patched && (!(r[R_RFLAGS] & 2) || (r[R_RFLAGS] >> 22)))
    fail("RFLAGS reserved bits", r[R_RFLAGS]);
  switch (why) {
    case EXIT_IO:
      if (x[EF_io_size] != 1 && x[EF_io_size] != 2 && x[EF_io_size] != 4) fail("io_size", x[EF_io_size]);
      if (x[EF_io_port] > 0xFFFF || x[EF_io_direction] > 1) fail("io port/direction", x[EF_io_port]);
      if (!x[EF_io_direction] && (x[EF_value] >> (8 * x[EF_io_size]))) fail("OUT value wider than its size", x[EF_value]);
      break;
    case EXIT_EPT_VIOLATION:
      if (x[EF_level] < 1 || x[EF_level] > 4) fail("EPT violation level", x[EF_level]);
      [[fallthrough]];
    case EXIT_MMIO:
      if (x[EF_access] > 2 || x[EF_gva_valid] > 1) fail("fault exit access", x[EF_access]);
      if (x[EF_rip] != r[R_RIP]) fail("faulting exit moved RIP", x[EF_rip], r[R_RIP]);
      break;
    case EXIT_SHUTDOWN:
      if (x[EF_insn_len] > 16) fail("insn_len", x[EF_insn_len]);
      break;
    default: break;
  }
}

// Things TS may do between two run() calls.
void Machine::vmm_action() {
  const uint64_t z = splitmix(&prng_);
  uint64_t* r = cpu_->regs();
  switch (z % 8) {
    case 0: cpu_->invept(); break;
    case 1: cpu_->flush_tlb(); break;
    case 2: ram(kCodeAt[h_.place])[(z >> 8) % kCodeMax] = static_cast<uint8_t>(z >> 32); break;
    case 3: *q((z >> 8) % kRam) = z; break;  // a device or TS writes guest memory
    case 4:
      if (ept_) {  // unmap a page (a host reclaim), as the EPT layer would: zap + INVEPT
        protect(false);
        const uint64_t gpa = (z >> 8) % kRam;
        if (h_.ept_2m) *eptq(2, (gpa >> kHugeShift) & 1) = 0;
        else *eptq(3 + ((gpa >> kHugeShift) & 1), (gpa >> kPageShift) & (kTableEntries - 1)) = 0;
        protect(true);
        cpu_->invept();
      }
      break;
    case 5: configure((z >> 8) & 1); break;  // same config, or a new TLB geometry
    case 6: r[R_CR3] = (z & 1) ? kPml4 : (z >> 8) % kRam; break;
    default: r[R_RAX + (z >> 8) % 16] = z >> 16; break;
  }
}

uint64_t Machine::run_all(Stats* st, uint64_t* trace, bool want_hash) {
  uint64_t left = h_.total, fixups = 0, before[C_COUNT];
  uint64_t* x = cpu_->exit_record();
  uint64_t* c = cpu_->counters();
  protect(true);
  for (uint64_t n = 0; n < kMaxRuns && left > 0; n++) {
    const uint64_t b = left < h_.per_run ? left : h_.per_run;
    std::memcpy(before, c, sizeof before);
    const ExitReason why = cpu_->run(b);
    st->runs++;
    st->exits[why < 15 ? static_cast<unsigned>(why) : 15u]++;
    check_run(why, b, before);
    if (why == EXIT_BUDGET && !rip_garbage && !Cpu::canonical(cpu_->regs()[R_RIP])) {
      std::memcpy(before, c, sizeof before);
      const ExitReason w2 = cpu_->run(1);
      if (c[C_instructions] != before[C_instructions]) fail("an instruction retired at a non-canonical RIP");
      check_run(w2, 1, before);
      st->runs++;
    }
    st->instructions += c[C_instructions] - before[C_instructions];
    const uint64_t used = c[C_instructions] - before[C_instructions];
    left -= (why == EXIT_BUDGET || used + 1 > b) ? b : used + 1;
    // The exit trace the differential check compares (MMIO and EPT violation alike).
    const uint64_t kind = why == EXIT_EPT_VIOLATION ? EXIT_MMIO : why;
    uint64_t t[] = {kind, x[EF_rip], x[EF_io_port], x[EF_value],
                    kind == EXIT_MMIO ? x[EF_gpa] : 0, kind == EXIT_MMIO ? x[EF_access] : 0};
    for (uint64_t v : t) *trace = (*trace ^ v) * 0x100000001B3ull;
    bool go = false;
    switch (why) {
      case EXIT_BUDGET: go = true; break;
      case EXIT_IO:
        if (x[EF_io_direction]) x[EF_value] = splitmix(&prng_) & ((1ull << (8 * x[EF_io_size])) - 1);
        go = !(x[EF_io_port] == 0xF4 && !x[EF_io_direction]);
        break;
      case EXIT_EPT_VIOLATION:
        if (ept_ && x[EF_gpa] < kRam && fixups < kMaxFixups) {
          protect(false);
          ept_map_page(x[EF_gpa]);
          protect(true);
          cpu_->invept();
          fixups++;
          st->ept_fixups++;
          go = true;
        }
        break;
      case EXIT_SHUTDOWN: {
        const uint64_t insns = c[C_instructions];
        if (cpu_->run(100) != EXIT_SHUTDOWN || c[C_instructions] != insns)
          fail("a shut-down vCPU ran again");
        break;
      }
      default: break;
    }
    if (!go) break;
    if (h_.action_rate && !h_.diff && (splitmix(&prng_) & 255) < h_.action_rate) vmm_action();
  }
  protect(false);
  return want_hash ? state_hash() : 0;
}

uint64_t Machine::state_hash() {
  uint64_t h = 0xCBF29CE484222325ull;
  auto mix = [&](uint64_t v) { h = (h ^ v) * 0x100000001B3ull; };
  for (unsigned k = 0; k < R_COUNT; k++) mix(cpu_->regs()[k]);
  const uint64_t* m = q(0);
  for (uint64_t k = 0; k < kRam / 8; k++) mix(m[k]);
  return h;
}

}  // namespace

uint64_t fuzz_one(const uint8_t* data, size_t size, Stats* st, bool want_hash) {
  Reader in{data, size};
  Header h = parse_header(in);
  struct Patch { uint8_t kind; uint16_t idx; uint64_t v; };
  Patch patches[32];
  const unsigned np = in.u8() % 32;
  bool ept_patch = false;
  for (unsigned k = 0; k < np; k++) {
    patches[k].kind = in.u8();
    patches[k].idx = static_cast<uint16_t>(in.le(2));
    patches[k].v = in.le(8);
    ept_patch |= patches[k].kind % 8 == 4 || patches[k].kind % 8 == 7;
  }
  const uint8_t* code = data + (in.pos < size ? in.pos : size);
  const size_t ncode = in.pos < size ? size - in.pos : 0;
  st->inputs++;

  auto build = [&](bool ept) {
    Machine* m = new Machine(h, ept);
    for (unsigned k = 0; k < np; k++) m->apply_patch(patches[k].kind, patches[k].idx, patches[k].v);
    m->place_code(code, ncode);
    m->configure();
    return m;
  };
  // Differential: with every cache off and an identity EPT over all of guest RAM, EPT mode
  // must compute exactly what no-EPT mode computes (only the counters differ).
  h.diff = h.diff && h.tlb_none && !h.geom && !h.sparse && !ept_patch;
  uint64_t trace = 0, result;
  Machine* a = build(h.ept);
  result = a->run_all(st, &trace, want_hash || h.diff);
  if (h.diff) {
    Machine* b = build(!h.ept);
    uint64_t trace_b = 0;
    const uint64_t rb = b->run_all(st, &trace_b, true);
    if (trace != trace_b) fail("EPT and no-EPT runs took different exits", trace, trace_b);
    if (result != rb) fail("EPT and no-EPT runs ended in different states", result, rb);
    st->diff_checked++;
    delete b;
  }
  delete a;
  return result ^ trace;
}

}  // namespace hvfuzz
