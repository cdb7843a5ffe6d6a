/* store_mem.c — the in-memory store (see store.h).
 *
 * Runs live in a map by id and in a creation-ordered list. Everything a
 * run holds (its record's strings, its tasks — latest attempt per
 * step/index, in creation order with a hash index — and its events) is
 * allocated in the run's own page arena (common/page_arena.h: mmap'd
 * blocks, never malloc's heap), so a run's records are never interleaved
 * with the engine's short-lived task structures: when a run ends and the
 * engine frees its tasks, that memory is whole free pages that malloc_trim
 * hands back, and when a finished run is dropped its arena is unmapped
 * whole. When a run becomes final its records are copied into one compact
 * arena (strings equal to the previous record's same field shared), which
 * drops the slack of the growing arena and strings replaced while it ran,
 * when that saves a fifth of what it holds or more; otherwise only the
 * unused pages at the end of its newest block are handed back (note_final).
 *
 * Memory is bounded: once more than max_finished runs are final, or the
 * final runs together take more than max_finished_bytes, the oldest final
 * run is dropped with everything it owns (the newest one always stays),
 * and each run's event log stops growing at max_events (later events are
 * only counted). A run's bytes are its arena's mapped bytes plus
 * RUN_HEAP_COST for what it has on the heap (its header and its id in the
 * runs map). */
#include "orchestrator/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/map.h"
#include "common/page_arena.h"

typedef struct mtask {
    loom_store_task_t t; /* strings in the run's arena; run_id is the run's id */
    struct mtask *next;  /* creation order */
} mtask_t;

typedef struct mevent {
    loom_store_event_t e; /* strings in the run's arena; run_id is the run's id */
    struct mevent *next;
} mevent_t;

enum { RECENT_OP, RECENT_WORKER, RECENT_DEVICE, RECENT_OUTPUT, RECENT_ERROR, RECENT_REASON, RECENT_KIND,
       RECENT_STEP, RECENT_FIELDS };
#define RECENT_WAYS 4

typedef struct mrun {
    loom_store_run_t r;        /* strings in the arena */
    loom_page_arena_t *arena;  /* holds the strings and everything below */
    mtask_t *tasks, *tasks_last;
    mtask_t **index;           /* open addressing by (step_id, index) */
    size_t ntasks, index_cap;  /* index_cap: a power of two */
    mevent_t *events, *events_last;
    size_t nevents;
    int64_t events_dropped;
    int final_listed;          /* already queued in the finished FIFO */
    size_t bytes;              /* what it costs (see the top of the file) */
    /* The strings copied last into the arena per record field (RECENT_*):
     * a record whose field equals one of them points at that copy instead
     * of copying it again (a chain's tasks share op, worker, device and
     * placement reason; events alternate a few kinds). Reset by compact(). */
    const char *recent[RECENT_FIELDS][RECENT_WAYS];
    unsigned recent_next[RECENT_FIELDS];
    struct mrun *prev, *next;  /* creation order, newest at head */
} mrun_t;

typedef struct mem {
    loom_map_t *runs;      /* id -> mrun_t (not freed by the map) */
    mrun_t *head, *tail;   /* newest .. oldest */
    mrun_t **finished;     /* FIFO of final runs, oldest first (ring) */
    size_t fin_head, fin_len, fin_cap;
    loom_map_t *workers;   /* id -> loom_store_worker_t (strings owned) */
    int max_finished, max_events;
    size_t max_bytes, fin_bytes; /* bound and total of the final runs' bytes */
} mem_t;

/* A run's heap: its header, its id copied into the runs map with the map's
 * slot, and its FIFO slot, malloc's overhead included. */
#define RUN_HEAP_COST (sizeof(mrun_t) + 128)

/* The run record's strings, for loops over them. */
#define RUN_NSTRS 9
static void run_strs(loom_store_run_t *r, const char **out[RUN_NSTRS])
{
    const char **s[RUN_NSTRS] = {&r->id,          &r->workflow, &r->workflow_yaml,
                                 &r->workflow_file, &r->inputs_json, &r->outputs_json,
                                 &r->error,       &r->tenant,   &r->labels_json};
    memcpy(out, s, sizeof s);
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Recounts r's bytes; the final runs' total follows. */
static void account(mem_t *m, mrun_t *r)
{
    size_t now = loom_page_arena_bytes(r->arena) + RUN_HEAP_COST;
    if (r->final_listed)
        m->fin_bytes = m->fin_bytes - r->bytes + now;
    r->bytes = now;
}

/* A copy of s in r's arena for record field f: one of the field's recent
 * copies when equal, else a new one (then recent). NULL on OOM. */
static const char *arena_str(mrun_t *r, int f, const char *s)
{
    for (int i = 0; i < RECENT_WAYS; i++)
        if (r->recent[f][i] && strcmp(r->recent[f][i], s) == 0)
            return r->recent[f][i];
    const char *c = loom_page_arena_strdup(r->arena, s);
    if (c)
        r->recent[f][r->recent_next[f]++ % RECENT_WAYS] = c;
    return c;
}

/* Points *dst at a copy of src in r's arena (field f), unless src is NULL
 * (keeps *dst) or equal to *dst already. */
static int set_str(mrun_t *r, int f, const char **dst, const char *src)
{
    if (!src || (*dst && strcmp(*dst, src) == 0))
        return 0;
    const char *c = arena_str(r, f, src);
    if (!c)
        return LOOM_ENOMEM;
    *dst = c;
    return 0;
}

/* --- the task index --------------------------------------------------- */

static size_t task_slot(mtask_t *const *index, size_t cap, const char *step_id, int i)
{
    uint64_t h = loom_hash_bytes(step_id, strlen(step_id)) ^
                 ((uint64_t)(unsigned)i * 0x9E3779B97F4A7C15ull);
    size_t mask = cap - 1, s = (size_t)h & mask;
    while (index[s] && (index[s]->t.index != i || strcmp(index[s]->t.step_id, step_id) != 0))
        s = (s + 1) & mask;
    return s;
}

/* The smallest capacity that holds n tasks under 70% load. */
static size_t index_cap_for(size_t n)
{
    size_t cap = 16;
    while (n * 10 > cap * 7)
        cap *= 2;
    return cap;
}

/* A new index of cap slots in a holding every task of the list. */
static mtask_t **index_build(loom_page_arena_t *a, mtask_t *tasks, size_t cap)
{
    mtask_t **index = loom_page_arena_alloc(a, cap * sizeof *index, _Alignof(mtask_t *));
    if (!index)
        return NULL;
    memset(index, 0, cap * sizeof *index);
    for (mtask_t *t = tasks; t; t = t->next)
        index[task_slot(index, cap, t->t.step_id, t->t.index)] = t;
    return index;
}

/* --- compaction ------------------------------------------------------- */

/* What compact() needs at most: every string unshared, every record
 * padded. */
static size_t compact_room(mrun_t *r, size_t index_cap)
{
    const char **s[RUN_NSTRS];
    run_strs(&r->r, s);
    size_t n = index_cap * sizeof(mtask_t *) + 16;
    for (int i = 0; i < RUN_NSTRS; i++)
        n += str_size(*s[i]);
    for (const mtask_t *t = r->tasks; t; t = t->next)
        n += sizeof *t + 16 + str_size(t->t.step_id) + str_size(t->t.op) +
             str_size(t->t.worker_id) + str_size(t->t.device) + str_size(t->t.output_json) +
             str_size(t->t.error) + str_size(t->t.reason);
    for (const mevent_t *e = r->events; e; e = e->next)
        n += sizeof *e + 16 + str_size(e->e.kind) + str_size(e->e.step_id) +
             str_size(e->e.detail_json);
    return n;
}

/* The last string copied for one field: a record whose field is equal
 * shares that copy (a foreach's items share step id, op, device ...). */
typedef struct {
    const char *src, *dst;
} last_t;

static int share(loom_page_arena_t *a, const char **s, last_t *l)
{
    if (!*s)
        return 0;
    if (!l->src || strcmp(l->src, *s) != 0) {
        if (!(l->dst = loom_page_arena_strdup(a, *s)))
            return -1;
        l->src = *s;
    }
    *s = l->dst;
    return 0;
}

/* What compact() would allocate, strings shared as share() shares them:
 * to tell whether compacting saves enough to be worth the copy. */
static size_t compact_need(mrun_t *r, size_t index_cap)
{
    const char **s[RUN_NSTRS];
    run_strs(&r->r, s);
    size_t n = index_cap * sizeof(mtask_t *);
    for (int i = 0; i < RUN_NSTRS; i++)
        n += str_size(*s[i]);
    const char *lt[7] = {0}, *le[3] = {0};
#define SHARED(x, last) ((x) && (last) && strcmp((x), (last)) == 0 ? 0 : ((last) = (x) ? (x) : (last), str_size(x)))
    for (const mtask_t *t = r->tasks; t; t = t->next)
        n += sizeof *t + SHARED(t->t.step_id, lt[0]) + SHARED(t->t.op, lt[1]) + SHARED(t->t.worker_id, lt[2]) +
             SHARED(t->t.device, lt[3]) + SHARED(t->t.output_json, lt[4]) + SHARED(t->t.error, lt[5]) +
             SHARED(t->t.reason, lt[6]);
    for (const mevent_t *e = r->events; e; e = e->next)
        n += sizeof *e + SHARED(e->e.kind, le[0]) + SHARED(e->e.step_id, le[1]) + SHARED(e->e.detail_json, le[2]);
#undef SHARED
    return n;
}

/* Copies r's records into one arena sized to fit them and unmaps the old
 * one. On failure r is left as it was. */
static int compact(mrun_t *r)
{
    size_t cap = r->ntasks ? index_cap_for(r->ntasks) : 0;
    loom_page_arena_t *a = loom_page_arena_new(compact_room(r, cap));
    if (!a)
        return LOOM_ENOMEM;
    int bad = 0;
    loom_store_run_t x = r->r;
    const char **s[RUN_NSTRS];
    run_strs(&x, s);
    for (int i = 0; i < RUN_NSTRS; i++)
        if (*s[i] && !(*s[i] = loom_page_arena_strdup(a, *s[i])))
            bad = 1;
    mtask_t *tasks = NULL, *tasks_last = NULL;
    last_t lt[7] = {{0}};
    for (const mtask_t *t = r->tasks; t && !bad; t = t->next) {
        mtask_t *c = loom_page_arena_alloc(a, sizeof *c, _Alignof(mtask_t));
        if (!c) {
            bad = 1;
            break;
        }
        *c = *t;
        c->next = NULL;
        c->t.run_id = x.id;
        bad = share(a, &c->t.step_id, &lt[0]) || share(a, &c->t.op, &lt[1]) ||
              share(a, &c->t.worker_id, &lt[2]) || share(a, &c->t.device, &lt[3]) ||
              share(a, &c->t.output_json, &lt[4]) || share(a, &c->t.error, &lt[5]) ||
              share(a, &c->t.reason, &lt[6]);
        *(tasks_last ? &tasks_last->next : &tasks) = c;
        tasks_last = c;
    }
    mevent_t *events = NULL, *events_last = NULL;
    last_t le[3] = {{0}};
    for (const mevent_t *e = r->events; e && !bad; e = e->next) {
        mevent_t *c = loom_page_arena_alloc(a, sizeof *c, _Alignof(mevent_t));
        if (!c) {
            bad = 1;
            break;
        }
        *c = *e;
        c->next = NULL;
        c->e.run_id = x.id;
        bad = share(a, &c->e.kind, &le[0]) || share(a, &c->e.step_id, &le[1]) ||
              share(a, &c->e.detail_json, &le[2]);
        *(events_last ? &events_last->next : &events) = c;
        events_last = c;
    }
    mtask_t **index = bad || !cap ? NULL : index_build(a, tasks, cap);
    if (bad || (cap && !index)) {
        loom_page_arena_destroy(&a);
        return LOOM_ENOMEM;
    }
    loom_page_arena_trim(a);
    loom_page_arena_destroy(&r->arena);
    r->arena = a;
    memset(r->recent, 0, sizeof r->recent); /* they pointed into the old arena */
    r->r = x;
    r->tasks = tasks;
    r->tasks_last = tasks_last;
    r->index = index;
    r->index_cap = cap;
    r->events = events;
    r->events_last = events_last;
    return 0;
}

/* --- runs ------------------------------------------------------------- */

static void run_free(mrun_t *r)
{
    if (!r)
        return;
    loom_page_arena_destroy(&r->arena);
    free(r);
}

static char *dup(const char *s)
{
    return s ? strdup(s) : NULL;
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
        mrun_t *r = m->finished[m->fin_head];
        m->fin_head = (m->fin_head + 1) % m->fin_cap;
        m->fin_len--;
        m->fin_bytes -= r->bytes;
        loom_map_del(m->runs, r->r.id);
        unlink_run(m, r);
        run_free(r);
    }
}

/* Once r is final: compacts it and queues it for eviction. */
static int note_final(mem_t *m, mrun_t *r)
{
    if (r->final_listed || !loom_store_run_state_final(r->r.state))
        return 0;
    if (m->fin_len == m->fin_cap) {
        size_t ncap = m->fin_cap ? m->fin_cap * 2 : 64;
        mrun_t **n = malloc(ncap * sizeof *n);
        if (!n)
            return LOOM_ENOMEM;
        for (size_t i = 0; i < m->fin_len; i++)
            n[i] = m->finished[(m->fin_head + i) % m->fin_cap];
        free(m->finished);
        m->finished = n;
        m->fin_cap = ncap;
        m->fin_head = 0;
    }
    /* Compacting copies every record (and faults in every page of the new
     * arena): worth it when it saves a fifth of what the run holds or more
     * (a foreach's items sharing their strings, strings replaced while it
     * ran). Otherwise the growing arena's unused pages at the end of its
     * newest block are handed back, which is the rest of the saving. On
     * failure the run keeps its growing arena: bigger, still counted. */
    size_t need = compact_need(r, r->ntasks ? index_cap_for(r->ntasks) : 0);
    if (need + need / 4 < loom_page_arena_used(r->arena))
        compact(r);
    else
        loom_page_arena_trim(r->arena);
    m->finished[(m->fin_head + m->fin_len) % m->fin_cap] = r;
    m->fin_len++;
    r->final_listed = 1;
    r->bytes = 0;
    account(m, r);
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
    const char **s[RUN_NSTRS];
    run_strs(&r->r, s);
    size_t room = 0;
    for (int i = 0; i < RUN_NSTRS; i++)
        room += str_size(*s[i]);
    r->arena = loom_page_arena_new(room);
    int bad = !r->arena;
    for (int i = 0; i < RUN_NSTRS && !bad; i++)
        if (*s[i] && !(*s[i] = loom_page_arena_strdup(r->arena, *s[i])))
            bad = 1;
    if (bad || loom_map_put(m->runs, run->id, r) != 0) {
        run_free(r);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    account(m, r);
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
    int rc = set_str(r, RECENT_OUTPUT, &r->r.outputs_json, run->outputs_json) ||
             set_str(r, RECENT_ERROR, &r->r.error, run->error);
    account(m, r);
    if (r->final_listed)
        evict(m); /* may drop r: not used below */
    else if (!rc)
        rc = note_final(m, r);
    return rc ? loom_err_set(err, LOOM_ENOMEM, "out of memory") : 0;
}

static int mem_task_put(void *self, const loom_store_task_t *t, loom_err_t *err)
{
    mem_t *m = self;
    if (!t || !t->run_id || !t->step_id)
        return loom_err_set(err, LOOM_EINVAL, "task without run or step id");
    mrun_t *r = loom_map_get(m->runs, t->run_id);
    if (!r)
        return loom_err_set(err, LOOM_ENOTFOUND, "no run '%s'", t->run_id);
    mtask_t *mt = r->index ? r->index[task_slot(r->index, r->index_cap, t->step_id, t->index)]
                           : NULL;
    if (mt && mt->t.attempt > t->attempt)
        return 0; /* a stale update of an earlier attempt */
    if (!mt) {
        if (!r->index || (r->ntasks + 1) * 10 > r->index_cap * 7) {
            size_t cap = r->index ? r->index_cap * 2 : 16; /* the old one stays, unused */
            mtask_t **index = index_build(r->arena, r->tasks, cap);
            if (!index)
                return loom_err_set(err, LOOM_ENOMEM, "out of memory");
            r->index = index;
            r->index_cap = cap;
        }
        const char *step_id = arena_str(r, RECENT_STEP, t->step_id);
        mt = step_id ? loom_page_arena_alloc(r->arena, sizeof *mt, _Alignof(mtask_t)) : NULL;
        if (!mt) {
            account(m, r);
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
        memset(mt, 0, sizeof *mt);
        mt->t.run_id = r->r.id;
        mt->t.step_id = step_id;
        mt->t.index = t->index;
        r->index[task_slot(r->index, r->index_cap, step_id, t->index)] = mt;
        *(r->tasks_last ? &r->tasks_last->next : &r->tasks) = mt;
        r->tasks_last = mt;
        r->ntasks++;
    }
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
    int rc = set_str(r, RECENT_OP, &mt->t.op, t->op) || set_str(r, RECENT_WORKER, &mt->t.worker_id, t->worker_id) ||
             set_str(r, RECENT_DEVICE, &mt->t.device, t->device) ||
             set_str(r, RECENT_OUTPUT, &mt->t.output_json, t->output_json) ||
             set_str(r, RECENT_ERROR, &mt->t.error, t->error) || set_str(r, RECENT_REASON, &mt->t.reason, t->reason);
    if (t->predicted_ms > 0)
        mt->t.predicted_ms = t->predicted_ms;
    if (t->cost > 0)
        mt->t.cost = t->cost;
    account(m, r);
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
    mevent_t *e = loom_page_arena_alloc(r->arena, sizeof *e, _Alignof(mevent_t));
    int bad = !e;
    if (e) {
        e->e = *ev;
        e->e.run_id = r->r.id;
        e->next = NULL;
        bad = (ev->kind && !(e->e.kind = arena_str(r, RECENT_KIND, ev->kind))) ||
              (ev->step_id && !(e->e.step_id = arena_str(r, RECENT_STEP, ev->step_id))) ||
              (ev->detail_json &&
               !(e->e.detail_json = loom_page_arena_strdup(r->arena, ev->detail_json)));
    }
    if (!bad) {
        *(r->events_last ? &r->events_last->next : &r->events) = e;
        r->events_last = e;
        r->nevents++;
    }
    account(m, r);
    if (r->final_listed)
        evict(m);
    return bad ? loom_err_set(err, LOOM_ENOMEM, "out of memory") : 0;
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
    for (const mtask_t *t = task_fn ? r->tasks : NULL; t; t = t->next)
        if (task_fn(ud, &t->t))
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
    for (const mevent_t *e = r->events; e; e = e->next)
        if (e->e.seq > after_seq && fn(ud, &e->e))
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
        for (const mtask_t *t = task_fn ? r->tasks : NULL; t; t = t->next)
            if (t->t.state == LOOM_TASK_SUCCEEDED && task_fn(ud, &t->t))
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
