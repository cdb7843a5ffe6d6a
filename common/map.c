/* map.c — see map.h. Tombstones mark deleted slots; the table grows at
 * 70% load (live + tombstones) and is rebuilt without tombstones. */
#include "common/map.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOMBSTONE ((char *)&tombstone_marker)
static const char tombstone_marker = 0;

typedef struct {
    char *key; /* NULL = empty, TOMBSTONE = deleted */
    void *value;
    uint64_t hash;
} slot_t;

struct loom_map {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t len, used; /* live entries; live + tombstones */
    loom_map_free_fn value_free;
};

unsigned long long loom_hash_bytes(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

loom_map_t *loom_map_new(loom_map_free_fn value_free)
{
    loom_map_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    m->value_free = value_free;
    return m;
}

void loom_map_destroy(loom_map_t **pm)
{
    if (!pm || !*pm)
        return;
    loom_map_t *m = *pm;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key && m->slots[i].key != TOMBSTONE) {
            if (m->value_free)
                m->value_free(m->slots[i].value);
            free(m->slots[i].key);
        }
    }
    free(m->slots);
    free(m);
    *pm = NULL;
}

/* Index of key's slot, or of the first free slot where it would go. */
static size_t find(const loom_map_t *m, const char *key, uint64_t h, int *found)
{
    size_t mask = m->cap - 1, i = h & mask, first_free = SIZE_MAX;
    for (;;) {
        slot_t *s = &m->slots[i];
        if (!s->key) {
            *found = 0;
            return first_free != SIZE_MAX ? first_free : i;
        }
        if (s->key == TOMBSTONE) {
            if (first_free == SIZE_MAX)
                first_free = i;
        } else if (s->hash == h && strcmp(s->key, key) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & mask;
    }
}

static int grow(loom_map_t *m)
{
    size_t ncap = m->len * 2 >= m->cap ? m->cap * 2 : m->cap; /* else just purge tombstones */
    slot_t *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return LOOM_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        slot_t *s = &m->slots[i];
        if (!s->key || s->key == TOMBSTONE)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->len;
    return 0;
}

int loom_map_put(loom_map_t *m, const char *key, void *value)
{
    if ((m->used + 1) * 10 > m->cap * 7 && grow(m))
        return LOOM_ENOMEM;
    uint64_t h = loom_hash_bytes(key, strlen(key));
    int found;
    size_t i = find(m, key, h, &found);
    slot_t *s = &m->slots[i];
    if (found) {
        if (m->value_free && s->value != value)
            m->value_free(s->value);
        s->value = value;
        return 0;
    }
    char *k = strdup(key);
    if (!k)
        return LOOM_ENOMEM;
    if (!s->key)
        m->used++; /* reusing a tombstone does not add to used */
    s->key = k;
    s->value = value;
    s->hash = h;
    m->len++;
    return 0;
}

void *loom_map_get(const loom_map_t *m, const char *key)
{
    int found;
    size_t i = find(m, key, loom_hash_bytes(key, strlen(key)), &found);
    return found ? m->slots[i].value : NULL;
}

int loom_map_has(const loom_map_t *m, const char *key)
{
    int found;
    find(m, key, loom_hash_bytes(key, strlen(key)), &found);
    return found;
}

int loom_map_del(loom_map_t *m, const char *key)
{
    int found;
    size_t i = find(m, key, loom_hash_bytes(key, strlen(key)), &found);
    if (!found)
        return LOOM_ENOTFOUND;
    slot_t *s = &m->slots[i];
    if (m->value_free)
        m->value_free(s->value);
    free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->len--;
    return 0;
}

size_t loom_map_len(const loom_map_t *m) { return m->len; }

int loom_map_next(const loom_map_t *m, size_t *it, const char **key, void **value)
{
    for (; *it < m->cap; (*it)++) {
        slot_t *s = &m->slots[*it];
        if (s->key && s->key != TOMBSTONE) {
            if (key)
                *key = s->key;
            if (value)
                *value = s->value;
            (*it)++;
            return 1;
        }
    }
    return 0;
}
