/* Console output on COM1 (docs/guest-abi.md: port 0x3F8 carries one byte per OUT) and a
   printf subset: %d %i %u %x %X %p %s %c %% with l/ll/z, width, '0' and '-'. */
#include "hv.h"

typedef void (*sink_fn)(void *ctx, char c);

int putchar(int c) {
  hv_outb(HV_PORT_COM1, (uint8_t)c);
  return (uint8_t)c;
}

int puts(const char *s) {
  while (*s) putchar(*s++);
  putchar('\n');
  return 0;
}

static void put_console(void *ctx, char c) {
  (void)ctx;
  putchar(c);
}

struct buf_sink {
  char *p;
  size_t left;
};
static void put_buf(void *ctx, char c) {
  struct buf_sink *b = ctx;
  if (b->left > 1) {
    *b->p++ = c;
    b->left--;
  }
}

static int format(sink_fn put, void *ctx, const char *fmt, va_list ap) {
  int n = 0;
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      put(ctx, *fmt);
      n++;
      continue;
    }
    fmt++;
    bool left = false, zero = false;
    for (;; fmt++) {
      if (*fmt == '-') left = true;
      else if (*fmt == '0') zero = true;
      else break;
    }
    unsigned width = 0;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (unsigned)(*fmt++ - '0');
    int longs = 0;
    while (*fmt == 'l' || *fmt == 'z') {
      longs++;
      fmt++;
    }
    char tmp[24];
    const char *s = tmp;
    size_t len = 0;
    bool neg = false;
    uint64_t v;
    unsigned base = 10;
    bool upper = false;
    switch (*fmt) {
    case 'd':
    case 'i': {
      int64_t sv = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
      neg = sv < 0;
      v = neg ? -(uint64_t)sv : (uint64_t)sv;
      goto number;
    }
    case 'p':
      v = (uint64_t)va_arg(ap, void *);
      base = 16;
      put(ctx, '0');
      put(ctx, 'x');
      n += 2;
      if (!width) {
        width = 16;
        zero = true;
      }
      goto number;
    case 'X':
      upper = true;
      /* fall through */
    case 'x':
      base = 16;
      /* fall through */
    case 'u':
      v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
    number: {
      char *e = tmp + sizeof tmp;
      char *q = e;
      do {
        unsigned d = (unsigned)(v % base);
        *--q = (char)(d < 10 ? '0' + d : (upper ? 'A' : 'a') + d - 10);
        v /= base;
      } while (v);
      s = q;
      len = (size_t)(e - q);
      break;
    }
    case 's':
      s = va_arg(ap, const char *);
      if (!s) s = "(null)";
      len = strlen(s);
      break;
    case 'c':
      tmp[0] = (char)va_arg(ap, int);
      len = 1;
      break;
    case '%':
      tmp[0] = '%';
      len = 1;
      break;
    default: /* unknown conversion: print it as written */
      put(ctx, '%');
      n++;
      if (!*fmt) return n;
      tmp[0] = *fmt;
      len = 1;
      break;
    }
    size_t total = len + (neg ? 1 : 0);
    size_t pad = width > total ? width - total : 0;
    if (!left && !zero)
      for (; pad; pad--, n++) put(ctx, ' ');
    if (neg) {
      put(ctx, '-');
      n++;
    }
    if (!left && zero)
      for (; pad; pad--, n++) put(ctx, '0');
    for (size_t i = 0; i < len; i++, n++) put(ctx, s[i]);
    for (; pad; pad--, n++) put(ctx, ' ');
  }
  return n;
}

int vprintf(const char *fmt, va_list ap) { return format(put_console, NULL, fmt, ap); }

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
  struct buf_sink b = {buf, size};
  va_list ap;
  va_start(ap, fmt);
  int n = format(put_buf, &b, fmt, ap);
  va_end(ap);
  if (size) *b.p = 0;
  return n;
}
