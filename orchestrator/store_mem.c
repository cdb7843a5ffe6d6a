/* store_mem.c — the in-memory store (see store.h).
 *
 * Runs live in a map by id and in a creation-ordered list; each run keeps
 * its tasks (latest attempt per step/index) in a map and its events in an
 * array. Memory is bounded: once more than max_finished runs are final, or
 * the final runs together take more than max_finished_bytes, the oldest
 * final run is dropped with everything it owns (the newest one always
 * stays), and each run's event log stops growing at max_events (later
 * events are only counted). Bytes are counted as the records' strings plus
 * a fixed cost per record (malloc and map overhead included). */
#include "orchestrator/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/map.h"

typedef struct mtask {
    loom_store_task_t t; /* strings owned */
} mtask_t;

typedef struct mevent {
    loom_store_event_t e; /* strings owned */
} mevent_t;

typedef struct mrun {
    loom_store_run_t r; /* strings owned */
    loom_map_t *tasks;  /* "step#index" -> mtask_t */
    mevent_t *events;
    size_t nevents, capevents;
    int64_t events_dropped;
    int final_listed;   /* already queued in the finished FIFO */
    size_t bytes;       /* what it holds (see the top of the file) */
    struct mrun *prev, *next; /* creation order, newest at head */
} mrun_t;

typedef struct mem {
    loom_map_t *runs;      /* id -> mrun_t (not freed by the map) */
    mrun_t *head, *tail;   /* newest .. oldest */
    char **finished;       /* FIFO of final run ids (ring) */
    size_t fin_head, fin_len, fin_cap;
    loom_map_t *workers;   /* id -> loom_store_worker_t (strings owned) */
    int max_finished, max_events;
    size_t max_bytes, fin_bytes; /* bound and total of the final runs' bytes */
} mem_t;

#define REC_COST 96 /* per record and per string: allocation and map overhead */

static size_t str_cost(const char *s)
{
    return s ? strlen(s) + 1 + 16 : 0;
}

/* r holds delta more (or fewer) bytes. */
static void grow(mem_t *m, mrun_t *r, long long delta)
{
    r->bytes = (size_t)((long long)r->bytes + delta);
    if (r->final_listed)
        m->fin_bytes = (size_t)((long long)m->fin_bytes + delta);
}

static char *dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Replaces *dst with a copy of src (NULL keeps NULL); *delta gets the
 * change in bytes. */
static int set_str(const char **dst, const char *src, long long *delta)
{
    if (*dst == src)
        return 0;
    char *c = NULL;
    if (src && !(c = strdup(src)))
        return LOOM_ENOMEM;
    *delta += (long long)str_cost(src) - (long long)str_cost(*dst);
    free((char *)*dst);
    *dst = c;
    return 0;
}

static void task_free(void *p)
{
    mtask_t *t = p;
    if (!t)
        return;
    free((char *)t->t.run_id);
    free((char *)t->t.step_id);
    free((char *)t->t.op);
    free((char *)t->t.worker_id);
    free((char *)t->t.device);
    free((char *)t->t.output_json);
    free((char *)t->t.error);
    free((char *)t->t.reason);
    free(t);
}

static void worker_free(void *p)
{
    loom_store_worker_t *w = p;
    if (!w)
        return;
    free((char *)w->id);
    free((char *)w->kind);
    free((char *)w->model);
    free((char *)w->state);
    free((char *)w->profile_json);
    free(w);
}

static void run_free(mrun_t *r)
{
    if (!r)
        return;
    loom_map_destroy(&r->tasks);
    for (size_t i = 0; i < r->nevents; i++) {
        free((char *)r->events[i].e.run_id);
        free((char *)r->events[i].e.kind);
        free((char *)r->events[i].e.step_id);
        free((char *)r->events[i].e.detail_json);
    }
    free(r->events);
    const char **strs[] = {&r->r.id, &r->r.workflow, &r->r.workflow_yaml, &r->r.workflow_file,
                           &r->r.inputs_json, &r->r.outputs_json, &r->r.error, &r->r.tenant,
                           &r->r.labels_json};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free((char *)*strs[i]);
    free(r);
}

static void unlink_run(mem_t *m, mrun_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        m->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        m->tail = r->prev;
}

/* Drops the oldest final runs until at most max_finished remain and they
 * fit max_bytes (the newest final run always stays). */
static void evict(mem_t *m)
{
    while (m->fin_len > (size_t)m->max_finished ||
           (m->fin_len > 1 && m->fin_bytes > m->max_bytes)) {
        char *id = m->finished[m->fin_head];
        m->fin_head = (m->fin_head + 1) % m->fin_cap;
        m->fin_len--;
        mrun_t *r = loom_map_get(m->runs, id);
        if (r) {
            m->fin_bytes -= r->bytes;
            loom_map_del(m->runs, id);
            unlink_run(m, r);
            run_free(r);
        }
        free(id);
    }
}

static int note_final(mem_t *m, mrun_t *r)
{
    if (r->final_listed || !loom_store_run_state_final(r->r.state))
        return 0;
    if (m->fin_len == m->fin_cap) {
        size_t ncap = m->fin_cap ? m->fin_cap * 2 : 64;
        char **n = malloc(ncap * sizeof *n);
        if (!n)
            return LOOM_ENOMEM;
        for (size_t i = 0; i < m->fin_len; i++)
            n[i] = m->finished[(m->fin_head + i) % m->fin_cap];
        free(m->finished);
        m->finished = n;
        m->fin_cap = ncap;
        m->fin_head = 0;
    }
    char *id = strdup(r->r.id);
    if (!id)
        return LOOM_ENOMEM;
    m->finished[(m->fin_head + m->fin_len) % m->fin_cap] = id;
    m->fin_len++;
    r->final_listed = 1;
    m->fin_bytes += r->bytes;
    evict(m);
    return 0;
}

static void copy_mutable(loom_store_run_t *dst, const loom_store_run_t *src)
{
    dst->state = src->state;
    dst->started_ms = src->started_ms;
    dst->finished_ms = src->finished_ms;
    dst->deadline_ms = src->deadline_ms;
    dst->sla_missed = src->sla_missed;
    dst->tasks_total = src->tasks_total;
    dst->tasks_done = src->tasks_done;
    dst->cost = src->cost;
    if (src->error_code)
        dst->error_code = src->error_code;
}

static int mem_run_create(void *self, const loom_store_run_t *run, loom_err_t *err)
{
    mem_t *m = self;
    if (!run || !run->id)
        return loom_err_set(err, LOOM_EINVAL, "run without an id");
    if (loom_map_has(m->runs, run->id))
        return loom_err_set(err, LOOM_EEXIST, "run '%s' already exists", run->id);
    mrun_t *r = calloc(1, sizeof *r);
    if (!r)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    r->r = *run;
    r->r.id = dup(run->id);
    r->r.workflow = dup(run->workflow);
    r->r.workflow_yaml = dup(run->workflow_yaml);
    r->r.workflow_file = dup(run->workflow_file);
    r->r.inputs_json = dup(run->inputs_json);
    r->r.outputs_json = dup(run->outputs_json);
    r->r.error = dup(run->error);
    r->r.tenant = dup(run->tenant);
    r->r.labels_json = dup(run->labels_json);
    r->tasks = loom_map_new(task_free);
    r->bytes = sizeof *r + REC_COST + str_cost(run->id) + str_cost(run->workflow) +
               str_cost(run->workflow_yaml) + str_cost(run->workflow_file) +
               str_cost(run->inputs_json) + str_cost(run->outputs_json) + str_cost(run->error) +
               str_cost(run->tenant) + str_cost(run->labels_json);
    if (!r->r.id || !r->tasks || loom_map_put(m->runs, run->id, r) != 0) {
        run_free(r);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    r->next = m->head;
    if (m->head)
        m->head->prev = r;
    m->head = r;
    if (!m->tail)
        m->tail = r;
    if (note_final(m, r) != 0)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    return 0;
}

static int mem_run_update(void *self, const loom_store_run_t *run, loom_err_t *err)
{
    mem_t *m = self;
    mrun_t *r = run && run->id ? loom_map_get(m->runs, run->id) : NULL;
    if (!r)
        return loom_err_set(err, LOOM_ENOTFOUND, "no run '%s'", run && run->id ? run->id : "");
    copy_mutable(&r->r, run);
    long long delta = 0;
    int rc = (run->outputs_json && set_str(&r->r.outputs_json, run->outputs_json, &delta) != 0) ||
             (run->error && set_str(&r->r.error, run->error, &delta) != 0);
    grow(m, r, delta);
    if (rc || note_final(m, r) != 0)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    return 0;
}

static int mem_task_put(void *self, const loom_store_task_t *t, loom_err_t *err)
{
    mem_t *m = self;
    if (!t || !t->run_id || !t->step_id)
        return loom_err_set(err, LOOM_EINVAL, "task without run or step id");
    mrun_t *r = loom_map_get(m->runs, t->run_id);
    if (!r)
        return loom_err_set(err, LOOM_ENOTFOUND, "no run '%s'", t->run_id);
    char key[512];
    snprintf(key, sizeof key, "%s#%d", t->step_id, t->index);
    mtask_t *mt = loom_map_get(r->tasks, key);
    if (mt && mt->t.attempt > t->attempt)
        return 0; /* a stale update of an earlier attempt */
    long long delta = 0;
    if (!mt) {
        if (!(mt = calloc(1, sizeof *mt)))
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        if (loom_map_put(r->tasks, key, mt) != 0) {
            free(mt);
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
        delta += (long long)(sizeof *mt + REC_COST + str_cost(key));
    }
    mt->t.index = t->index;
    mt->t.attempt = t->attempt;
    mt->t.state = t->state;
    if (t->error_code)
        mt->t.error_code = t->error_code;
    if (t->ready_ms)
        mt->t.ready_ms = t->ready_ms;
    if (t->started_ms)
        mt->t.started_ms = t->started_ms;
    if (t->finished_ms)
        mt->t.finished_ms = t->finished_ms;
    int rc = set_str(&mt->t.run_id, t->run_id, &delta) | set_str(&mt->t.step_id, t->step_id, &delta);
    if (t->op)
        rc |= set_str(&mt->t.op, t->op, &delta);
    if (t->worker_id)
        rc |= set_str(&mt->t.worker_id, t->worker_id, &delta);
    if (t->device)
        rc |= set_str(&mt->t.device, t->device, &delta);
    if (t->output_json)
        rc |= set_str(&mt->t.output_json, t->output_json, &delta);
    if (t->error)
        rc |= set_str(&mt->t.error, t->error, &delta);
    if (t->reason)
        rc |= set_str(&mt->t.reason, t->reason, &delta);
    if (t->predicted_ms > 0)
        mt->t.predicted_ms = t->predicted_ms;
    if (t->cost > 0)
        mt->t.cost = t->cost;
    grow(m, r, delta);
    if (r->final_listed)
        evict(m);
    return rc ? loom_err_set(err, LOOM_ENOMEM, "out of memory") : 0;
}

static int mem_event_append(void *self, const loom_store_event_t *ev, loom_err_t *err)
{
    mem_t *m = self;
    mrun_t *r = ev && ev->run_id ? loom_map_get(m->runs, ev->run_id) : NULL;
    if (!r)
        return loom_err_set(err, LOOM_ENOTFOUND, "no run '%s'", ev && ev->run_id ? ev->run_id : "");
    if (r->nevents >= (size_t)m->max_events) {
        r->events_dropped++;
        return 0;
    }
    if (r->nevents == r->capevents) {
        size_t ncap = r->capevents ? r->capevents * 2 : 16;
        mevent_t *n = realloc(r->events, ncap * sizeof *n);
        if (!n)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        r->events = n;
        r->capevents = ncap;
    }
    mevent_t *e = &r->events[r->nevents];
    e->e = *ev;
    e->e.run_id = dup(ev->run_id);
    e->e.kind = dup(ev->kind);
    e->e.step_id = dup(ev->step_id);
    e->e.detail_json = dup(ev->detail_json);
    r->nevents++;
    grow(m, r, (long long)(sizeof *e + str_cost(ev->run_id) + str_cost(ev->kind) +
                           str_cost(ev->step_id) + str_cost(ev->detail_json)));
    if (r->final_listed)
        evict(m);
    return 0;
}

static int mem_worker_put(void *self, const loom_store_worker_t *w, loom_err_t *err)
{
    mem_t *m = self;
    if (!w || !w->id)
        return loom_err_set(err, LOOM_EINVAL, "worker without an id");
    loom_store_worker_t *c = calloc(1, sizeof *c);
    if (!c)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    *c = *w;
    c->id = dup(w->id);
    c->kind = dup(w->kind);
    c->model = dup(w->model);
    c->state = dup(w->state);
    c->profile_json = dup(w->profile_json);
    if (loom_map_put(m->workers, w->id, c) != 0) {
        worker_free(c);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    return 0;
}

static int mem_run_list(void *self, const loom_store_filter_t *f, loom_store_run_fn fn, void *ud,
                        loom_err_t *err)
{
    (void)err;
    mem_t *m = self;
    int limit = f && f->limit > 0 ? f->limit : 100, n = 0;
    for (mrun_t *r = m->head; r && n < limit; r = r->next) {
        if (f && !loom_store_filter_match(f, &r->r))
            continue;
        if (f && f->before_id &&
            (r->r.created_ms > f->before_ms ||
             (r->r.created_ms == f->before_ms && strcmp(r->r.id, f->before_id) >= 0)))
            continue;
        n++;
        if (fn(ud, &r->r))
            break;
    }
    return 0;
}

static int mem_run_get(void *self, const char *run_id, loom_store_run_fn run_fn,
                       loom_store_task_fn task_fn, void *ud, loom_err_t *err)
{
    mem_t *m = self;
    mrun_t *r = run_id ? loom_map_get(m->runs, run_id) : NULL;
    if (!r)
        return loom_err_set(err, LOOM_ENOTFOUND, "no run '%s'", run_id ? run_id : "");
    if (run_fn && run_fn(ud, &r->r))
        return 0;
    if (!task_fn)
        return 0;
    size_t it = 0;
    const char *k;
    void *v;
    while (loom_map_next(r->tasks, &it, &k, &v))
        if (task_fn(ud, &((mtask_t *)v)->t))
            break;
    return 0;
}

static int mem_events(void *self, const char *run_id, int64_t after_seq, loom_store_event_fn fn,
                      void *ud, loom_err_t *err)
{
    mem_t *m = self;
    mrun_t *r = run_id ? loom_map_get(m->runs, run_id) : NULL;
    if (!r)
        return loom_err_set(err, LOOM_ENOTFOUND, "no run '%s'", run_id ? run_id : "");
    for (size_t i = 0; i < r->nevents; i++)
        if (r->events[i].e.seq > after_seq && fn(ud, &r->events[i].e))
            break;
    return 0;
}

static int mem_load_unfinished(void *self, loom_store_run_fn run_fn, loom_store_task_fn task_fn,
                               void *ud, loom_err_t *err)
{
    (void)err;
    mem_t *m = self;
    /* Oldest first, so recovered runs keep their order. */
    for (mrun_t *r = m->tail; r; r = r->prev) {
        if (loom_store_run_state_final(r->r.state))
            continue;
        if (run_fn(ud, &r->r))
            return 0;
        size_t it = 0;
        const char *k;
        void *v;
        while (task_fn && loom_map_next(r->tasks, &it, &k, &v))
            if (((mtask_t *)v)->t.state == LOOM_TASK_SUCCEEDED && task_fn(ud, &((mtask_t *)v)->t))
                return 0;
    }
    return 0;
}

static void mem_destroy(void *self)
{
    mem_t *m = self;
    if (!m)
        return;
    for (mrun_t *r = m->head, *n; r; r = n) {
        n = r->next;
        run_free(r);
    }
    loom_map_destroy(&m->runs);
    loom_map_destroy(&m->workers);
    for (size_t i = 0; i < m->fin_len; i++)
        free(m->finished[(m->fin_head + i) % m->fin_cap]);
    free(m->finished);
    free(m);
}

static const loom_store_ops_t mem_ops = {
    .name = "mem",
    .run_create = mem_run_create,
    .run_update = mem_run_update,
    .task_put = mem_task_put,
    .event_append = mem_event_append,
    .worker_put = mem_worker_put,
    .run_list = mem_run_list,
    .run_get = mem_run_get,
    .events = mem_events,
    .load_unfinished = mem_load_unfinished,
    .flush = NULL,
    .destroy = mem_destroy,
};

loom_store_t *loom_store_mem_new(int max_finished_runs, int max_events_per_run,
                                size_t max_finished_bytes)
{
    mem_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->max_finished = max_finished_runs > 0 ? max_finished_runs : 1000;
    m->max_bytes = max_finished_bytes > 0 ? max_finished_bytes : LOOM_STORE_MEM_DEFAULT_BYTES;
    m->max_events = max_events_per_run > 0 ? max_events_per_run : 100000;
    m->runs = loom_map_new(NULL);
    m->workers = loom_map_new(worker_free);
    if (!m->runs || !m->workers) {
        mem_destroy(m);
        return NULL;
    }
    return loom_store_new(&mem_ops, m);
}
