// Address spaces as distinct types (the TS side brands them the same way: src/util/address.ts).
// A Gva is never silently a Gpa: conversions go through the walker, the EPT or named helpers.
#pragma once
#include <cstdint>

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
#undef HV_ADDR_TYPE

}  // namespace hv
