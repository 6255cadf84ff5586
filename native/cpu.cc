// The vCPU run loop (fetch through the decode cache, dispatch, retire), page-crossing
// accesses, translation faults, and exception delivery through the guest's 64-bit IDT with
// #DF escalation and triple fault (docs/guest-abi.md "Exceptions").
#include "cpu.h"

#include <algorithm>
#include <cstdlib>

#include "exec.h"

namespace hv {

const char* const kRegNames[R_COUNT] = {
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11",
    "r12", "r13", "r14", "r15", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "efer",
    "gdtr_base", "gdtr_limit", "idtr_base", "idtr_limit", "cs", "ds", "es", "ss", "fs", "gs",
    "tsc_offset"};

Cpu::Cpu(Arena* arena) : mmu_(arena, &counters_), arena_(arena) {
  std::memset(r, 0, sizeof r);
  std::memset(exit_.f, 0, sizeof exit_.f);
  counters_.clear();
  r[R_RFLAGS] = FL_FIXED;
  arena_base_ = arena->base();
  code_frames_ = static_cast<uint8_t*>(std::calloc((arena->frames() + 7) / 8, 1));
  mmu_.set_code_tracking(code_frames_, &code_epoch_);  // A/D writes into code frames advance the epoch
}

Cpu::~Cpu() { std::free(code_frames_); }

void Cpu::release() {
  // What a closed VM must not keep until the garbage collector runs: the decoded-block cache
  // and the code-frame bitmap (arena frames / 8 bytes). Registers, counters and the exit
  // record stay readable; run() refuses from now on.
  released_ = true;
  bcache_.release();
  mmu_.set_code_tracking(nullptr, &code_epoch_);
  std::free(code_frames_);
  code_frames_ = nullptr;
}

const char* Cpu::configure_mmu(const MmuConfig& cfg) {
  const char* err = mmu_.configure(cfg);
  fetch_invalidate();
  if (!err) clear_mmio();  // a new memory layout: pages reported as MMIO may now be RAM
  return err;
}

Status Cpu::fault(const Fault& f) {
  if (f.kind == FaultKind::PageFault) {
    r[R_CR2] = f.gva;
    return raise(V_PF, f.error_code, true);
  }
  // EPT violation, EPT misconfiguration (its own exit, as KVM's
  // EXIT_REASON_EPT_MISCONFIG) or MMIO: the instruction does not retire; TS fixes the
  // mapping and resumes (or stops, for a misconfiguration: a hypervisor bug).
  exit_.f[EF_reason] = f.kind == FaultKind::Mmio ? EXIT_MMIO
                       : f.misconfig             ? EXIT_EPT_MISCONFIG
                                                 : EXIT_EPT_VIOLATION;
  exit_.f[EF_gpa] = f.gpa;
  exit_.f[EF_gva] = f.gva;
  exit_.f[EF_access] = static_cast<uint64_t>(f.access);
  exit_.f[EF_gva_valid] = f.gva_valid;
  exit_.f[EF_level] = f.level;
  exit_.f[EF_vectoring_vector] = V_NONE;  // deliver_event() names the event it interrupted
  return ST_EXIT_NORET;
}

// Both pages are translated before any byte moves, so a fault on the second page leaves
// memory untouched and the instruction restartable.
Status Cpu::read_split(uint64_t va, unsigned size, uint64_t* out, Access acc) {
  const unsigned first = static_cast<unsigned>(kPageSize - (va & kPageMask));
  const uint64_t va2 = va + first;
  if (!canonical(va) || !canonical(va + size - 1)) return noncanonical();
  // A half in a registered MMIO page reads all-ones (cpu.h, complete_mmio); the other half
  // may be RAM and reads normally.
  // (at most 7 bytes of an 8-byte access are in either half)
  static const uint8_t ones[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  Fault f;
  bool mmio = false;
  const uint8_t* p1 = mmu_.translate(Gva(va), acc, &f);
  if (!p1) {
    if (!mmio_completes(f)) return fault(f);
    p1 = ones, mmio = true;
  }
  const uint8_t* p2 = mmu_.translate(Gva(va2), acc, &f);
  if (!p2) {
    if (!mmio_completes(f)) return fault(f);
    p2 = ones, mmio = true;
  }
  counters_.inc(C_loads);  // counted when it completes (cpu.h)
  if (mmio) counters_.inc(C_mmio_accesses);
  uint8_t buf[8];
  std::memcpy(buf, p1, first);
  std::memcpy(buf + first, p2, size - first);
  uint64_t v = 0;
  std::memcpy(&v, buf, size);
  *out = v;
  return ST_OK;
}

Status Cpu::write_split(uint64_t va, unsigned size, uint64_t v) {
  const unsigned first = static_cast<unsigned>(kPageSize - (va & kPageMask));
  const uint64_t va2 = va + first;
  if (!canonical(va) || !canonical(va + size - 1)) return noncanonical();
  Fault f;
  uint8_t* p1 = mmu_.translate(Gva(va), Access::Write, &f);
  if (!p1 && !mmio_completes(f)) return fault(f);
  uint8_t* p2 = mmu_.translate(Gva(va2), Access::Write, &f);
  if (!p2 && !mmio_completes(f)) return fault(f);
  counters_.inc(C_stores);  // counted when it completes (cpu.h)
  if (!p1 || !p2) counters_.inc(C_mmio_accesses);  // that half is dropped (cpu.h, complete_mmio)
  uint8_t buf[8];
  std::memcpy(buf, &v, 8);
  if (p1) {
    std::memcpy(p1, buf, first);
    smc_check(p1, first);
  }
  if (p2) {
    std::memcpy(p2, buf + first, size - first);
    smc_check(p2, size - first);
  }
  return ST_OK;
}

// One ITLB lookup per fetched page (counted in fetch_lookups); the result is kept until the page changes
// or anything could have invalidated the Mmu's translations.
Status Cpu::fetch_page(uint64_t rip) {
  if (!canonical(rip)) return gp();
  counters_.inc(C_fetch_lookups);
  Fault f;
  const uint8_t* p = mmu_.translate(Gva(rip), Access::Fetch, &f);
  if (!p) return fault(f);
  fetch_host_ = p - (rip & kPageMask);
  fetch_hpa_ = static_cast<uint64_t>(fetch_host_ - arena_->base());
  fetch_vpn_ = rip >> kPageShift;
  fetch_gen_ = mmu_.generation();
  return ST_OK;
}

// An instruction in the last 15 bytes of its page: decode from a copy, reaching into the
// next page only when the instruction really continues there (not cached).
Status Cpu::fetch_slow(const Insn** out, Insn* scratch) {
  const uint64_t rip = r[R_RIP];
  const unsigned off = static_cast<unsigned>(rip & kPageMask);
  const unsigned avail = static_cast<unsigned>(kPageSize - off);
  counters_.inc(C_decode_cache_misses);
  if (decode(fetch_host_ + off, std::min<unsigned>(avail, kMaxInsnLen), scratch)) {
    *out = scratch;
    return ST_OK;
  }
  // decode() asks for the next page only when fewer than 15 bytes were available; with 15 it
  // has decided (#GP for an over-long instruction). Never let a decoder slip overflow buf.
  if (avail >= kMaxInsnLen) return gp();
  const uint64_t next = (rip | kPageMask) + 1;
  if (!canonical(next)) return gp();
  counters_.inc(C_fetch_lookups);
  Fault f;
  const uint8_t* p2 = mmu_.translate(Gva(next), Access::Fetch, &f);
  if (!p2) return fault(f);
  uint8_t buf[kMaxInsnLen];
  std::memcpy(buf, fetch_host_ + off, avail);
  std::memcpy(buf + avail, p2, kMaxInsnLen - avail);
  decode(buf, kMaxInsnLen, scratch);
  *out = scratch;
  return ST_OK;
}

ExitReason Cpu::finish(ExitReason why, uint64_t used) {
  exit_.f[EF_reason] = why;
  exit_.f[EF_budget_used] = used;
  counters_.inc(C_instructions, retired_total - run_start_);
  if (why == EXIT_BUDGET) {
    counters_.inc(C_exits_budget);  // not a VM exit: the VMM's own time slice
    return why;
  }
  counters_.inc(C_exits);
  switch (why) {
    case EXIT_IO: counters_.inc(C_exits_io); break;
    case EXIT_HLT: counters_.inc(C_exits_hlt); break;
    case EXIT_EPT_VIOLATION: counters_.inc(C_exits_ept_violation); break;
    case EXIT_EPT_MISCONFIG: counters_.inc(C_exits_ept_misconfig); break;
    case EXIT_MMIO: counters_.inc(C_exits_mmio); break;
    case EXIT_SHUTDOWN: counters_.inc(C_exits_shutdown); break;
    default: break;
  }
  return why;
}

// Decode the straight-line block starting at `off` of the code page into b.
void Cpu::build_block(const uint8_t* page, unsigned off, uint64_t hpa, Block& b) {
  if (b.tag == hpa) counters_.inc(C_decode_cache_invalidations);  // same place, new bytes
  unsigned pos = off, n = 0;
  while (n < Block::kMaxInsns) {
    const unsigned avail = std::min<unsigned>(kMaxInsnLen, static_cast<unsigned>(kPageSize - pos));
    Insn& in = b.insn[n];
    const unsigned len = decode(page + pos, avail, &in);
    if (len == 0 || pos + len - off > Block::kMaxBytes) break;  // continues on the next page / too long
    in.end = static_cast<uint8_t>(pos + len - off);
    in.idx = static_cast<uint8_t>(n);
    pos += len;
    n++;
    if (in.flags & IF_END) break;
  }
  // A flag-setting register instruction right before the block's closing Jcc runs fused with
  // it (exec_fused.cc); the Jcc stays in the block for the cases the pair cannot retire whole.
  b.unfused = nullptr;
  if (n >= 2 && is_jcc(b.insn[n - 1])) {
    Insn& x = b.insn[n - 2];
    const Insn& j = b.insn[n - 1];
    if (const Handler h = fused_handler(x, j.sub)) {
      b.unfused = x.fn;
      x.fn = h;
      x.disp = static_cast<int32_t>(j.imm);
      x.base = j.len;
    }
  }
  counters_.inc(C_decode_cache_misses, n);
  b.has_rep = false;
  for (unsigned k = 0; k < n; k++) b.has_rep |= (b.insn[k].flags & IF_REP) != 0;
  b.tag = n ? hpa : ~0ull;
  b.epoch = code_epoch_;
  const uint64_t fr = hpa >> kPageShift;
  if (code_frames_) code_frames_[fr >> 3] |= static_cast<uint8_t>(1u << (fr & 7));
  b.n = static_cast<uint8_t>(n);
  b.nbytes = static_cast<uint16_t>(pos - off);
  std::memset(b.raw, 0, sizeof b.raw);
  std::memcpy(b.raw, page + off, b.nbytes);
}

// The block's bytes are still what was decoded (word compare; the last word masked).
static inline bool block_valid(const Block& b, const uint8_t* p, unsigned off) {
  const unsigned words = (b.nbytes + 7u) / 8u;
  if (off + words * 8u > kPageSize) return std::memcmp(p, b.raw, b.nbytes) == 0;
  uint64_t diff = 0;
  for (unsigned w = 0; w + 1 < words; w++) {
    uint64_t v;
    std::memcpy(&v, p + 8 * w, 8);
    diff |= v ^ b.raw[w];
  }
  uint64_t last;
  std::memcpy(&last, p + 8 * (words - 1), 8);
  const unsigned tail = b.nbytes - 8 * (words - 1);
  const uint64_t mask = tail >= 8 ? ~0ull : (1ull << (8 * tail)) - 1;
  diff |= (last & mask) ^ b.raw[words - 1];
  return diff == 0;
}

ExitReason Cpu::run_loop(uint64_t budget) {
  if (released_) {  // a closed VM: TS refuses first, this keeps a stray call harmless
    exit_.f[EF_reason] = EXIT_INTERNAL;
    exit_.f[EF_budget_used] = 0;
    return EXIT_INTERNAL;
  }
  if (shutdown_) {  // final: the exit record still describes it
    exit_.f[EF_budget_used] = 0;
    return EXIT_SHUTDOWN;
  }
  if (pending_in_size) {  // complete the IN that exited last time (exit.h protocol)
    set_reg(*this, R_RAX, false, pending_in_size, exit_.f[EF_value]);
    pending_in_size = 0;
  }
  std::memset(exit_.f, 0, sizeof exit_.f);
  exit_.f[EF_vectoring_vector] = V_NONE;  // no interrupted delivery
  // TS may have written CR0/CR3/CR4/EFER; the Mmu bumps its generation if that matters, and
  // TS's own invept()/flushTlb() bump it too, so the fetch page survives an ordinary re-entry.
  mmu_.set_control(r[R_CR0], r[R_CR3], r[R_CR4], r[R_EFER]);
  r[R_ZERO] = 0;
  run_start_ = retired_total;
  ++code_epoch_;  // TS may have written code bytes since the last run
  // The budget, in units of work: one per instruction retired and one per exception delivered
  // (so a guest stuck in a fault loop still returns), except that a REP string instruction
  // costs one unit per iteration, one if it does none. A REP that runs out of units stops
  // between two iterations (ST_PREEMPT: RCX/RSI/RDI updated, RIP still on it, not retired,
  // as hardware stops one for an interrupt) and the next run() continues it, so run(n) does
  // at most n units of work and the instructions counter still counts a REP once, when it
  // retires. Each instruction a block runs is charged one unit up front (blk_end_ - block start <= left);
  // rep_spare_ holds the units beyond those, which rep_loop (exec_string.cc) takes from.
  uint64_t left = budget;
  // An exception whose delivery a VM exit interrupted is delivered again first (as
  // KVM re-injects the IDT-vectoring information), with its error code; CR2 was set when it
  // was detected. RIP is still the faulting instruction's.
  if (evt_valid_ && left > 0) {
    insn_rip = r[R_RIP];
    --left;
    const Delivery d = deliver_event(evt_);
    if (d != DL_OK) {
      exit_.f[EF_rip] = insn_rip;
      if (d == DL_SHUTDOWN) shutdown_ = true;
      return finish(d == DL_SHUTDOWN ? EXIT_SHUTDOWN : static_cast<ExitReason>(exit_.f[EF_reason]), budget - left);
    }
  }
  for (;;) {
    if (left == 0) {
      exit_.f[EF_rip] = r[R_RIP];
      return finish(EXIT_BUDGET, budget);
    }
    const uint64_t rip = r[R_RIP];
    insn_rip = rip;
    Status s = ST_OK;
    if ((rip >> kPageShift) != fetch_vpn_ || mmu_.generation() != fetch_gen_) s = fetch_page(rip);
    if (s == ST_OK) {
      const unsigned off = static_cast<unsigned>(rip & kPageMask);
      const uint8_t* p = fetch_host_ + off;
      const uint64_t hpa = fetch_hpa_ + off;
      Block& b = bcache_.slot(hpa);
      if (__builtin_expect(b.tag != hpa || b.epoch != code_epoch_, 0)) {
        if (b.tag == hpa && block_valid(b, p, off)) b.epoch = code_epoch_;
        else build_block(fetch_host_, off, hpa, b);
      }
      if (b.n == 0) {
        // The instruction continues on the next page: decode and run it alone.
        const Insn* in;
        Insn scratch;
        s = fetch_slow(&in, &scratch);
        if (s == ST_OK) {
          r[R_RIP] = rip + in->len;
          rep_spare_ = left - 1;
          s = static_cast<Status>(in->fn(*this, *in));
          left = rep_spare_ + 1;  // less what REP iterations took; its own unit is charged below
          if (s == ST_OK) {
            ++retired_total;
            --left;
            continue;
          }
          if (s == ST_EXC) ss_fixup(*in);  // #SS for a stack-segment reference
        }
      } else {
        // Run the block: at most `left` instructions; a store into the block's own bytes
        // (self-modifying code) cuts it short after that instruction (write() sets blk_end_ to nullptr).
        unsigned k;
        uint64_t hits = 0;  // decode-cache hits, counted once the block stops looping
        const bool rep = b.has_rep;  // only then can an instruction take more than its unit
        blk_lo_ = p;
        blk_len_ = b.nbytes;
        const unsigned nb = b.n;
        if (!rep && left >= nb) {
          // The common case, a block the budget can run whole and no instruction of which
          // can take more than its one unit: a pass is charged once, at its end (nb units,
          // nb instructions retired, nb decode-cache hits), and a hot loop reruns the block
          // after three compares: RIP back at its start, room in the budget for a whole
          // pass (retired_total against the last count that leaves one), and nothing the
          // lookup above relies on changed. code_epoch_ and the Mmu's generation only ever
          // grow, so their sum is unchanged exactly when both are. (The code page is
          // dropped without a generation change only by a MOV to CR, which ends its block
          // without a branch, so the RIP compare stops the loop first.) A pass that stops
          // early (fault, exit, self-modifying store) is charged below for what it retired,
          // as one pass of the general loop would be.
          const Insn* const full = b.insn + nb;
          const uint64_t key = code_epoch_ + mmu_.generation();
          const uint64_t rt0 = retired_total, rt_last = rt0 + left - nb;
          blk_end_ = full;
          const Insn* in;
          for (;;) {
            in = b.insn;
            do {
              r[R_RIP] = rip + in->end;  // as below: RIP is the block's start plus an offset
              s = static_cast<Status>(in->fn(*this, *in));
              if (__builtin_expect(s != ST_OK, 0)) break;
            } while (++in < blk_end_);
            if (s == ST_FUSED) s = ST_OK;  // the pair that ends the block retired: in is at nb - 2
            else if (__builtin_expect(s != ST_OK || in != full, 0)) break;
            const uint64_t rt = retired_total + nb;
            retired_total = rt;
            if (__builtin_expect(r[R_RIP] == rip && rt <= rt_last && code_epoch_ + mmu_.generation() == key, 1))
              continue;
            in = nullptr;
            break;
          }
          const uint64_t whole = retired_total - rt0;  // retired by the whole passes
          left -= whole;
          hits += whole;
          if (in == nullptr) {
            blk_len_ = 0;
            counters_.inc(C_decode_cache_hits, hits);
            continue;
          }
          k = static_cast<unsigned>(in - b.insn);
          hits += k + (s != ST_OK);
          retired_total += k;
          left -= k;
          blk_len_ = 0;
          counters_.inc(C_decode_cache_hits, hits);
          if (s == ST_OK) continue;  // a self-modifying store ended the block early
          insn_rip = rip + in->end - in->len;
          if (s == ST_EXC) ss_fixup(*in);  // #SS for a stack-segment reference
          goto stopped;
        }
        for (;;) {
          const uint64_t n = std::min<uint64_t>(b.n, left);
          blk_end_ = b.insn + n;
          if (rep) rep_spare_ = left - n;
          // When the budget ends between a fused pair (exec_fused.cc), the pair's first
          // instruction runs alone, with the handler it had before it was fused.
          const Insn* const split = b.unfused && n + 1 == b.n ? b.insn + n - 1 : nullptr;
          const Insn* in = b.insn;
          do {
            // Only a block's last instruction (IF_END) or a faulting one changes RIP, so
            // each RIP is the block's start plus an offset: no load-add-store chain on RIP.
            r[R_RIP] = rip + in->end;
            if (__builtin_expect(in != split, 1)) {
              s = static_cast<Status>(in->fn(*this, *in));
            } else {
              Insn alone = *in;
              alone.fn = b.unfused;
              s = static_cast<Status>(alone.fn(*this, alone));
            }
            if (__builtin_expect(s != ST_OK, 0)) break;
          } while (++in < blk_end_);
          k = static_cast<unsigned>(in - b.insn);
          if (s == ST_FUSED) {  // the fused pair retired: the block's last two instructions
            k += 2;
            s = ST_OK;
          }
          hits += k + (s != ST_OK);
          retired_total += k;
          left = rep ? rep_spare_ + n - k : left - k;  // k retired, one unit each, plus what REP iterations took
          // A block that jumps back to its own start (a hot loop) runs again without the
          // lookup above when nothing that lookup checks can have changed: same code page
          // translation, no store or A/D update into code since (epoch), budget left.
          if (s != ST_OK || r[R_RIP] != rip || left == 0 || b.epoch != code_epoch_ ||
              mmu_.generation() != fetch_gen_ || fetch_vpn_ != (rip >> kPageShift))
            break;
        }
        blk_len_ = 0;
        counters_.inc(C_decode_cache_hits, hits);
        if (s == ST_OK) continue;
        insn_rip = rip + b.insn[k].end - b.insn[k].len;
        if (s == ST_EXC) ss_fixup(b.insn[k]);  // #SS for a stack-segment reference
      }
    }
  stopped:
    switch (s) {
      case ST_EXIT:  // retired (OUT, IN, HLT): RIP already past it, the record names it
        ++retired_total;
        --left;
        exit_.f[EF_rip] = insn_rip;
        return finish(static_cast<ExitReason>(exit_.f[EF_reason]), budget - left);
      case ST_EXIT_NORET:
        r[R_RIP] = insn_rip;
        exit_.f[EF_rip] = insn_rip;
        return finish(static_cast<ExitReason>(exit_.f[EF_reason]), budget - left);
      case ST_PREEMPT:  // a REP out of units (its last one is charged here): resumes at the same RIP
        r[R_RIP] = insn_rip;
        --left;
        continue;
      default: {  // ST_EXC: a fault (RIP back on the instruction) or a trap (RIP past it), then deliver
        if (!pend_trap) r[R_RIP] = insn_rip;
        --left;
        const Delivery d = deliver_pending();
        if (d == DL_OK) continue;
        exit_.f[EF_rip] = insn_rip;
        if (d == DL_SHUTDOWN) shutdown_ = true;
        return finish(d == DL_SHUTDOWN ? EXIT_SHUTDOWN : static_cast<ExitReason>(exit_.f[EF_reason]), budget - left);
      }
    }
  }
}

// ---- exception delivery (SDM Vol. 3 §6.12-6.15, Vol. 2 INT n "IA-32e mode") ----

// Counted when the delivery completes, i.e. once per exception the guest's handler receives:
// a delivery interrupted by a VM exit and re-delivered after it counts once, and the
// exceptions of a chain that ends in a triple fault are never counted (exits_shutdown is).
void Cpu::count_exception(uint8_t vec) {
  switch (vec) {
    case V_DE: counters_.inc(C_exc_de); break;
    case V_UD: counters_.inc(C_exc_ud); break;
    case V_DF: counters_.inc(C_exc_df); break;
    case V_NP: counters_.inc(C_exc_np); break;
    case V_SS: counters_.inc(C_exc_ss); break;
    case V_GP: counters_.inc(C_exc_gp); break;
    case V_PF: counters_.inc(C_exc_pf); break;
    case V_BP: counters_.inc(C_exc_bp); break;
    default: break;
  }
}

namespace {
// Exception classes of SDM Table 6-4. #DE, #TS, #NP, #SS, #GP are contributory; #PF is its own
// class; #DF is an abort; everything else (here #UD) is benign.
enum ExcClass { EC_BENIGN, EC_CONTRIBUTORY, EC_PAGE_FAULT, EC_DOUBLE_FAULT };
inline ExcClass exc_class(uint8_t v) {
  switch (v) {
    case V_DE: case 10: case V_NP: case V_SS: case V_GP: return EC_CONTRIBUTORY;
    case V_PF: return EC_PAGE_FAULT;
    case V_DF: return EC_DOUBLE_FAULT;
    default: return EC_BENIGN;
  }
}
}  // namespace

void Cpu::chain_push(const Event& e) {
  if (chain_len_ < kChainMax) chain_[chain_len_] = e;
  chain_len_++;
}

// A fault detected by an instruction: a new chain starts.
Cpu::Delivery Cpu::deliver_pending() {
  chain_len_ = 0;
  const Event e{pend_vec, pend_has_err, pend_err, pend_trap};
  pend_trap = false;
  chain_push(e);
  return deliver_event(e);
}

// Deliver e; a second exception detected while delivering it is combined per SDM Table 6-5:
// benign first, or contributory then #PF: the second is delivered instead (serially: the
// first is lost; the instruction faults again after the handler returns); contributory then
// contributory, or #PF then contributory or #PF: #DF(0); contributory or #PF while delivering
// #DF: triple fault (shutdown). Only #DE/#UD/#GP/#PF start a chain, and delivery never raises
// a benign exception, so a chain has at most 6 entries (#UD #GP #PF #PF #DF #GP).
Cpu::Delivery Cpu::deliver_event(Event e) {
  for (;;) {
    const Status s = deliver(e.vec, e.err, e.has_err);
    if (s == ST_OK) {
      if (e.trap) ++retired_total;  // the trapping instruction completed with its delivery
      count_exception(e.vec);
      evt_valid_ = false;
      chain_len_ = 0;
      return DL_OK;
    }
    if (s != ST_EXC) {  // EPT violation / misconfiguration / MMIO while delivering
      evt_ = e;
      evt_valid_ = true;
      exit_.f[EF_vectoring_vector] = e.vec;
      exit_.f[EF_vectoring_error] = e.has_err ? e.err : kNoErrorCode;
      return DL_EXIT;
    }
    evt_valid_ = false;
    if (e.trap) r[R_RIP] = trap_rip_;  // a fault delivering a trap is reported on its instruction
    pend_trap = false;
    const Event second{pend_vec, pend_has_err, pend_err, false};
    chain_push(second);
    const ExcClass first = exc_class(e.vec), next = exc_class(second.vec);
    if (first == EC_DOUBLE_FAULT && next != EC_BENIGN) {
      triple_fault();
      return DL_SHUTDOWN;
    }
    if (chain_len_ >= kChainMax) {  // cannot happen (see above); never loop forever
      triple_fault();
      return DL_SHUTDOWN;
    }
    if ((first == EC_CONTRIBUTORY && next == EC_CONTRIBUTORY) ||
        (first == EC_PAGE_FAULT && next != EC_BENIGN)) {
      e = Event{V_DF, true, 0, false};
      chain_push(e);
    } else {
      e = second;
    }
  }
}

// One exception through the 64-bit IDT (interrupt/trap gate; no stack switch at CPL 0). Every
// fault detected here carries the SDM's error code with EXT = 1 (the event is an exception,
// external to the program, SDM 6.13): IDT-referencing faults vector*8 + 2 + 1, selector faults
// selector + 1. Nothing architectural changes unless the delivery completes.
Status Cpu::deliver(uint8_t vec, uint32_t err, bool has_err) {
  constexpr uint32_t kExt = 1;
  const uint32_t idt_err = static_cast<uint32_t>(vec) * 8 + 2 + kExt;
  if (static_cast<uint64_t>(vec) * 16 + 15 > r[R_IDTR_LIMIT]) return gp(idt_err);
  // 64-bit gate: offset 15..0 | selector | IST | type/attr | offset 31..16 | offset 63..32.
  const uint64_t gate = r[R_IDTR_BASE] + static_cast<uint64_t>(vec) * 16;
  uint64_t lo, hi;
  Status s = read(gate, 8, &lo);
  if (s != ST_OK) return s;
  if ((s = read(gate + 8, 8, &hi)) != ST_OK) return s;
  const unsigned type = (lo >> 40) & 0x1F, present = (lo >> 47) & 1, ist = (lo >> 32) & 7;
  // Type (with the S bit, which must be 0 for a system descriptor) before presence (SDM INT:
  // #GP for a descriptor that is not an interrupt or trap gate, then #NP for a not-present one).
  if (type != 0xE && type != 0xF) return gp(idt_err);
  if (!present) return raise(V_NP, idt_err, true);
  // No TSS exists in this machine, so an IST gate cannot be honoured: a delivery fault.
  if (ist != 0) return gp(idt_err);
  const uint16_t sel = static_cast<uint16_t>(lo >> 16);
  const uint32_t sel_err = (sel & 0xFFFCu) | kExt;
  if ((sel & 0xFFFCu) == 0) return gp(kExt);  // null code selector
  if ((sel & 4) || static_cast<uint64_t>(sel >> 3) * 8 + 7 > r[R_GDTR_LIMIT]) return gp(sel_err);
  uint64_t desc;
  if ((s = read(r[R_GDTR_BASE] + static_cast<uint64_t>(sel >> 3) * 8, 8, &desc)) != ST_OK) return s;
  // A code segment (S=1, executable) with DPL 0 (= CPL), 64-bit (L=1, D=0), present.
  const bool code = ((desc >> 43) & 3) == 3, dpl0 = ((desc >> 45) & 3) == 0;
  const bool long64 = ((desc >> 53) & 3) == 1;
  if (!code || !dpl0) return gp(sel_err);
  if (!((desc >> 47) & 1)) return raise(V_NP, sel_err, true);
  if (!long64) return gp(sel_err);
  // A non-canonical handler address is not checked here: the delivery completes and the
  // fetch at the handler raises #GP(0) with that RIP pushed, as QEMU 7.2 and this host's KVM
  // both do (measured with a probe guest; the SDM's INT pseudocode has #GP(EXT) instead).
  const uint64_t target = (lo & 0xFFFF) | ((lo >> 32) & 0xFFFF0000ull) | (hi << 32);
  // The frame goes on the current stack aligned down to 16 bytes; a non-canonical stack is
  // #SS(EXT), checked for both ends of the frame before anything is written.
  const unsigned words = has_err ? 6u : 5u;
  const uint64_t top = r[R_RSP] & ~0xFull;
  if (!canonical(r[R_RSP]) || !canonical(top - 8 * words)) return raise(V_SS, kExt, true);
  // Faults push RFLAGS with RF = 1 (SDM 17.3.1.1); #DF is an abort and #BP a trap: RF as it
  // is (0 here).
  const uint64_t flags = rflags() | (vec == V_DF || vec == V_BP ? 0 : FL_RF);
  const uint64_t frame[6] = {r[R_SS], r[R_RSP], flags, r[R_CS], r[R_RIP], err};
  uint64_t sp = top;
  for (unsigned k = 0; k < words; k++) {
    sp -= 8;
    if ((s = write(sp, 8, frame[k])) != ST_OK) return s;
  }
  r[R_RSP] = sp;
  r[R_RIP] = target;
  r[R_CS] = sel & 0xFFFCu;  // CS.RPL = CPL = 0, whatever RPL the gate's selector has
  r[R_RFLAGS] &= ~(FL_TF | FL_NT | FL_RF | (type == 0xE ? FL_IF : 0));
  return ST_OK;
}

// The exit record of a triple fault: the chain (vector<k>, error<k>, chain_len; vector0 is
// the exception the instruction raised), RIP of the faulting instruction, CR2, the first
// exception's error code (error_code, 0 if it has none) and up to 16 bytes at RIP.
void Cpu::triple_fault() {
  exit_.f[EF_reason] = EXIT_SHUTDOWN;
  const unsigned n_chain = std::min(chain_len_, kChainMax);
  exit_.f[EF_chain_len] = n_chain;
  static constexpr ExitField kVec[kChainMax] = {EF_vector0, EF_vector1, EF_vector2, EF_vector3,
                                                EF_vector4, EF_vector5, EF_vector6, EF_vector7};
  for (unsigned k = 0; k < kChainMax; k++) {
    const bool used = k < n_chain;
    exit_.f[kVec[k]] = used ? chain_[k].vec : static_cast<uint8_t>(V_NONE);
    exit_.f[EF_error0 + k] = used && chain_[k].has_err ? chain_[k].err : kNoErrorCode;
  }
  exit_.f[EF_cr2] = r[R_CR2];
  exit_.f[EF_error_code] = n_chain && chain_[0].has_err ? chain_[0].err : 0;
  exit_.f[EF_vectoring_vector] = V_NONE;
  uint8_t bytes[16] = {0};
  unsigned n = 0;
  const uint64_t rip = r[R_RIP];
  while (n < 16 && canonical(rip + n)) {
    Fault f;
    const uint8_t* p = mmu_.translate(Gva(rip + n), Access::Read, &f);
    if (!p) break;
    const unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(16 - n, kPageSize - ((rip + n) & kPageMask)));
    std::memcpy(bytes + n, p, chunk);
    n += chunk;
  }
  std::memcpy(&exit_.f[EF_insn_lo], bytes, 8);
  std::memcpy(&exit_.f[EF_insn_hi], bytes + 8, 8);
  exit_.f[EF_insn_len] = n;
}

}  // namespace hv
