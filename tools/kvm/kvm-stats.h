/*
 * KVM binary statistics (KVM_GET_STATS_FD, Linux 5.14+) for kvm-run.c: reads every
 * statistic this kernel offers for a VM or vCPU fd — pages_4k/pages_2m/pages_1g,
 * pf_taken/pf_fixed/pf_guest, exits, tlb_flush... whatever the kernel has — so
 * differential tests can compare them with hugevisor's counters. No debugfs needed.
 * When the ioctl is missing, the stats print as null and nothing else changes.
 */
#ifndef KVM_STATS_H
#define KVM_STATS_H

#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct kvm_stat_item {
  char name[64];
  uint32_t flags;
  uint16_t size;   /* number of u64 values (histograms have several) */
  uint32_t offset; /* within the data block */
};

struct kvm_stats {
  int fd;          /* -1: not available */
  const char *what;
  uint32_t n, data_offset, data_size;
  struct kvm_stat_item *items;
  uint64_t *data, *snap; /* current values and the ROI-begin snapshot */
};

static void stats_open(struct kvm_stats *s, int fd, const char *what) {
  memset(s, 0, sizeof *s);
  s->what = what;
  s->fd = ioctl(fd, KVM_GET_STATS_FD, NULL);
  if (s->fd < 0) return;
  struct kvm_stats_header h;
  if (pread(s->fd, &h, sizeof h, 0) != (ssize_t)sizeof h) goto fail;
  size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
  char *descs = malloc(dsz * h.num_desc);
  if (!descs || pread(s->fd, descs, dsz * h.num_desc, h.desc_offset) != (ssize_t)(dsz * h.num_desc)) { free(descs); goto fail; }
  s->items = calloc(h.num_desc, sizeof *s->items);
  s->n = h.num_desc;
  s->data_offset = h.data_offset;
  for (uint32_t i = 0; i < h.num_desc; i++) {
    struct kvm_stats_desc *d = (struct kvm_stats_desc *)(descs + i * dsz);
    struct kvm_stat_item *it = &s->items[i];
    snprintf(it->name, sizeof it->name, "%s", d->name);
    it->flags = d->flags;
    it->size = d->size;
    it->offset = d->offset;
    uint32_t end = d->offset + d->size * 8u;
    if (end > s->data_size) s->data_size = end;
  }
  free(descs);
  s->data = calloc(1, s->data_size + 8);
  s->snap = calloc(1, s->data_size + 8);
  return;
fail:
  close(s->fd);
  s->fd = -1;
}

static int stats_read(struct kvm_stats *s) {
  if (s->fd < 0) return 0;
  return pread(s->fd, s->data, s->data_size, s->data_offset) == (ssize_t)s->data_size;
}

static void stats_snapshot(struct kvm_stats *s) {
  if (stats_read(s)) memcpy(s->snap, s->data, s->data_size);
}

static int stats_is_scalar(const struct kvm_stat_item *it) {
  uint32_t type = it->flags & KVM_STATS_TYPE_MASK;
  return it->size == 1 && (type == KVM_STATS_TYPE_CUMULATIVE || type == KVM_STATS_TYPE_INSTANT || type == KVM_STATS_TYPE_PEAK);
}

/* {"name":value,...}: scalars as numbers, histograms as arrays. */
static void stats_print(struct kvm_stats *s) {
  if (!stats_read(s)) { printf("null"); return; }
  putchar('{');
  for (uint32_t i = 0; i < s->n; i++) {
    const struct kvm_stat_item *it = &s->items[i];
    const uint64_t *v = (const uint64_t *)((const char *)s->data + it->offset);
    printf("%s\"%s\":", i ? "," : "", it->name);
    if (it->size == 1) printf("%llu", (unsigned long long)v[0]);
    else {
      putchar('[');
      for (uint16_t k = 0; k < it->size; k++) printf("%s%llu", k ? "," : "", (unsigned long long)v[k]);
      putchar(']');
    }
  }
  putchar('}');
}

/* Appends {"name":delta,...} of the scalar stats that changed since stats_snapshot(). */
static void stats_delta_into(struct kvm_stats *s, char **out, size_t *len, size_t *cap) {
  int first = 1;
  char tmp[128];
  const char *open = "{";
  if (!stats_read(s)) open = "null";
#define APPEND(str)                                        \
  do {                                                     \
    size_t l_ = strlen(str);                               \
    if (*len + l_ + 1 > *cap) {                            \
      *cap = (*len + l_ + 1) * 2;                          \
      *out = realloc(*out, *cap);                          \
    }                                                      \
    memcpy(*out + *len, str, l_ + 1);                      \
    *len += l_;                                            \
  } while (0)
  APPEND(open);
  if (s->fd < 0 || open[0] == 'n') return;
  for (uint32_t i = 0; i < s->n; i++) {
    const struct kvm_stat_item *it = &s->items[i];
    if (!stats_is_scalar(it)) continue;
    uint64_t a = *(const uint64_t *)((const char *)s->snap + it->offset);
    uint64_t b = *(const uint64_t *)((const char *)s->data + it->offset);
    if (a == b) continue;
    snprintf(tmp, sizeof tmp, "%s\"%s\":%lld", first ? "" : ",", it->name, (long long)(b - a));
    APPEND(tmp);
    first = 0;
  }
  APPEND("}");
#undef APPEND
}

/* {"vm":{...},"vcpu":{...}}: the stats that changed inside one region of interest. */
static char *stats_delta_json(struct kvm_stats *vm, struct kvm_stats *vcpu) {
  size_t len = 0, cap = 256;
  char *out = malloc(cap);
  out[0] = 0;
  const char *a = "{\"vm\":", *b = ",\"vcpu\":", *c = "}";
  size_t la = strlen(a);
  memcpy(out, a, la + 1);
  len = la;
  stats_delta_into(vm, &out, &len, &cap);
  if (len + strlen(b) + 1 > cap) { cap = len * 2 + 64; out = realloc(out, cap); }
  strcpy(out + len, b);
  len += strlen(b);
  stats_delta_into(vcpu, &out, &len, &cap);
  if (len + 2 > cap) { cap = len + 16; out = realloc(out, cap); }
  strcpy(out + len, c);
  return out;
}

#endif
