// c-hello: the docs/c-guests.md example: greets, then sums random numbers in a demand-paged heap array.
// arg 0: count = 100000 (numbers summed)
// arg 1: seed = 7
#include "hv.h"
#include "kernel.h"

int main(void) {
  uint64_t count = hv_arg(0, 100000), seed = hv_arg(1, 7);
  char who[32] = "world";
  hv_cmdline_get("name", who, sizeof who);
  printf("Hello, %s! %lu MiB of guest memory\n", who, hv_memory_size() >> 20);
  uint64_t *v = malloc(count * sizeof *v), sum = 0;
  if (!v) hv_panic("cannot allocate %lu numbers", count);
  hv_roi_begin();
  for (uint64_t i = 0; i < count; i++) v[i] = hv_rand(&seed) & 0xffff;
  for (uint64_t i = 0; i < count; i++) sum += v[i];
  hv_roi_end();
  printf("count %lu sum %lu checksum 0x%016lx\n", count, sum, hv_checksum(HV_CHECKSUM_INIT, v, count * 8));
  free(v);
  return 0;
}
