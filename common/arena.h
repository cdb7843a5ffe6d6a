/* arena.h — bump allocator for objects that share a lifetime (a parsed
 * workflow, a plan, a lowering, one message). Freed all at once.
 * Allocations are 16-byte aligned. Not thread-safe. */
#ifndef LOOM_COMMON_ARENA_H
#define LOOM_COMMON_ARENA_H

#include <stddef.h>

typedef struct loom_arena loom_arena_t;

/* block_size: bytes per block (0 = 64 KiB). Returns NULL on OOM. */
loom_arena_t *loom_arena_new(size_t block_size);
/* Frees every block; safe on NULL and twice; sets *pa = NULL. */
void loom_arena_destroy(loom_arena_t **pa);

/* Returns memory owned by the arena, or NULL on OOM. */
void *loom_arena_alloc(loom_arena_t *a, size_t size);
void *loom_arena_calloc(loom_arena_t *a, size_t n, size_t size);
char *loom_arena_strdup(loom_arena_t *a, const char *s);
char *loom_arena_strndup(loom_arena_t *a, const char *s, size_t n);
char *loom_arena_sprintf(loom_arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Keeps the first block, frees the rest; all earlier pointers are invalid. */
void loom_arena_reset(loom_arena_t *a);
/* Bytes handed out since creation or the last reset. */
size_t loom_arena_used(const loom_arena_t *a);

#endif
