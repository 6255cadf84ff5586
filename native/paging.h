// x86-64 paging and EPT constants, one definition each, named as in the Intel SDM (vol. 3
// ch. 2.5 control registers, ch. 4.5 4-level paging, ch. 4.7 page-fault error code, ch. 29.3
// EPT). Everything that builds, walks or checks a page table includes this header.
#pragma once
#include <cstdint>

namespace hv {

// ---- page sizes: 4 KiB, 2 MiB (PDE leaf), 1 GiB (PDPTE leaf); 512 entries per table ----
constexpr unsigned kPageShift = 12;
constexpr uint64_t kPageSize = 1ull << kPageShift;
constexpr uint64_t kPageMask = kPageSize - 1;
constexpr unsigned kHugeShift = 21;
constexpr uint64_t kHugeSize = 1ull << kHugeShift;
constexpr unsigned kGigShift = 30;
constexpr uint64_t kGigSize = 1ull << kGigShift;
constexpr unsigned kLevelBits = 9;  // table index bits per level
constexpr unsigned kTableEntries = 1u << kLevelBits;
// Bit position of the VA/GPA bits that index a level-`level` table (4 = PML4 .. 1 = PT);
// also the size shift of a leaf at that level.
constexpr unsigned level_shift(int level) { return kPageShift + kLevelBits * static_cast<unsigned>(level - 1); }

// 4-level paging and 4-level EPT translate address bits 47:0.
constexpr unsigned kVaBits = 48;
constexpr uint64_t kVaMask = (1ull << kVaBits) - 1;
// Physical-address field of a paging-structure or EPT entry: bits 51:12 (MAXPHYADDR 52).
constexpr uint64_t kAddrMask = 0x000FFFFFFFFFF000ull;

// ---- control registers and EFER ----
constexpr uint64_t CR0_PE = 1ull << 0, CR0_ET = 1ull << 4, CR0_WP = 1ull << 16, CR0_NW = 1ull << 29,
                   CR0_CD = 1ull << 30, CR0_PG = 1ull << 31;
constexpr uint64_t CR4_PSE = 1ull << 4, CR4_PAE = 1ull << 5, CR4_SMEP = 1ull << 20;
constexpr uint64_t EFER_LME = 1ull << 8, EFER_LMA = 1ull << 10, EFER_NXE = 1ull << 11;

// ---- guest paging-structure entries ----
constexpr uint64_t PTE_P = 1ull << 0, PTE_RW = 1ull << 1, PTE_US = 1ull << 2, PTE_A = 1ull << 5,
                   PTE_D = 1ull << 6, PTE_PS = 1ull << 7, PTE_NX = 1ull << 63;
// Reserved bits of large leaves (MAXPHYADDR 52): PAT is bit 12, so a 2 MiB leaf reserves
// bits 20:13 and a 1 GiB leaf bits 29:13.
constexpr uint64_t PTE_RSVD_2M = 0x1FE000ull, PTE_RSVD_1G = 0x3FFFE000ull;

// ---- page-fault error code ----
constexpr uint32_t PFEC_P = 1u << 0, PFEC_W = 1u << 1, PFEC_U = 1u << 2, PFEC_RSVD = 1u << 3,
                   PFEC_I = 1u << 4;

// ---- EPT entries: permissions R/W/X (bits 2:0), memory type (bits 5:3 of a leaf), PS ----
constexpr uint64_t EPT_R = 1ull << 0, EPT_W = 1ull << 1, EPT_X = 1ull << 2, EPT_PS = 1ull << 7;
constexpr uint64_t EPT_RWX = EPT_R | EPT_W | EPT_X;
constexpr unsigned EPT_MT_SHIFT = 3;
constexpr uint64_t EPT_MT_WB = 6;  // write-back

}  // namespace hv
