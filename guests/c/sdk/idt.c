/* A 256-entry 64-bit IDT (docs/guest-abi.md "Exceptions": interrupt gates, selector 0x08)
   whose exception vectors 0-19 enter C through the stubs in traps.s. */
#include "hv.h"

#define N_VECTORS 20

struct gate {
  uint16_t off0, sel;
  uint8_t ist, type;
  uint16_t off1;
  uint32_t off2, zero;
};

static struct gate idt[256] __attribute__((aligned(16)));
static hv_trap_handler handlers[N_VECTORS];
static bool loaded;
extern const uint64_t hv_trap_stubs[N_VECTORS];

void hv_trap(struct hv_trap_frame *f) __attribute__((used));
void hv_trap(struct hv_trap_frame *f) {
  hv_trap_handler h = f->vector < N_VECTORS ? handlers[f->vector] : NULL;
  if (h) {
    h(f);
    return;
  }
  printf("unexpected exception %lu at RIP %p error %p cr2 %p\n", f->vector, (void *)f->rip, (void *)f->error, (void *)hv_read_cr2());
  hv_exit(3);
}

void hv_idt_init(void) {
  if (loaded) return;
  for (unsigned v = 0; v < N_VECTORS; v++) {
    uint64_t a = hv_trap_stubs[v];
    idt[v] = (struct gate){(uint16_t)a, 0x08, 0, 0x8e, (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0};
  }
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) idtr = {sizeof idt - 1, (uint64_t)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
  loaded = true;
}

void hv_idt_set(unsigned vector, hv_trap_handler handler) {
  if (vector >= N_VECTORS) hv_panic("hv_idt_set: vector %u out of range", vector);
  handlers[vector] = handler;
}
