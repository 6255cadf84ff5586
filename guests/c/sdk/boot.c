/* Boot-info access (docs/guest-abi.md "Boot info"): memory size, args[] with defaults and
   the command line as space-separated `word` or `key=value` tokens. */
#include "hv.h"

uint64_t hv_memory_size(void) { return hv_boot_info()->memory; }

uint64_t hv_arg(unsigned index, uint64_t def) {
  const struct hv_boot_info *bi = hv_boot_info();
  return index < bi->nargs && index < HV_MAX_ARGS ? bi->args[index] : def;
}

const char *hv_cmdline(void) {
  uint64_t p = hv_boot_info()->cmdline;
  return p ? (const char *)p : "";
}

/* The token of the command line named `key` (the whole token or the part before '='). */
static const char *find_token(const char *key) {
  size_t klen = strlen(key);
  for (const char *p = hv_cmdline(); *p;) {
    while (*p == ' ') p++;
    const char *t = p;
    while (*p && *p != ' ') p++;
    if ((size_t)(p - t) >= klen && !strncmp(t, key, klen) && (t[klen] == ' ' || t[klen] == 0 || t[klen] == '=')) return t;
  }
  return NULL;
}

bool hv_cmdline_has(const char *word) { return find_token(word) != NULL; }

ssize_t hv_cmdline_get(const char *key, char *buf, size_t size) {
  const char *t = find_token(key);
  if (!t || t[strlen(key)] != '=') return -1;
  const char *v = t + strlen(key) + 1;
  size_t n = 0;
  while (v[n] && v[n] != ' ') n++;
  if (size) {
    size_t c = n < size - 1 ? n : size - 1;
    memcpy(buf, v, c);
    buf[c] = 0;
  }
  return (ssize_t)n;
}

uint64_t hv_cmdline_u64(const char *key, uint64_t def) {
  char buf[32];
  if (hv_cmdline_get(key, buf, sizeof buf) <= 0) return def;
  const char *p = buf;
  unsigned base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p += 2;
  }
  uint64_t v = 0;
  for (; *p; p++) {
    unsigned d;
    if (*p >= '0' && *p <= '9') d = (unsigned)(*p - '0');
    else if (base == 16 && *p >= 'a' && *p <= 'f') d = (unsigned)(*p - 'a' + 10);
    else if (base == 16 && *p >= 'A' && *p <= 'F') d = (unsigned)(*p - 'A' + 10);
    else break;
    v = v * base + d;
  }
  switch (*p) {
  case 'k': case 'K': v <<= 10; break;
  case 'm': case 'M': v <<= 20; break;
  case 'g': case 'G': v <<= 30; break;
  }
  return v;
}
