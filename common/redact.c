/* redact.c — see redact.h. */
#include "common/redact.h"

#include <string.h>

#include "common/buf.h"

/* Earliest occurrence of any secret at or after p (NULL when none). */
static const char *next_hit(const char *p, const char *end, char *const *secrets, size_t n,
                            size_t *hit_len)
{
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t sl = strlen(secrets[i]);
        if (sl < LOOM_REDACT_MIN_LEN)
            continue;
        const char *h = memmem(p, (size_t)(end - p), secrets[i], sl);
        if (h && (!best || h < best || (h == best && sl > *hit_len))) {
            best = h;
            *hit_len = sl;
        }
    }
    return best;
}

char *loom_redact_text(const char *text, size_t len, char *const *secrets, size_t n,
                       size_t *out_len)
{
    if (!text || !n)
        return NULL;
    const char *p = text, *end = text + len;
    size_t hl = 0;
    const char *h = next_hit(p, end, secrets, n, &hl);
    if (!h)
        return NULL;
    loom_buf_t b = LOOM_BUF_INIT;
    while (h) {
        loom_buf_append(&b, p, (size_t)(h - p));
        loom_buf_append(&b, LOOM_REDACTED, strlen(LOOM_REDACTED));
        p = h + hl;
        hl = 0;
        h = next_hit(p, end, secrets, n, &hl);
    }
    loom_buf_append(&b, p, (size_t)(end - p));
    return loom_buf_detach(&b, out_len);
}
