/* grow.h — capacity growth for the plain `T *v; size_t n, cap;` arrays
 * the code base keeps everywhere (workers, ops, tasks, edges ...).
 * One place decides the growth policy (double, first 8) and the overflow
 * check, instead of a realloc-and-swap block at every call site. */
#ifndef LOOM_COMMON_GROW_H
#define LOOM_COMMON_GROW_H

#include <stddef.h>

/* Makes room for at least `need` elements of `elem` bytes in the array
 * whose pointer is at `arrayp` (a T ** passed as void *) and whose
 * capacity is *cap. 0, or -1 with the array untouched (out of memory or
 * size overflow). */
int loom_grow(void *arrayp, size_t *cap, size_t need, size_t elem);

/* LOOM_GROW(v, cap, need): the same for an array expression v. */
#define LOOM_GROW(v, cap, need) loom_grow(&(v), &(cap), (need), sizeof *(v))

#endif
