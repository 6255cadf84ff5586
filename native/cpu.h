// The vCPU core: architectural state of one x86-64 CPU (long mode, CPL 0), the run loop and
// the memory-access helpers every instruction handler uses. Compiles without Node; the N-API
// glue (addon.cc) only wraps it. All guest-virtual accesses go through Mmu::translate.
#pragma once
#include <cstring>
#include <unordered_set>
#include <vector>

#include "arena.h"
#include "counters.h"
#include "decode.h"
#include "exit.h"
#include "mmu.h"
#include "paging.h"
#include "types.h"

namespace hv {

// Register-file indices: the contract with src/native/types.ts (REG). GPRs in x86 encoding order.
enum Reg : uint8_t {
  R_RAX, R_RCX, R_RDX, R_RBX, R_RSP, R_RBP, R_RSI, R_RDI,
  R_R8, R_R9, R_R10, R_R11, R_R12, R_R13, R_R14, R_R15,
  R_RIP, R_RFLAGS, R_CR0, R_CR2, R_CR3, R_CR4, R_EFER,
  R_GDTR_BASE, R_GDTR_LIMIT, R_IDTR_BASE, R_IDTR_LIMIT,
  R_CS, R_DS, R_ES, R_SS, R_FS, R_GS, R_TSC_OFFSET,
  R_COUNT,
  // Not part of the shared view: a slot that always reads 0, used as the "no base" / "no
  // index" register of an effective address so address generation needs no branches.
  R_ZERO = R_COUNT,
  R_STORAGE
};
extern const char* const kRegNames[R_COUNT];

// RFLAGS bits.
constexpr uint64_t FL_CF = 1u << 0, FL_PF = 1u << 2, FL_AF = 1u << 4, FL_ZF = 1u << 6,
                   FL_SF = 1u << 7, FL_TF = 1u << 8, FL_IF = 1u << 9, FL_DF = 1u << 10,
                   FL_OF = 1u << 11;
constexpr uint64_t FL_ARITH = FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF;
constexpr uint64_t FL_FIXED = 1u << 1;  // reads as 1
constexpr uint64_t FL_IOPL = 3u << 12, FL_NT = 1u << 14, FL_AC = 1u << 18, FL_ID = 1u << 21;
// The bits a CPL-0 POPF or IRETQ loads (SDM POPF, IRET): the arithmetic flags, TF IF DF,
// IOPL NT AC ID. VM, RF, VIF, VIP and the reserved bits are never set here. TF is stored, but
// no single-step trap exists; AC has no effect at CPL 0.
constexpr uint64_t FL_WRITABLE = FL_ARITH | FL_TF | FL_IF | FL_DF | FL_IOPL | FL_NT | FL_AC | FL_ID;

// Exception vectors this CPU raises.
// #NP and #SS arise only while delivering an exception (not-present gate or code
// segment, non-canonical stack): the SDM's vectors for those conditions.
enum Vector : uint8_t { V_DE = 0, V_BP = 3, V_UD = 6, V_DF = 8, V_NP = 11, V_SS = 12, V_GP = 13, V_PF = 14, V_NONE = 0xFF };
constexpr uint64_t FL_RF = 1u << 16;  // resume flag: set in the RFLAGS image a fault pushes

// What a handler reports back to the run loop when it does not simply continue.
enum Status : int {
  ST_OK = 0,
  ST_EXC,         // an exception is pending (pend_vec/pend_err; CR2 already set for #PF)
  ST_EXIT,        // VM exit after the instruction retired (I/O, HLT); exit record filled
  ST_EXIT_NORET,  // VM exit before it retired (EPT violation, MMIO); exit record filled
  ST_PREEMPT,     // a REP string instruction used every budget unit run() could give it and
                  // is not done: RIP stays on it (RCX/RSI/RDI hold the progress, as after a
                  // fault) and it has not retired
  ST_FUSED,       // a fused compare-and-branch handler (exec_fused.cc) retired its
                  // instruction and the block-ending Jcc after it (RIP set by the Jcc)
};

class Cpu {
 public:
  Cpu(Arena* arena);
  ~Cpu();
  // Free the decode cache and the code-frame bitmap now; run() returns EXIT_INTERNAL after.
  void release();
  Cpu(const Cpu&) = delete;
  Cpu& operator=(const Cpu&) = delete;

  // Execute until a VM exit or until `budget` units are used (the exit record's budget_used
  // says how many were; the unit is defined at run() in cpu.cc). Returns the reason.
  ExitReason run(uint64_t budget) {
    afl_ = afl_from(r[R_RFLAGS]);  // cpu.h afl_: the arithmetic flags move out of RFLAGS...
    const ExitReason why = run_loop(budget);
    r[R_RFLAGS] = rflags();  // ...and back
    return why;
  }

  // TS-side entry points (addon.cc): each drops the cached fetch translation, since the
  // Mmu may no longer hold what it was derived from.
  const char* configure_mmu(const MmuConfig& cfg);
  void invept() { mmu_.invept(); fetch_invalidate(); }
  void flush_tlb() { mmu_.flush_guest(); fetch_invalidate(); }
  void reset_counters() { counters_.clear(); }

  uint64_t* regs() { return r; }
  uint64_t* counters() { return counters_.v; }
  uint64_t* exit_record() { return exit_.f; }

  // ---- state used by the instruction handlers (public: handlers are free functions) ----
  uint64_t r[R_STORAGE];
  // While run() executes, the six arithmetic flags live here and not in r[R_RFLAGS] (whose
  // other bits stay authoritative): in the layout the host's LAHF and SETO leave in AX
  // (AH = SF ZF 0 AF 0 PF 1 CF, AL = OF), so a handler that lets the host ALU compute flags
  // stores AX as it is, with no conversion and no merge into RFLAGS. run() loads them from
  // r[R_RFLAGS] on entry and writes them back before it returns, so TS and the exit record
  // only ever see RFLAGS. Inside run() every reader of RFLAGS goes through rflags() /
  // arith() and every writer through set_rflags() / set_arith().
  uint16_t afl_ = 0;
  static constexpr uint16_t kAflCF = 0x100, kAflPF = 0x400, kAflAF = 0x1000, kAflZF = 0x4000,
                            kAflSF = 0x8000, kAflOF = 0x1;
  static uint16_t afl_from(uint64_t rf) {
    return static_cast<uint16_t>(((rf & (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF)) << 8) | ((rf >> 11) & 1));
  }
  static uint64_t afl_to(uint16_t a) {
    return ((a >> 8) & (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF)) | (static_cast<uint64_t>(a & 1) << 11);
  }
  uint64_t arith() const { return afl_to(afl_); }  // the arithmetic flags, RFLAGS layout
  void set_arith(uint64_t f) { afl_ = afl_from(f); }
  uint64_t rflags() const { return (r[R_RFLAGS] & ~FL_ARITH) | arith(); }
  void set_rflags(uint64_t v) {
    r[R_RFLAGS] = v;
    afl_ = afl_from(v);
  }
  Counters counters_;
  ExitRecord exit_;
  Mmu mmu_;
  Arena* arena_;
  uint64_t insn_rip = 0;   // RIP of the instruction executing (r[R_RIP] already points past it)
  uint64_t retired_total = 0;  // lifetime instructions retired (RDTSC; not reset with counters)
  // Inside a block retired_total is only brought up to date at the end of each pass, so while
  // a handler runs it counts the instructions retired before the block's current pass (RDTSC).
  // The block being executed: its host bytes [blk_lo_, blk_lo_ + blk_len_) for the
  // self-modifying-code check in write(), and where this run of it stops.
  const uint8_t* blk_lo_ = nullptr;
  uint64_t blk_len_ = 0;
  const Insn* blk_end_ = nullptr;  // one past the last instruction this run of the block may execute
  // Budget units a REP string instruction may take for iterations beyond the one unit each
  // instruction of the running block is already charged (run() in cpu.cc; rep_loop in
  // exec_string.cc takes from it).
  uint64_t rep_spare_ = 0;
  // Self-modifying-code tracking: one bit per host frame that has had code decoded from it
  // (nullptr if the bitmap could not be allocated: every store then counts), and an epoch
  // advanced by every store to such a frame, by every A/D-bit update the walker writes into
  // such a frame (Mmu::set_code_tracking), and at every run() entry (TS may have written
  // the arena). A block whose epoch is current needs no byte comparison.
  uint8_t* code_frames_ = nullptr;
  bool released_ = false;
  const uint8_t* arena_base_ = nullptr;
  uint64_t code_epoch_ = 1;
  uint8_t pend_vec = V_NONE;
  uint32_t pend_err = 0;
  bool pend_has_err = false;
  // Exception delivery state (SDM Vol. 3 §6.15). `chain_` holds every exception
  // detected since the last completed delivery (the triple-fault report); `evt_` is the
  // event whose delivery a VM exit interrupted (VMX IDT-vectoring information): the next
  // run() delivers it again before fetching, so nothing is counted or pushed twice.
  struct Event {
    uint8_t vec;
    bool has_err;
    uint32_t err;
    bool trap = false;  // RIP is past the instruction (INT3), which retires at delivery
  };
  Event chain_[kChainMax];
  unsigned chain_len_ = 0;
  Event evt_{V_NONE, false, 0, false};
  bool evt_valid_ = false;
  uint8_t pending_in_size = 0;  // IN exit outstanding: next run() writes exit[value] to rAX
  bool shutdown_ = false;

  Status raise(uint8_t vec, uint32_t err = 0, bool has_err = false) {
    pend_vec = vec; pend_err = err; pend_has_err = has_err;
    pend_noncanon = false;
    pend_trap = false;
    return ST_EXC;
  }
  // A trap (INT3): delivered with RIP past the instruction, which retires when the delivery
  // completes. A fault while delivering it is reported on the instruction itself (RIP back
  // on it, trap_rip_), as for any software interrupt.
  bool pend_trap = false;
  uint64_t trap_rip_ = 0;
  Status raise_trap(uint8_t vec, uint64_t rip_of_insn) {
    Status s = raise(vec);
    pend_trap = true;
    trap_rip_ = rip_of_insn;
    return s;
  }
  // A data access to a non-canonical address: #GP(0), or #SS(0) when the reference
  // uses the stack segment (implicit stack accesses, a ModRM base of RSP/RBP), as hardware
  // does. The access helpers do not know the segment: stack_access() and the run loop's
  // fault path (ss_fixup) turn the pending #GP into #SS.
  bool pend_noncanon = false;
  Status noncanonical() {
    Status s = gp();
    pend_noncanon = true;
    return s;
  }
  Status stack_access(Status s) {
    if (s == ST_EXC && pend_noncanon) pend_vec = V_SS;
    return s;
  }
  void ss_fixup(const Insn& in) {
    if (pend_noncanon && (in.flags & IF_MEM) && (in.base == R_RSP || in.base == R_RBP)) pend_vec = V_SS;
  }
  Status ud() { return raise(V_UD); }
  Status gp(uint32_t err = 0) { return raise(V_GP, err, true); }

  static bool canonical(uint64_t va) { return static_cast<uint64_t>(static_cast<int64_t>(va << 16) >> 16) == va; }

  // Data accesses of 1/2/4/8 bytes (10 for descriptor-table registers via two calls). On
  // failure they leave the right status pending and return it; on success ST_OK.
  // Loads and stores are counted when they complete, like the retired-load/store
  // events of hardware: an access that faults (and runs again after the handler or the VM
  // exit) counts once, and a read-modify-write counts one load and one store.
  Status read(uint64_t va, unsigned size, uint64_t* out) {
    if ((va & kPageMask) <= kPageSize - size) {
      if (!canonical(va)) return noncanonical();
      Fault f;
      const uint8_t* p = mmu_.translate(Gva(va), Access::Read, &f);
      if (!p) return fault_read(f, size, out);
      counters_.inc(C_loads);
      uint64_t v = 0;
      std::memcpy(&v, p, size);
      *out = v;
      return ST_OK;
    }
    return read_split(va, size, out, Access::Read);
  }
  Status write(uint64_t va, unsigned size, uint64_t v) {
    if ((va & kPageMask) <= kPageSize - size) {
      if (!canonical(va)) return noncanonical();
      Fault f;
      uint8_t* p = mmu_.translate(Gva(va), Access::Write, &f);
      if (!p) return fault_write(f);
      counters_.inc(C_stores);
      // write() is out of line, so `size` is not a constant there: the common
      // 8-byte store gets a constant-size copy (one move) instead of a call to memcpy.
      if (size == 8) std::memcpy(p, &v, 8);
      else std::memcpy(p, &v, size);
      smc_check(p, size);
      return ST_OK;
    }
    return write_split(va, size, v);
  }
  // write() inlined at a constant size, for the hot memory forms (MOV store, the ALU
  // read-modify-write forms): the same code, without the call and the size-generic copy.
  template <unsigned SZ>
  __attribute__((always_inline)) Status write_t(uint64_t va, uint64_t v) {
    if ((va & kPageMask) <= kPageSize - SZ) {
      if (!canonical(va)) return noncanonical();
      Fault f;
      uint8_t* p = mmu_.translate(Gva(va), Access::Write, &f);
      if (!p) return fault_write(f);
      counters_.inc(C_stores);
      std::memcpy(p, &v, SZ);
      smc_check(p, SZ);
      return ST_OK;
    }
    return write_split(va, SZ, v);
  }
  // The load of a read-modify-write instruction. Hardware checks the destination for
  // the write up front (one #PF with W=1, one EPT violation reported as a write, D set by
  // the first walk), so it is translated as a write; it still counts as a load, and the
  // store that follows (write()) counts as the store and hits the TLB entry made here.
  Status read_rmw(uint64_t va, unsigned size, uint64_t* out) {
    if ((va & kPageMask) <= kPageSize - size) {
      if (!canonical(va)) return noncanonical();
      Fault f;
      const uint8_t* p = mmu_.translate(Gva(va), Access::Write, &f);
      if (!p) return fault_read(f, size, out);
      counters_.inc(C_loads);
      uint64_t v = 0;
      std::memcpy(&v, p, size);
      *out = v;
      return ST_OK;
    }
    return read_split(va, size, out, Access::Write);
  }
  // Push 8 (or, for the 0x66 forms of PUSH, 2) bytes on the stack: RSP changes only when
  // the access succeeds.
  Status push(uint64_t v, unsigned size) {
    const uint64_t sp = r[R_RSP] - size;
    Status s = stack_access(write(sp, size, v));
    if (s == ST_OK) r[R_RSP] = sp;
    return s;
  }
  Status push64(uint64_t v) { return push(v, 8); }

  // A store that reaches into the executing block's bytes ends the block after the current
  // instruction, so the next one is decoded from the new bytes.
  // Only frames that hold decoded code matter: a store there also advances code_epoch_, so
  // every cached block re-checks its bytes before it next runs.
  void smc_check(const uint8_t* p, unsigned size) {
    const uint64_t fr = static_cast<uint64_t>(p - arena_base_) >> kPageShift;
    if (code_frames_ && !((code_frames_[fr >> 3] >> (fr & 7)) & 1)) return;
    ++code_epoch_;
    if (static_cast<uint64_t>(p + size - 1 - blk_lo_) < blk_len_ + size - 1) blk_end_ = nullptr;
  }
  // A translation fault: #PF into the guest, or a VM exit for EPT violation / MMIO.
  Status fault(const Fault& f);
  // MMIO completion (docs/guest-abi.md "Devices and exits"): after an MMIO exit the VMM may
  // register the page (complete_mmio); from then on a data access whose final GPA lies in
  // a registered page and faults (no-EPT: outside guest memory; EPT: no EPT mapping) reads
  // all-ones and drops writes, counted in loads/stores and mmio_accesses. Fetches and
  // guest page-table accesses never complete this way. Only the fault paths look at it.
  // A registered page exits once (the VMM logs it once) and then completes in the vCPU,
  // so exits_mmio counts MMIO pages reported, mmio_accesses every completed access.
  // configure_mmu() forgets every registration. At most kMaxMmioPages pages stay registered
  // (a guest sweeping MMIO space must not grow host memory without bound): registering one
  // more forgets the oldest, whose next access exits (and is reported) again.
  static constexpr size_t kMaxMmioPages = size_t{1} << 16;
  std::unordered_set<uint64_t> mmio_pages_;
  std::vector<uint64_t> mmio_order_;  // registration order, a ring once full
  size_t mmio_oldest_ = 0;
  bool mmio_completes(const Fault& f) const {
    return (f.kind == FaultKind::Mmio || (f.kind == FaultKind::EptViolation && !f.misconfig)) &&
           f.gva_valid && f.access != Access::Fetch && !mmio_pages_.empty() &&
           mmio_pages_.count(f.gpa >> kPageShift) != 0;
  }
  void complete_mmio(uint64_t gpa) {
    const uint64_t page = gpa >> kPageShift;
    if (!mmio_pages_.insert(page).second) return;
    if (mmio_order_.size() < kMaxMmioPages) {
      mmio_order_.push_back(page);
      return;
    }
    mmio_pages_.erase(mmio_order_[mmio_oldest_]);
    mmio_order_[mmio_oldest_] = page;
    mmio_oldest_ = (mmio_oldest_ + 1) % kMaxMmioPages;
  }
  void clear_mmio() {
    mmio_pages_.clear();
    mmio_order_.clear();
    mmio_oldest_ = 0;
  }
  __attribute__((noinline)) Status fault_read(const Fault& f, unsigned size, uint64_t* out) {
    if (!mmio_completes(f)) return fault(f);
    counters_.inc(C_loads);
    counters_.inc(C_mmio_accesses);
    *out = size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
    return ST_OK;
  }
  __attribute__((noinline)) Status fault_write(const Fault& f) {
    if (!mmio_completes(f)) return fault(f);
    counters_.inc(C_stores);
    counters_.inc(C_mmio_accesses);
    return ST_OK;
  }
  // Control-register side effects (the Mmu follows CR0/CR3/CR4/EFER).
  void control_changed() {
    mmu_.set_control(r[R_CR0], r[R_CR3], r[R_CR4], r[R_EFER]);
    fetch_invalidate();
  }
  void fetch_invalidate() { fetch_vpn_ = ~0ull; }

 private:
  ExitReason run_loop(uint64_t budget);
  Status read_split(uint64_t va, unsigned size, uint64_t* out, Access acc);
  Status write_split(uint64_t va, unsigned size, uint64_t v);
  // Decode the instruction at r[R_RIP] when it is not in the cache (or crosses a page).
  Status fetch_slow(const Insn** out, Insn* scratch);
  Status fetch_page(uint64_t rip);
  enum Delivery { DL_OK, DL_EXIT, DL_SHUTDOWN };
  // Deliver the pending exception (escalating to #DF and triple fault).
  Delivery deliver_pending();
  Delivery deliver_event(Event e);  // delivery with the SDM's double-fault classes
  void chain_push(const Event& e);
  Status deliver(uint8_t vec, uint32_t err, bool has_err);
  void count_exception(uint8_t vec);
  void triple_fault();
  ExitReason finish(ExitReason why, uint64_t used);

  uint64_t run_start_ = 0;  // retired_total when this run() began

  // The one cached translation outside the Mmu: the current code page (fetch lookups are
  // counted per page). Valid while the Mmu's generation() is unchanged, i.e.
  // nothing has flushed or invalidated a translation since it was obtained.
  uint64_t fetch_vpn_ = ~0ull;
  uint64_t fetch_gen_ = 0;
  const uint8_t* fetch_host_ = nullptr;
  uint64_t fetch_hpa_ = 0;
  void build_block(const uint8_t* page, unsigned off, uint64_t hpa, Block& b);
  BlockCache bcache_;
};

}  // namespace hv
