/*
 * kvm-run: the "tiny loader" of docs/guest-abi.md — runs one hugevisor guest on real KVM so
 * hugevisor's results can be checked against a real implementation.
 *
 * It does not parse ELF or build boot tables itself: tools/kvm/image.ts does that with the
 * project's own loader (src/guest/elf.ts + boot.ts), so both implementations boot the very
 * same bytes. This program only
 *   - maps guest RAM (anonymous memory, one memslot at GPA 0),
 *   - reads the memory image from stdin as records {u64 gpa, u64 len, len bytes} (LE),
 *   - sets the GUEST-ABI initial state (64-bit long mode, flat segments matching the GDT),
 *   - runs the vCPU, playing the ABI devices (COM1, debug-exit 0xF4, ROI 0xF6), and
 *   - prints one JSON object: console, stop reason/status, exit counts, final registers
 *     and the KVM binary statistics (KVM_GET_STATS_FD) of the VM and the vCPU.
 *
 * usage: kvm-run --mem BYTES --rip X --rsp X --rdi X --cr3 X --gdt X [--timeout-ms N]
 *                [--host-thp 0|1] [--strict] < image
 * Exit code: 0 when a JSON result was printed (whatever the guest did), 2 on a setup error
 * (message on stderr), 3 when /dev/kvm cannot be used.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include "kvm-stats.h"

static void die(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("kvm-run: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(code);
}

/* ---- growable byte buffer (console, log) ---- */
struct buf { char *p; size_t n, cap; };
static void buf_put(struct buf *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 256;
    b->p = realloc(b->p, b->cap);
    if (!b->p) die(2, "out of memory");
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
}
static struct buf console_buf, log_buf;
static void logf_(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 1) n = sizeof line - 1;
  buf_put(&log_buf, line, (size_t)n);
  buf_put(&log_buf, "\n", 1);
}

/* JSON string: bytes ≥ 0x80 become \u00XX (latin1), like the QEMU runner reads the serial. */
static void json_str(const char *s, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c == '\n') fputs("\\n", stdout);
    else if (c < 0x20 || c >= 0x7f) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* ---- timeout: SIGALRM sets immediate_exit so KVM_RUN returns EINTR ---- */
static volatile struct kvm_run *run_page;
static volatile sig_atomic_t timed_out;
static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (run_page) run_page->immediate_exit = 1;
}

static uint64_t parse_u64(const char *opt, const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end || !*s) die(2, "%s: not a number: %s", opt, s);
  return v;
}

static int read_full(int fd, void *dst, size_t n) {
  uint8_t *p = dst;
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r == 0 && p == (uint8_t *)dst ? 0 : -1;
    p += r;
    n -= (size_t)r;
  }
  return 1;
}

/* A flat segment as the GDT describes it (GUEST-ABI "Image and boot" 4). VMX wants the
 * accessed bit set in loaded segment registers; the CPU would set it on load anyway. */
static void flat_seg(struct kvm_segment *s, uint16_t sel, int code) {
  memset(s, 0, sizeof *s);
  s->selector = sel;
  s->base = 0;
  s->limit = 0; /* the descriptors have limit 0, G = 0: ignored in 64-bit mode */
  s->type = code ? 0xb : 0x3;
  s->present = 1;
  s->dpl = 0;
  s->s = 1;
  s->l = code ? 1 : 0;
  s->db = 0;
  s->g = 0;
}

int main(int argc, char **argv) {
  uint64_t mem = 0, rip = 0, rsp = 0, rdi = 0, cr3 = 0, gdt = 0, timeout_ms = 60000;
  int host_thp = 0, strict = 0, have = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--strict")) { strict = 1; continue; }
    if (i + 1 >= argc) die(2, "%s needs a value", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--mem")) mem = parse_u64(a, v), have |= 1;
    else if (!strcmp(a, "--rip")) rip = parse_u64(a, v), have |= 2;
    else if (!strcmp(a, "--rsp")) rsp = parse_u64(a, v), have |= 4;
    else if (!strcmp(a, "--rdi")) rdi = parse_u64(a, v), have |= 8;
    else if (!strcmp(a, "--cr3")) cr3 = parse_u64(a, v), have |= 16;
    else if (!strcmp(a, "--gdt")) gdt = parse_u64(a, v), have |= 32;
    else if (!strcmp(a, "--timeout-ms")) timeout_ms = parse_u64(a, v);
    else if (!strcmp(a, "--host-thp")) host_thp = (int)parse_u64(a, v);
    else die(2, "unknown option %s", a);
  }
  if (have != 63) die(2, "usage: kvm-run --mem B --rip X --rsp X --rdi X --cr3 X --gdt X [--timeout-ms N] [--host-thp 0|1] [--strict] < image");
  if (!mem || mem % 4096) die(2, "--mem must be a positive multiple of 4096");

  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die(3, "/dev/kvm: %s", strerror(errno));
  if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) die(3, "unexpected KVM API version");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die(3, "KVM_CREATE_VM: %s", strerror(errno));

  /* Guest RAM, 2 MiB aligned so the host can back it with THPs when asked to. */
  size_t span = mem + (2u << 20);
  uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) die(2, "mmap %llu bytes: %s", (unsigned long long)mem, strerror(errno));
  uint8_t *ram = (uint8_t *)(((uintptr_t)raw + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
  madvise(ram, mem, host_thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);

  for (;;) { /* the image: {gpa, len, bytes} records until EOF */
    uint64_t hdr[2];
    int r = read_full(0, hdr, sizeof hdr);
    if (r == 0) break;
    if (r < 0) die(2, "truncated image record header on stdin");
    if (hdr[0] > mem || hdr[1] > mem - hdr[0]) die(2, "image record 0x%llx+0x%llx outside guest memory", (unsigned long long)hdr[0], (unsigned long long)hdr[1]);
    if (hdr[1] && read_full(0, ram + hdr[0], hdr[1]) != 1) die(2, "truncated image record data on stdin");
  }

  struct kvm_userspace_memory_region slot = { .slot = 0, .guest_phys_addr = 0, .memory_size = mem, .userspace_addr = (uintptr_t)ram };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0) die(2, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die(2, "KVM_CREATE_VCPU: %s", strerror(errno));
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die(2, "mmap kvm_run: %s", strerror(errno));

  /* CPUID: everything KVM supports, so EFER.NXE/LME and 1 GiB pages are allowed. */
  int ncpuid = 256;
  struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + ncpuid * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = ncpuid;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die(2, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die(2, "KVM_SET_CPUID2: %s", strerror(errno));
  uint32_t ext1_edx = 0; /* leaf 0x80000001 EDX: LM (29), NX (20), 1 GiB pages (26) */
  for (uint32_t i = 0; i < cpuid->nent; i++)
    if (cpuid->entries[i].function == 0x80000001u) ext1_edx = cpuid->entries[i].edx;

  struct kvm_sregs sr;
  if (ioctl(vcpu, KVM_GET_SREGS, &sr) < 0) die(2, "KVM_GET_SREGS: %s", strerror(errno));
  flat_seg(&sr.cs, 0x08, 1);
  flat_seg(&sr.ds, 0x10, 0);
  sr.es = sr.ss = sr.fs = sr.gs = sr.ds;
  sr.gdt.base = gdt;
  sr.gdt.limit = 23;
  sr.idt.base = 0;
  sr.idt.limit = 0;
  sr.cr0 = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 16) | (1u << 31); /* PE ET NE WP PG */
  sr.cr4 = 1u << 5;                                                     /* PAE */
  sr.efer = (1u << 8) | (1u << 10) | (1u << 11);                        /* LME LMA NXE */
  sr.cr3 = cr3;
  sr.cr2 = 0;
  if (ioctl(vcpu, KVM_SET_SREGS, &sr) < 0) die(2, "KVM_SET_SREGS: %s", strerror(errno));
  struct kvm_regs regs;
  memset(&regs, 0, sizeof regs);
  regs.rip = rip;
  regs.rsp = rsp;
  regs.rdi = rdi;
  regs.rflags = 0x2;
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die(2, "KVM_SET_REGS: %s", strerror(errno));

  struct kvm_stats vm_stats, vcpu_stats;
  stats_open(&vm_stats, vm, "vm");
  stats_open(&vcpu_stats, vcpu, "vcpu");

  run_page = run;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN must return */
  sigaction(SIGALRM, &sa, NULL);
  if (timeout_ms) {
    struct itimerval it = { .it_value = { .tv_sec = (time_t)(timeout_ms / 1000), .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
  }

  /* Exit counts by KVM exit reason name, and the ABI devices' state. */
  uint64_t n_io = 0, n_hlt = 0, n_mmio = 0, n_shutdown = 0, n_intr = 0, n_other = 0;
  uint64_t io_out = 0, io_in = 0, io_unhandled = 0, roi_begin = 0, roi_end = 0;
  uint8_t lcr = 0x03, unhandled_seen[65536 / 8] = {0};
  const char *reason = NULL;
  long long status = -1; /* -1 = null */
  struct buf roi_json = {0};
  int roi_open = 0;

  while (!reason) {
    int r = ioctl(vcpu, KVM_RUN, 0);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        n_intr++;
        if (timed_out) reason = "timeout";
        continue;
      }
      logf_("KVM_RUN: %s", strerror(errno));
      reason = "internal-error";
      break;
    }
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      n_io++;
      uint8_t *data = (uint8_t *)run + run->io.data_offset;
      uint16_t port = run->io.port;
      int size = run->io.size;
      for (uint32_t k = 0; k < run->io.count && !reason; k++, data += size) {
        uint32_t v = 0;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
          io_out++;
          memcpy(&v, data, (size_t)size);
          if (port == 0x3f8 && !(lcr & 0x80)) buf_put(&console_buf, data, 1);
          else if (port == 0x3fb) lcr = (uint8_t)v;
          else if (port >= 0x3f8 && port <= 0x3ff) { /* UART setup: ignored */ }
          else if (port == 0xf4) { status = v; reason = "exit"; }
          else if (port == 0xf6) {
            if (v == 1) { roi_begin++; roi_open = 1; stats_snapshot(&vm_stats); stats_snapshot(&vcpu_stats); }
            else if (v == 2 && roi_open) {
              roi_end++;
              roi_open = 0;
              buf_put(&roi_json, roi_json.n ? "," : "[", 1);
              char *s = stats_delta_json(&vm_stats, &vcpu_stats);
              buf_put(&roi_json, s, strlen(s));
              free(s);
            } else logf_("ROI port 0xf6: ignoring value %u", v);
          } else goto unhandled;
        } else {
          io_in++;
          switch (port) {
          case 0x3fd: v = 0x60; break;  /* LSR: transmitter empty */
          case 0x3fa: v = 0x01; break;  /* IIR: no interrupt pending */
          case 0x3fb: v = lcr; break;
          default:
            if (port >= 0x3f8 && port <= 0x3ff) v = 0;
            else goto unhandled;
          }
          memcpy(data, &v, (size_t)size);
        }
        continue;
      unhandled:
        io_unhandled++;
        if (strict) {
          logf_("unhandled I/O: %s size %d port 0x%x (strict mode)", run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", size, port);
          reason = "unhandled-io";
          break;
        }
        if (!(unhandled_seen[port / 8] & (1 << (port % 8)))) {
          unhandled_seen[port / 8] |= (uint8_t)(1 << (port % 8));
          logf_("unhandled I/O: %s size %d port 0x%x (reads return all ones; reported once per port)", run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", size, port);
        }
        if (run->io.direction == KVM_EXIT_IO_IN) memset(data, 0xff, (size_t)size);
      }
      break;
    }
    case KVM_EXIT_HLT: n_hlt++; status = 0; reason = "hlt"; break;
    case KVM_EXIT_SHUTDOWN: n_shutdown++; reason = "triple-fault"; break;
    case KVM_EXIT_MMIO:
      n_mmio++;
      logf_("MMIO %s of %u bytes at GPA 0x%llx outside guest memory%s", run->mmio.is_write ? "write" : "read", run->mmio.len,
            (unsigned long long)run->mmio.phys_addr, strict ? " (strict mode)" : " (reads return all ones)");
      if (strict) reason = "mmio";
      else if (!run->mmio.is_write) memset(run->mmio.data, 0xff, sizeof run->mmio.data);
      break;
    case KVM_EXIT_INTR: n_intr++; if (timed_out) reason = "timeout"; break;
    case KVM_EXIT_FAIL_ENTRY:
      n_other++;
      logf_("KVM_EXIT_FAIL_ENTRY: hardware_entry_failure_reason 0x%llx", (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
      reason = "internal-error";
      break;
    case KVM_EXIT_INTERNAL_ERROR:
      n_other++;
      logf_("KVM_EXIT_INTERNAL_ERROR: suberror %u", run->internal.suberror);
      reason = "internal-error";
      break;
    default:
      n_other++;
      logf_("unexpected KVM exit reason %u", run->exit_reason);
      reason = "internal-error";
    }
  }
  struct itimerval off = {0};
  setitimer(ITIMER_REAL, &off, NULL);

  ioctl(vcpu, KVM_GET_REGS, &regs);
  ioctl(vcpu, KVM_GET_SREGS, &sr);
  struct kvm_vcpu_events ev;
  memset(&ev, 0, sizeof ev);
  int have_ev = ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev) == 0;

  printf("{\"console\":");
  json_str(console_buf.p, console_buf.n);
  printf(",\"reason\":\"%s\",\"status\":", reason);
  if (status < 0) printf("null"); else printf("%lld", status);
  printf(",\"exits\":{\"io\":%llu,\"hlt\":%llu,\"mmio\":%llu,\"shutdown\":%llu,\"intr\":%llu,\"other\":%llu}",
         (unsigned long long)n_io, (unsigned long long)n_hlt, (unsigned long long)n_mmio, (unsigned long long)n_shutdown,
         (unsigned long long)n_intr, (unsigned long long)n_other);
  printf(",\"vmm\":{\"io_out\":%llu,\"io_in\":%llu,\"io_unhandled\":%llu,\"roi_begin\":%llu,\"roi_end\":%llu}",
         (unsigned long long)io_out, (unsigned long long)io_in, (unsigned long long)io_unhandled, (unsigned long long)roi_begin,
         (unsigned long long)roi_end);
  printf(",\"unhandledPorts\":[");
  for (int p = 0, first = 1; p < 65536; p++)
    if (unhandled_seen[p / 8] & (1 << (p % 8))) { printf("%s%d", first ? "" : ",", p); first = 0; }
  printf("]");
  /* Registers as hex strings: u64 values do not survive a JSON number. */
  printf(",\"regs\":{\"rip\":\"0x%llx\",\"rsp\":\"0x%llx\",\"rflags\":\"0x%llx\",\"rax\":\"0x%llx\",\"rdi\":\"0x%llx\","
         "\"cr0\":\"0x%llx\",\"cr2\":\"0x%llx\",\"cr3\":\"0x%llx\",\"cr4\":\"0x%llx\",\"efer\":\"0x%llx\"}",
         (unsigned long long)regs.rip, (unsigned long long)regs.rsp, (unsigned long long)regs.rflags, (unsigned long long)regs.rax,
         (unsigned long long)regs.rdi, (unsigned long long)sr.cr0, (unsigned long long)sr.cr2, (unsigned long long)sr.cr3,
         (unsigned long long)sr.cr4, (unsigned long long)sr.efer);
  if (have_ev)
    printf(",\"pendingException\":{\"injected\":%d,\"pending\":%d,\"nr\":%d,\"hasErrorCode\":%d,\"errorCode\":%u}", ev.exception.injected,
           ev.exception.pending, ev.exception.nr, ev.exception.has_error_code, ev.exception.error_code);
  printf(",\"cpuid80000001Edx\":\"0x%x\"", ext1_edx);
  printf(",\"roi\":");
  if (roi_json.n) { fwrite(roi_json.p, 1, roi_json.n, stdout); putchar(']'); } else printf("[]");
  printf(",\"roiOpen\":%s,\"stats\":{\"vm\":", roi_open ? "true" : "false");
  stats_print(&vm_stats);
  printf(",\"vcpu\":");
  stats_print(&vcpu_stats);
  printf("},\"log\":");
  json_str(log_buf.p, log_buf.n);
  printf("}\n");
  return 0;
}
