/* llm_prefix.c — the KV prefix cache (see llm_prefix.h). */
#include "llm/llm_prefix.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_engine.h"
#include "protocol/prefix_key.h"

typedef struct entry {
    struct entry *prev, *next; /* head = most recently used */
    uint8_t hash[32];          /* the model */
    size_t n;                  /* tokens */
    int32_t *tokens;
    float **k, **v;            /* per layer: n x row floats */
    int n_layers;
    size_t bytes;
    uint64_t *keys;            /* its names (protocol/prefix_key.h), shortest first; NULL = untagged */
    size_t n_keys, text_len;   /* and the length of the canonical text they cover */
} entry_t;

struct loom_llm_prefix_cache {
    pthread_mutex_t mu;
    size_t max_bytes, bytes, count;
    entry_t *head, *tail;
};

loom_llm_prefix_cache_t *loom_llm_prefix_cache_new(size_t max_bytes) {
    loom_llm_prefix_cache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    return c;
}

static void entry_free(entry_t *x) {
    for (int l = 0; x->k && l < x->n_layers; l++) {
        free(x->k[l]);
        free(x->v[l]);
    }
    free(x->k);
    free(x->v);
    free(x->tokens);
    free(x->keys);
    free(x);
}

static void unlink_entry(loom_llm_prefix_cache_t *c, entry_t *x) {
    if (x->prev) x->prev->next = x->next;
    else c->head = x->next;
    if (x->next) x->next->prev = x->prev;
    else c->tail = x->prev;
    x->prev = x->next = NULL;
}

static void push_front(loom_llm_prefix_cache_t *c, entry_t *x) {
    x->prev = NULL;
    x->next = c->head;
    if (c->head) c->head->prev = x;
    else c->tail = x;
    c->head = x;
}

static void drop(loom_llm_prefix_cache_t *c, entry_t *x) {
    unlink_entry(c, x);
    c->bytes -= x->bytes;
    c->count--;
    entry_free(x);
}

void loom_llm_prefix_cache_destroy(loom_llm_prefix_cache_t **pc) {
    loom_llm_prefix_cache_t *c = *pc;
    if (!c) return;
    while (c->head) drop(c, c->head);
    pthread_mutex_destroy(&c->mu);
    free(c);
    *pc = NULL;
}

static size_t common(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t i = 0, n = na < nb ? na : nb;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

int loom_llm_prefix_restore(loom_llm_prefix_cache_t *c, const loom_llm_model_t *m, struct loom_llm_backend *b,
                            const int32_t *prompt, size_t n, size_t *reused, loom_err_t *e) {
    *reused = 0;
    if (!c || n < 2) return 0;
    pthread_mutex_lock(&c->mu);
    entry_t *best = NULL;
    size_t len = 0;
    for (entry_t *x = c->head; x; x = x->next) {
        if (memcmp(x->hash, m->hash, 32)) continue;
        size_t l = common(x->tokens, x->n, prompt, n);
        if (l > len) best = x, len = l;
    }
    if (len > n - 1) len = n - 1;
    int rc = 0;
    for (int l = 0; best && len && !rc && l < m->n_layers; l++)
        rc = b->kv_write(b->ctx, l, (int)len, best->k[l], best->v[l], e);
    if (best && len && !rc) {
        unlink_entry(c, best);
        push_front(c, best);
        *reused = len;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int loom_llm_prefix_save(loom_llm_prefix_cache_t *c, const loom_llm_model_t *m, struct loom_llm_backend *b,
                         const int32_t *tokens, size_t n, loom_err_t *e) {
    size_t row = (size_t)m->n_kv_heads * (size_t)m->head_dim;
    size_t bytes = n * row * sizeof(float) * 2 * (size_t)m->n_layers;
    if (!c || n == 0 || bytes > c->max_bytes) return 0;
    entry_t *x = calloc(1, sizeof *x);
    if (!x) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    memcpy(x->hash, m->hash, 32);
    x->n = n;
    x->n_layers = m->n_layers;
    x->bytes = bytes;
    x->tokens = malloc(n * sizeof *x->tokens);
    x->k = calloc((size_t)m->n_layers, sizeof *x->k);
    x->v = calloc((size_t)m->n_layers, sizeof *x->v);
    int rc = x->tokens && x->k && x->v ? 0 : loom_err_set(e, LOOM_ENOMEM, "out of memory");
    for (int l = 0; !rc && l < m->n_layers; l++) {
        x->k[l] = malloc(n * row * sizeof(float));
        x->v[l] = malloc(n * row * sizeof(float));
        rc = x->k[l] && x->v[l] ? b->kv_read(b->ctx, l, (int)n, x->k[l], x->v[l], e)
                                : loom_err_set(e, LOOM_ENOMEM, "out of memory");
    }
    if (rc) {
        entry_free(x);
        return rc;
    }
    memcpy(x->tokens, tokens, n * sizeof *tokens);
    pthread_mutex_lock(&c->mu);
    /* what the new entry covers goes; then the least recently used, to fit */
    for (entry_t *y = c->head, *next; y; y = next) {
        next = y->next;
        if (!memcmp(y->hash, x->hash, 32) && y->n <= n && common(y->tokens, y->n, tokens, n) == y->n) drop(c, y);
    }
    while (c->tail && c->bytes + bytes > c->max_bytes) drop(c, c->tail);
    push_front(c, x);
    c->bytes += bytes;
    c->count++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

size_t loom_llm_prefix_cache_entries(loom_llm_prefix_cache_t *c) {
    pthread_mutex_lock(&c->mu);
    size_t n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

size_t loom_llm_prefix_cache_bytes(loom_llm_prefix_cache_t *c) {
    pthread_mutex_lock(&c->mu);
    size_t n = c->bytes;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int loom_llm_prefix_tag(loom_llm_prefix_cache_t *c, const loom_llm_model_t *m, const uint64_t *keys, size_t n,
                        size_t text_len) {
    if (!c || !n || !text_len) return 0;
    pthread_mutex_lock(&c->mu);
    entry_t *x = c->head;
    int rc = 0;
    if (x && !x->keys && !memcmp(x->hash, m->hash, 32)) {
        if ((x->keys = malloc(n * sizeof *x->keys))) {
            memcpy(x->keys, keys, n * sizeof *keys);
            x->n_keys = n;
            x->text_len = text_len;
        } else {
            rc = LOOM_ENOMEM;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

size_t loom_llm_prefix_cache_keys(loom_llm_prefix_cache_t *c, uint64_t *keys, uint32_t *tokens, size_t max) {
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (entry_t *x = c->head; x && k < max; x = x->next)
        for (size_t i = x->n_keys; i-- > 0 && k < max;) { /* longest first: the most useful if cut */
            keys[k] = x->keys[i];
            double t = (double)x->n * (double)(i + 1) * LOOM_PREFIX_BLOCK / (double)x->text_len;
            tokens[k++] = (uint32_t)(t < (double)x->n ? t : (double)x->n);
        }
    pthread_mutex_unlock(&c->mu);
    return k;
}
