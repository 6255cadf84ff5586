/*
 * kdiff.c — the real-kernel side of the THP differential check (tools/kdiff/README in
 * the project README, section "kdiff"). Reads a scenario script on stdin, runs it on
 * this machine's kernel in one fresh process, and after every step prints one JSON line:
 * the per-VMA figures of /proc/self/smaps inside the scenario's slot (Rss, Anonymous,
 * AnonHugePages, THPeligible, perms, hg/nh VmFlags) and the deltas of every thp_*
 * counter of /proc/vmstat across the step. The TS side (tools/kdiff/model.ts) runs the
 * same script on the model and prints the same shape.
 *
 * Script (one step a line; OFF/LEN in bytes, offsets from the slot base, which is 2 MiB
 * aligned):
 *   region LEN OFF                     mmap LEN bytes RW at base+OFF (exact placement)
 *   madvise OFF LEN hugepage|nohugepage|dontneed
 *   touch OFF LEN STRIDE r|w           one byte every STRIDE bytes
 *   munmap OFF LEN
 *   mprotect OFF LEN none|r|rw
 *   map OFF LEN                        mmap(MAP_FIXED) LEN bytes RW at base+OFF, inside the slot
 *   report                             no action (just report)
 *   fork                               fork a child that stays alive, waiting for commands
 *   child STEP                         run STEP in the child (it reports, who=child)
 *   exit                               the child exits; the parent waits for it
 *   reclaim                            memcg reclaim of the scenario's cgroup: write 0 to its
 *                                      memory.force_empty (try_to_free_mem_cgroup_pages with
 *                                      shrink_slab, i.e. the memcg-aware deferred split
 *                                      shrinker, until nothing more can be reclaimed)
 *   khugepaged [N]                     wait (polling, up to 60 s) until khugepaged has
 *                                      completed N (default 2) more full scans
 *                                      (khugepaged/full_scans: a whole pass saw the state)
 *                                      and then three full scans in a row that changed
 *                                      nothing in the slot (a collapse may wait on
 *                                      swap-in I/O)
 * Setup lines, before `region` (each needs root; all are undone after the run):
 *   sysfs PATH VALUE                   write VALUE to transparent_hugepage/PATH
 *                                      (e.g. hugepages-16kB/enabled madvise)
 *   memcg LIMIT                        run in a new memory cgroup v1 child with
 *                                      memory.limit_in_bytes = LIMIT (0: no limit)
 *   swap BYTES [blkdev]                a swap file of BYTES, swapon'd for the run; with blkdev
 *                                      the file backs a loop block device and that is swapon'd
 *                                      (SWP_BLKDEV: the 6.x kernel swaps a large folio out
 *                                      whole only to a block device, never to a swap file)
 *
 * Every run takes an exclusive flock on LOCK_PATH, so kdiff runs (and the shared-lock
 * reads of the THP settings in kernel.ts) never see each other's settings. A run that
 * changes anything first records how to undo it in STATE_PATH; the supervisor (this
 * process) runs the script in a forked worker, and undoes everything after the worker
 * ends, however it ends (a SIGTERM/SIGINT kills the worker and still undoes). A state
 * file left behind by a killed supervisor is undone by the next run, under the lock.
 * No malloc after start-up matters: buffers are static so the process's own VMAs stay few.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <linux/loop.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define HPAGE (2UL << 20)
#define MAXCTR 160
#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"
#define MEMCG_ROOT "/sys/fs/cgroup/memory/"
#define LOCK_PATH "/tmp/hugevisor-kdiff.lock"
#define STATE_PATH "/tmp/hugevisor-kdiff.state"

static char buf[1 << 20];
static char out[1 << 16];
static char *base;           /* 2 MiB aligned slot base */
static unsigned long slot;   /* bytes of the slot reported */

static char ctr_name[MAXCTR][48];
static int nctr;

static void emit(const char *s) {
  size_t n = strlen(s), done = 0;
  while (done < n) {
    ssize_t w = write(1, s + done, n - done);
    if (w <= 0) _exit(3);
    done += (size_t)w;
  }
}

static ssize_t slurp(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = 0, r;
  while ((r = read(fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0) n += r;
  close(fd);
  buf[n] = 0;
  return n;
}

/* The thp_* counters the comparison uses, from /proc/vmstat (names fixed on first call;
 * a counter this kernel lacks is simply absent from the report). */
static const char *const wanted[] = {"thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge",
                                     "thp_collapse_alloc", "thp_split_pmd", "thp_split_page", "thp_split",
                                     "thp_deferred_split_page", "thp_zero_page_alloc", "thp_swpout",
                                     "thp_swpout_fallback", "pswpout", "pswpin", "thp_scan_exceed_swap_pte",
                                     "thp_scan_exceed_share_pte", "thp_underused_split_page", NULL};
static int is_wanted(const char *n) {
  for (int i = 0; wanted[i]; i++)
    if (!strcmp(wanted[i], n)) return 1;
  return 0;
}

/* The per-size (multi-size THP, 6.8+) anonymous stats, hugepages-<size>kB/stats/<name>,
 * reported as "hugepages-<size>kB/<name>" after the vmstat counters. */
static const char *const mthp_wanted[] = {"anon_fault_alloc", "anon_fault_fallback", "anon_fault_fallback_charge", "split",
                                          "split_deferred", "split_failed", "swpout", "swpout_fallback", NULL};
static char mthp_path[MAXCTR][96];
static int nmthp;

static void mthp_init(void) {
  static const char *const sizes[] = {"16", "64", "2048", NULL};
  for (int i = 0; sizes[i]; i++)
    for (int j = 0; mthp_wanted[j] && nmthp < MAXCTR / 2; j++) {
      char p[96];
      snprintf(p, sizeof p, THP_DIR "hugepages-%skB/stats/%s", sizes[i], mthp_wanted[j]);
      if (access(p, R_OK)) continue;
      strcpy(mthp_path[nmthp++], p);
    }
}

static void read_vmstat(unsigned long long *vals) {
  if (slurp("/proc/vmstat") < 0) return;
  int k = 0;
  for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
    if (strncmp(l, "thp_", 4) && strncmp(l, "pswp", 4)) continue;
    char name[48];
    unsigned long long v;
    if (sscanf(l, "%47s %llu", name, &v) != 2 || !is_wanted(name)) continue;
    if (nctr < MAXCTR && k == nctr) strcpy(ctr_name[nctr++], name);
    if (k < MAXCTR) vals[k++] = v;
  }
  for (int i = 0; i < nmthp && k < MAXCTR; i++) {
    if (k == nctr) {
      const char *d = mthp_path[i] + strlen(THP_DIR), *st = strstr(d, "/stats/");
      snprintf(ctr_name[nctr++], sizeof ctr_name[0], "%.*s/%s", (int)(st - d), d, st + 7);
    }
    vals[k++] = slurp(mthp_path[i]) > 0 ? strtoull(buf, NULL, 10) : 0;
  }
}

/* The scenario's memory cgroup (memcg step), or "" */
static char memcg_dir[128];
/* Make the cgroup's memory.stat exact when read. Its counters are per-CPU deltas flushed
 * on a read only once more than MEMCG_CHARGE_BATCH (64) x online CPUs updates are pending
 * (else every 2 s), and new pages wait in a per-CPU batch before they are on an LRU list.
 * So 256 pages are faulted in and unmapped (512 updates: a flush at the next read), and the
 * munmap runs unmap_region, which starts with lru_add_drain() (the worker is pinned to one
 * CPU, so that is every batched page of the scenario). The net figures are unchanged and
 * no fault of it falls in a measured window. */
static void memcg_settle(void) {
  char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  madvise(p, 1 << 20, MADV_NOHUGEPAGE);
  for (int i = 0; i < (1 << 20); i += 4096) p[i] = 1;
  munmap(p, 1 << 20);
}

/* The cgroup's own figures (exact: only the scenario's pages are charged to it), kB:
 * anon = its anonymous LRU pages (a THP on the deferred split queue counts whole until
 * it is split), anon_thp = rss_huge (PMD-mapped THPs), swap = swap entries charged. */
static void memcg_figures(char *o) {
  char p[192];
  unsigned long long anon = 0, huge = 0, sw = 0;
  memcg_settle();
  snprintf(p, sizeof p, "%smemory.stat", memcg_dir);
  if (slurp(p) < 0) {
    sprintf(o, "null");
    return;
  }
  for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
    char name[48];
    unsigned long long v;
    if (sscanf(l, "%47s %llu", name, &v) != 2) continue;
    if (!strcmp(name, "active_anon") || !strcmp(name, "inactive_anon")) anon += v;
    else if (!strcmp(name, "rss_huge")) huge = v;
    else if (!strcmp(name, "swap")) sw = v;
  }
  sprintf(o, "{\"anon\":%llu,\"anon_thp\":%llu,\"swap\":%llu}", anon >> 10, huge >> 10, sw >> 10);
}

/* One JSON report: the slot's VMAs from /proc/self/smaps and the vmstat deltas. */
static long faults_of(const struct rusage *r) { return r->ru_minflt + r->ru_majflt; }

/* `faults`: page faults this process took during the step's action (getrusage), or -1
 * when not measured (the forkwrite parent, whose own stack and data turned COW). */
/* The vmstat windows of consecutive steps overlap, so no event (e.g. a khugepaged
 * collapse between two steps) can fall between them: a step's deltas run from the
 * sample taken just before the previous report read smaps to the sample taken just
 * after this report read smaps. Overlap can only make the kernel look noisier. The
 * window start is in a MAP_SHARED page so parent and child steps chain alike. */
static unsigned long long *win_start;

static void report(int step, const char *who, long faults) {
  unsigned long long pre[MAXCTR] = {0}, now[MAXCTR] = {0};
  read_vmstat(pre);
  char *o = out;
  o += sprintf(o, "{\"step\":%d,\"who\":\"%s\",\"vmas\":[", step, who);
  if (slurp("/proc/self/smaps") < 0) {
    emit("{\"error\":\"cannot read /proc/self/smaps\"}\n");
    _exit(2);
  }
  int first = 1, in = 0;
  uintptr_t lo = (uintptr_t)base, hi = lo + slot;
  for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
    unsigned long s, e;
    char perms[8];
    if (sscanf(l, "%lx-%lx %7s", &s, &e, perms) == 3 && strchr(l, '-') < strchr(l, ' ')) {
      if (in) o += sprintf(o, "}");
      in = s < hi && e > lo;
      if (in) {
        o += sprintf(o, "%s{\"start\":%ld,\"end\":%ld,\"perms\":\"%s\"", first ? "" : ",", (long)(s - lo), (long)(e - lo), perms);
        first = 0;
      }
      continue;
    }
    if (!in) continue;
    unsigned long v;
    if (sscanf(l, "Rss: %lu kB", &v) == 1) o += sprintf(o, ",\"rss\":%lu", v);
    else if (sscanf(l, "Anonymous: %lu kB", &v) == 1) o += sprintf(o, ",\"anon\":%lu", v);
    else if (sscanf(l, "AnonHugePages: %lu kB", &v) == 1) o += sprintf(o, ",\"ahp\":%lu", v);
    else if (sscanf(l, "Swap: %lu kB", &v) == 1) o += sprintf(o, ",\"swap\":%lu", v);
    else if (sscanf(l, "THPeligible: %lu", &v) == 1) o += sprintf(o, ",\"eligible\":%lu", v);
    else if (!strncmp(l, "VmFlags:", 8)) {
      const char *t = strstr(l, " hg") ? "hg" : strstr(l, " nh") ? "nh" : "";
      o += sprintf(o, ",\"thp\":\"%s\"", t);
    }
  }
  if (in) o += sprintf(o, "}");
  o += sprintf(o, "],\"faults\":%ld,\"vm\":{", faults);
  {
    read_vmstat(now);
    for (int k = 0; k < nctr; k++) o += sprintf(o, "%s\"%s\":%lld", k ? "," : "", ctr_name[k], (long long)(now[k] - win_start[k]));
    memcpy(win_start, pre, sizeof pre);
  }
  o += sprintf(o, "}");
  if (memcg_dir[0]) {
    o += sprintf(o, ",\"memcg\":");
    memcg_figures(o);
    o += strlen(o);
  }
  o += sprintf(o, "}\n");
  emit(out);
}

static void fail(int step, const char *what) {
  char m[256];
  snprintf(m, sizeof m, "{\"step\":%d,\"error\":\"%s: %s\"}\n", step, what, strerror(errno));
  emit(m);
  _exit(2);
}

static void touch(unsigned long off, unsigned long len, unsigned long stride, int wr) {
  for (unsigned long a = off; a < off + len; a += stride) {
    volatile char *p = base + a;
    if (wr) *p = 1;
    else (void)*p;
  }
}


static pid_t child_pid = -1;
static int cmd_fd = -1, ack_fd = -1; /* parent → child commands, child → parent acks */
static int in_child;

static void run_step(int step, char *l);
static int get(const char *path, char *val, size_t size);
static void fail(int step, const char *what);

static unsigned long long full_scans(int step) {
  char v[32];
  if (get(THP_DIR "khugepaged/full_scans", v, sizeof v)) fail(step, "khugepaged/full_scans");
  return strtoull(v, NULL, 10);
}

/* The slot's Rss, AnonHugePages and Swap totals from smaps, as a string to compare. */
static void slot_sig(char *sig, size_t size) {
  unsigned long rss = 0, ahp = 0, sw = 0, v;
  int in = 0;
  uintptr_t lo = (uintptr_t)base, hi = lo + slot;
  if (slurp("/proc/self/smaps") < 0) return;
  for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
    unsigned long s, e;
    char perms[8];
    if (sscanf(l, "%lx-%lx %7s", &s, &e, perms) == 3 && strchr(l, '-') < strchr(l, ' ')) in = s < hi && e > lo;
    else if (in && sscanf(l, "Rss: %lu kB", &v) == 1) rss += v;
    else if (in && sscanf(l, "AnonHugePages: %lu kB", &v) == 1) ahp += v;
    else if (in && sscanf(l, "Swap: %lu kB", &v) == 1) sw += v;
  }
  snprintf(sig, size, "%lu/%lu/%lu", rss, ahp, sw);
}

/* The child: run each command line it is sent, ack it; "exit" ends it. */
static void child_loop(void) {
  static char line[512];
  for (;;) {
    size_t n = 0;
    char ch;
    while (read(cmd_fd, &ch, 1) == 1 && ch != '\n' && n < sizeof line - 1) line[n++] = ch;
    if (n == 0) _exit(0);
    line[n] = 0;
    int step;
    char *rest;
    step = (int)strtol(line, &rest, 10);
    if (!strcmp(rest + 1, "exit")) _exit(0);
    run_step(step, rest + 1);
    if (write(ack_fd, "k", 1) != 1) _exit(3);
  }
}

static void send_child(int step, const char *l) {
  char m[600];
  snprintf(m, sizeof m, "%d %s\n", step, l);
  if (child_pid < 0) {
    errno = ESRCH;
    fail(step, "no child (fork first)");
  }
  if (write(cmd_fd, m, strlen(m)) != (ssize_t)strlen(m)) fail(step, "command to child");
  char ch;
  if (read(ack_fd, &ch, 1) != 1) {
    errno = EPIPE;
    fail(step, "child died");
  }
}

/* Run one script line in this process and report. */
static void run_step(int step, char *l) {
  char op[16], arg[16] = "";
  unsigned long a = 0, b = 0, c = 0;
  int k = sscanf(l, "%15s %lu %lu %15s", op, &a, &b, arg);
  /* Both samples live in one stack area written before the first sample, so the
   * copy-out of getrusage itself can never fault inside the measured window. */
  struct rusage ru[2];
  memset((void *)ru, 0, sizeof ru);
  /* Warm-up (its result is unused): the deep libc stack and the static buffers are
   * touched here, so the measured window holds no first-touch fault of our own. */
  unsigned long long scratch[MAXCTR];
  read_vmstat(scratch);
  getrusage(RUSAGE_SELF, &ru[0]);
  if (k < 1) {
    errno = EINVAL;
    fail(step, "empty step");
  } else if (!strcmp(op, "region") && k >= 3) {
    unsigned long len = a, off = b;
    slot = (off + len + HPAGE - 1) & ~(HPAGE - 1);
    unsigned long resv = slot + HPAGE;
    char *p = mmap(NULL, resv, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail(step, "reserve");
    base = (char *)(((uintptr_t)p + HPAGE - 1) & ~(HPAGE - 1));
    if (mmap(base + off, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) fail(step, "mmap");
    /* Holes on both sides: nothing can merge with the region. */
    if (base + off > p && munmap(p, (size_t)(base + off - p))) fail(step, "munmap low");
    char *e = base + off + len, *pe = p + resv;
    if (pe > e && munmap(e, (size_t)(pe - e))) fail(step, "munmap high");
  } else if (!strcmp(op, "map") && k >= 3) {
    if (!base || a + b > slot) {
      errno = EINVAL;
      fail(step, "map: outside the slot");
    }
    if (mmap(base + a, b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) fail(step, "map");
  } else if (!strcmp(op, "madvise") && k == 4) {
    int adv = !strcmp(arg, "hugepage") ? MADV_HUGEPAGE : !strcmp(arg, "nohugepage") ? MADV_NOHUGEPAGE : MADV_DONTNEED;
    if (madvise(base + a, b, adv)) fail(step, "madvise");
  } else if (!strcmp(op, "touch") && sscanf(l, "%*s %lu %lu %lu %15s", &a, &b, &c, arg) == 4 && c > 0) {
    touch(a, b, c, arg[0] == 'w');
  } else if (!strcmp(op, "munmap") && k >= 3) {
    if (munmap(base + a, b)) fail(step, "munmap");
  } else if (!strcmp(op, "mprotect") && k == 4) {
    int prot = !strcmp(arg, "none") ? PROT_NONE : !strcmp(arg, "r") ? PROT_READ : PROT_READ | PROT_WRITE;
    if (mprotect(base + a, b, prot)) fail(step, "mprotect");
  } else if (!strcmp(op, "report")) {
    /* nothing */
  } else if (!strcmp(op, "khugepaged") && !in_child) {
    if (k < 2) a = 2;
    unsigned long long start = full_scans(step), seen = start;
    char sig[64] = "", prev[64] = "";
    int quiet = 0;
    for (int i = 0;; i++) {
      unsigned long long now = full_scans(step);
      if (now > seen) {
        seen = now;
        strcpy(prev, sig);
        slot_sig(sig, sizeof sig);
        quiet = strcmp(sig, prev) ? 0 : quiet + 1;
        /* Three full scans in a row that changed nothing: a collapse waiting on swap-in
         * I/O under load can pass one or two scans without a visible change. */
        if (now >= start + a && quiet >= 3) break;
      }
      if (i == 6000) {
        errno = ETIMEDOUT;
        fail(step, "khugepaged: too few full scans within 60 s (khugepaged/scan_sleep_millisecs?)");
      }
      usleep(10000);
    }
  } else if (!strcmp(op, "reclaim") && !in_child) {
    char p[192];
    snprintf(p, sizeof p, "%smemory.force_empty", memcg_dir);
    int fd = memcg_dir[0] ? open(p, O_WRONLY) : -1;
    if (fd < 0 || write(fd, "0", 1) != 1) fail(step, "reclaim: write 0 to the scenario cgroup's memory.force_empty (needs a memcg line)");
    close(fd);
  } else if (!strcmp(op, "fork") && !in_child) {
    int cmd[2], ack[2];
    if (child_pid >= 0 || pipe(cmd) || pipe(ack)) fail(step, "fork: one child at a time");
    pid_t pid = fork();
    if (pid < 0) fail(step, "fork");
    if (pid == 0) {
      in_child = 1;
      /* fork() does not copy page tables of file mappings, so the child's first call
       * of a libc wrapper would take a page-cache fault on its text inside a measured
       * window: run each wrapper once now (length 0: no effect). */
      (void)mprotect(base, 0, PROT_READ | PROT_WRITE);
      (void)madvise(base, 0, MADV_NORMAL);
      (void)munmap(base, 0);
      (void)mmap(NULL, 0, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      close(cmd[1]);
      close(ack[0]);
      cmd_fd = cmd[0];
      ack_fd = ack[1];
      child_loop();
    }
    /* The parent too: its first wrapper calls after fork must not fault in a later step. */
    (void)madvise(base, 0, MADV_NORMAL);
    (void)mprotect(base, 0, PROT_READ | PROT_WRITE);
    close(cmd[0]);
    close(ack[1]);
    cmd_fd = cmd[1];
    ack_fd = ack[0];
    child_pid = pid;
  } else if (!strcmp(op, "exit") && !in_child) {
    int st;
    char m[32];
    if (child_pid < 0) fail(step, "exit: no child");
    snprintf(m, sizeof m, "%d exit\n", step);
    if (write(cmd_fd, m, strlen(m)) != (ssize_t)strlen(m)) fail(step, "exit command");
    /* The child's exit_mmap is done before waitpid returns (exit_mm precedes exit_notify). */
    if (waitpid(child_pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) fail(step, "child exit");
    close(cmd_fd);
    close(ack_fd);
    child_pid = -1;
  } else {
    errno = EINVAL;
    fail(step, "bad step");
  }
  getrusage(RUSAGE_SELF, &ru[1]);
  /* After fork() the parent's own stack and data are COW while the child lives: its
   * faults there are not the region's, so fork and exit (which writes its command on
   * the stack) are not measured; nor is khugepaged (its polling is this process's work,
   * not the region's). */
  long faults = !strcmp(op, "fork") || !strcmp(op, "exit") || !strcmp(op, "khugepaged") ? -1 : faults_of(&ru[1]) - faults_of(&ru[0]);
  report(step, in_child ? "child" : "self", faults);
}

/* ---- the supervisor: lock, setup, worker, undo ------------------------------------ */

static int put(const char *path, const char *val) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -1;
  ssize_t n = write(fd, val, strlen(val));
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* A sysfs setting's current value: the [choice] of a choice file, else the trimmed text. */
static int get(const char *path, char *val, size_t size) {
  if (slurp(path) < 0) return -1;
  char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
  if (a && b) {
    snprintf(val, size, "%.*s", (int)(b - a - 1), a + 1);
  } else {
    snprintf(val, size, "%.*s", (int)size - 1, buf);
    val[strcspn(val, " \n")] = 0;
  }
  return 0;
}

/* The undo log: one line per change, written (and synced) before the change is made. */
static void log_undo(const char *fmt, const char *a, const char *b) {
  char l[512];
  snprintf(l, sizeof l, fmt, a, b);
  int fd = open(STATE_PATH, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0 || write(fd, l, strlen(l)) != (ssize_t)strlen(l) || fsync(fd)) {
    fprintf(stderr, "kdiff: cannot write %s: %s\n", STATE_PATH, strerror(errno));
    _exit(2);
  }
  close(fd);
}

/* Undo what STATE_PATH lists, last change first; each undo tolerates a change that was
 * never made (the run stopped between logging and doing it). `report`: say on stderr what
 * could not be undone. */
static int undo(int report) {
  static char st[1 << 14];
  int fd = open(STATE_PATH, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, st, sizeof st - 1);
  close(fd);
  st[n > 0 ? n : 0] = 0;
  char *lines[64];
  int nl = 0, bad = 0;
  for (char *save = NULL, *l = strtok_r(st, "\n", &save); l && nl < 64; l = strtok_r(NULL, "\n", &save)) lines[nl++] = l;
  while (nl-- > 0) {
    char kind[8], a[256], b[256] = "";
    if (sscanf(lines[nl], "%7s %255s %255s", kind, a, b) < 2) continue;
    if (!strcmp(kind, "sysfs")) {
      char p[320];
      snprintf(p, sizeof p, THP_DIR "%s", a);
      if (put(p, b)) bad = 1 + (report ? fprintf(stderr, "kdiff: could not restore %s to %s: %s\n", p, b, strerror(errno)) : 0);
    } else if (!strcmp(kind, "swap")) {
      if (swapoff(a) && errno != EINVAL && errno != ENOENT) bad = 1 + (report ? fprintf(stderr, "kdiff: swapoff %s: %s\n", a, strerror(errno)) : 0);
      if (unlink(a) && errno != ENOENT) bad = 1 + (report ? fprintf(stderr, "kdiff: unlink %s: %s\n", a, strerror(errno)) : 0);
    } else if (!strcmp(kind, "memcg")) {
      if (rmdir(a) && errno == EBUSY) {
        /* Tasks left in it (a killed run's): move them to the root cgroup, then remove. */
        char p[320], q[320];
        snprintf(p, sizeof p, "%scgroup.procs", a);
        snprintf(q, sizeof q, MEMCG_ROOT "cgroup.procs");
        if (slurp(p) > 0)
          for (char *t = strtok(buf, "\n"); t; t = strtok(NULL, "\n")) put(q, t);
      }
      if (rmdir(a) && errno != ENOENT) bad = 1 + (report ? fprintf(stderr, "kdiff: rmdir %s: %s\n", a, strerror(errno)) : 0);
    } else if (!strcmp(kind, "loop")) {
      /* Detach only if the loop device still has our file behind it. */
      int lfd = open(a, O_RDWR);
      struct loop_info64 li;
      if (lfd >= 0 && !ioctl(lfd, LOOP_GET_STATUS64, &li) && !strncmp((char *)li.lo_file_name, b, sizeof li.lo_file_name - 1)) {
        if (swapoff(a) && errno != EINVAL) bad = 1 + (report ? fprintf(stderr, "kdiff: swapoff %s: %s\n", a, strerror(errno)) : 0);
        if (ioctl(lfd, LOOP_CLR_FD, 0)) bad = 1 + (report ? fprintf(stderr, "kdiff: detach %s: %s\n", a, strerror(errno)) : 0);
      }
      if (lfd >= 0) close(lfd);
    }
  }
  if (bad) return -1;  /* keep the state file: the next run retries */
  unlink(STATE_PATH);
  return 0;
}

static pid_t worker = -1;
static void on_signal(int sig) {
  (void)sig;
  if (worker > 0) kill(worker, SIGKILL);
}

static void setup_fail(const char *what, const char *arg) {
  char m[512];
  snprintf(m, sizeof m, "{\"step\":-1,\"error\":\"setup %s %s: %s\"}\n", what, arg, strerror(errno));
  emit(m);
  undo(1);
  _exit(2);
}

/* A swap file of `bytes` (zeros and a version-1 swap header, as mkswap writes), swapon'd,
 * or (blkdev) attached to a free loop device that is swapon'd. */
static void make_swap(const char *path, unsigned long bytes, int blkdev) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) setup_fail("swap", path);
  memset(buf, 0, sizeof buf);
  for (unsigned long done = 0; done < bytes; done += sizeof buf)
    if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) setup_fail("swap write", path);
  uint32_t hdr[3] = {1, (uint32_t)(bytes / 4096 - 1), 0}; /* version, last_page, nr_badpages */
  if (pwrite(fd, hdr, sizeof hdr, 1024) != sizeof hdr || pwrite(fd, "SWAPSPACE2", 10, 4096 - 10) != 10 || fsync(fd))
    setup_fail("swap header", path);
  close(fd);
  if (!blkdev) {
    if (swapon(path, 0)) setup_fail("swapon", path);
    return;
  }
  int ctl = open("/dev/loop-control", O_RDWR);
  if (ctl < 0) setup_fail("swap blkdev", "/dev/loop-control");
  for (int tries = 0;; tries++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) setup_fail("swap blkdev: no free loop device", "");
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/loop%d", n);
    log_undo("loop %s %s\n", dev, path);
    int lfd = open(dev, O_RDWR), bfd = open(path, O_RDWR);
    if (lfd < 0 || bfd < 0) setup_fail("swap blkdev open", dev);
    if (ioctl(lfd, LOOP_SET_FD, bfd)) {
      if (errno == EBUSY && tries < 8) { /* taken meanwhile by someone else */
        close(lfd);
        close(bfd);
        continue;
      }
      setup_fail("swap blkdev attach", dev);
    }
    struct loop_info64 li = {0};
    snprintf((char *)li.lo_file_name, sizeof li.lo_file_name, "%.63s", path);
    if (ioctl(lfd, LOOP_SET_STATUS64, &li)) setup_fail("swap blkdev status", dev);
    close(bfd);
    close(lfd);
    if (swapon(dev, 0)) setup_fail("swapon", dev);
    break;
  }
  close(ctl);
}

/* Stack the worker may use later, touched now (so mlockall locks it, and no page of it is
 * first touched, and charged to the scenario's cgroup, inside a measured window). */
static void __attribute__((noinline)) grow_stack(void) {
  volatile char pad[256 << 10];
  for (size_t i = 0; i < sizeof pad; i += 4096) pad[i] = 0;
}

int main(void) {
  static char script[1 << 16];
  ssize_t n = 0, r;
  while ((r = read(0, script + n, sizeof script - 1 - (size_t)n)) > 0) n += r;
  script[n] = 0;
  int lock = open(LOCK_PATH, O_RDONLY | O_CREAT, 0666);
  if (lock < 0 || flock(lock, LOCK_EX)) setup_fail("lock", LOCK_PATH);
  /* A killed run's worker dies with its supervisor (PDEATHSIG) but may still be exiting —
   * its swap in use, its cgroup populated — when the next run gets the lock: retry for up
   * to 10 s (a hang guard) before giving up. */
  for (int tries = 1; undo(tries == 100); tries++) {
    if (tries == 100) {
      errno = EBUSY;
      setup_fail("undo of an earlier run's changes", STATE_PATH);
    }
    usleep(100000);
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  /* Setup lines come before the first step. */
  char *body = script;
  while (*body) {
    char *nl = strchr(body, '\n');
    char l[512];
    snprintf(l, sizeof l, "%.*s", nl ? (int)(nl - body) : (int)strlen(body), body);
    char kind[8], a[256], b[64];
    int k = sscanf(l, "%7s %255s %63s", kind, a, b);
    if (k < 2 || (strcmp(kind, "sysfs") && strcmp(kind, "memcg") && strcmp(kind, "swap"))) break;
    body = nl ? nl + 1 : body + strlen(body);
    if (!strcmp(kind, "sysfs")) {
      char p[320], old[64];
      if (k != 3 || strstr(a, "..") || a[0] == '/') {
        errno = EINVAL;
        setup_fail("sysfs", a);
      }
      snprintf(p, sizeof p, THP_DIR "%s", a);
      if (get(p, old, sizeof old)) setup_fail("sysfs read", p);
      log_undo("sysfs %s %s\n", a, old);
      if (put(p, b)) setup_fail("sysfs write", p);
    } else if (!strcmp(kind, "memcg")) {
      snprintf(memcg_dir, sizeof memcg_dir, MEMCG_ROOT "hugevisor-kdiff-%d/", (int)getpid());
      log_undo("memcg %s%s\n", memcg_dir, "");
      if (mkdir(memcg_dir, 0755)) setup_fail("memcg mkdir", memcg_dir);
      char p[192];
      snprintf(p, sizeof p, "%smemory.limit_in_bytes", memcg_dir);
      if (strcmp(a, "0") && put(p, a)) setup_fail("memcg limit", a);
    } else {
      char p[128];
      snprintf(p, sizeof p, "/tmp/hugevisor-kdiff-%d.swap", (int)getpid());
      log_undo("swap %s%s\n", p, "");
      make_swap(p, strtoul(a, NULL, 10), k == 3 && !strcmp(b, "blkdev"));
    }
  }
  mthp_init();
  pid_t supervisor = getpid();
  worker = fork();
  if (worker < 0) setup_fail("fork", "worker");
  if (worker == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* the worker never outlives the supervisor */
    if (getppid() != supervisor) _exit(2);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    close(lock);
    win_start = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (win_start == MAP_FAILED) fail(-1, "shared page");
    read_vmstat(win_start); /* also fixes the counter names before any mapping */
    if (memcg_dir[0]) {
      /* Everything of our own is populated and locked before joining the cgroup: it stays
       * charged to the parent cgroup and unevictable, so the cgroup holds the scenario's
       * pages only and its reclaim never swaps out this program. */
      grow_stack();
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(sched_getcpu(), &one);
      if (sched_setaffinity(0, sizeof one, &one)) fail(-1, "pin to one CPU");
      char p[192], pid[24];
      snprintf(p, sizeof p, "%scgroup.procs", memcg_dir);
      snprintf(pid, sizeof pid, "%d", (int)getpid());
      if (mlockall(MCL_CURRENT)) fail(-1, "mlockall");
      if (put(p, pid)) fail(-1, "join the scenario's memory cgroup");
    }
    /* First-touch the globals the region step writes, outside any measured window. */
    *(char *volatile *)&base = NULL;
    *(volatile unsigned long *)&slot = 0;
    int step = 0;
    char *save = NULL;
    for (char *l = strtok_r(body, "\n", &save); l; l = strtok_r(NULL, "\n", &save), step++) {
      if (!strncmp(l, "child ", 6)) send_child(step, l + 6);
      else run_step(step, l);
    }
    if (child_pid >= 0) {
      close(cmd_fd); /* EOF ends the child */
      waitpid(child_pid, NULL, 0);
    }
    _exit(0);
  }
  int st = 0;
  while (waitpid(worker, &st, 0) < 0 && errno == EINTR) {
  }
  worker = -1;
  int u = undo(1);
  if (u) fprintf(stderr, "kdiff: some changes could not be undone; %s keeps them for the next run\n", STATE_PATH);
  return WIFEXITED(st) ? (WEXITSTATUS(st) ? WEXITSTATUS(st) : u ? 4 : 0) : 128 + WTERMSIG(st);
}
