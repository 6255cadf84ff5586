// The vCPU fuzz harness: one entry point that turns an arbitrary byte string into a small
// machine (Arena + Cpu + Mmu, identity-mapped guest RAM, with or without EPT), runs it for a
// bounded number of instructions while handling exits as the VMM would, and aborts on any
// broken invariant. Shared by the deterministic corpus runner (corpus.cc, built with
// ASan/UBSan by test/fuzz-native.test.ts) and the libFuzzer entry (libfuzzer.cc).
//
// Input layout (read front to back; missing bytes read as zero, so every input is valid):
//   16 header bytes  mode, placement, budgets, VMM-action seed (see harness.cc `Header`)
//   1 byte  P        number of patches (P % 32)
//   P x 11 bytes     patches: kind, index (u16), value (u64) applied before the first run to
//                    guest page tables, IDT, GDT, EPT entries, registers or guest memory
//   rest             code bytes placed at the code address (at most 8 KiB)
#pragma once
#include <cstddef>
#include <cstdint>

namespace hvfuzz {

struct Stats {
  uint64_t inputs = 0;
  uint64_t instructions = 0;
  uint64_t runs = 0;          // Cpu::run calls
  uint64_t exits[16] = {};    // by ExitReason (index clamped to 15)
  uint64_t ept_fixups = 0;    // EPT violations the harness resolved by mapping a page
  uint64_t diff_checked = 0;  // inputs whose EPT-identity run was compared with no-EPT
};

// Runs one input; aborts (after printing the broken invariant) on failure. With want_hash,
// returns a hash of the final registers, guest RAM and exit trace, so callers can check
// that a run is deterministic (hashing reads all 4 MiB of guest RAM: not on every input).
uint64_t fuzz_one(const uint8_t* data, size_t size, Stats* stats, bool want_hash = false);

}  // namespace hvfuzz
