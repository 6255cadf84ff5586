/* malloc/free over the kernel heap (include/kernel.h): simple and deterministic. Blocks
   carry a 16-byte header holding their size. Requests up to 2 KiB use nine power-of-two
   size classes (16 B to 4 KiB with the header) with LIFO free lists; larger ones are rounded
   up to 4 KiB and come from one first-fit free list, blocks of 2 MiB or more with their
   payload 2 MiB-aligned so gthp=always can back them with 2 MiB pages. Freed memory stays
   in the heap (and mapped): the break never shrinks. */
#include "kernel.h"

#define HDR 16UL
#define N_CLASSES 9
#define LARGE_ALIGN_MIN 0x200000UL

struct block {
  uint64_t size; /* usable bytes after the header */
  struct block *next; /* free lists only */
};

static struct block *classes[N_CLASSES];
static struct block *large;

static unsigned class_of(size_t n) {
  unsigned c = 0;
  while ((16UL << c) < n + HDR) c++;
  return c;
}

static void *fresh(size_t usable, size_t align) {
  uint64_t brk = KERNEL_HEAP_VA + kernel_stats()->heap_bytes;
  uint64_t payload = (brk + HDR + align - 1) & ~(align - 1);
  kernel_sbrk(payload + usable - brk);
  struct block *b = (struct block *)(payload - HDR);
  b->size = usable;
  return (void *)payload;
}

void *malloc(size_t n) {
  if (n > (64UL << 30)) return NULL;
  if (n + HDR <= (16UL << (N_CLASSES - 1))) {
    unsigned c = class_of(n);
    struct block *b = classes[c];
    if (b) {
      classes[c] = b->next;
      return (uint8_t *)b + HDR;
    }
    return fresh((16UL << c) - HDR, 16);
  }
  size_t usable = (n + 0xfff) & ~0xfffUL;
  for (struct block **p = &large; *p; p = &(*p)->next) {
    if ((*p)->size >= usable) {
      struct block *b = *p;
      *p = b->next;
      return (uint8_t *)b + HDR;
    }
  }
  return fresh(usable, usable >= LARGE_ALIGN_MIN ? LARGE_ALIGN_MIN : 16);
}

void free(void *p) {
  if (!p) return;
  struct block *b = (struct block *)((uint8_t *)p - HDR);
  if (b->size + HDR <= (16UL << (N_CLASSES - 1))) {
    unsigned c = class_of(b->size);
    b->next = classes[c];
    classes[c] = b;
  } else {
    b->next = large;
    large = b;
  }
}

void *calloc(size_t n, size_t size) {
  if (size && n > (64UL << 30) / size) return NULL;
  void *p = malloc(n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

void *realloc(void *p, size_t n) {
  if (!p) return malloc(n);
  struct block *b = (struct block *)((uint8_t *)p - HDR);
  if (n <= b->size) return p;
  void *q = malloc(n);
  if (q) {
    memcpy(q, p, b->size);
    free(p);
  }
  return q;
}
