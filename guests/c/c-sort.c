// c-sort: LSD radix sort (8 passes of 8 bits) of random u64 keys on the demand-paged heap.
// arg 0: elements = 1048576 (u64 keys, plus as many for the scratch buffer)
// arg 1: seed = 1
// Keys are hv_rand(seed) in order; the sort is verified (each key >= its predecessor).
// Checksum: hv_mix over the sorted keys, so any correct sort prints the same.
#include "hv.h"
#include "kernel.h"

int main(void) {
  uint64_t n = hv_arg(0, 1048576), seed = hv_arg(1, 1);
  uint64_t *keys = malloc(n * 8), *tmp = malloc(n * 8);
  if (!n || !keys || !tmp) hv_panic("c-sort: cannot allocate 2 × %lu u64", n);
  for (uint64_t i = 0; i < n; i++) keys[i] = hv_rand(&seed);
  hv_roi_begin();
  for (unsigned shift = 0; shift < 64; shift += 8) {
    uint64_t count[256] = {0};
    for (uint64_t i = 0; i < n; i++) count[(keys[i] >> shift) & 255]++;
    uint64_t pos = 0;
    for (unsigned d = 0; d < 256; d++) {
      uint64_t c = count[d];
      count[d] = pos;
      pos += c;
    }
    for (uint64_t i = 0; i < n; i++) tmp[count[(keys[i] >> shift) & 255]++] = keys[i];
    uint64_t *t = keys;
    keys = tmp;
    tmp = t;
  }
  hv_roi_end();
  uint64_t sum = HV_CHECKSUM_INIT;
  for (uint64_t i = 0; i < n; i++) {
    if (i && keys[i] < keys[i - 1]) hv_panic("c-sort: not sorted at %lu", i);
    sum = hv_mix(sum, keys[i]);
  }
  printf("c-sort: elements %lu checksum 0x%016lx\n", n, sum);
  return 0;
}
