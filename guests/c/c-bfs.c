// c-bfs: Graph500-style BFS: an R-MAT graph (A 0.57, B 0.19, C 0.19, D 0.05) in CSR form, searched from random roots.
// arg 0: scale = 14 (2^scale vertices)
// arg 1: edgefactor = 16 (edges generated per vertex)
// arg 2: roots = 4 (searches, each from a random vertex with edges)
// arg 3: seed = 1
// Graph500's Kronecker generator: each edge picks, for each of `scale` bit levels, a
// quadrant with probabilities A, B, C, D (here from hv_rand % 100 against 57/76/95), then
// vertex labels are scrambled by a random permutation (Fisher-Yates) so degree is not
// correlated with the label. Undirected: each edge is stored both ways, self-loops dropped.
// Each BFS records parents; the checksum mixes, per search, the root, vertices reached,
// edges scanned and the sum of BFS levels.
#include "hv.h"
#include "kernel.h"

int main(void) {
  uint64_t scale = hv_arg(0, 14), edgefactor = hv_arg(1, 16), roots = hv_arg(2, 4), seed = hv_arg(3, 1);
  if (scale < 1 || scale > 26) hv_panic("c-bfs: scale must be 1 to 26, got %lu", scale);
  uint64_t nv = 1UL << scale, ne = nv * edgefactor;
  uint32_t *src = malloc(ne * 4), *dst = malloc(ne * 4), *perm = malloc(nv * 4);
  uint64_t *offset = calloc(nv + 1, 8);
  if (!src || !dst || !perm || !offset) hv_panic("c-bfs: cannot allocate a scale-%lu graph", scale);
  hv_roi_begin();
  for (uint64_t e = 0; e < ne; e++) {
    uint64_t u = 0, v = 0;
    for (uint64_t l = 0; l < scale; l++) {
      uint64_t r = hv_rand(&seed) % 100;
      u = 2 * u + (r >= 76);
      v = 2 * v + ((r >= 57 && r < 76) || r >= 95);
    }
    src[e] = (uint32_t)u;
    dst[e] = (uint32_t)v;
  }
  for (uint64_t i = 0; i < nv; i++) perm[i] = (uint32_t)i;
  for (uint64_t i = nv - 1; i > 0; i--) {
    uint64_t j = hv_rand(&seed) % (i + 1);
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  for (uint64_t e = 0; e < ne; e++) {
    src[e] = perm[src[e]];
    dst[e] = perm[dst[e]];
    if (src[e] != dst[e]) offset[src[e] + 1]++, offset[dst[e] + 1]++;
  }
  for (uint64_t i = 0; i < nv; i++) offset[i + 1] += offset[i];
  uint64_t nadj = offset[nv];
  uint32_t *adj = malloc(nadj * 4 + 4);
  uint64_t *fill = malloc(nv * 8);
  if (!adj || !fill) hv_panic("c-bfs: cannot allocate %lu adjacency entries", nadj);
  memcpy(fill, offset, nv * 8);
  for (uint64_t e = 0; e < ne; e++)
    if (src[e] != dst[e]) adj[fill[src[e]]++] = dst[e], adj[fill[dst[e]]++] = src[e];
  hv_roi_end();
  free(src);
  free(dst);
  free(fill);
  int64_t *parent = malloc(nv * 8);
  uint32_t *queue = malloc(nv * 4), *level = malloc(nv * 4);
  if (!parent || !queue || !level) hv_panic("c-bfs: cannot allocate the BFS arrays");
  uint64_t sum = hv_mix(HV_CHECKSUM_INIT, nadj);
  for (uint64_t r = 0; r < roots; r++) {
    uint64_t root;
    do root = hv_rand(&seed) & (nv - 1);
    while (offset[root] == offset[root + 1]);
    for (uint64_t i = 0; i < nv; i++) parent[i] = -1;
    uint64_t head = 0, tail = 0, scanned = 0, levels = 0;
    parent[root] = (int64_t)root;
    level[root] = 0;
    queue[tail++] = (uint32_t)root;
    hv_roi_begin();
    while (head < tail) {
      uint32_t u = queue[head++];
      levels += level[u];
      for (uint64_t k = offset[u]; k < offset[u + 1]; k++) {
        uint32_t v = adj[k];
        scanned++;
        if (parent[v] < 0) {
          parent[v] = u;
          level[v] = level[u] + 1;
          queue[tail++] = v;
        }
      }
    }
    hv_roi_end();
    printf("c-bfs: root %lu reached %lu scanned %lu levels %lu\n", root, tail, scanned, levels);
    sum = hv_mix(hv_mix(hv_mix(hv_mix(sum, root), tail), scanned), levels);
  }
  printf("c-bfs: scale %lu edgefactor %lu vertices %lu adjacency %lu checksum 0x%016lx\n", scale, edgefactor, nv, nadj, sum);
  return 0;
}
