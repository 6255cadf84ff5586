/* The kernel's address space and demand paging (include/kernel.h). Physical frames come
   from [free_start, memory): 4 KiB frames (data pages and page tables) bump upwards from
   the bottom, 2 MiB frames downwards from the top, and neither is ever returned — the
   heap only grows, which keeps every run's fault sequence deterministic. The boot tables
   identity-map all guest memory (PML4 slot 0, shared), so frames are written through
   their physical address. */
#include "kernel.h"

#define PAGE_4K 0x1000UL
#define PAGE_2M 0x200000UL
#define PTE_P 0x1UL
#define PTE_W 0x2UL
#define PTE_PS 0x80UL
#define ADDR_MASK 0x000ffffffffff000UL
#define HEAP_MAX (256UL << 30) /* half of the PML4 slot */

static struct kernel_stats stats;
static uint64_t lo, hi;         /* free frames: [lo, hi) */
static uint64_t lo0, hi0;       /* ... at boot: what is outside [lo, hi) now is taken */
static uint64_t *pml4;
static bool gthp_always;
static uint64_t fault_around = 1;

static void zero_frame(uint64_t pa, uint64_t bytes) {
  uint64_t n = bytes / 8;
  void *d = (void *)pa;
  __asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0UL) : "memory");
}

static uint64_t frame_4k(void) {
  if (hi - lo < PAGE_4K) hv_panic("kernel: out of guest memory (heap %lu bytes)", stats.heap_bytes);
  uint64_t pa = lo;
  lo += PAGE_4K;
  zero_frame(pa, PAGE_4K);
  return pa;
}

static uint64_t frame_2m(void) {
  uint64_t top = hi & ~(PAGE_2M - 1);
  if (top < lo + PAGE_2M) return 0;
  hi = top - PAGE_2M;
  zero_frame(hi, PAGE_2M);
  return hi;
}

uint64_t kernel_free_bytes(void) { return hi - lo; }
const struct kernel_stats *kernel_stats(void) { return &stats; }

void *kernel_sbrk(size_t n) {
  n = (n + 15) & ~15UL;
  if (n > HEAP_MAX - stats.heap_bytes) hv_panic("kernel: heap exhausted (%lu + %lu bytes)", stats.heap_bytes, n);
  void *old = (void *)(KERNEL_HEAP_VA + stats.heap_bytes);
  stats.heap_bytes += n;
  return old;
}

/* The table entry one level down from `table` for `va` at `shift`, allocating the table. */
static uint64_t *next_table(uint64_t *entry) {
  if (!(*entry & PTE_P)) {
    *entry = frame_4k() | PTE_P | PTE_W;
    stats.table_pages++;
  }
  return (uint64_t *)(*entry & ADDR_MASK);
}

static uint64_t *pd_entry(uint64_t va) {
  uint64_t *pdpt = next_table(&pml4[(va >> 39) & 511]);
  uint64_t *pd = next_table(&pdpt[(va >> 30) & 511]);
  return &pd[(va >> 21) & 511];
}

static bool in_heap(uint64_t va) { return va >= KERNEL_HEAP_VA && va < KERNEL_HEAP_VA + stats.heap_bytes; }

static void page_fault(struct hv_trap_frame *f) {
  uint64_t va = hv_read_cr2();
  if ((f->error & PTE_P) || !in_heap(va))
    hv_panic("kernel: page fault at %p (error %p, RIP %p) outside the heap [%p, %p)", (void *)va, (void *)f->error, (void *)f->rip,
             (void *)KERNEL_HEAP_VA, (void *)(KERNEL_HEAP_VA + stats.heap_bytes));
  stats.page_faults++;
  uint64_t *pde = pd_entry(va);
  uint64_t ext = va & ~(PAGE_2M - 1);
  if (gthp_always && !(*pde & PTE_P) && in_heap(ext) && in_heap(ext + PAGE_2M - 1)) {
    uint64_t pa = frame_2m();
    if (pa) {
      *pde = pa | PTE_P | PTE_W | PTE_PS;
      stats.pages_2m++;
      return;
    }
    stats.thp_fallback++;
  }
  uint64_t *pt = next_table(pde);
  uint64_t page = va & ~(PAGE_4K - 1);
  pt[(page >> 12) & 511] = frame_4k() | PTE_P | PTE_W;
  stats.pages_4k++;
  uint64_t block = page & ~(fault_around * PAGE_4K - 1);
  for (uint64_t a = block; a < block + fault_around * PAGE_4K; a += PAGE_4K) {
    uint64_t *pte = &pt[(a >> 12) & 511];
    if (a == page || *pte || !in_heap(a)) continue;
    if (hi - lo < PAGE_4K) break; /* fault-around is best effort */
    *pte = frame_4k() | PTE_P | PTE_W;
    stats.fault_around++;
  }
}

static void report(int status) {
  (void)status;
  printf("kernel: page faults %lu (4k %lu, 2m %lu, fault-around %lu) heap %lu bytes frames %lu KiB\n", stats.page_faults, stats.pages_4k,
         stats.pages_2m, stats.fault_around, stats.heap_bytes, (lo - lo0 + hi0 - hi) >> 10);
}

void kernel_init(void) {
  const struct hv_boot_info *bi = hv_boot_info();
  if (bi->memory > (512UL << 30)) hv_panic("kernel: the heap's PML4 slot 1 is guest memory above 512 GiB");
  char policy[16];
  if (hv_cmdline_get("gthp", policy, sizeof policy) >= 0) {
    if (!strcmp(policy, "always")) gthp_always = true;
    else if (strcmp(policy, "never")) hv_panic("kernel: gthp=%s: expected never or always", policy);
  }
  fault_around = hv_cmdline_u64("fault_around", 1);
  if (!fault_around || fault_around > 512 || (fault_around & (fault_around - 1)))
    hv_panic("kernel: fault_around=%lu: expected a power of two from 1 to 512 pages", fault_around);
  lo = (bi->free_start + PAGE_4K - 1) & ~(PAGE_4K - 1);
  hi = bi->memory & ~(PAGE_4K - 1);
  if (hi < lo) hi = lo;
  lo0 = lo;
  hi0 = hi;
  pml4 = (uint64_t *)frame_4k();
  pml4[0] = ((const uint64_t *)bi->pml4)[0]; /* the boot identity map, shared */
  hv_idt_init();
  hv_idt_set(14, page_fault);
  hv_write_cr3((uint64_t)pml4);
  hv_atexit(report);
}
