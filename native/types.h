// Address spaces as distinct types (ARCHITECTURE.md "Address spaces are types").
// A Gva is never silently a Gpa: conversions go through the walker, the EPT or named helpers.
#pragma once
#include <cstdint>
#include <cstddef>

namespace hv {

#define HV_ADDR_TYPE(Name)                                                   \
  struct Name {                                                              \
    uint64_t v;                                                              \
    constexpr explicit Name(uint64_t x = 0) : v(x) {}                        \
    constexpr bool operator==(Name o) const { return v == o.v; }             \
    constexpr bool operator!=(Name o) const { return v != o.v; }             \
  };

HV_ADDR_TYPE(Gva)  // guest virtual
HV_ADDR_TYPE(Gpa)  // guest physical
HV_ADDR_TYPE(Hpa)  // host physical byte address (offset into the arena)
HV_ADDR_TYPE(Pfn)  // host page frame number: Hpa = Pfn * 4096
#undef HV_ADDR_TYPE

constexpr uint64_t kPageShift = 12;
constexpr uint64_t kPageSize = 1ull << kPageShift;
constexpr uint64_t kPageMask = kPageSize - 1;
constexpr uint64_t kHugeSize = 2ull << 20;
constexpr uint64_t kGigSize = 1ull << 30;

constexpr Hpa pfn_to_hpa(Pfn p) { return Hpa(p.v << kPageShift); }
constexpr Pfn hpa_to_pfn(Hpa a) { return Pfn(a.v >> kPageShift); }

// Kind of memory access, as the walker and the EPT-violation exit report it.
enum class Access : uint8_t { Read = 0, Write = 1, Fetch = 2 };

}  // namespace hv
