/* engine_objects.c — the lifetime of a run's objects on its workers (issue
 * 15): step outputs and KV caches by reference stay in their producer's
 * object store (workers/common/objstore.h), needed (pinned) for the run
 * until loomd says otherwise. loomd tells the holder, through the release
 * list of its next HeartbeatReply (registry.h, worker.proto ObjectRelease):
 *
 *   - when every consumer of a step's output finished (the output's last
 *     consumer, engine.c), the objects it references are released: the
 *     holder may evict them, and keeps them as a cache (`loom logs`) while
 *     room lasts;
 *   - when the run ends, every object still held for it is released (steps
 *     whose consumers never ran, a run that failed, outputs kept for loops);
 *   - --object-retention-ms after it ended (the run's data retention for
 *     objects), the run is forgotten: its holders drop what no other run
 *     holds.
 *
 * Workers that may hold objects of a run are those its tasks that can store
 * objects (an input with "$by_reference_over", an llm.* op) were sent to. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "orchestrator/engine_internal.h"

#define COMP "objects"

/* A run whose holders are told to forget it at due (loom_clock_ms). */
typedef struct forget {
    struct forget *next;
    uint64_t due;
    char run[32];
    char **workers;
    size_t n_workers;
} forget_t;

static void forget_free(forget_t *f)
{
    for (size_t i = 0; i < f->n_workers; i++)
        free(f->workers[i]);
    free(f->workers);
    free(f);
}

void engine_objects_note_worker(loom_run_t *r, const loom_task_t *t, const loom_worker_rec_t *w)
{
    if (!w || !t->input || (strncmp(t->op, "llm.", 4) != 0 && !strstr(t->input, "\"$by_reference_over\"")))
        return;
    for (size_t i = 0; i < r->n_obj_workers; i++)
        if (strcmp(r->obj_workers[i], w->id) == 0)
            return;
    char **n = realloc(r->obj_workers, (r->n_obj_workers + 1) * sizeof *n);
    if (!n)
        return; /* out of memory: its pins lapse on the worker */
    r->obj_workers = n;
    if ((n[r->n_obj_workers] = strdup(w->id)))
        r->n_obj_workers++;
}

/* Queues a release of every object reference in v for run r. */
static void release_refs(loom_engine_t *e, const loom_run_t *r, const json_t *v, int depth)
{
    if (depth > 64)
        return;
    if (json_is_object(v)) {
        const json_t *o = json_object_get(v, "$object");
        if (json_is_object(o)) {
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *wid = json_string_value(json_object_get(o, "worker"));
            loom_worker_rec_t *w = wid ? loom_registry_by_id(e->cfg.reg, wid) : NULL;
            if (w && id && strlen(id) == 64)
                loom_worker_queue_release(w, r->id, id, 0);
            LOOM_DEBUG(COMP, "msg=\"consumers done\" run=%s object=%.16s worker=%s", r->id, id ? id : "?",
                       wid ? wid : "?");
            return;
        }
        const char *k;
        const json_t *c;
        json_object_foreach((json_t *)v, k, c) release_refs(e, r, c, depth + 1);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            release_refs(e, r, json_array_get(v, i), depth + 1);
    }
}

void engine_objects_consumed(loom_engine_t *e, const loom_run_t *r, const json_t *output)
{
    if (r->n_obj_workers)
        release_refs(e, r, output, 0);
}

void engine_objects_consumed_text(loom_engine_t *e, const loom_run_t *r, const char *json, size_t len,
                                  const char *key)
{
    if (!r->n_obj_workers || !json || !memmem(json, len, "\"$object\"", 9))
        return;
    json_t *v = json_loadb(json, len, 0, NULL);
    if (v)
        release_refs(e, r, key ? json_object_get(v, key) : v, 0);
    json_decref(v);
}

void engine_objects_run_done(loom_engine_t *e, loom_run_t *r)
{
    if (!r->n_obj_workers)
        return;
    for (size_t i = 0; i < r->n_obj_workers; i++) {
        loom_worker_rec_t *w = loom_registry_by_id(e->cfg.reg, r->obj_workers[i]);
        if (w)
            loom_worker_queue_release(w, r->id, NULL, 0);
    }
    if (e->cfg.object_retention_ms < 0) /* kept until evicted for room */
        return;
    forget_t *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->due = loom_clock_ms() + (uint64_t)e->cfg.object_retention_ms;
    snprintf(f->run, sizeof f->run, "%s", r->id);
    f->workers = r->obj_workers; /* handed over */
    f->n_workers = r->n_obj_workers;
    r->obj_workers = NULL;
    r->n_obj_workers = 0;
    /* one retention for every run: appending keeps the list in due order */
    if (e->forget_tail)
        e->forget_tail->next = f;
    else
        e->forget_head = f;
    e->forget_tail = f;
}

void engine_objects_tick(loom_engine_t *e, uint64_t now)
{
    while (e->forget_head && e->forget_head->due <= now) {
        forget_t *f = e->forget_head;
        if (!(e->forget_head = f->next))
            e->forget_tail = NULL;
        for (size_t i = 0; i < f->n_workers; i++) {
            loom_worker_rec_t *w = loom_registry_by_id(e->cfg.reg, f->workers[i]);
            if (w)
                loom_worker_queue_release(w, f->run, NULL, 1);
        }
        LOOM_DEBUG(COMP, "msg=\"run's objects forgotten\" run=%s workers=%zu", f->run, f->n_workers);
        forget_free(f);
    }
}

void engine_objects_free(loom_engine_t *e)
{
    while (e->forget_head) {
        forget_t *f = e->forget_head;
        e->forget_head = f->next;
        forget_free(f);
    }
    e->forget_tail = NULL;
}

void engine_objects_run_free(loom_run_t *r)
{
    for (size_t i = 0; i < r->n_obj_workers; i++)
        free(r->obj_workers[i]);
    free(r->obj_workers);
}
