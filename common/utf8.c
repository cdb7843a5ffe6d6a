/* utf8.c — see utf8.h. */
#include "common/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid sequence at p (1..4), 0 when p[0..n) is a valid but
 * cut-off start of one, -1 when invalid. */
static int seq_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    int len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return -1;
    if (c < 0xe0)
        len = 2;
    else if (c < 0xf0) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlongs */
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c < 0xf5) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* <= U+10FFFF */
    } else
        return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        unsigned b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80)
            return -1;
    }
    return len;
}

int loom_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int l = seq_len(p + i, n - i);
        if (l <= 0)
            return 0;
        i += (size_t)l;
    }
    return 1;
}

char *loom_utf8_repair(const char *s, size_t n, size_t *tail)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = malloc(3 * n + 1), *o = out; /* each bad byte grows to 3 */
    if (!out)
        return NULL;
    if (tail)
        *tail = 0;
    for (size_t i = 0; i < n;) {
        int l = seq_len(p + i, n - i);
        if (l == 0 && tail) {
            *tail = n - i;
            break;
        }
        if (l <= 0) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(o, p + i, (size_t)l);
        o += l;
        i += (size_t)l;
    }
    *o = 0;
    return out;
}
