// System handlers: HLT, IN/OUT (VM exits), MOV to/from CR0/CR2/CR3/CR4, INVLPG, LGDT/SGDT/
// LIDT/SIDT, IRETQ, CPUID, RDTSC, CLI/STI/CLD/STD, CLC/STC/CMC, INT3, WBINVD, UD2, and the GDT descriptor read
// shared with segment loads and exception delivery. Everything runs at CPL 0 in long mode.
#include "exec.h"
#include "paging.h"

namespace hv {

namespace {
// CR4 bits this CPU has (VME..OSXMMEXCPT); anything else (PCIDE, SMEP, ...) is reserved → #GP.
constexpr uint64_t CR4_SUPPORTED = 0x7FF;
}  // namespace

Status read_descriptor(Cpu& c, uint16_t sel, uint64_t* desc) {
  if (sel & 4) return c.gp(sel & 0xfffcu);  // no LDT
  const uint64_t off = static_cast<uint64_t>(sel >> 3) * 8;
  if (off == 0 || off + 7 > c.r[R_GDTR_LIMIT]) return c.gp(sel & 0xfffcu);
  return c.read(c.r[R_GDTR_BASE] + off, 8, desc);
}

int h_hlt(Cpu& c, const Insn&) {
  c.exit_.f[EF_reason] = EXIT_HLT;  // no interrupts exist: nothing can wake it
  return ST_EXIT;
}

// Port I/O: E4/E5/E6/E7 take an imm8 port, EC..EF use DX. Size: byte forms 1, else 4 (2 with
// 0x66). The instruction retires at the exit; for IN, the next run() writes exit[value].
namespace {
int io_exit(Cpu& c, const Insn& i, bool in) {
  const uint64_t port = (i.op & 8) ? (c.r[R_RDX] & 0xffff) : (i.imm & 0xff);
  c.exit_.f[EF_reason] = EXIT_IO;
  c.exit_.f[EF_io_port] = port;
  c.exit_.f[EF_io_size] = i.osz;
  c.exit_.f[EF_io_direction] = in ? 1 : 0;
  c.exit_.f[EF_value] = in ? 0 : (c.r[R_RAX] & size_mask(i.osz));
  if (in) c.pending_in_size = i.osz;
  return ST_EXIT;
}
}  // namespace
int h_in(Cpu& c, const Insn& i) { return io_exit(c, i, true); }
int h_out(Cpu& c, const Insn& i) { return io_exit(c, i, false); }

// ---- control registers (i.reg = CR number, i.rm = the GPR) ----
int h_mov_from_cr(Cpu& c, const Insn& i) {
  switch (i.reg) {
    case 0: c.r[i.rm] = c.r[R_CR0]; break;
    case 2: c.r[i.rm] = c.r[R_CR2]; break;
    case 3: c.r[i.rm] = c.r[R_CR3]; break;
    case 4: c.r[i.rm] = c.r[R_CR4]; break;
    default: return c.ud();
  }
  return ST_OK;
}

int h_mov_to_cr(Cpu& c, const Insn& i) {
  const uint64_t v = c.r[i.rm];
  switch (i.reg) {
    case 0:
      // Leaving paging or protected mode from long mode, reserved bits, NW without CD: #GP.
      if ((v >> 32) || !(v & CR0_PG) || !(v & CR0_PE) || ((v & CR0_NW) && !(v & CR0_CD))) return c.gp();
      c.r[R_CR0] = v | CR0_ET;
      c.control_changed();
      return ST_OK;
    case 2: c.r[R_CR2] = v; return ST_OK;
    case 3:
      if (v >> 52) return c.gp();  // MAXPHYADDR 52: higher bits are reserved
      c.r[R_CR3] = v;
      c.counters_.inc(C_cr3_writes);
      c.control_changed();
      c.mmu_.flush_guest();  // no PCID: every guest-derived translation goes
      return ST_OK;
    case 4:
      if ((v & ~CR4_SUPPORTED) || !(v & CR4_PAE)) return c.gp();
      c.r[R_CR4] = v;
      c.control_changed();
      return ST_OK;
    default: return c.ud();
  }
}

int h_invlpg(Cpu& c, const Insn& i) {
  c.counters_.inc(C_invlpg);
  c.mmu_.invlpg(Gva(ea(c, i)));  // no memory access; a non-canonical address is a no-op
  c.fetch_invalidate();
  return ST_OK;
}

// ---- descriptor-table registers: 2-byte limit then 8-byte base in memory ----
namespace {
int load_dtr(Cpu& c, const Insn& i, Reg base_reg, Reg limit_reg) {
  const uint64_t a = ea(c, i);
  uint64_t limit, base;
  Status s = c.read(a, 2, &limit);
  if (s == ST_OK) s = c.read(a + 2, 8, &base);
  if (s != ST_OK) return s;
  if (!Cpu::canonical(base)) return c.gp();
  c.r[base_reg] = base;
  c.r[limit_reg] = limit;
  return ST_OK;
}
int store_dtr(Cpu& c, const Insn& i, Reg base_reg, Reg limit_reg) {
  const uint64_t a = ea(c, i);
  Status s = c.write(a, 2, c.r[limit_reg] & 0xffff);
  if (s == ST_OK) s = c.write(a + 2, 8, c.r[base_reg]);
  return s;
}
}  // namespace
int h_lgdt(Cpu& c, const Insn& i) { return load_dtr(c, i, R_GDTR_BASE, R_GDTR_LIMIT); }
int h_lidt(Cpu& c, const Insn& i) { return load_dtr(c, i, R_IDTR_BASE, R_IDTR_LIMIT); }
int h_sgdt(Cpu& c, const Insn& i) { return store_dtr(c, i, R_GDTR_BASE, R_GDTR_LIMIT); }
int h_sidt(Cpu& c, const Insn& i) { return store_dtr(c, i, R_IDTR_BASE, R_IDTR_LIMIT); }

// IRETQ at CPL 0: pops RIP, CS, RFLAGS, RSP, SS. CS must name a present 64-bit code
// segment with RPL 0 (no return to user mode in this machine); SS null or a writable data
// segment.
int h_iretq(Cpu& c, const Insn&) {
  if (c.r[R_RFLAGS] & FL_NT) return c.gp();  // a task return, which IA-32e mode does not have
  uint64_t f[5];
  const uint64_t sp = c.r[R_RSP];
  for (unsigned k = 0; k < 5; k++) {
    Status s = c.stack_access(c.read(sp + 8 * k, 8, &f[k]));  // #SS(0) if non-canonical
    if (s != ST_OK) return s;
  }
  const uint16_t cs = static_cast<uint16_t>(f[1]), ss = static_cast<uint16_t>(f[4]);
  uint64_t desc;
  Status s = read_descriptor(c, cs, &desc);
  if (s != ST_OK) return s;
  if ((cs & 3) || !((desc >> 43) & 1) || !((desc >> 53) & 1) || !((desc >> 47) & 1)) return c.gp(cs & 0xfffcu);
  if ((ss & ~3u) != 0) {
    if ((s = read_descriptor(c, ss, &desc)) != ST_OK) return s;
    if ((ss & 3) || ((desc >> 43) & 1) || !((desc >> 41) & 1) || !((desc >> 47) & 1)) return c.gp(ss & 0xfffcu);
  } else if (ss & 3) {
    return c.gp(0);
  }
  if (!Cpu::canonical(f[0])) return c.gp();
  c.r[R_RIP] = f[0];
  c.r[R_CS] = cs;
  c.set_rflags((f[2] & FL_WRITABLE) | FL_FIXED);
  c.r[R_RSP] = f[3];
  c.r[R_SS] = ss;
  return ST_OK;
}

// CPUID: vendor leaf, leaf 1 (PSE, TSC, PAE, CMOV), 0x80000000/1 (LM, NX, 1 GiB pages;
// LAHF/SAHF, PREFETCHW). Other leaves read as zero. The SSE/SSE2 bits stay clear although the
// fences, PREFETCHh and MOVNTI execute: no XMM state exists.
int h_cpuid(Cpu& c, const Insn&) {
  const uint32_t leaf = static_cast<uint32_t>(c.r[R_RAX]);
  uint32_t a = 0, b = 0, cx = 0, d = 0;
  switch (leaf) {
    case 0:
      a = 1;
      std::memcpy(&b, "Huge", 4);  // "HugeVisorCPU" in EBX, EDX, ECX order
      std::memcpy(&d, "Viso", 4);
      std::memcpy(&cx, "rCPU", 4);
      break;
    case 1:
      a = 0x00000600;  // family 6, model 0, stepping 0
      d = (1u << 3) | (1u << 4) | (1u << 6) | (1u << 15);
      break;
    case 0x80000000: a = 0x80000001; break;
    case 0x80000001:
      cx = (1u << 0) | (1u << 8);  // LAHF/SAHF in 64-bit mode; PREFETCH/PREFETCHW (0F 0D)
      d = (1u << 20) | (1u << 26) | (1u << 29);
      break;
    default: break;
  }
  c.r[R_RAX] = a;
  c.r[R_RBX] = b;
  c.r[R_RCX] = cx;
  c.r[R_RDX] = d;
  return ST_OK;
}

// RDTSC = tsc_offset + instructions retired before this one (simulated cycles; TS adds the
// costs of exits to tsc_offset). Inside a block retired_total is only brought up to date at
// the end of each pass (cpu.h), so the count is the pass's start plus this instruction's index.
int h_rdtsc(Cpu& c, const Insn& i) {
  const uint64_t t = c.r[R_TSC_OFFSET] + c.retired_total + i.idx;
  c.r[R_RAX] = t & 0xffffffffull;
  c.r[R_RDX] = t >> 32;
  return ST_OK;
}

int h_cli(Cpu& c, const Insn&) { c.r[R_RFLAGS] &= ~FL_IF; return ST_OK; }
int h_sti(Cpu& c, const Insn&) { c.r[R_RFLAGS] |= FL_IF; return ST_OK; }
int h_clc(Cpu& c, const Insn&) { c.afl_ &= ~Cpu::kAflCF; return ST_OK; }
int h_stc(Cpu& c, const Insn&) { c.afl_ |= Cpu::kAflCF; return ST_OK; }
int h_cmc(Cpu& c, const Insn&) { c.afl_ ^= Cpu::kAflCF; return ST_OK; }
// INT3: #BP, a trap: delivered with RIP past the instruction (cpu.h, raise_trap).
int h_int3(Cpu& c, const Insn& i) { return c.raise_trap(V_BP, c.r[R_RIP] - i.len); }
int h_cld(Cpu& c, const Insn&) { c.r[R_RFLAGS] &= ~FL_DF; return ST_OK; }
int h_std(Cpu& c, const Insn&) { c.r[R_RFLAGS] |= FL_DF; return ST_OK; }
int h_wbinvd(Cpu&, const Insn&) { return ST_OK; }  // no caches are modeled
int h_ud(Cpu& c, const Insn&) { return c.ud(); }    // UD2 and every encoding outside the subset
int h_gp(Cpu& c, const Insn&) { return c.gp(); }    // instruction longer than 15 bytes

}  // namespace hv
