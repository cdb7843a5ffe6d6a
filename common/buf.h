/* buf.h — growable byte buffer, always NUL-terminated after data[len].
 * A transparent value type (like sds/zchunk) so it can live inside other
 * structs and on the stack. An optional limit bounds growth: appends past
 * it fail with LOOM_ETOOBIG instead of allocating without bound. */
#ifndef LOOM_COMMON_BUF_H
#define LOOM_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct loom_buf {
    char *data;   /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t limit; /* 0 = unbounded */
} loom_buf_t;

#define LOOM_BUF_INIT {NULL, 0, 0, 0}

void loom_buf_init(loom_buf_t *b, size_t limit);
/* Frees the storage; the buffer can be reused afterwards. */
void loom_buf_free(loom_buf_t *b);
void loom_buf_reset(loom_buf_t *b); /* len = 0, keeps capacity */
int loom_buf_reserve(loom_buf_t *b, size_t extra);
int loom_buf_append(loom_buf_t *b, const void *data, size_t n);
int loom_buf_puts(loom_buf_t *b, const char *s);
int loom_buf_putc(loom_buf_t *b, char c);
int loom_buf_printf(loom_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int loom_buf_vprintf(loom_buf_t *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal (quotes and escapes included). */
int loom_buf_json_str(loom_buf_t *b, const char *s, size_t n);
/* Appends the whole file at path ("-" = standard input). 0, or -1 with
 * errno set (cannot open or read it; ENOMEM/EFBIG past the buffer's limit). */
int loom_buf_read_file(loom_buf_t *b, const char *path);
/* Hands the storage to the caller (caller frees); the buffer becomes empty. */
char *loom_buf_detach(loom_buf_t *b, size_t *len);

#endif
