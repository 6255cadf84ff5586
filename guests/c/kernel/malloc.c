/* malloc/free over the kernel heap (include/kernel.h): simple and deterministic. Blocks
   carry a 16-byte header holding their size. Requests up to 4080 bytes use nine
   power-of-two size classes (16 B to 4 KiB with the header) with LIFO free lists; larger
   ones are rounded up to 4 KiB and come from one first-fit free list. Requests of 2 MiB or
   more are "huge": 2 MiB-aligned with no header (a descriptor on a side list records their
   size), so gthp=always backs every 2 MiB of them with a 2 MiB page and no extent is spent
   on a header; only huge payloads are 2 MiB-aligned, which is how free() tells them apart.
   Freed memory stays in the heap (and mapped): the break never shrinks. */
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

struct huge {
  uint8_t *p;
  uint64_t size;
  bool used;
  struct huge *next;
};
static struct huge *huges;

static unsigned class_of(size_t n) {
  unsigned c = 0;
  while ((16UL << c) < n + HDR) c++;
  return c;
}

static void *fresh(size_t usable, size_t align) {
  uint64_t brk = KERNEL_HEAP_VA + kernel_stats()->heap_bytes;
  uint64_t payload = (brk + HDR + align - 1) & ~(align - 1);
  if (!(payload & (LARGE_ALIGN_MIN - 1))) payload += 16; /* 2 MiB-aligned means huge */
  kernel_sbrk(payload + usable - brk);
  struct block *b = (struct block *)(payload - HDR);
  b->size = usable;
  return (void *)payload;
}

static void *huge_alloc(size_t usable) {
  for (struct huge *h = huges; h; h = h->next)
    if (!h->used && h->size >= usable) {
      h->used = true;
      return h->p;
    }
  uint64_t brk = KERNEL_HEAP_VA + kernel_stats()->heap_bytes;
  uint64_t payload = (brk + LARGE_ALIGN_MIN - 1) & ~(LARGE_ALIGN_MIN - 1);
  kernel_sbrk(payload + usable - brk);
  struct huge *h = malloc(sizeof *h); /* after the payload, from a size class */
  *h = (struct huge){(uint8_t *)payload, usable, true, huges};
  huges = h;
  return h->p;
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
  if (usable >= LARGE_ALIGN_MIN) return huge_alloc(usable);
  for (struct block **p = &large; *p; p = &(*p)->next) {
    if ((*p)->size >= usable) {
      struct block *b = *p;
      *p = b->next;
      return (uint8_t *)b + HDR;
    }
  }
  return fresh(usable, 16);
}

static struct huge *huge_of(void *p) {
  for (struct huge *h = huges; h; h = h->next)
    if (h->p == p && h->used) return h;
  hv_panic("free/realloc of %p: not an allocated block", p);
}

void free(void *p) {
  if (!p) return;
  if (!((uint64_t)p & (LARGE_ALIGN_MIN - 1))) {
    huge_of(p)->used = false;
    return;
  }
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
  uint64_t size = (uint64_t)p & (LARGE_ALIGN_MIN - 1) ? ((struct block *)((uint8_t *)p - HDR))->size : huge_of(p)->size;
  if (n <= size) return p;
  void *q = malloc(n);
  if (q) {
    memcpy(q, p, size);
    free(p);
  }
  return q;
}
