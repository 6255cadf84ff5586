// c-gups: HPCC RandomAccess (GUPS) on the demand-paged heap: Table[ran & (n-1)] ^= ran, ran the HPCC LFSR stream.
// arg 0: table = 8M bytes (rounded down to a power of two, at least 4 KiB)
// arg 1: updates = 0 (0 = 4 × table words, the HPCC rule)
// arg 2: start = 1 (first value of the stream; 1 is HPCC_starts(0))
// arg 3: verify = 1 (0 = skip HPCC's verification pass)
// HPCC's update rule (RandomAccess/core_single_cpu.c): ran = (ran << 1) ^ (ran < 0 ? POLY : 0),
// POLY = 7, then Table[ran & (TableSize - 1)] ^= ran; Table[i] = i before the updates. The
// checksum is hv_mix over the table after the updates; verification applies the same
// updates again (XOR undoes them) and counts the words that are not back to i.
#include "hv.h"
#include "kernel.h"

#define POLY 7UL

int main(void) {
  uint64_t bytes = hv_arg(0, 8388608), updates = hv_arg(1, 0), start = hv_arg(2, 1), verify = hv_arg(3, 1);
  if (bytes < 4096) hv_panic("c-gups: table must be at least 4 KiB, got %lu bytes", bytes);
  while (bytes & (bytes - 1)) bytes &= bytes - 1;
  uint64_t words = bytes / 8, mask = words - 1;
  if (!updates) updates = 4 * words;
  uint64_t *table = malloc(bytes);
  if (!table) hv_panic("c-gups: cannot allocate %lu bytes", bytes);
  for (uint64_t i = 0; i < words; i++) table[i] = i;
  uint64_t ran = start;
  hv_roi_begin();
  for (uint64_t i = 0; i < updates; i++) {
    ran = (ran << 1) ^ ((int64_t)ran < 0 ? POLY : 0);
    table[ran & mask] ^= ran;
  }
  hv_roi_end();
  uint64_t sum = HV_CHECKSUM_INIT;
  for (uint64_t i = 0; i < words; i++) sum = hv_mix(sum, table[i]);
  printf("c-gups: table %lu bytes updates %lu checksum 0x%016lx\n", bytes, updates, sum);
  if (verify) {
    ran = start;
    for (uint64_t i = 0; i < updates; i++) {
      ran = (ran << 1) ^ ((int64_t)ran < 0 ? POLY : 0);
      table[ran & mask] ^= ran;
    }
    uint64_t errors = 0;
    for (uint64_t i = 0; i < words; i++) errors += table[i] != i;
    printf("c-gups: verification errors %lu\n", errors);
    if (errors) return 1;
  }
  return 0;
}
