// c-chase: pointer chase around one random cycle (Sattolo's algorithm) of 64-byte nodes on the demand-paged heap.
// arg 0: nodes = 262144 (64 bytes each: 16 MiB)
// arg 1: steps = 1000000
// arg 2: seed = 1
// Sattolo: p = identity; for i = n-1 down to 1: j = hv_rand % i, swap p[i], p[j]; node i's
// successor is node p[i], a single cycle through every node. The chase starts at node 0
// and adds up the ids of the nodes it lands on. Checksum: hv_mix(hv_mix(INIT, final id), sum).
#include "hv.h"
#include "kernel.h"

struct node {
  struct node *next;
  uint64_t id;
  uint64_t pad[6];
};

int main(void) {
  uint64_t n = hv_arg(0, 262144), steps = hv_arg(1, 1000000), seed = hv_arg(2, 1);
  if (n < 2 || n > 0xffffffffUL) hv_panic("c-chase: nodes must be 2 to 2^32 - 1, got %lu", n);
  struct node *nodes = malloc(n * sizeof *nodes);
  uint32_t *p = malloc(n * sizeof *p);
  if (!nodes || !p) hv_panic("c-chase: cannot allocate %lu nodes", n);
  for (uint64_t i = 0; i < n; i++) p[i] = (uint32_t)i;
  for (uint64_t i = n - 1; i > 0; i--) {
    uint64_t j = hv_rand(&seed) % i;
    uint32_t t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  for (uint64_t i = 0; i < n; i++) {
    nodes[i].next = &nodes[p[i]];
    nodes[i].id = i;
  }
  free(p);
  struct node *at = &nodes[0];
  uint64_t sum = 0;
  hv_roi_begin();
  for (uint64_t s = 0; s < steps; s++) {
    at = at->next;
    sum += at->id;
  }
  hv_roi_end();
  printf("c-chase: nodes %lu steps %lu final %lu checksum 0x%016lx\n", n, steps, at->id, hv_mix(hv_mix(HV_CHECKSUM_INIT, at->id), sum));
  return 0;
}
