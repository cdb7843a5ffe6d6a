/* grow.c — see grow.h. */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int loom_grow(void *arrayp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    if (elem && ncap > SIZE_MAX / elem)
        return -1;
    void *old;
    memcpy(&old, arrayp, sizeof old); /* the caller's T *, whatever T is */
    void *p = realloc(old, ncap * elem);
    if (!p)
        return -1;
    memcpy(arrayp, &p, sizeof p);
    *cap = ncap;
    return 0;
}
