/* map.h — string-keyed hash map (open addressing, linear probing).
 * The map copies keys; values are borrowed pointers the caller owns.
 * An optional free function is called on values when they are replaced,
 * deleted or the map is destroyed. Not thread-safe. */
#ifndef LOOM_COMMON_MAP_H
#define LOOM_COMMON_MAP_H

#include <stddef.h>

typedef struct loom_map loom_map_t;
typedef void (*loom_map_free_fn)(void *value);

/* Returns NULL on OOM. value_free may be NULL. */
loom_map_t *loom_map_new(loom_map_free_fn value_free);
void loom_map_destroy(loom_map_t **pm);

/* Inserts or replaces. Returns 0 or LOOM_ENOMEM. */
int loom_map_put(loom_map_t *m, const char *key, void *value);
/* Returns the value or NULL when absent. */
void *loom_map_get(const loom_map_t *m, const char *key);
int loom_map_has(const loom_map_t *m, const char *key);
/* Removes key; returns 0 or LOOM_ENOTFOUND. */
int loom_map_del(loom_map_t *m, const char *key);
size_t loom_map_len(const loom_map_t *m);

/* Iteration: start with *it = 0; returns 1 and sets key/value while
 * entries remain. The map must not be modified during iteration except
 * through loom_map_del of the current key. */
int loom_map_next(const loom_map_t *m, size_t *it, const char **key, void **value);

/* 64-bit hash of bytes (FNV-1a), for callers that need a stable hash. */
unsigned long long loom_hash_bytes(const void *data, size_t n);

#endif
