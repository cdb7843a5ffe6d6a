/* arena.c — see arena.h. A singly linked list of blocks; large requests get
 * a block of their own so the current block is not wasted. */
#include "common/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 16

typedef struct block {
    struct block *next;
    size_t size, used;
    _Alignas(ALIGN) unsigned char data[];
} block_t;

struct loom_arena {
    block_t *head;
    size_t block_size;
    size_t used;
};

static block_t *block_new(size_t size)
{
    block_t *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

loom_arena_t *loom_arena_new(size_t block_size)
{
    loom_arena_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    a->head = block_new(a->block_size);
    if (!a->head) {
        free(a);
        return NULL;
    }
    return a;
}

void loom_arena_destroy(loom_arena_t **pa)
{
    if (!pa || !*pa)
        return;
    block_t *b = (*pa)->head;
    while (b) {
        block_t *next = b->next;
        free(b);
        b = next;
    }
    free(*pa);
    *pa = NULL;
}

void *loom_arena_alloc(loom_arena_t *a, size_t size)
{
    if (size > SIZE_MAX - ALIGN)
        return NULL;
    size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need == 0)
        need = ALIGN;
    block_t *b = a->head; /* NULL only after a reset that hit OOM */
    if (!b || b->size - b->used < need) {
        if (need > a->block_size / 4) {
            /* Big request: own block, linked behind the current one. */
            block_t *big = block_new(need);
            if (!big)
                return NULL;
            big->used = need;
            if (b) {
                big->next = b->next;
                b->next = big;
            } else {
                a->head = big;
            }
            a->used += need;
            return big->data;
        }
        block_t *nb = block_new(a->block_size);
        if (!nb)
            return NULL;
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used += need;
    return p;
}

void *loom_arena_calloc(loom_arena_t *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = loom_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

char *loom_arena_strndup(loom_arena_t *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = loom_arena_alloc(a, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

char *loom_arena_strdup(loom_arena_t *a, const char *s)
{
    return loom_arena_strndup(a, s, SIZE_MAX);
}

char *loom_arena_sprintf(loom_arena_t *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n < 0 ? NULL : loom_arena_alloc(a, (size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void loom_arena_reset(loom_arena_t *a)
{
    /* Keep the oldest block (the tail): it is a normal-sized one. */
    block_t *b = a->head, *keep = NULL;
    while (b) {
        block_t *next = b->next;
        if (!next && b->size == a->block_size)
            keep = b;
        else
            free(b);
        b = next;
    }
    if (!keep)
        keep = block_new(a->block_size); /* the tail was a big block */
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
    a->used = 0;
}

size_t loom_arena_used(const loom_arena_t *a) { return a->used; }
