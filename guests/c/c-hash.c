// c-hash: open-addressing hash table (linear probing, backward-shift deletion) under a random insert/lookup/delete mix.
// arg 0: slots = 1048576 (rounded down to a power of two; 16-byte slots)
// arg 1: operations = 2000000
// arg 2: seed = 1
// Each operation draws r = hv_rand: key = 1 + (r >> 8) % (slots / 2), so the table is at
// most half full; r & 3 picks insert (0, 1: add 1 to the key's count), lookup (2) or delete
// (3). Hash: (key * 0x9e3779b97f4a7c15) >> (64 - log2 slots). Checksum: hv_mix of the hit
// and miss counts, the live keys, and every slot's key and count in table order.
#include "hv.h"
#include "kernel.h"

struct slot {
  uint64_t key; /* 0 = empty */
  uint64_t count;
};

static struct slot *table;
static uint64_t mask;
static unsigned shift;

static uint64_t home(uint64_t key) { return (key * 0x9e3779b97f4a7c15UL) >> shift; }

static struct slot *find(uint64_t key) {
  for (uint64_t i = home(key);; i = (i + 1) & mask) {
    if (table[i].key == key) return &table[i];
    if (!table[i].key) return NULL;
  }
}

static bool insert(uint64_t key) {
  uint64_t i = home(key);
  for (; table[i].key; i = (i + 1) & mask)
    if (table[i].key == key) {
      table[i].count++;
      return false;
    }
  table[i] = (struct slot){key, 1};
  return true;
}

/* Backward-shift deletion: later entries of the probe run move into the hole when their
   home slot does not lie cyclically between the hole and themselves. */
static bool delete(uint64_t key) {
  struct slot *s = find(key);
  if (!s) return false;
  uint64_t hole = (uint64_t)(s - table);
  for (uint64_t i = (hole + 1) & mask; table[i].key; i = (i + 1) & mask) {
    uint64_t h = home(table[i].key);
    if (((i - h) & mask) >= ((i - hole) & mask)) {
      table[hole] = table[i];
      hole = i;
    }
  }
  table[hole].key = 0;
  table[hole].count = 0;
  return true;
}

int main(void) {
  uint64_t slots = hv_arg(0, 1048576), ops = hv_arg(1, 2000000), seed = hv_arg(2, 1);
  if (slots < 4) hv_panic("c-hash: at least 4 slots, got %lu", slots);
  while (slots & (slots - 1)) slots &= slots - 1;
  mask = slots - 1;
  shift = 64;
  for (uint64_t s = slots; s > 1; s >>= 1) shift--;
  table = calloc(slots, sizeof *table);
  if (!table) hv_panic("c-hash: cannot allocate %lu slots", slots);
  uint64_t hits = 0, misses = 0, live = 0;
  hv_roi_begin();
  for (uint64_t o = 0; o < ops; o++) {
    uint64_t r = hv_rand(&seed), key = 1 + (r >> 8) % (slots / 2);
    switch (r & 3) {
    case 0:
    case 1:
      live += insert(key);
      break;
    case 2:
      if (find(key)) hits++;
      else misses++;
      break;
    case 3:
      live -= delete(key);
      break;
    }
  }
  hv_roi_end();
  uint64_t sum = hv_mix(hv_mix(hv_mix(HV_CHECKSUM_INIT, hits), misses), live);
  for (uint64_t i = 0; i < slots; i++) sum = hv_mix(hv_mix(sum, table[i].key), table[i].count);
  printf("c-hash: slots %lu operations %lu live %lu hits %lu misses %lu checksum 0x%016lx\n", slots, ops, live, hits, misses, sum);
  return 0;
}
