/*
 * The guest kernel C workloads link against (guests/c/kernel/, docs/c-guests.md): its own
 * 4-level page tables with a heap at 512 GiB VA that nothing maps up front, a #PF handler
 * that demand-pages it from a physical allocator over the free guest memory, and
 * malloc/free over that heap. The SDK start code calls kernel_init() before main when a
 * guest links the kernel; at exit the kernel prints one line:
 *   kernel: page faults N (4k A, 2m B, fault-around C) heap H bytes frames F KiB
 * where N is every #PF it handled (= the vCPU's exc_pf for the run).
 * Command line: gthp=never|always (2 MiB pages for 2 MiB extents inside the heap, default
 * never), fault_around=PAGES (map up to that many 4 KiB pages of the aligned block around
 * a fault, a power of two 1-512, default 1 = off).
 */
#ifndef KERNEL_H
#define KERNEL_H
#include "hv.h"

#define KERNEL_HEAP_VA 0x8000000000UL /* PML4 slot 1 */

struct kernel_stats {
  uint64_t page_faults; /* #PF handled: every one maps at least one page */
  uint64_t pages_4k;    /* 4 KiB pages mapped on a fault (the faulting page) */
  uint64_t pages_2m;    /* 2 MiB pages mapped */
  uint64_t fault_around; /* extra 4 KiB pages mapped around a fault */
  uint64_t thp_fallback; /* 2 MiB extents that got a 4 KiB page: no 2 MiB frame left */
  uint64_t table_pages; /* page-table pages allocated */
  uint64_t heap_bytes;  /* heap break: bytes of heap VA handed out */
};

void kernel_init(void);
const struct kernel_stats *kernel_stats(void);
/* Grow the heap by n bytes (rounded up to 16); the old break. Panics when out of VA. */
void *kernel_sbrk(size_t n);
/* Physical frames left (bytes). */
uint64_t kernel_free_bytes(void);

void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);

#endif
