// Host-physical arena: lazy reservation, 2 MiB alignment, MADV_HUGEPAGE.
#include "arena.h"

#include <sys/mman.h>

namespace hv {

Arena* Arena::create(uint64_t bytes, const char** err) {
  if (bytes == 0 || (bytes & kPageMask) != 0) {
    *err = "arena size must be a non-zero multiple of 4096";
    return nullptr;
  }
  if (bytes > kMaxBytes) {
    *err = "arena size exceeds the 1 TiB maximum";
    return nullptr;
  }
  // Over-reserve by 2 MiB so the usable base can be 2 MiB aligned (THP needs aligned ranges).
  uint64_t map_len = bytes + kHugeSize;
  void* m = mmap(nullptr, map_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) {
    *err = "could not reserve the host-physical arena (mmap failed)";
    return nullptr;
  }
  uintptr_t b = (reinterpret_cast<uintptr_t>(m) + kHugeSize - 1) & ~(kHugeSize - 1);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(b), bytes, MADV_HUGEPAGE);
#endif
  return new Arena(reinterpret_cast<uint8_t*>(b), bytes, m, map_len);
}

Arena::~Arena() { munmap(map_, map_len_); }

bool Arena::discard(Hpa a, uint64_t len) {
  if (!contains(a, len) || (a.v & kPageMask) || (len & kPageMask)) return false;
  return madvise(base_ + a.v, len, MADV_DONTNEED) == 0;
}

}  // namespace hv
