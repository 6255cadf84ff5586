/* The C start code: keeps the boot-info pointer, checks its magic, initialises the guest
   kernel when the guest links it (it does when it calls malloc or kernel_* functions: the
   reference below is weak), runs main and exits with its return value. */
#include "hv.h"

static const struct hv_boot_info *boot;
static void (*exit_hooks[8])(int);
static unsigned n_exit_hooks;

void kernel_init(void) __attribute__((weak));
void hv_start(const struct hv_boot_info *bi) __attribute__((noreturn, used));

void hv_start(const struct hv_boot_info *bi) {
  boot = bi;
  if (bi->magic != HV_BOOT_MAGIC) hv_panic("boot info magic is not HVBOOT01");
  if (kernel_init) kernel_init();
  hv_exit(main());
}

const struct hv_boot_info *hv_boot_info(void) { return boot; }

void hv_atexit(void (*fn)(int)) {
  if (n_exit_hooks == 8) hv_panic("hv_atexit: more than 8 hooks");
  exit_hooks[n_exit_hooks++] = fn;
}

void hv_exit(int status) {
  while (n_exit_hooks) exit_hooks[--n_exit_hooks](status);
  hv_outl(HV_PORT_EXIT, (uint32_t)status);
  for (;;) __asm__ volatile("hlt");
}

void hv_panic(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("panic: ");
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  n_exit_hooks = 0; /* a panic reports nothing else */
  hv_exit(1);
}
