/* page_arena.c — see page_arena.h. Blocks form a list, newest first;
 * allocations bump through the newest one only. Each block starts with its
 * header; the arena's own state sits in the oldest block, after it. */
#include "common/page_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_BLOCK ((size_t)1 << 20) /* growth stops here; bigger requests get their own block */
#define MMAP_MIN ((size_t)64 << 10)  /* smaller blocks come from malloc */
#define MALLOC_OVERHEAD 16           /* a malloc'd block's chunk header, counted in bytes */

typedef struct block {
    struct block *next; /* the previous (older) block */
    size_t size;        /* bytes of the block, header included */
    size_t used;        /* bytes used from its start, header included */
    int heap;           /* from malloc: mmap was refused */
} block_t;

struct loom_page_arena {
    block_t *head;    /* newest block; the oldest one holds this struct */
    size_t bytes;     /* sum of the blocks' sizes */
    size_t used;      /* bytes handed out (padding included) */
    size_t next_size; /* size of the next ordinary block */
};

#define HDR (((sizeof(block_t)) + 15) & ~(size_t)15)
#define ARENA_HDR (((sizeof(struct loom_page_arena)) + 15) & ~(size_t)15)

static size_t page_size(void)
{
    static size_t ps;
    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (size_t)v : 4096;
    }
    return ps;
}

/* n rounded up to whole pages; 0 on overflow. */
static size_t round_pages(size_t n)
{
    size_t ps = page_size();
    return n > SIZE_MAX - ps ? 0 : (n + ps - 1) / ps * ps;
}

/* The size of a block holding n bytes: whole pages once it is mapped. */
static size_t block_size(size_t n)
{
    return n < MMAP_MIN ? (n + 15) & ~(size_t)15 : round_pages(n);
}

/* What a block costs. */
static size_t block_cost(const block_t *b)
{
    return b->size + (b->heap ? MALLOC_OVERHEAD : 0);
}

static block_t *block_new(size_t size)
{
    int heap = 0;
    block_t *b = size >= MMAP_MIN
                     ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                     : MAP_FAILED;
    if (b == MAP_FAILED) {
        if (!(b = malloc(size)))
            return NULL;
        heap = 1;
    }
    b->next = NULL;
    b->size = size;
    b->used = HDR;
    b->heap = heap;
    return b;
}

static void block_free(block_t *b)
{
    if (b->heap)
        free(b);
    else
        munmap(b, b->size);
}

loom_page_arena_t *loom_page_arena_new(size_t room)
{
    if (room > SIZE_MAX / 2)
        return NULL;
    size_t size = block_size(HDR + ARENA_HDR + room);
    block_t *b = size ? block_new(size) : NULL;
    if (!b)
        return NULL;
    loom_page_arena_t *a = (loom_page_arena_t *)((char *)b + HDR);
    b->used = HDR + ARENA_HDR;
    a->head = b;
    a->bytes = block_cost(b);
    a->used = 0;
    a->next_size = page_size();
    return a;
}

void loom_page_arena_destroy(loom_page_arena_t **pa)
{
    if (!pa || !*pa)
        return;
    block_t *b = (*pa)->head;
    *pa = NULL;
    while (b) { /* the oldest block, holding the arena, goes last */
        block_t *next = b->next;
        block_free(b);
        b = next;
    }
}

void *loom_page_arena_alloc(loom_page_arena_t *a, size_t size, size_t align)
{
    if (!a || align == 0 || align > 16 || (align & (align - 1)) || size > SIZE_MAX / 4)
        return NULL;
    block_t *b = a->head;
    size_t off = (b->used + align - 1) & ~(align - 1);
    if (off > b->size || b->size - off < size) {
        size_t want = block_size(HDR + size);
        size_t bsize = want > a->next_size ? want : a->next_size;
        block_t *nb = want ? block_new(bsize) : NULL;
        if (!nb)
            return NULL;
        nb->next = b;
        a->head = b = nb;
        a->bytes += block_cost(nb);
        if (a->next_size < MAX_BLOCK)
            a->next_size *= 2;
        off = b->used; /* HDR: 16-aligned */
    }
    a->used += off + size - b->used;
    b->used = off + size;
    return (char *)b + off;
}

char *loom_page_arena_strdup(loom_page_arena_t *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = loom_page_arena_alloc(a, n, 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

void loom_page_arena_trim(loom_page_arena_t *a)
{
    block_t *b = a ? a->head : NULL;
    if (!b || b->heap)
        return;
    size_t keep = round_pages(b->used);
    if (keep < b->size && munmap((char *)b + keep, b->size - keep) == 0) {
        a->bytes -= b->size - keep;
        b->size = keep;
    }
}

size_t loom_page_arena_bytes(const loom_page_arena_t *a) { return a ? a->bytes : 0; }

size_t loom_page_arena_used(const loom_page_arena_t *a) { return a ? a->used : 0; }
