// c-stream: STREAM's copy, scale, add and triad kernels over three u64 arrays on the demand-paged heap.
// arg 0: elements = 1048576 (u64 per array: three arrays of 8 MiB)
// arg 1: iterations = 4 (passes of the four kernels)
// Integer STREAM: a[i] = i, b[i] = 2i + 1, c[i] = 0, scalar 3; each pass runs copy c = a,
// scale b = 3c, add c = a + b, triad a = b + 3c, each kernel its own ROI region in the
// first pass. Arithmetic wraps mod 2^64. Checksum: hv_mix of the sums of a, b and c.
#include "hv.h"
#include "kernel.h"

#define SCALAR 3UL

int main(void) {
  uint64_t n = hv_arg(0, 1048576), iterations = hv_arg(1, 4);
  uint64_t *a = malloc(n * 8), *b = malloc(n * 8), *c = malloc(n * 8);
  if (!n || !a || !b || !c) hv_panic("c-stream: cannot allocate 3 × %lu u64", n);
  for (uint64_t i = 0; i < n; i++) {
    a[i] = i;
    b[i] = 2 * i + 1;
    c[i] = 0;
  }
  for (uint64_t it = 0; it < iterations; it++) {
    if (!it) hv_roi_begin();
    for (uint64_t i = 0; i < n; i++) c[i] = a[i];
    if (!it) hv_roi_end(), hv_roi_begin();
    for (uint64_t i = 0; i < n; i++) b[i] = SCALAR * c[i];
    if (!it) hv_roi_end(), hv_roi_begin();
    for (uint64_t i = 0; i < n; i++) c[i] = a[i] + b[i];
    if (!it) hv_roi_end(), hv_roi_begin();
    for (uint64_t i = 0; i < n; i++) a[i] = b[i] + SCALAR * c[i];
    if (!it) hv_roi_end();
  }
  uint64_t sa = 0, sb = 0, sc = 0;
  for (uint64_t i = 0; i < n; i++) sa += a[i], sb += b[i], sc += c[i];
  uint64_t sum = hv_mix(hv_mix(hv_mix(HV_CHECKSUM_INIT, sa), sb), sc);
  printf("c-stream: elements %lu iterations %lu checksum 0x%016lx\n", n, iterations, sum);
  return 0;
}
