/* store.c — see store.h: the vtable wrapper and state names. */
#include "orchestrator/store.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "loom/v1/rpc.pb-c.h"

struct loom_store {
    const loom_store_ops_t *ops;
    void *self;
};

static const char *const run_names[] = {"pending", "running", "succeeded",
                                        "failed", "cancelled", "timed_out"};
static const char *const task_names[] = {"pending", "ready", "assigned", "running", "succeeded",
                                         "failed", "cancelled", "timed_out", "skipped"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *loom_store_run_state_name(loom_run_state_t s)
{
    return (unsigned)s < NELEM(run_names) ? run_names[s] : "unknown";
}

const char *loom_store_task_state_name(loom_task_state_t s)
{
    return (unsigned)s < NELEM(task_names) ? task_names[s] : "unknown";
}

int loom_store_run_state_parse(const char *name)
{
    for (size_t i = 0; name && i < NELEM(run_names); i++)
        if (strcmp(name, run_names[i]) == 0)
            return (int)i;
    return -1;
}

int loom_store_task_state_parse(const char *name)
{
    for (size_t i = 0; name && i < NELEM(task_names); i++)
        if (strcmp(name, task_names[i]) == 0)
            return (int)i;
    return -1;
}

int loom_store_run_state_final(loom_run_state_t s)
{
    return s >= LOOM_RUN_SUCCEEDED && s <= LOOM_RUN_TIMED_OUT;
}

int loom_store_task_state_final(loom_task_state_t s)
{
    return s >= LOOM_TASK_SUCCEEDED && s <= LOOM_TASK_SKIPPED;
}

int loom_store_run_state_pb(loom_run_state_t s)
{
    switch (s) {
    case LOOM_RUN_PENDING: return LOOM__V1__RUN_STATE__RUN_QUEUED;
    case LOOM_RUN_RUNNING: return LOOM__V1__RUN_STATE__RUN_RUNNING;
    case LOOM_RUN_SUCCEEDED: return LOOM__V1__RUN_STATE__RUN_SUCCEEDED;
    case LOOM_RUN_CANCELLED: return LOOM__V1__RUN_STATE__RUN_CANCELLED;
    default: return LOOM__V1__RUN_STATE__RUN_FAILED;
    }
}

int loom_store_task_state_pb(loom_task_state_t s)
{
    switch (s) {
    case LOOM_TASK_PENDING: return LOOM__V1__STEP_STATE__STEP_PENDING;
    case LOOM_TASK_READY: return LOOM__V1__STEP_STATE__STEP_READY;
    case LOOM_TASK_ASSIGNED:
    case LOOM_TASK_RUNNING: return LOOM__V1__STEP_STATE__STEP_RUNNING;
    case LOOM_TASK_SUCCEEDED: return LOOM__V1__STEP_STATE__STEP_SUCCEEDED;
    case LOOM_TASK_SKIPPED: return LOOM__V1__STEP_STATE__STEP_SKIPPED;
    case LOOM_TASK_CANCELLED: return LOOM__V1__STEP_STATE__STEP_CANCELLED;
    default: return LOOM__V1__STEP_STATE__STEP_FAILED;
    }
}

int loom_store_filter_match(const loom_store_filter_t *f, const loom_store_run_t *r)
{
    if (f->state >= 0 && (int)r->state != f->state)
        return 0;
    if (f->workflow && (!r->workflow || strcmp(f->workflow, r->workflow) != 0))
        return 0;
    if (f->tenant && strcmp(f->tenant, r->tenant ? r->tenant : "default") != 0)
        return 0;
    if (f->after_ms && r->created_ms < f->after_ms)
        return 0;
    if (f->until_ms && r->created_ms >= f->until_ms)
        return 0;
    if (f->n_labels <= 0)
        return 1;
    json_t *l = r->labels_json ? json_loads(r->labels_json, 0, NULL) : NULL;
    int ok = 1;
    for (int i = 0; ok && i < f->n_labels; i++) {
        const char *v = json_string_value(json_object_get(l, f->label_keys[i]));
        ok = v && strcmp(v, f->label_values[i]) == 0;
    }
    json_decref(l);
    return ok;
}

loom_store_t *loom_store_new(const loom_store_ops_t *ops, void *self)
{
    loom_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        if (ops && ops->destroy)
            ops->destroy(self);
        return NULL;
    }
    s->ops = ops;
    s->self = self;
    return s;
}

void loom_store_destroy(loom_store_t **ps)
{
    if (!ps || !*ps)
        return;
    loom_store_t *s = *ps;
    if (s->ops && s->ops->destroy)
        s->ops->destroy(s->self);
    free(s);
    *ps = NULL;
}

const char *loom_store_name(const loom_store_t *s)
{
    return s && s->ops && s->ops->name ? s->ops->name : "?";
}

/* Each dispatcher checks the slot so a partial implementation reports
 * what it lacks instead of crashing. */
#define DISPATCH(fn, ...)                                                                  \
    do {                                                                                   \
        if (!s || !s->ops->fn)                                                             \
            return loom_err_set(err, LOOM_EINTERNAL, "store '%s' does not implement " #fn, \
                                loom_store_name(s));                                       \
        return s->ops->fn(s->self, __VA_ARGS__);                                           \
    } while (0)

int loom_store_run_create(loom_store_t *s, const loom_store_run_t *run, loom_err_t *err)
{
    DISPATCH(run_create, run, err);
}

int loom_store_run_update(loom_store_t *s, const loom_store_run_t *run, loom_err_t *err)
{
    DISPATCH(run_update, run, err);
}

int loom_store_task_put(loom_store_t *s, const loom_store_task_t *task, loom_err_t *err)
{
    DISPATCH(task_put, task, err);
}

int loom_store_event_append(loom_store_t *s, const loom_store_event_t *ev, loom_err_t *err)
{
    DISPATCH(event_append, ev, err);
}

int loom_store_worker_put(loom_store_t *s, const loom_store_worker_t *w, loom_err_t *err)
{
    DISPATCH(worker_put, w, err);
}

int loom_store_run_list(loom_store_t *s, const loom_store_filter_t *f, loom_store_run_fn fn,
                        void *ud, loom_err_t *err)
{
    DISPATCH(run_list, f, fn, ud, err);
}

int loom_store_run_get(loom_store_t *s, const char *run_id, loom_store_run_fn run_fn,
                       loom_store_task_fn task_fn, void *ud, loom_err_t *err)
{
    DISPATCH(run_get, run_id, run_fn, task_fn, ud, err);
}

int loom_store_events(loom_store_t *s, const char *run_id, int64_t after_seq,
                      loom_store_event_fn fn, void *ud, loom_err_t *err)
{
    DISPATCH(events, run_id, after_seq, fn, ud, err);
}

int loom_store_load_unfinished(loom_store_t *s, loom_store_run_fn run_fn,
                               loom_store_task_fn task_fn, void *ud, loom_err_t *err)
{
    DISPATCH(load_unfinished, run_fn, task_fn, ud, err);
}

int loom_store_flush(loom_store_t *s, loom_err_t *err)
{
    if (s && !s->ops->flush)
        return 0;
    DISPATCH(flush, err);
}

int loom_store_when_durable(loom_store_t *s, void (*fn)(void *ud, int status), void *ud,
                            loom_err_t *err)
{
    if (!s || !s->ops->when_durable) {
        fn(ud, 0);
        return 0;
    }
    return s->ops->when_durable(s->self, fn, ud, err);
}

int loom_store_when_run_durable(loom_store_t *s, const char *run_id, void (*fn)(void *ud, int status),
                                void *ud, loom_err_t *err)
{
    if (s && s->ops->when_run_durable)
        return s->ops->when_run_durable(s->self, run_id, fn, ud, err);
    return loom_store_when_durable(s, fn, ud, err);
}

int loom_store_poll_fd(loom_store_t *s)
{
    return s && s->ops->poll_fd ? s->ops->poll_fd(s->self) : -1;
}

int loom_store_poll(loom_store_t *s)
{
    return s && s->ops->poll ? s->ops->poll(s->self) : 0;
}

int loom_store_worker_key_put(loom_store_t *s, const char *worker_id, const char *key,
                              loom_err_t *err)
{
    return s && s->ops->worker_key_put ? s->ops->worker_key_put(s->self, worker_id, key, err) : 0;
}

int loom_store_worker_keys_load(loom_store_t *s,
                                int (*fn)(void *ud, const char *worker_id, const char *key),
                                void *ud, loom_err_t *err)
{
    return s && s->ops->worker_keys_load ? s->ops->worker_keys_load(s->self, fn, ud, err) : 0;
}

int loom_store_keeps_worker_keys(const loom_store_t *s)
{
    return s && s->ops->worker_key_put && s->ops->worker_keys_load;
}
