/* registry.c — see registry.h. A small array of records: fleets are tens
 * of workers, and placement scans them anyway. */
#include "orchestrator/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/grow.h"

struct loom_registry {
    loom_worker_rec_t **v;
    size_t n, cap;
    int depth;
};

loom_registry_t *loom_registry_new(int depth)
{
    loom_registry_t *r = calloc(1, sizeof *r);
    if (r)
        r->depth = depth > 0 ? depth : 1;
    return r;
}

static void free_models(loom_worker_rec_t *w)
{
    for (size_t i = 0; i < w->n_models; i++)
        free(w->models[i]);
    free(w->models);
    w->models = NULL;
    w->n_models = 0;
}

int loom_registry_set_models(loom_worker_rec_t *w, char *const *names, size_t n)
{
    free_models(w);
    if (!n)
        return 0;
    if (!(w->models = calloc(n, sizeof *w->models)))
        return LOOM_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(w->models[i] = strdup(names[i] ? names[i] : ""))) {
            free_models(w);
            return LOOM_ENOMEM;
        }
        w->n_models++;
    }
    return 0;
}

static void free_ops(loom_worker_rec_t *w)
{
    free_models(w);
    for (size_t i = 0; i < w->n_ops; i++)
        free(w->ops[i]);
    free(w->ops);
    w->ops = NULL;
    w->n_ops = 0;
    free(w->profile_json);
    w->profile_json = NULL;
}

void loom_registry_destroy(loom_registry_t **pr)
{
    if (!pr || !*pr)
        return;
    loom_registry_t *r = *pr;
    for (size_t i = 0; i < r->n; i++) {
        free_ops(r->v[i]);
        free(r->v[i]->releases);
        free(r->v[i]->prefix_keys);
        free(r->v[i]->prefix_tokens);
        free(r->v[i]);
    }
    free(r->v);
    free(r);
    *pr = NULL;
}

const char *loom_worker_state_name(loom_worker_state_t s)
{
    switch (s) {
    case LOOM_WORKER_READY: return "ready";
    case LOOM_WORKER_DRAINING: return "draining";
    case LOOM_WORKER_LOST: return "lost";
    }
    return "unknown";
}

loom_worker_rec_t *loom_registry_by_id(loom_registry_t *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->v[i]->id, id) == 0)
            return r->v[i];
    return NULL;
}

loom_worker_rec_t *loom_registry_by_peer(loom_registry_t *r, const uint8_t *peer, size_t len)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i]->peer_len == len && memcmp(r->v[i]->peer, peer, len) == 0 &&
            r->v[i]->state != LOOM_WORKER_LOST)
            return r->v[i];
    return NULL;
}

loom_worker_rec_t *loom_registry_by_peer_any(loom_registry_t *r, const uint8_t *peer, size_t len)
{
    for (size_t i = 0; i < r->n; i++)
        if ((r->v[i]->peer_len == len && memcmp(r->v[i]->peer, peer, len) == 0) ||
            (r->v[i]->prev_peer_len == len && memcmp(r->v[i]->prev_peer, peer, len) == 0))
            return r->v[i];
    return NULL;
}

loom_worker_rec_t *loom_registry_register(loom_registry_t *r, const char *id, const uint8_t *peer,
                                          size_t peer_len, const char *kind, const char *model,
                                          const char *arch, int cores, uint64_t memory,
                                          double gflops, double gbps, double price, int slots,
                                          const char *const *ops, size_t n_ops,
                                          const char *profile_json, int *was_known)
{
    loom_worker_rec_t *w = loom_registry_by_id(r, id);
    *was_known = w && w->state != LOOM_WORKER_LOST;
    if (!w) {
        if (LOOM_GROW(r->v, r->cap, r->n + 1) != 0)
                return NULL;
        if (!(w = calloc(1, sizeof *w)))
            return NULL;
        r->v[r->n++] = w;
        snprintf(w->id, sizeof w->id, "%s", id);
        w->registered_ms = loom_wall_ms();
    }
    free_ops(w);
    if (peer_len > sizeof w->peer)
        peer_len = sizeof w->peer;
    if (w->peer_len && (w->peer_len != peer_len || memcmp(w->peer, peer, peer_len) != 0)) {
        memcpy(w->prev_peer, w->peer, w->peer_len);
        w->prev_peer_len = w->peer_len;
    }
    memcpy(w->peer, peer, peer_len);
    w->peer_len = peer_len;
    w->state = LOOM_WORKER_READY;
    snprintf(w->kind, sizeof w->kind, "%s", kind ? kind : "cpu");
    snprintf(w->model, sizeof w->model, "%s", model ? model : "");
    snprintf(w->arch, sizeof w->arch, "%s", arch ? arch : "");
    w->cores = cores;
    w->memory_bytes = memory;
    w->gflops = gflops;
    w->gbps = gbps;
    w->price_per_hour = price;
    w->slots = slots > 0 ? slots : 1;
    w->max_inflight = w->slots * r->depth;
    w->ops = calloc(n_ops ? n_ops : 1, sizeof *w->ops);
    for (size_t i = 0; w->ops && i < n_ops; i++)
        if ((w->ops[i] = strdup(ops[i])))
            w->n_ops++;
    w->profile_json = profile_json ? strdup(profile_json) : NULL;
    loom_registry_touch(r, w);
    return w;
}

void loom_registry_touch(loom_registry_t *r, loom_worker_rec_t *w)
{
    (void)r;
    w->last_seen_ms = loom_wall_ms();
    w->last_seen_mono = loom_clock_ms();
    w->send_paused = 0; /* it reads and writes again: try sending to it */
}

int loom_registry_reap(loom_registry_t *r, uint64_t timeout_ms,
                       void (*fn)(void *ud, loom_worker_rec_t *w), void *ud)
{
    uint64_t now = loom_clock_ms();
    int lost = 0;
    for (size_t i = 0; i < r->n; i++) {
        loom_worker_rec_t *w = r->v[i];
        if (w->state == LOOM_WORKER_LOST || now - w->last_seen_mono < timeout_ms)
            continue;
        w->state = LOOM_WORKER_LOST;
        lost++;
        LOOM_WARN("loomd", "msg=\"worker lost: no heartbeat\" id=%s silent_ms=%llu inflight=%d",
                  w->id, (unsigned long long)(now - w->last_seen_mono), w->inflight);
        if (fn)
            fn(ud, w);
    }
    return lost;
}

void loom_registry_forget_lost(loom_registry_t *r, uint64_t after_ms)
{
    uint64_t now = loom_clock_ms();
    for (size_t i = 0; i < r->n;) {
        loom_worker_rec_t *w = r->v[i];
        if (w->state == LOOM_WORKER_LOST && !w->tasks && now - w->last_seen_mono > after_ms) {
            free_ops(w);
            free(w->releases);
            free(w->prefix_keys);
            free(w->prefix_tokens);
            free(w);
            memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof *r->v);
            r->n--;
        } else {
            i++;
        }
    }
}

int loom_worker_runs(const loom_worker_rec_t *w, const char *op)
{
    if (w->state != LOOM_WORKER_READY)
        return 0;
    for (size_t i = 0; i < w->n_ops; i++)
        if (strcmp(w->ops[i], op) == 0)
            return 1;
    return 0;
}

int loom_registry_any_runs(loom_registry_t *r, const char *op)
{
    for (size_t i = 0; i < r->n; i++)
        if (loom_worker_runs(r->v[i], op))
            return 1;
    return 0;
}

size_t loom_registry_count(const loom_registry_t *r)
{
    return r->n;
}

loom_worker_rec_t *loom_registry_at(loom_registry_t *r, size_t i)
{
    return i < r->n ? r->v[i] : NULL;
}

int loom_worker_room(const loom_worker_rec_t *w)
{
    if (w->state != LOOM_WORKER_READY || w->send_paused || w->inflight >= w->max_inflight)
        return 0;
    return w->max_inflight - w->inflight;
}

int loom_registry_free_capacity(const loom_registry_t *r)
{
    int free_ = 0;
    for (size_t i = 0; i < r->n; i++)
        free_ += loom_worker_room(r->v[i]);
    return free_;
}

int loom_worker_queue_release(loom_worker_rec_t *w, const char *run, const char *id, int forget)
{
    if (w->n_releases >= LOOM_OBJ_RELEASE_MAX) {
        w->releases_dropped++;
        return LOOM_ETOOBIG;
    }
    if (LOOM_GROW(w->releases, w->cap_releases, w->n_releases + 1) != 0)
            return LOOM_ENOMEM;
    loom_obj_release_t *x = &w->releases[w->n_releases++];
    snprintf(x->run, sizeof x->run, "%s", run);
    snprintf(x->id, sizeof x->id, "%s", id ? id : "");
    x->forget = forget;
    return 0;
}

void loom_worker_releases_sent(loom_worker_rec_t *w, size_t n)
{
    if (n >= w->n_releases) {
        w->n_releases = 0;
        return;
    }
    memmove(w->releases, w->releases + n, (w->n_releases - n) * sizeof *w->releases);
    w->n_releases -= n;
}

int loom_worker_set_prefixes(loom_worker_rec_t *w, const uint64_t *keys, const uint32_t *tokens, size_t n,
                             int replace)
{
    size_t keep = replace ? 0 : w->n_prefixes, total;
    if (n > LOOM_WORKER_MAX_PREFIXES)
        n = LOOM_WORKER_MAX_PREFIXES;
    if (keep + n > LOOM_WORKER_MAX_PREFIXES)
        keep = LOOM_WORKER_MAX_PREFIXES - n;
    total = keep + n;
    uint64_t *k = malloc((total ? total : 1) * sizeof *k);
    uint32_t *t = malloc((total ? total : 1) * sizeof *t);
    if (!k || !t) {
        free(k);
        free(t);
        return LOOM_ENOMEM;
    }
    memcpy(k, keys, n * sizeof *k); /* the new ones first */
    memcpy(t, tokens, n * sizeof *t);
    if (keep) {
        memcpy(k + n, w->prefix_keys, keep * sizeof *k);
        memcpy(t + n, w->prefix_tokens, keep * sizeof *t);
    }
    free(w->prefix_keys);
    free(w->prefix_tokens);
    w->prefix_keys = k;
    w->prefix_tokens = t;
    w->n_prefixes = total;
    return 0;
}

uint32_t loom_worker_prefix_tokens(const loom_worker_rec_t *w, const uint64_t *keys, size_t n, size_t *blocks)
{
    for (size_t i = n; i-- > 0;)
        for (size_t j = 0; j < w->n_prefixes; j++)
            if (w->prefix_keys[j] == keys[i]) {
                if (blocks)
                    *blocks = i + 1;
                return w->prefix_tokens[j];
            }
    return 0;
}
