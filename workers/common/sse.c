/* sse.c — see sse.h. */
#include "workers/common/sse.h"

#include <string.h>

#include "common/err.h"

void loom_sse_init(loom_sse_t *s, size_t limit)
{
    loom_buf_init(&s->pending, limit);
}

void loom_sse_free(loom_sse_t *s)
{
    loom_buf_free(&s->pending);
}

/* The end of the first event in p[0..n) (a blank line) and the length of
 * its terminator, or NULL. */
static const char *event_end(const char *p, size_t n, size_t *term)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n' && p[i] != '\r')
            continue;
        if (p[i] == '\n' && p[i + 1] == '\n')
            return *term = 2, p + i;
        if (p[i] == '\r' && p[i + 1] == '\r')
            return *term = 2, p + i;
        if (i + 3 < n && !memcmp(p + i, "\r\n\r\n", 4))
            return *term = 4, p + i;
    }
    return NULL;
}

static int emit(const char *ev, size_t n, loom_sse_event_fn fn, void *ud)
{
    loom_buf_t data;
    loom_buf_init(&data, 0);
    int rc = 0, any = 0;
    for (const char *line = ev, *end = ev + n; line < end && !rc;) {
        const char *eol = line;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        size_t ll = (size_t)(eol - line);
        if (ll >= 5 && !memcmp(line, "data:", 5)) {
            const char *v = line + 5;
            size_t vl = ll - 5;
            if (vl && *v == ' ')
                v++, vl--;
            if (any)
                rc = loom_buf_putc(&data, '\n');
            if (!rc)
                rc = loom_buf_append(&data, v, vl);
            any = 1;
        }
        line = eol < end && *eol == '\r' && eol + 1 < end && eol[1] == '\n' ? eol + 2 : eol + 1;
    }
    if (rc)
        rc = LOOM_ENOMEM;
    else if (any)
        rc = fn(ud, data.data ? data.data : "", data.len);
    loom_buf_free(&data);
    return rc;
}

int loom_sse_feed(loom_sse_t *s, const char *p, size_t n, loom_sse_event_fn fn, void *ud)
{
    int rc = n ? loom_buf_append(&s->pending, p, n) : 0;
    if (rc || !s->pending.data)
        return rc;
    size_t start = 0, term = 0;
    const char *end;
    while (!rc && (end = event_end(s->pending.data + start, s->pending.len - start, &term))) {
        rc = emit(s->pending.data + start, (size_t)(end - (s->pending.data + start)), fn, ud);
        start = (size_t)(end - s->pending.data) + term;
    }
    memmove(s->pending.data, s->pending.data + start, s->pending.len - start);
    s->pending.len -= start;
    return rc;
}
