/* page_arena.h — bump allocator for records that live long and die
 * together (a run's records in the in-memory store).
 *
 * Unlike arena.h (malloc'd 64 KiB blocks, for short-lived things), blocks
 * of 64 KiB or more are mmap'd: never part of malloc's heap, so they
 * cannot be interleaved with other allocations, and destroying the arena
 * hands whole pages back to the system at once. Smaller blocks come from
 * malloc (a mapping per small block costs more than it saves: a syscall
 * and page faults each), as do blocks mmap refuses (vm.max_map_count
 * reached), so nothing fails that malloc can still serve. Blocks grow
 * geometrically from 4 KiB to 1 MiB; a larger request gets a block of its
 * own size. loom_page_arena_bytes() is exactly what the arena costs: its
 * blocks, its own header included (malloc's chunk header for the small
 * ones). Not thread-safe. */
#ifndef LOOM_COMMON_PAGE_ARENA_H
#define LOOM_COMMON_PAGE_ARENA_H

#include <stddef.h>

typedef struct loom_page_arena loom_page_arena_t;

/* An arena whose first block has room for `room` bytes of allocations
 * (0 = none yet), mapped when that is 64 KiB or more. NULL on OOM. */
loom_page_arena_t *loom_page_arena_new(size_t room);
/* Unmaps every block; safe on NULL and twice; sets *pa = NULL. */
void loom_page_arena_destroy(loom_page_arena_t **pa);

/* size bytes aligned to align (1, 2, 4, 8 or 16), or NULL on OOM. */
void *loom_page_arena_alloc(loom_page_arena_t *a, size_t size, size_t align);
/* A copy of s in the arena; NULL when s is NULL or on OOM. */
char *loom_page_arena_strdup(loom_page_arena_t *a, const char *s);
/* Hands the unused whole pages at the end of the newest block back to the
 * system if it is mapped (after filling an arena sized by an upper bound).
 * Later allocations still use what is left of its last page. */
void loom_page_arena_trim(loom_page_arena_t *a);

/* What the arena costs in bytes, and bytes handed out. */
size_t loom_page_arena_bytes(const loom_page_arena_t *a);
size_t loom_page_arena_used(const loom_page_arena_t *a);

#endif
