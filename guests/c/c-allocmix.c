// c-allocmix: allocation-heavy mix: random-size objects allocated, hashed, copied into resized ones and freed.
// arg 0: operations = 200000
// arg 1: live = 4096 (slots for live objects)
// arg 2: seed = 1
// Each operation picks a slot (hv_rand % live). Empty: allocate 2-64 words (one in 64 is
// 512-8192 words), fill them from the generator. Occupied: fold its words into the checksum,
// then either free it (r & 1) or copy it into a new object of another size (the copy keeps
// the common prefix, the rest is filled) and free the old one. The final checksum also
// folds the surviving objects in slot order.
#include "hv.h"
#include "kernel.h"

struct obj {
  uint64_t words;
  uint64_t w[];
};

static uint64_t seed;

static uint64_t pick_size(void) {
  uint64_t r = hv_rand(&seed);
  return (r & 63) ? 2 + (r >> 8) % 63 : 512 + (r >> 8) % 7681;
}

static struct obj *make(uint64_t words, const struct obj *from) {
  struct obj *o = malloc(8 + words * 8);
  if (!o) hv_panic("c-allocmix: out of memory");
  o->words = words;
  uint64_t keep = from ? (from->words < words ? from->words : words) : 0;
  if (keep) memcpy(o->w, from->w, keep * 8);
  for (uint64_t i = keep; i < words; i++) o->w[i] = hv_rand(&seed);
  return o;
}

static uint64_t fold(uint64_t h, const struct obj *o) {
  h = hv_mix(h, o->words);
  for (uint64_t i = 0; i < o->words; i++) h = hv_mix(h, o->w[i]);
  return h;
}

int main(void) {
  uint64_t ops = hv_arg(0, 200000), live = hv_arg(1, 4096);
  seed = hv_arg(2, 1);
  if (!live) hv_panic("c-allocmix: live must be at least 1");
  struct obj **slot = calloc(live, sizeof *slot);
  if (!slot) hv_panic("c-allocmix: cannot allocate %lu slots", live);
  uint64_t sum = HV_CHECKSUM_INIT, allocs = 0, frees = 0;
  hv_roi_begin();
  for (uint64_t o = 0; o < ops; o++) {
    uint64_t r = hv_rand(&seed), i = (r >> 1) % live;
    struct obj *x = slot[i];
    if (!x) {
      slot[i] = make(pick_size(), NULL);
      allocs++;
      continue;
    }
    sum = fold(sum, x);
    slot[i] = (r & 1) ? NULL : make(pick_size(), x);
    allocs += !(r & 1);
    free(x);
    frees++;
  }
  hv_roi_end();
  for (uint64_t i = 0; i < live; i++)
    if (slot[i]) sum = fold(sum, slot[i]);
  printf("c-allocmix: operations %lu allocs %lu frees %lu heap %lu bytes checksum 0x%016lx\n", ops, allocs, frees, kernel_stats()->heap_bytes, sum);
  return 0;
}
