/*
 * The C guest SDK (docs/c-guests.md): console output, boot-info access, exit, ROI markers,
 * a checksum helper, the string functions gcc may call, and an IDT with C handlers. Every
 * function is in guests/c/sdk/; the boot protocol it builds on is docs/guest-abi.md.
 */
#ifndef HV_H
#define HV_H

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned long uintptr_t;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

typedef __builtin_va_list va_list;
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_arg(ap, type) __builtin_va_arg(ap, type)
#define va_end(ap) __builtin_va_end(ap)

/* Boot info (docs/guest-abi.md "Boot info"), at RDI on entry. */
#define HV_BOOT_MAGIC 0x3130544F4F425648UL /* "HVBOOT01" */
#define HV_MAX_ARGS 16
struct hv_boot_info {
  uint64_t magic;
  uint64_t memory;
  uint64_t free_start;
  uint64_t pml4;
  uint64_t page_size;
  uint64_t cmdline;
  uint64_t nargs;
  uint64_t args[HV_MAX_ARGS];
};

/* Ports (docs/guest-abi.md "Devices and exits"). */
#define HV_PORT_COM1 0x3f8
#define HV_PORT_EXIT 0xf4
#define HV_PORT_ROI 0xf6

static inline void hv_outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void hv_outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint64_t hv_read_cr2(void) { uint64_t v; __asm__ volatile("movq %%cr2, %0" : "=r"(v)); return v; }
static inline uint64_t hv_read_cr3(void) { uint64_t v; __asm__ volatile("movq %%cr3, %0" : "=r"(v)); return v; }
static inline void hv_write_cr3(uint64_t v) { __asm__ volatile("movq %0, %%cr3" : : "r"(v) : "memory"); }
static inline void hv_invlpg(uint64_t va) { __asm__ volatile("invlpg (%0)" : : "r"(va) : "memory"); }

/* The guest's entry point: the SDK's start code calls it and exits with its return value. */
int main(void);

/* Console (COM1). printf knows %d %i %u %x %X %p %s %c %% with the l/ll/z length
   modifiers, a field width, '0' (zero pad) and '-' (left-justify). */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int putchar(int c);
int puts(const char *s); /* with a newline, as in C */

/* Boot info. */
const struct hv_boot_info *hv_boot_info(void);
uint64_t hv_memory_size(void);
/* args[index] when the VMM passed that many args (--arg), else `def`. */
uint64_t hv_arg(unsigned index, uint64_t def);
/* The command line ("" when there is none). */
const char *hv_cmdline(void);
/* True when `word` is a space-separated token of the command line (or a `word=...` token). */
bool hv_cmdline_has(const char *word);
/* The value of the token `key=value` copied into buf (NUL-terminated, truncated to size);
   the length, or -1 when the key is absent. */
ssize_t hv_cmdline_get(const char *key, char *buf, size_t size);
/* `key=N` as a number (decimal, 0x hex, K/M/G suffixes), else `def`. */
uint64_t hv_cmdline_u64(const char *key, uint64_t def);

/* Exit: status to the debug-exit port (0xF4); never returns. Runs the exit hooks first. */
void hv_exit(int status) __attribute__((noreturn));
void hv_panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define HV_ASSERT(c) ((c) ? (void)0 : hv_panic("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__))

/* Region of interest (port 0xF6): the VMM snapshots the counters at begin, records at end. */
static inline void hv_roi_begin(void) { hv_outb(HV_PORT_ROI, 1); }
static inline void hv_roi_end(void) { hv_outb(HV_PORT_ROI, 2); }

/* Checksums: 64-bit FNV-1a over words (hv_mix) and bytes (hv_checksum), starting from
   HV_CHECKSUM_INIT; the tests recompute them in TypeScript. */
#define HV_CHECKSUM_INIT 0xcbf29ce484222325UL
#define HV_FNV_PRIME 0x100000001b3UL
static inline uint64_t hv_mix(uint64_t h, uint64_t v) { return (h ^ v) * HV_FNV_PRIME; }
uint64_t hv_checksum(uint64_t h, const void *p, size_t n);

/* splitmix64: the deterministic generator every workload seeds from its args. */
static inline uint64_t hv_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15UL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
  return z ^ (z >> 31);
}

/* String functions (gcc may emit calls to the first four even with -ffreestanding). */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* IDT (docs/guest-abi.md "Exceptions"). The stack frame a C handler receives. */
struct hv_trap_frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss;
};
typedef void (*hv_trap_handler)(struct hv_trap_frame *f);
/* Load the IDT with every exception vector 0-19 routed to C; unhandled ones print
   "unexpected exception V at RIP r error e cr2 c" and exit 3. Idempotent. */
void hv_idt_init(void);
/* Route `vector` (0-19) to `handler` (NULL: back to the fatal default). */
void hv_idt_set(unsigned vector, hv_trap_handler handler);

/* Exit hooks run by hv_exit in reverse order of registration (at most 8). */
void hv_atexit(void (*fn)(int status));

#endif
