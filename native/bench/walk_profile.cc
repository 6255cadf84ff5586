// Standalone driver of the walk benchmark for instruction-count profiles
// (`npm run bench -- walk --profile`, bench/walk.ts): `walk_profile KIND N` runs N
// translations of one WalkBenchKind (native/bench/walk_bench.h) and prints the counters, so
// callgrind can count the host instructions of two runs that differ only in N. Not linked
// into either addon; compiled by bench/walk.ts with the addon's flags.
#include <cstdio>
#include <cstdlib>

#include "walk_bench.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: walk_profile KIND N (KIND 0..%u)\n", hv::kWalkBenchKinds - 1);
    return 2;
  }
  const unsigned long kind = std::strtoul(argv[1], nullptr, 10);
  const unsigned long long n = std::strtoull(argv[2], nullptr, 10);
  if (kind >= hv::kWalkBenchKinds || n == 0) {
    std::fprintf(stderr, "walk_profile: unknown kind %s or N %s\n", argv[1], argv[2]);
    return 2;
  }
  const hv::WalkBenchResult r = hv::run_walk_bench(static_cast<hv::WalkBenchKind>(kind), n);
  if (r.error) {
    std::fprintf(stderr, "walk_profile: %s\n", r.error);
    return 1;
  }
  std::printf("walks %llu refs %llu hits %llu\n", static_cast<unsigned long long>(r.walks),
              static_cast<unsigned long long>(r.refs), static_cast<unsigned long long>(r.hits));
  return 0;
}
