// Deterministic corpus runner for the vCPU fuzz harness: replays committed regression inputs,
// then generates inputs from a seed — random bytes, mutated code of the sample guests
// (build/guests/*.elf), decoder edge cases (prefix stacks, REX combinations, ModRM/SIB and
// RIP-relative forms, 15-byte limits, instructions across page ends and the end of guest RAM)
// and garbage CR3/IDT/GDT/EPT pointers — and runs each through hvfuzz::fuzz_one. Every 8th
// input runs twice and must hash the same (determinism). Built with ASan/UBSan by
// test/fuzz-native.test.ts; a failure aborts with the sanitizer or invariant report.
//
//   fuzz_corpus [--seed N] [--count N] [--seconds S] [--regress DIR] [--elf FILE]...
//               [--last FILE] [--timeout S] [FILE...]
// --timeout (default 120 s): an input that runs longer is a hang (FUZZ HANG, exit 3). Only a
// guard against a run() that never returns: every input runs at most 4096 budget units (a REP
// iteration is one), so even a sanitizer build needs well under a second; the harness
// asserts the budget itself.
// FILE arguments are replayed alone (reproducing a crash). --last writes each generated
// input to FILE before running it, so after a crash FILE holds the crashing input.
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "harness.h"

namespace {

using Bytes = std::vector<uint8_t>;

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  uint8_t byte() { return static_cast<uint8_t>(next()); }
};

bool read_file(const std::string& path, Bytes* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  uint8_t buf[65536];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  return true;
}

// The bytes of every executable PT_LOAD segment of a static ELF64 (no validation beyond
// bounds: these are the project's own guests).
Bytes elf_code(const Bytes& e) {
  Bytes code;
  if (e.size() < 64 || std::memcmp(e.data(), "\x7f" "ELF", 4) != 0) return code;
  auto u = [&](size_t off, unsigned k) {
    uint64_t v = 0;
    for (unsigned i = 0; i < k && off + i < e.size(); i++) v |= static_cast<uint64_t>(e[off + i]) << (8 * i);
    return v;
  };
  const uint64_t phoff = u(32, 8), phentsize = u(54, 2), phnum = u(56, 2);
  for (uint64_t i = 0; i < phnum; i++) {
    const uint64_t ph = phoff + i * phentsize;
    if (u(ph, 4) != 1 || !(u(ph + 4, 4) & 1)) continue;
    const uint64_t off = u(ph + 8, 8), sz = u(ph + 32, 8);
    if (off > e.size() || sz > e.size() - off) continue;
    code.insert(code.end(), e.begin() + static_cast<long>(off), e.begin() + static_cast<long>(off + sz));
  }
  return code;
}

// Header (16 bytes) + patches: see tools/fuzz/harness.h.
void header(Rng& r, Bytes& b, bool edge) {
  b.push_back(r.byte());                                           // mode
  b.push_back(edge ? static_cast<uint8_t>(0x80 | r.below(0x80)) : r.byte());  // RIP placement
  b.push_back(edge ? static_cast<uint8_t>(r.below(3) == 0 ? 1 : r.below(8)) : r.byte());
  b.push_back(r.byte());                                           // RCX
  const uint64_t total = 64 + r.below(1500);
  b.push_back(static_cast<uint8_t>(total)); b.push_back(static_cast<uint8_t>(total >> 8));
  b.push_back(r.byte());                                           // per-run budget
  b.push_back(r.below(2) ? 0 : r.byte());                          // VMM action rate
  for (int i = 0; i < 8; i++) b.push_back(r.byte());
}

void patches(Rng& r, Bytes& b, unsigned n, bool garbage) {
  b.push_back(static_cast<uint8_t>(n));
  for (unsigned k = 0; k < n; k++) {
    // Garbage pointers: CR3/EPTP (7), registers incl. IDTR/GDTR (5), EPT (4), page tables (0/1).
    static const uint8_t kGarbage[] = {7, 5, 4, 0, 1, 2, 3};
    b.push_back(garbage ? kGarbage[r.below(sizeof kGarbage)] : r.byte());
    b.push_back(r.byte()); b.push_back(r.byte());
    uint64_t v = r.next();
    switch (r.below(6)) {  // values near the interesting edges
      case 0: v &= 0xFFFFF; break;
      case 1: v = (v & 0x3FFFFF) | 0x3; break;
      case 2: v = ~0ull - r.below(0x2000); break;
      case 3: v = 0x00007FFFFFFFF000ull | r.below(0x1000); break;
      case 4: v = (8ull << 20) - 8 + r.below(16); break;
      default: break;
    }
    for (int i = 0; i < 8; i++) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
}

// One instruction built from the x86 encoding grammar, legal or not.
void edge_insn(Rng& r, Bytes& b) {
  static const uint8_t kPrefixes[] = {0x66, 0xF3, 0xF2, 0x67, 0x2E, 0x3E, 0x26, 0x64, 0x65, 0x36, 0xF0};
  const unsigned np = r.below(4) == 0 ? static_cast<unsigned>(r.below(16)) : static_cast<unsigned>(r.below(3));
  for (unsigned k = 0; k < np; k++) b.push_back(kPrefixes[r.below(sizeof kPrefixes)]);
  if (r.below(2)) b.push_back(static_cast<uint8_t>(0x40 | r.below(16)));  // REX
  if (r.below(4) == 0) b.push_back(static_cast<uint8_t>(0x40 | r.below(16)));  // REX not last
  if (r.below(3) == 0) {
    b.push_back(0x0F);
    if (r.below(8) == 0) b.push_back(r.below(2) ? 0x38 : 0x3A);
  }
  b.push_back(r.byte());
  uint8_t modrm = r.byte();
  if (r.below(3) == 0) modrm = static_cast<uint8_t>((modrm & 0x38) | 0x05);  // RIP-relative
  if (r.below(3) == 0) modrm = static_cast<uint8_t>((modrm & 0xF8) | 0x04);  // SIB follows
  b.push_back(modrm);
  const unsigned extra = static_cast<unsigned>(r.below(12));
  for (unsigned k = 0; k < extra; k++) b.push_back(r.byte());
}

Bytes gen_random(Rng& r) {
  Bytes b;
  header(r, b, false);
  patches(r, b, static_cast<unsigned>(r.below(4) == 0 ? r.below(12) : 0), false);
  const size_t n = r.below(4) == 0 ? r.below(8192) : r.below(600);
  for (size_t k = 0; k < n; k++) b.push_back(r.byte());
  return b;
}

Bytes gen_mutated(Rng& r, const std::vector<Bytes>& codes) {
  Bytes b;
  header(r, b, false);
  b[0] &= static_cast<uint8_t>(~0x80);  // mostly dense EPT: let the code run
  b[1] = static_cast<uint8_t>(r.below(0x80));
  patches(r, b, static_cast<unsigned>(r.below(3)), false);
  const Bytes& src = codes[r.below(codes.size())];
  const size_t at = r.below(src.size()), len = 1 + r.below(std::min<size_t>(src.size() - at, 1024));
  Bytes code(src.begin() + static_cast<long>(at), src.begin() + static_cast<long>(at + len));
  const unsigned muts = static_cast<unsigned>(1 + r.below(8));
  for (unsigned k = 0; k < muts && !code.empty(); k++) {
    const size_t p = r.below(code.size());
    switch (r.below(6)) {
      case 0: code[p] ^= static_cast<uint8_t>(1u << r.below(8)); break;
      case 1: code[p] = r.byte(); break;
      case 2: code.insert(code.begin() + static_cast<long>(p), static_cast<uint8_t>(0x40 | r.below(16))); break;
      case 3: code.insert(code.begin() + static_cast<long>(p), r.below(2) ? 0x66 : 0xF3); break;
      case 4: code.erase(code.begin() + static_cast<long>(p)); break;
      default: {  // splice from another guest
        const Bytes& o = codes[r.below(codes.size())];
        const size_t q = r.below(o.size()), m = std::min<size_t>(o.size() - q, 1 + r.below(32));
        code.insert(code.begin() + static_cast<long>(p), o.begin() + static_cast<long>(q),
                    o.begin() + static_cast<long>(q + m));
      }
    }
  }
  b.insert(b.end(), code.begin(), code.end());
  return b;
}

Bytes gen_edge(Rng& r) {
  Bytes b;
  header(r, b, r.below(2) == 0);
  patches(r, b, static_cast<unsigned>(r.below(3)), false);
  // Code fills the area up to RIP with NOPs so the instruction sits where RIP says.
  const uint8_t rip = b[1];
  const size_t at = rip < 0x80 ? rip : ((rip & 0x40) ? 8192 : 4096) - 1 - (rip & 0x0F);
  Bytes code(at, 0x90);
  const unsigned n = static_cast<unsigned>(1 + r.below(24));
  for (unsigned k = 0; k < n; k++) edge_insn(r, code);
  b.insert(b.end(), code.begin(), code.end());
  return b;
}

Bytes gen_garbage(Rng& r, const std::vector<Bytes>& codes) {
  Bytes b = codes.empty() || r.below(2) ? gen_random(r) : gen_mutated(r, codes);
  // Replace the patch list with a dense one of garbage pointers.
  Bytes out(b.begin(), b.begin() + 16);
  patches(r, out, static_cast<unsigned>(1 + r.below(31)), true);
  const unsigned old = b[16] % 32;
  const size_t code_at = std::min<size_t>(b.size(), 17 + 11 * old);
  out.insert(out.end(), b.begin() + static_cast<long>(code_at), b.end());
  return out;
}

void save(const std::string& path, const Bytes& b) {
  if (path.empty()) return;
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
  }
}

void on_alarm(int) {
  static const char msg[] = "FUZZ HANG: one input ran past --timeout (a run() that never returns)\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(3);
}

// Arms the watchdog for one input.
void watch(unsigned seconds) { alarm(seconds); }

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 1, count = 1000;
  double seconds = 0;
  unsigned timeout = 120;
  std::string regress, save_dir;
  std::vector<std::string> elfs, replay;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto val = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seed") seed = std::strtoull(val().c_str(), nullptr, 0);
    else if (a == "--count") count = std::strtoull(val().c_str(), nullptr, 0);
    else if (a == "--seconds") seconds = std::strtod(val().c_str(), nullptr);
    else if (a == "--regress") regress = val();
    else if (a == "--elf") elfs.push_back(val());
    else if (a == "--last") save_dir = val();
    else if (a == "--timeout") timeout = static_cast<unsigned>(std::strtoul(val().c_str(), nullptr, 0));
    else replay.push_back(a);
  }
  hvfuzz::Stats st;
  Bytes b;
  signal(SIGALRM, on_alarm);
  if (!replay.empty()) {
    for (const std::string& p : replay) {
      if (!read_file(p, &b)) { std::fprintf(stderr, "cannot read %s\n", p.c_str()); return 2; }
      watch(timeout);
      hvfuzz::fuzz_one(b.data(), b.size(), &st);
      std::printf("ok %s\n", p.c_str());
    }
    return 0;
  }
  uint64_t regressions = 0;
  if (!regress.empty()) {
    std::vector<std::string> files;
    if (DIR* d = opendir(regress.c_str())) {
      while (dirent* e = readdir(d))
        if (std::strstr(e->d_name, ".bin")) files.push_back(regress + "/" + e->d_name);
      closedir(d);
    }
    std::sort(files.begin(), files.end());
    for (const std::string& p : files) {
      if (!read_file(p, &b)) continue;
      watch(timeout);
      hvfuzz::fuzz_one(b.data(), b.size(), &st);
      regressions++;
    }
  }
  std::vector<Bytes> codes;
  for (const std::string& p : elfs) {
    Bytes e;
    if (read_file(p, &e)) {
      Bytes c = elf_code(e);
      if (!c.empty()) codes.push_back(c);
    }
  }
  Rng r{seed};
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t n = 0, determinism = 0, kinds[4] = {};
  for (; n < count; n++) {
    if (seconds > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) break;
    unsigned kind = static_cast<unsigned>(n % 4);
    if (kind == 1 && codes.empty()) kind = 0;
    kinds[kind]++;
    b = kind == 0 ? gen_random(r) : kind == 1 ? gen_mutated(r, codes) : kind == 2 ? gen_edge(r) : gen_garbage(r, codes);
    save(save_dir, b);
    watch(timeout);
    const bool twice = n % 8 == 0;
    const uint64_t h1 = hvfuzz::fuzz_one(b.data(), b.size(), &st, twice);
    if (twice) {
      determinism++;
      if (hvfuzz::fuzz_one(b.data(), b.size(), &st, true) != h1) {
        std::fprintf(stderr, "FUZZ INVARIANT: input %llu is not deterministic\n", static_cast<unsigned long long>(n));
        return 1;
      }
    }
  }
  std::printf("regressions %llu\n", static_cast<unsigned long long>(regressions));
  std::printf("inputs %llu (random %llu, guest-code mutations %llu, decoder edges %llu, garbage pointers %llu)\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(kinds[0]),
              static_cast<unsigned long long>(kinds[1]), static_cast<unsigned long long>(kinds[2]),
              static_cast<unsigned long long>(kinds[3]));
  std::printf("determinism checks %llu\n", static_cast<unsigned long long>(determinism));
  std::printf("differential checks %llu\n", static_cast<unsigned long long>(st.diff_checked));
  std::printf("runs %llu instructions %llu ept fixups %llu\n", static_cast<unsigned long long>(st.runs),
              static_cast<unsigned long long>(st.instructions), static_cast<unsigned long long>(st.ept_fixups));
  std::printf("exits");
  for (unsigned k = 0; k < 16; k++)
    if (st.exits[k]) std::printf(" %u:%llu", k, static_cast<unsigned long long>(st.exits[k]));
  std::printf("\nfuzz ok\n");
  return 0;
}
