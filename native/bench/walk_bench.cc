// Native half of bench/walk.ts (see walk_bench.h).
#include "walk_bench.h"

#include <time.h>

#include <chrono>
#include <memory>
#include <vector>

#include "../paging.h"
#include "../test/walk_fixture.h"

namespace hv {

WalkBenchResult run_walk_bench(WalkBenchKind kind, uint64_t n) {
  WalkBenchResult r{0, 0, 0, 0, 0, nullptr};
  const char* err = nullptr;
  std::unique_ptr<Arena> arena(Arena::create(WalkFixture::kArenaSize, &err));
  if (!arena) {
    r.error = err;
    return r;
  }
  WalkFixture fx(arena.get());
  const bool ept = kind != WalkBenchKind::ColdNative;
  const bool cold = kind == WalkBenchKind::Cold2D || kind == WalkBenchKind::ColdNative;
  constexpr uint64_t kGva = 0x00007f8000000000ull, kData = kGigSize;
  // 1 GiB of 4 KiB guest pages for the miss bench; a few pages suffice for the others.
  const uint64_t pages = kind == WalkBenchKind::Miss2D ? (1ull << 18) : 64;
  for (uint64_t i = 0; i < pages; ++i) fx.guest_map(kGva + i * kPageSize, kData + i * kPageSize, 1);
  if (ept) fx.ept_map(0, WalkFixture::kGuestSize, 1);
  Counters c{};
  Mmu mmu(arena.get(), &c);
  if ((err = mmu.configure(fx.config(ept, cold ? TlbGeometry::none() : TlbGeometry{})))) {
    r.error = err;
    return r;
  }
  mmu.set_control(CR0_PG | CR0_WP | CR0_PE, fx.cr3(), CR4_PAE, EFER_LME | EFER_LMA | EFER_NXE);
  // Precomputed address stream, so the timed loop is only translate().
  std::vector<uint64_t> gva(4096);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < gva.size(); ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    switch (kind) {
      case WalkBenchKind::L1HitSame: gva[i] = kGva + (i & 511) * 8; break;
      case WalkBenchKind::L1HitRotate: gva[i] = kGva + (i & 31) * kPageSize + 8; break;
      default: gva[i] = kGva + (x % pages) * kPageSize + (x >> 60) * 8; break;
    }
  }
  Fault f;
  uint64_t sink = 0;
  for (uint64_t i = 0; i < 4096; ++i) sink += reinterpret_cast<uintptr_t>(mmu.translate(Gva(gva[i]), Access::Read, &f));
  c.clear();
  timespec c0, c1;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i)
    sink += reinterpret_cast<uintptr_t>(mmu.translate(Gva(gva[i & 4095]), Access::Read, &f));
  const auto t1 = std::chrono::steady_clock::now();
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
  r.cpu_ns = static_cast<uint64_t>((c1.tv_sec - c0.tv_sec) * 1000000000ll + (c1.tv_nsec - c0.tv_nsec));
  r.ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  r.walks = c.v[C_walks];
  r.refs = c.v[C_walk_refs];
  r.hits = c.v[C_tlb_hits];
  if (sink == 1) r.error = "unreachable";  // keeps the loop's results observable
  return r;
}

}  // namespace hv
