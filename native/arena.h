// The host-physical arena: every byte of simulated host RAM (guest RAM, guest page tables,
// EPT tables). Host PFN n lives at byte n*4096. Reserved once with MAP_NORESERVE so a large
// simulated host costs only what is touched; 2 MiB aligned and MADV_HUGEPAGE so the
// emulator itself is backed by real THP where the host kernel allows it.
#pragma once
#include "paging.h"
#include "types.h"

namespace hv {

class Arena {
 public:
  // The largest reservation accepted: 1 TiB. The reservation is lazy (MAP_NORESERVE), so
  // this bounds address space, not memory; it keeps absurd sizes a clear error.
  static constexpr uint64_t kMaxBytes = 1ull << 40;
  // JS sees the arena as chunks of this many bytes (the last may be shorter): one external
  // ArrayBuffer may not exceed 2^32 bytes in Node 20, the core itself stays contiguous.
  static constexpr uint64_t kChunkShift = 30;
  static constexpr uint64_t kChunkSize = 1ull << kChunkShift;

  // Returns nullptr (and sets *err) when the reservation fails or size is invalid.
  static Arena* create(uint64_t bytes, const char** err);
  ~Arena();

  uint64_t size() const { return size_; }
  uint64_t frames() const { return size_ >> kPageShift; }
  uint8_t* base() const { return base_; }

  // Bounds check: `len` bytes starting at `a` lie inside the arena. Native code turns an
  // Hpa into a pointer (base() + a.v) only after this check, or after an equivalent one
  // (the EPT walk checks each table once, see ept.h).
  bool contains(Hpa a, uint64_t len = 1) const { return a.v < size_ && len <= size_ - a.v; }

  // Return a range to the kernel (MADV_DONTNEED): the bytes read as zero afterwards.
  bool discard(Hpa a, uint64_t len);

 private:
  Arena(uint8_t* base, uint64_t size, void* map, uint64_t map_len)
      : base_(base), size_(size), map_(map), map_len_(map_len) {}
  uint8_t* base_;
  uint64_t size_;
  void* map_;
  uint64_t map_len_;
};

}  // namespace hv
