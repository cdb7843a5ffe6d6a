/* buf.c — see buf.h. */
#include "common/buf.h"
#include "common/err.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void loom_buf_init(loom_buf_t *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void loom_buf_free(loom_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void loom_buf_reset(loom_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int loom_buf_reserve(loom_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return LOOM_ETOOBIG;
    size_t need = b->len + extra + 1; /* + NUL */
    if (b->limit && need - 1 > b->limit)
        return LOOM_ETOOBIG;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->limit && cap > b->limit + 1)
        cap = b->limit + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return LOOM_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int loom_buf_append(loom_buf_t *b, const void *data, size_t n)
{
    int rc = loom_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int loom_buf_puts(loom_buf_t *b, const char *s) { return loom_buf_append(b, s, strlen(s)); }
int loom_buf_putc(loom_buf_t *b, char c) { return loom_buf_append(b, &c, 1); }

int loom_buf_vprintf(loom_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return LOOM_EINVAL;
    int rc = loom_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int loom_buf_printf(loom_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = loom_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int loom_buf_json_str(loom_buf_t *b, const char *s, size_t n)
{
    int rc = loom_buf_putc(b, '"');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t run = i; /* characters that need no escape go in one append */
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            rc = loom_buf_append(b, s + i, run - i);
            if (run == n || rc)
                break;
            i = run;
        }
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': rc = loom_buf_puts(b, "\\\""); break;
        case '\\': rc = loom_buf_puts(b, "\\\\"); break;
        case '\n': rc = loom_buf_puts(b, "\\n"); break;
        case '\r': rc = loom_buf_puts(b, "\\r"); break;
        case '\t': rc = loom_buf_puts(b, "\\t"); break;
        default:
            rc = c < 0x20 ? loom_buf_printf(b, "\\u%04x", c) : loom_buf_putc(b, (char)c);
        }
    }
    return rc ? rc : loom_buf_putc(b, '"');
}

char *loom_buf_detach(loom_buf_t *b, size_t *len)
{
    if (!b->data && loom_buf_reserve(b, 0))
        return NULL;
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

int loom_buf_read_file(loom_buf_t *b, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (loom_buf_append(b, chunk, n) != 0) {
            errno = b->limit && b->len + n > b->limit ? EFBIG : ENOMEM;
            rc = -1;
        }
    if (rc == 0 && ferror(f))
        rc = -1; /* errno from the failed read */
    if (rc == 0 && !b->data && loom_buf_reserve(b, 0) != 0) {
        errno = ENOMEM;
        rc = -1;
    }
    if (f != stdin) {
        int e = errno;
        fclose(f);
        errno = e;
    }
    return rc;
}
