/* engine.c — see engine.h. Steps and scopes live here; rendering of
 * inputs, events and store records are in stitch.c, task outcomes
 * (results, refusals, retries, lost workers) in engine_results.c
 * (engine_internal.h). */
#include "orchestrator/engine_internal.h"
#include "orchestrator/secret_inputs.h"

#include <inttypes.h>
#include <math.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "protocol/envelope.h"
#include "protocol/prefix_key.h"

#define COMP "loomd"

/* ---- small lists ---------------------------------------------------------- */

void engine_list_add(loom_engine_t *e, int which, loom_task_t *t)
{
    t->list = which;
    t->lprev = NULL;
    t->lnext = e->lists[which];
    if (t->lnext)
        t->lnext->lprev = t;
    e->lists[which] = t;
}

void engine_list_del(loom_engine_t *e, loom_task_t *t)
{
    if (!t->list)
        return;
    if (t->list == LIST_INLINE && e->inline_tail == t)
        e->inline_tail = t->lprev;
    if (t->lprev)
        t->lprev->lnext = t->lnext;
    else
        e->lists[t->list] = t->lnext;
    if (t->lnext)
        t->lnext->lprev = t->lprev;
    t->lnext = t->lprev = NULL;
    t->list = 0;
}

/* Whether loomd runs t itself (loomd --inline-ops): a cheap op with no
 * side effects (noop, echo), so a worker round trip would only add delay. */
static int runs_inline(const loom_engine_t *e, const char *op)
{
    return (e->cfg.inline_ops & LOOM_INLINE_NOOP && strcmp(op, "noop") == 0) ||
           (e->cfg.inline_ops & LOOM_INLINE_ECHO && strcmp(op, "echo") == 0);
}

void engine_make_ready(loom_engine_t *e, loom_task_t *t)
{
    /* an echo of another step's output that stayed on its worker (a
     * reference, workers/common/outref.h) goes to a worker, which fetches it */
    if (!runs_inline(e, t->op) ||
        (strcmp(t->op, "echo") == 0 && t->input && strstr(t->input, "\"$object\""))) {
        loom_sched_push(&e->ready, &t->qi);
        return;
    }
    t->list = LIST_INLINE; /* appended: first ready, first run */
    t->lnext = NULL;
    t->lprev = e->inline_tail;
    if (e->inline_tail)
        e->inline_tail->lnext = t;
    else
        e->lists[LIST_INLINE] = t;
    e->inline_tail = t;
}

void engine_worker_detach(loom_task_t *t)
{
    loom_worker_rec_t *w = t->worker;
    if (!w)
        return;
    if (t->wprev)
        t->wprev->wnext = t->wnext;
    else
        w->tasks = t->wnext;
    if (t->wnext)
        t->wnext->wprev = t->wprev;
    t->wnext = t->wprev = NULL;
    w->inflight--;
    t->worker = NULL;
}

void engine_worker_attach(loom_task_t *t, loom_worker_rec_t *w)
{
    t->worker = w;
    t->wprev = NULL;
    t->wnext = w->tasks;
    if (w->tasks)
        w->tasks->wprev = t;
    w->tasks = t;
    w->inflight++;
}

/* Unlinks a task from everything and frees it (and the tasks sent ahead
 * behind it, which will not run now). */
void engine_task_free(loom_engine_t *e, loom_task_t *t)
{
    loom_run_t *r = t->run;
    engine_unchain(e, t);
    if (t->after)
        t->after->chained = NULL;
    if (t->ahead && t->scope->st[t->step].ahead == t)
        t->scope->st[t->step].ahead = NULL;
    for (size_t k = 0; k < t->n_after_at; k++)
        free(t->after_at[k]);
    free(t->after_at);
    loom_sched_remove(&e->ready, &t->qi);
    engine_list_del(e, t);
    engine_worker_detach(t);
    if (t->rprev)
        t->rprev->rnext = t->rnext;
    else if (r->tasks == t)
        r->tasks = t->rnext;
    if (t->rnext)
        t->rnext->rprev = t->rprev;
    r->live_tasks--;
    loom_map_del(e->tasks, t->id);
    free(t->input);
    free(t->reason);
    free(t->prefix_keys);
    free(t);
}

void engine_unchain(loom_engine_t *e, loom_task_t *p)
{
    loom_task_t *s = p->chained;
    p->chained = NULL;
    if (s) /* the worker drops it (and what runs behind it) unless it started */
        s->after = NULL;
    while (s) {
        loom_task_t *n = s->chained;
        s->chained = NULL;
        if (n)
            n->after = NULL;
        if (s->worker && e->cfg.cancel_task)
            e->cfg.cancel_task(e->cfg.ud, s->worker, s, "its predecessor did not succeed");
        engine_task_free(e, s); /* never released: no record, no event, no attempt */
        s = n;
    }
}

/* ---- runs ----------------------------------------------------------------- */

static void scope_free(scope_t *sc);

static void run_free(loom_run_t *r)
{
    scope_free(r->top);
    engine_workflow_release(r);
    json_decref(r->inputs);
    free(r->yaml);
    free(r->name);
    free(r->error);
    free(r->cp);
    free(r->workflow_dir);
    free(r->client_cwd);
    free(r->tenant);
    free(r->plan_mlir);
    free(r->labels_json);
    loom_redact_free(r->secrets, r->n_secrets);
    engine_objects_run_free(r);
    free(r);
}

/* Frees runs that became final during this engine call. */
void engine_reap_runs(loom_engine_t *e)
{
    /* Scopes first: they point into their run's workflow. */
    while (e->dead_scopes) {
        scope_t *sc = e->dead_scopes;
        e->dead_scopes = sc->dead_next;
        scope_free(sc);
    }
    while (e->dead) {
        loom_run_t *r = e->dead;
        e->dead = r->dead_next;
        e->freed_tasks += (uint64_t)(r->tasks_total > 0 ? r->tasks_total : 0);
        run_free(r);
    }
    /* A large run's state (tasks, scopes, outputs) is freed here in one go;
     * glibc keeps such memory mapped until trimmed, so loomd's RSS would
     * stay at its high-water mark. Give it back once per ~50k freed tasks
     * (a few ms), so RSS follows what is live (orchestrator/README.md, Store). */
    if (e->freed_tasks >= 50000) {
        e->freed_tasks = 0;
        malloc_trim(0);
    }
}

static void run_store_update(loom_engine_t *e, loom_run_t *r, const char *outputs)
{
    loom_store_run_t sr = {.id = r->id, .state = r->state, .created_ms = r->created_ms,
                           .started_ms = r->started_ms, .finished_ms = r->finished_ms,
                           .deadline_ms = r->deadline_ms, .sla_missed = r->sla_missed,
                           .outputs_json = outputs, .error = r->error, .error_code = r->error_code,
                           .tasks_total = r->tasks_total, .tasks_done = r->tasks_done,
                           .cost = r->cost};
    loom_err_t err;
    if (loom_store_run_update(e->cfg.store, &sr, &err) != 0)
        LOOM_WARN(COMP, "msg=\"store: run update failed\" run=%s err=\"%s\"", r->id, err.msg);
}

/* SLA_AT_RISK, once per run: the longest remaining critical path of the
 * top-level steps not finished yet (what is left of a running step's
 * estimate, then its dependents') no longer fits before the deadline.
 * Estimates are expect.latency_ms or the per-op defaults. */
static void sla_risk_check(loom_engine_t *e, loom_run_t *r, uint64_t now)
{
    if (r->sla_at_risk || now < r->next_risk_check || !r->cp || !r->top)
        return;
    r->next_risk_check = now + 200;
    const scope_t *sc = r->top;
    int64_t need = 0, wall = loom_wall_ms();
    for (size_t i = 0; i < sc->g->n_steps; i++) {
        const step_rt_t *st = &sc->st[i];
        if (loom_store_task_state_final(st->state))
            continue;
        int64_t left = r->cp[i];
        if (st->state == LOOM_TASK_READY && st->started_ms) { /* released: part of it is done */
            int64_t est = engine_estimate_ms(&sc->g->steps[i]), ran = wall - st->started_ms;
            left -= ran < est ? ran : est;
        }
        if (left > need)
            need = left;
    }
    if (need <= 0 || now + (uint64_t)need <= r->deadline_mono)
        return;
    r->sla_at_risk = 1;
    char msg[200];
    snprintf(msg, sizeof msg, "remaining critical path about %lld ms; %lld ms left of the SLA of %.0f ms",
             (long long)need, (long long)(r->deadline_mono - now), r->sla_ms);
    engine_emit(e, r, &(engine_ev_t){.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_SLA_AT_RISK,
                                     .message = msg});
}

void engine_sla_check(loom_engine_t *e, loom_run_t *r, uint64_t now)
{
    if (!r->deadline_mono || r->sla_missed)
        return;
    if (now <= r->deadline_mono) {
        if (!r->final)
            sla_risk_check(e, r, now);
        return;
    }
    r->sla_missed = 1;
    char msg[160];
    snprintf(msg, sizeof msg, "run passed its SLA of %.0f ms", r->sla_ms);
    engine_emit(e, r, &(engine_ev_t){.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_SLA_MISSED,
                                     .message = msg});
    run_store_update(e, r, NULL);
}

/* Ends a run: cancels what still runs, emits the final event, and queues
 * the run for freeing at the end of the current engine call. */
void engine_run_finish(loom_engine_t *e, loom_run_t *r, loom_run_state_t state, const char *error,
                       const char *outputs)
{
    if (r->final)
        return;
    r->final = 1;
    r->state = state;
    r->finished_ms = loom_wall_ms();
    if (error && !r->error)
        r->error = strdup(error);
    if (state == LOOM_RUN_CANCELLED)
        r->error_code = LOOM__V1__STATUS_CODE__CANCELLED;
    else if (state == LOOM_RUN_FAILED && !r->error_code) /* outputs, out of memory */
        r->error_code = LOOM__V1__STATUS_CODE__INTERNAL;
    const char *why = state == LOOM_RUN_CANCELLED ? "run cancelled" : "run failed";
    while (r->tasks) {
        loom_task_t *t = r->tasks;
        if (t->worker && e->cfg.cancel_task)
            e->cfg.cancel_task(e->cfg.ud, t->worker, t, why);
        if (!t->ahead) /* one sent ahead was never released: nothing to record */
            engine_task_cancelled(e, t, why);
        engine_task_free(e, t);
    }
    engine_sla_check(e, r, loom_clock_ms());
    engine_objects_run_done(e, r);
    int kind = state == LOOM_RUN_SUCCEEDED   ? LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_FINISHED
               : state == LOOM_RUN_CANCELLED ? LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_CANCELLED
                                             : LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_RUN_FAILED;
    run_store_update(e, r, outputs);
    char summary[200];
    snprintf(summary, sizeof summary, "%d task(s); task latency p50 %.0f us, p99 %.0f us",
             r->tasks_done, engine_lat_quantile(r, 0.5), engine_lat_quantile(r, 0.99));
    engine_emit(e, r, &(engine_ev_t){.kind = kind, .message = r->error ? r->error : summary,
                                     .output = outputs, .final = 1, .error = r->error,
                                     .error_code = r->error_code});
    if (e->cfg.placement.run_done)
        e->cfg.placement.run_done(e->cfg.placement.self, r->id);
    loom_map_del(e->runs, r->id);
    e->stats.runs_finished++;
    LOOM_INFO(COMP, "msg=\"run finished\" run=%s state=%s ms=%" PRId64 " sla_missed=%d%s%s", r->id,
              loom_store_run_state_name(state), r->finished_ms - r->created_ms, r->sla_missed,
              r->error ? " error=" : "", r->error ? r->error : "");
    r->dead_next = e->dead;
    e->dead = r;
}

void engine_lat_add(loom_run_t *r, uint64_t ns)
{
    double us = (double)ns / 1000.0;
    int b = us <= 1 ? 0 : (int)(log10(us) * LAT_PER_DECADE);
    if (b >= LAT_BUCKETS)
        b = LAT_BUCKETS - 1;
    r->lat_hist[b]++;
}

double engine_lat_quantile(const loom_run_t *r, double q)
{
    uint64_t total = 0, acc = 0;
    for (int b = 0; b < LAT_BUCKETS; b++)
        total += r->lat_hist[b];
    if (!total)
        return 0;
    for (int b = 0; b < LAT_BUCKETS; b++) {
        acc += r->lat_hist[b];
        if ((double)acc >= q * (double)total)
            return pow(10.0, (b + 0.5) / LAT_PER_DECADE); /* bucket midpoint (geometric) */
    }
    return pow(10.0, (double)LAT_BUCKETS / LAT_PER_DECADE);
}

/* ---- scopes --------------------------------------------------------------- */

static void scope_free(scope_t *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->g->n_steps; i++) {
        step_rt_t *st = &sc->st[i];
        json_decref(st->output);
        free(st->rerun_input);
        json_decref(st->items);
        json_decref(st->results);
        json_decref(st->prev);
        scope_free(st->body);
    }
    free(sc->st);
    free(sc->dep_off);
    free(sc->dep_list);
    free(sc);
}

/* Builds the runtime state of graph g (a fresh loop iteration or the top). */
static scope_t *scope_new(loom_run_t *r, const loom_wf_graph_t *g, scope_t *parent, size_t owner,
                          int iteration)
{
    scope_t *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->run = r;
    sc->g = g;
    sc->parent = parent;
    sc->owner = owner;
    sc->iteration = iteration;
    sc->remaining = g->n_steps;
    sc->st = calloc(g->n_steps ? g->n_steps : 1, sizeof *sc->st);
    size_t edges = 0;
    for (size_t i = 0; i < g->n_steps; i++)
        edges += g->steps[i].n_deps;
    sc->dep_off = calloc(g->n_steps + 1, sizeof *sc->dep_off);
    sc->dep_list = calloc(edges ? edges : 1, sizeof *sc->dep_list);
    if (!sc->st || !sc->dep_off || !sc->dep_list) {
        scope_free(sc);
        return NULL;
    }
    /* dependents as CSR: count, prefix-sum, fill */
    for (size_t j = 0; j < g->n_steps; j++)
        for (size_t k = 0; k < g->steps[j].n_deps; k++)
            sc->dep_off[g->steps[j].deps[k].step + 1]++;
    for (size_t i = 0; i < g->n_steps; i++)
        sc->dep_off[i + 1] += sc->dep_off[i];
    size_t *fill = calloc(g->n_steps ? g->n_steps : 1, sizeof *fill);
    if (!fill) {
        scope_free(sc);
        return NULL;
    }
    for (size_t j = 0; j < g->n_steps; j++) {
        const loom_wf_step_t *s = &g->steps[j];
        sc->st[j].waiting = (int)s->n_deps;
        for (size_t k = 0; k < s->n_deps; k++) {
            size_t d = s->deps[k].step;
            sc->dep_list[sc->dep_off[d] + fill[d]++] = j;
        }
    }
    free(fill);
    for (size_t i = 0; i < g->n_steps; i++) {
        sc->st[i].consumers = (int)(sc->dep_off[i + 1] - sc->dep_off[i]);
        if (g->steps[i].op == LOOM_OP_LOOP)
            sc->has_loop = 1;
        sc->st[i].state = LOOM_TASK_PENDING;
    }
    /* Body outputs are kept for `until:` and loop.prev; top-level ones
     * referenced by workflow outputs are kept for the run's outputs. */
    for (size_t i = 0; i < g->n_steps; i++)
        sc->st[i].keep = parent != NULL || engine_output_refs_step(r->wf, g->steps[i].id);
    if (!parent)
        engine_mark_control_reads(sc); /* which outputs may travel by reference */
    return sc;
}

static void start_step(loom_engine_t *e, scope_t *sc, size_t i);

static void scope_start(loom_engine_t *e, scope_t *sc)
{
    if (sc->g->n_steps == 0) {
        engine_scope_done(e, sc);
        return;
    }
    for (size_t k = 0; k < sc->g->n_steps && !sc->run->final && !sc->done; k++) {
        size_t i = sc->g->order[k];
        if (sc->st[i].waiting == 0 && sc->st[i].state == LOOM_TASK_PENDING)
            start_step(e, sc, i);
    }
}

/* Full step id for events/store: "loop/body" inside loops. */
void engine_step_path(const scope_t *sc, size_t i, char *buf, size_t n)
{
    if (sc->parent) {
        char pre[256];
        engine_step_path(sc->parent, sc->owner, pre, sizeof pre);
        snprintf(buf, n, "%s/%s", pre, sc->g->steps[i].id);
    } else {
        snprintf(buf, n, "%s", sc->g->steps[i].id);
    }
}

/* Step path with loop iterations ("refine#2/draft"): unlike the step id
 * clients see, it tells iterations apart. */
static void key_path(const scope_t *sc, size_t i, char *buf, size_t n)
{
    if (sc->parent) {
        char pre[256];
        key_path(sc->parent, sc->owner, pre, sizeof pre);
        snprintf(buf, n, "%s#%d/%s", pre, sc->iteration, sc->g->steps[i].id);
    } else {
        snprintf(buf, n, "%s", sc->g->steps[i].id);
    }
}

void loom_task_key(const loom_task_t *t, char *buf, size_t n)
{
    char path[300];
    static const char *const part[] = {"", "/prefill", "/decode"};
    key_path(t->scope, t->step, path, sizeof path);
    if (t->index >= 0)
        snprintf(buf, n, "%s:%s[%d]%s", t->run->id, path, t->index, part[t->kv_part]);
    else
        snprintf(buf, n, "%s:%s%s", t->run->id, path, part[t->kv_part]);
}

/* ---- tasks ------------------------------------------------------------------ */

static int64_t prio_of(loom_run_t *r, scope_t *sc, size_t i)
{
    scope_t *top = sc;
    size_t step = i;
    while (top->parent) {
        step = top->owner;
        top = top->parent;
    }
    uint64_t dl = r->deadline_mono ? r->deadline_mono : r->start_mono + 24ull * 3600 * 1000;
    return (int64_t)dl - (r->cp ? r->cp[step] : 0);
}

/* A task of step i (item index) in sc, linked to its run; not yet
 * counted or ready (task_new does both). */
static loom_task_t *task_make(loom_engine_t *e, scope_t *sc, size_t i, int index, char *input,
                              size_t input_len)
{
    loom_task_t *t = calloc(1, sizeof *t);
    if (!t) {
        free(input);
        return NULL;
    }
    loom_run_t *r = sc->run;
    t->qi.slot = SIZE_MAX;
    /* "EPOCH.N", the epoch as loomd logs and sends it (8 hex digits);
     * unique across loomd restarts too (workers may still hold tasks of
     * an earlier loomd, see engine_adopt.c) */
    snprintf(t->id, sizeof t->id, "%08x.%" PRIx64, e->epoch, ++e->next_task);
    t->run = r;
    t->scope = sc;
    t->step = i;
    t->index = index;
    t->attempt = 1;
    t->state = LOOM_TASK_READY;
    t->op = loom_op_kind_name(sc->g->steps[i].op);
    t->input = input;
    t->input_len = input_len;
    t->timeout_ms = sc->g->steps[i].timeout_ms;
    t->ready_ms = loom_wall_ms();
    t->ready_ns = loom_clock_ns();
    t->qi.prio = prio_of(r, sc, i);
    if (loom_map_put(e->tasks, t->id, t) != 0) {
        free(input);
        free(t);
        return NULL;
    }
    t->rnext = r->tasks;
    if (r->tasks)
        r->tasks->rprev = t;
    r->tasks = t;
    r->live_tasks++;
    return t;
}

static loom_task_t *task_new(loom_engine_t *e, scope_t *sc, size_t i, int index, char *input,
                             size_t input_len)
{
    loom_task_t *t = task_make(e, sc, i, index, input, input_len);
    if (!t)
        return NULL;
    sc->run->tasks_total++;
    sc->st[i].tasks_live++;
    engine_make_ready(e, t);
    return t;
}

static void fail_run_oom(loom_engine_t *e, loom_run_t *r)
{
    engine_run_finish(e, r, LOOM_RUN_FAILED, "loomd ran out of memory", NULL);
}

/* A task of an llm.generate step that the run's module splits across
 * devices starts as the step's llm.prefill (placement.h, split_kv);
 * engine_kv_handoff turns its result into the llm.decode. The prefill
 * streams its KV cache layer by layer ("kv_stream": true unless the step
 * says otherwise) and announces the stream's reference when it starts, so
 * the decode is dispatched then (loom_engine_early_output). */
static loom_task_t *split_if_planned(loom_engine_t *e, loom_task_t *t)
{
    if (!t || t->scope->g->steps[t->step].op != LOOM_OP_LLM_GENERATE || !e->cfg.placement.split_kv)
        return t;
    char sid[256];
    engine_step_path(t->scope, t->step, sid, sizeof sid);
    if (e->cfg.placement.split_kv(e->cfg.placement.self, t->run->id, sid)) {
        t->op = "llm.prefill";
        t->kv_part = 1;
        json_error_t je;
        json_t *in = json_loadb(t->input, t->input_len, 0, &je);
        char *text = NULL;
        if (json_is_object(in) && !json_object_get(in, "kv_stream") &&
            !json_object_set_new(in, "kv_stream", json_true()) && (text = json_dumps(in, JSON_COMPACT))) {
            free(t->input);
            t->input = text;
            t->input_len = strlen(text);
        }
        json_decref(in);
    }
    return t;
}

int engine_kv_handoff(loom_engine_t *e, loom_task_t *t, const json_t *kv)
{
    json_error_t je;
    json_t *in = json_loadb(t->input, t->input_len, 0, &je);
    char *text = NULL;
    if (in && json_object_set(in, "prefill", (json_t *)kv) == 0)
        text = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    loom_task_t *d = text ? task_new(e, t->scope, t->step, t->index, text, strlen(text)) : NULL;
    if (!d)
        return LOOM_ENOMEM;
    d->op = "llm.decode";
    d->kv_part = 2;
    return 0;
}

static void placement_note(void *ud, const char *run_id, int replanned, const char *message,
                           const struct Loom__V1__Plan *plan, const char *plan_hex);

/* Step i's task was sent ahead behind its predecessor's (chain_ahead),
 * which has now succeeded: from here it is an ordinary assigned task,
 * recorded and announced as if dispatched now (the worker may already have
 * run it). */
static void release_ahead(loom_engine_t *e, scope_t *sc, size_t i)
{
    loom_run_t *r = sc->run;
    step_rt_t *st = &sc->st[i];
    loom_task_t *t = st->ahead;
    st->ahead = NULL;
    t->ahead = 0;
    t->after = NULL;
    if (t->n_after_at) { /* loomd's copy gets the predecessor's output too (records, retries) */
        char *in = NULL;
        size_t len = 0;
        rctx_t rc = {.run = r, .sc = sc};
        loom_err_t err;
        loom_err_clear(&err);
        if (engine_render_input(e, r, sc, i, &rc, &in, &len, &err) == 0) {
            free(t->input);
            t->input = in;
            t->input_len = len;
        }
    }
    t->ready_ms = t->started_ms = loom_wall_ms();
    t->ready_ns = loom_clock_ns();
    if (e->cfg.placement.chained_ready) {
        char sid[256];
        engine_step_path(sc, i, sid, sizeof sid);
        loom_placement_req_t req = {.run_id = r->id, .step_id = sid, .op = t->op,
                                    .model = sc->g->steps[i].model, .attempt = t->attempt,
                                    .workflow = r->wf, .sla_ms = r->sla_ms, .plan_mlir = r->plan_mlir,
                                    .elapsed_ms = (double)(loom_clock_ms() - r->start_mono),
                                    .note = placement_note, .note_ud = e};
        e->cfg.placement.chained_ready(e->cfg.placement.self, &req, e->cfg.reg);
    }
    r->tasks_total++;
    st->tasks_live++;
    e->stats.tasks_dispatched++;
    e->stats.tasks_chained++;
    engine_task_assigned(e, t);
    if (t->started) { /* a re-registered worker said it runs it (engine_adopt.c) */
        engine_start_timeout(e, t);
        engine_task_running(e, t);
    }
}

/* Releases step i of sc: skip, loop, fan out, or one task. */
static void start_step(loom_engine_t *e, scope_t *sc, size_t i)
{
    loom_run_t *r = sc->run;
    const loom_wf_step_t *s = &sc->g->steps[i];
    step_rt_t *st = &sc->st[i];
    if (r->final || st->state != LOOM_TASK_PENDING)
        return;
    st->state = LOOM_TASK_READY;
    st->started_ms = loom_wall_ms();
    if (st->ahead) { /* sent ahead behind its predecessor, which just succeeded */
        release_ahead(e, sc, i);
        return;
    }
    loom_err_t err;
    loom_err_clear(&err);
    if (s->when) {
        bool truth = false;
        rctx_t rc = {.run = r, .sc = sc};
        if (loom_expr_eval_bool(s->when, engine_resolve, &rc, &truth, &err) != 0) {
            char msg[600];
            snprintf(msg, sizeof msg, "when: of step '%s' failed: %s", s->id, err.msg);
            engine_finish_step(e, sc, i, LOOM_TASK_FAILED, msg);
            return;
        }
        if (!truth) {
            engine_finish_step(e, sc, i, LOOM_TASK_SKIPPED, NULL);
            return;
        }
    }
    if (s->op == LOOM_OP_LOOP) {
        st->body = scope_new(r, s->body, sc, i, 0);
        if (!st->body) {
            fail_run_oom(e, r);
            return;
        }
        engine_step_event(e, sc, i, NULL, LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_STARTED,
                          "loop iteration 0", NULL);
        scope_start(e, st->body);
        return;
    }
    if (s->foreach) {
        json_t *items = NULL;
        rctx_t rc = {.run = r, .sc = sc};
        if (loom_value_render(s->foreach, engine_resolve, &rc, &items, &err) != 0 ||
            !json_is_array(items)) {
            char msg[600];
            snprintf(msg, sizeof msg, "foreach of step '%s' %s%s", s->id,
                     items ? "is not a list" : "failed: ", items ? "" : err.msg);
            json_decref(items);
            engine_finish_step(e, sc, i, LOOM_TASK_FAILED, msg);
            return;
        }
        st->items = items;
        st->n_items = json_array_size(items);
        st->results = json_array();
        for (size_t k = 0; k < st->n_items; k++)
            json_array_append_new(st->results, json_null());
        st->is_foreach = 1;
        if (st->n_items == 0) {
            engine_finish_step(e, sc, i, LOOM_TASK_SUCCEEDED, NULL);
            return;
        }
        for (size_t k = 0; k < st->n_items && !r->final; k++) {
            rctx_t ic = {.run = r, .sc = sc, .item = json_array_get(items, k), .has_item = 1};
            char *in = NULL;
            size_t len = 0;
            if (engine_render_input(e, r, sc, i, &ic, &in, &len, &err) != 0) {
                char msg[600];
                snprintf(msg, sizeof msg, "input of step '%s' item %zu: %s", s->id, k, err.msg);
                engine_finish_step(e, sc, i, LOOM_TASK_FAILED, msg);
                return;
            }
            if (!split_if_planned(e, task_new(e, sc, i, (int)k, in, len))) {
                fail_run_oom(e, r);
                return;
            }
        }
        return;
    }
    char *in = NULL;
    size_t len = 0;
    rctx_t rc = {.run = r, .sc = sc};
    if (engine_render_input(e, r, sc, i, &rc, &in, &len, &err) != 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "input of step '%s': %s", s->id, err.msg);
        engine_finish_step(e, sc, i, LOOM_TASK_FAILED, msg);
        return;
    }
    if (!split_if_planned(e, task_new(e, sc, i, -1, in, len)))
        fail_run_oom(e, r);
}

/* A split llm.generate step finished while the prefill that streamed its
 * KV cache still runs (its decode had all it needed): stop that prefill,
 * so no task outlives its step. */
static void drop_streaming_prefills(loom_engine_t *e, scope_t *sc, size_t i)
{
    loom_task_t *t = sc->run->tasks, *next;
    for (; t; t = next) {
        next = t->rnext;
        if (t->scope != sc || t->step != i || !t->kv_handed)
            continue;
        if (t->worker && e->cfg.cancel_task)
            e->cfg.cancel_task(e->cfg.ud, t->worker, t, "its decode finished");
        engine_task_cancelled(e, t, "its decode finished");
        sc->st[i].tasks_live--;
        engine_task_free(e, t);
    }
}

#define MAX_RERUNS 2 /* per step and run: a holder that keeps dying is not chased forever */

int engine_rerun_step(loom_engine_t *e, scope_t *sc, size_t i, const char *why)
{
    step_rt_t *st = &sc->st[i];
    const loom_wf_step_t *s = &sc->g->steps[i];
    if (sc->run->final || st->state != LOOM_TASK_SUCCEEDED || st->is_foreach || !st->rerun_input ||
        st->reruns >= MAX_RERUNS || st->tasks_live)
        return -1;
    char *in = strdup(st->rerun_input);
    if (!in)
        return -1;
    st->reruns++;
    st->state = LOOM_TASK_READY;
    st->started_ms = loom_wall_ms();
    /* it finishes again: undo what its first finish counted */
    sc->remaining++;
    for (size_t k = 0; k < s->n_deps; k++)
        sc->st[s->deps[k].step].consumers++;
    for (size_t k = sc->dep_off[i]; k < sc->dep_off[i + 1]; k++)
        if (sc->st[sc->dep_list[k]].state == LOOM_TASK_PENDING)
            sc->st[sc->dep_list[k]].waiting++;
    char msg[900];
    snprintf(msg, sizeof msg, "re-run (%d of at most %d): %s", st->reruns, MAX_RERUNS, why);
    engine_step_event(e, sc, i, NULL, LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_RETRIED, msg, why);
    if (!split_if_planned(e, task_new(e, sc, i, -1, in, strlen(in)))) {
        fail_run_oom(e, sc->run);
        return -1;
    }
    return 0;
}

/* Step i reached a final state: release dependents, free what nobody
 * needs any more, and close the scope when it was the last step. */
void engine_finish_step(loom_engine_t *e, scope_t *sc, size_t i, loom_task_state_t state,
                        const char *error)
{
    loom_run_t *r = sc->run;
    step_rt_t *st = &sc->st[i];
    const loom_wf_step_t *s = &sc->g->steps[i];
    if (r->final || loom_store_task_state_final(st->state))
        return;
    st->state = state;
    st->finished_ms = loom_wall_ms();
    if (s->op == LOOM_OP_LLM_GENERATE)
        drop_streaming_prefills(e, sc, i);
    if (state == LOOM_TASK_SUCCEEDED && st->is_foreach) {
        st->output = st->results;
        st->results = NULL;
        json_decref(st->items);
        st->items = NULL;
    }
    if (state == LOOM_TASK_SKIPPED) {
        json_decref(st->output);
        st->output = json_null();
    }
    engine_step_finished(e, sc, i, state, error);
    if (r->final)
        return;
    if (state != LOOM_TASK_SUCCEEDED && state != LOOM_TASK_SKIPPED) {
        char msg[1024];
        snprintf(msg, sizeof msg, "step '%s' %s: %s", s->id,
                 state == LOOM_TASK_TIMED_OUT ? "timed out" : loom_store_task_state_name(state),
                 error ? error : "no detail");
        r->error_code = st->error_code;
        engine_run_finish(e, r, state == LOOM_TASK_CANCELLED ? LOOM_RUN_CANCELLED : LOOM_RUN_FAILED,
                          msg, NULL);
        return;
    }
    sc->remaining--;
    /* Upstream outputs this step consumed may now be unneeded. */
    for (size_t k = 0; k < s->n_deps; k++) {
        step_rt_t *d = &sc->st[s->deps[k].step];
        if (--d->consumers == 0 && !d->keep && !sc->has_loop) {
            engine_objects_consumed(e, r, d->output);
            json_decref(d->output);
            d->output = NULL;
            d->freed = 1;
            free(d->rerun_input);
            d->rerun_input = NULL;
        }
    }
    for (size_t k = sc->dep_off[i]; k < sc->dep_off[i + 1] && !r->final && !sc->done; k++) {
        size_t j = sc->dep_list[k];
        if (--sc->st[j].waiting == 0)
            start_step(e, sc, j);
    }
    if (!r->final && !sc->done && sc->remaining == 0)
        engine_scope_done(e, sc);
}

/* A finished loop iteration: callers up the stack may still be iterating
 * over it, so it is freed at the end of the engine call. */
static void retire(loom_engine_t *e, scope_t *sc)
{
    sc->done = 1;
    sc->dead_next = e->dead_scopes;
    e->dead_scopes = sc;
}

/* All steps of sc are final: finish the run, or the loop iteration. */
void engine_scope_done(loom_engine_t *e, scope_t *sc)
{
    loom_run_t *r = sc->run;
    if (r->final || sc->done)
        return;
    if (!sc->parent) {
        char *outputs = NULL;
        loom_err_t err;
        loom_err_clear(&err);
        if (engine_render_outputs(r, &outputs, &err) != 0) {
            char msg[700];
            snprintf(msg, sizeof msg, "workflow outputs: %s", err.msg);
            /* an expression of the workflow's outputs that does not
             * evaluate is the workflow's error, as for step inputs; out of
             * memory and loomd's own faults stay INTERNAL */
            if (err.code != LOOM_ENOMEM && err.code != LOOM_EINTERNAL)
                r->error_code = LOOM__V1__STATUS_CODE__INVALID_ARGUMENT;
            engine_run_finish(e, r, LOOM_RUN_FAILED, msg, NULL);
        } else {
            engine_run_finish(e, r, LOOM_RUN_SUCCEEDED, NULL, outputs);
        }
        free(outputs);
        return;
    }
    /* A loop iteration ended. */
    scope_t *parent = sc->parent;
    size_t li = sc->owner;
    const loom_wf_step_t *loop = &parent->g->steps[li];
    step_rt_t *lst = &parent->st[li];
    json_t *outs = json_object();
    for (size_t k = 0; k < sc->g->n_steps; k++)
        json_object_set(outs, sc->g->steps[k].id,
                        sc->st[k].output ? sc->st[k].output : json_null());
    int iterations = sc->iteration + 1;
    bool done = loop->max_iterations > 0 && iterations >= loop->max_iterations;
    if (loop->until) {
        bool truth = false;
        loom_err_t err;
        loom_err_clear(&err);
        rctx_t rc = {.run = r, .sc = sc};
        if (loom_expr_eval_bool(loop->until, engine_resolve, &rc, &truth, &err) != 0) {
            char msg[600];
            snprintf(msg, sizeof msg, "until: of loop '%s' failed: %s", loop->id, err.msg);
            json_decref(outs);
            engine_finish_step(e, parent, li, LOOM_TASK_FAILED, msg);
            return;
        }
        done = done || truth;
    } else if (loop->max_iterations <= 0) {
        done = true;
    }
    json_decref(lst->prev);
    lst->prev = outs;
    lst->iteration = iterations;
    if (done) {
        json_t *out = json_deep_copy(outs);
        json_object_set_new(out, "iterations", json_integer(iterations));
        json_decref(lst->output);
        lst->output = out;
        lst->body = NULL;
        retire(e, sc);
        engine_finish_step(e, parent, li, LOOM_TASK_SUCCEEDED, NULL);
        return;
    }
    scope_t *next = scope_new(r, sc->g, parent, li, iterations);
    retire(e, sc);
    lst->body = next;
    if (!next) {
        fail_run_oom(e, r);
        return;
    }
    char msg[64];
    snprintf(msg, sizeof msg, "loop iteration %d", iterations);
    engine_step_event(e, parent, li, NULL, LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS, msg,
                      NULL);
    scope_start(e, next);
}

/* ---- submit / cancel ------------------------------------------------------------ */

loom_engine_t *loom_engine_new(const loom_engine_cfg_t *cfg)
{
    loom_engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->cfg = *cfg;
    if (e->cfg.placement_timeout_ms <= 0)
        e->cfg.placement_timeout_ms = 30000;
    if (e->cfg.max_lost <= 0)
        e->cfg.max_lost = 3;
    if (e->cfg.backoff_ms <= 0)
        e->cfg.backoff_ms = 100;
    if (e->cfg.adopt_grace_ms <= 0)
        e->cfg.adopt_grace_ms = 3000;
    if (e->cfg.object_retention_ms == 0)
        e->cfg.object_retention_ms = 3600000;
    e->runs = loom_map_new(NULL);
    e->tasks = loom_map_new(NULL);
    e->idem = loom_map_new(free);
    e->workflows = engine_workflows_new();
    loom_sched_init(&e->ready);
    e->boot = (uint32_t)(loom_wall_ms() / 1000);
    /* this process's epoch: differs between restarts, even within a second */
    static uint32_t engines; /* several engines in one process (tests) */
    e->epoch = (uint32_t)((uint64_t)loom_wall_ms() * 2654435761u) ^ ((uint32_t)getpid() << 8) ^
               (++engines * 0x9e3779b9u);
    if (!e->runs || !e->tasks || !e->idem || !e->workflows) {
        loom_engine_destroy(&e);
        return NULL;
    }
    return e;
}

void loom_engine_destroy(loom_engine_t **pe)
{
    if (!pe || !*pe)
        return;
    loom_engine_t *e = *pe;
    if (e->runs) {
        size_t it = 0;
        const char *k;
        void *v;
        loom_run_t **all = calloc(loom_map_len(e->runs) + 1, sizeof *all);
        size_t n = 0;
        while (all && loom_map_next(e->runs, &it, &k, &v))
            all[n++] = v;
        for (size_t i = 0; i < n; i++) {
            while (all[i]->tasks)
                engine_task_free(e, all[i]->tasks);
            run_free(all[i]);
        }
        free(all);
    }
    engine_reap_runs(e);
    engine_objects_free(e);
    loom_map_destroy(&e->runs);
    loom_map_destroy(&e->tasks);
    loom_map_destroy(&e->idem);
    loom_map_destroy(&e->workflows); /* after the runs: each holds a reference */
    loom_sched_free(&e->ready);
    if (e->cfg.placement.destroy)
        e->cfg.placement.destroy(e->cfg.placement.self);
    free(e);
    *pe = NULL;
}

/* First op of graph g (loop bodies included) that no ready worker runs
 * and loomd does not run inline; sets *step to its step. NULL when every
 * op has a worker. */
static const char *op_without_worker(const loom_engine_t *e, const loom_wf_graph_t *g, loom_registry_t *reg,
                                     const char **step)
{
    for (size_t i = 0; i < g->n_steps; i++) {
        const loom_wf_step_t *st = &g->steps[i];
        if (st->op == LOOM_OP_LOOP) {
            const char *op = st->body ? op_without_worker(e, st->body, reg, step) : NULL;
            if (op)
                return op;
            continue;
        }
        const char *op = loom_op_kind_name(st->op);
        int served = runs_inline(e, op);
        for (size_t k = 0, n = loom_registry_count(reg); k < n && !served; k++)
            served = loom_worker_runs(loom_registry_at(reg, k), op);
        if (!served) {
            *step = st->id;
            return op;
        }
    }
    return NULL;
}

/* Whether loomd runs every step of graph g itself (loop bodies included). */
static int all_inline(const loom_engine_t *e, const loom_wf_graph_t *g)
{
    for (size_t i = 0; i < g->n_steps; i++) {
        const loom_wf_step_t *st = &g->steps[i];
        if (st->op == LOOM_OP_LOOP ? st->body && !all_inline(e, st->body)
                                   : !runs_inline(e, loom_op_kind_name(st->op)))
            return 0;
    }
    return 1;
}

/* Admission (see loom_engine_submit): 0 or LOOM_EINFEASIBLE with err. */
static int admit(loom_engine_t *e, loom_run_t *r, int allow_miss, loom_err_t *err)
{
    size_t ready = 0;
    for (size_t k = 0, n = loom_registry_count(e->cfg.reg); k < n; k++)
        ready += loom_registry_at(e->cfg.reg, k)->state == LOOM_WORKER_READY;
    if (r->plan_mlir && !e->cfg.placement.admit)
        return loom_err_set(err, LOOM_EINVAL, "a run with its own plan module needs loomd's planner placement "
                                              "(loomd --placement planner, the default)");
    if (!ready)
        return 0; /* workers may still be starting: the run waits for one */
    const char *step = NULL, *op = op_without_worker(e, &r->wf->graph, e->cfg.reg, &step);
    if (op && !allow_miss) {
        loom_err_set(err, LOOM_EINFEASIBLE, "no registered worker runs op '%s' (step '%s'); refused", op,
                     step);
        loom_err_hint(err, "start a worker that serves %s, or pass --allow-sla-miss to queue the run anyway",
                      op);
        return LOOM_EINFEASIBLE;
    }
    if (!e->cfg.placement.admit || all_inline(e, &r->wf->graph))
        return 0; /* nothing to place: loomd runs every step itself */
    /* no note: the run has no events yet; the policy announces its plan
     * when the run's first task is placed */
    loom_placement_req_t req = {.run_id = r->id, .workflow = r->wf, .sla_ms = r->sla_ms,
                                .plan_mlir = r->plan_mlir};
    return e->cfg.placement.admit(e->cfg.placement.self, &req, e->cfg.reg, allow_miss, err);
}

int loom_engine_submit(loom_engine_t *e, const loom_submit_t *s, char run_id[32], loom_err_t *err)
{
    if (s->idempotency_key && *s->idempotency_key) {
        const char *prev = loom_map_get(e->idem, s->idempotency_key);
        if (prev) {
            snprintf(run_id, 32, "%s", prev);
            return 0;
        }
    }
    loom_run_t *r = calloc(1, sizeof *r);
    if (!r)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    int rc = engine_prepare_run(e, r, s, err);
    if (rc != 0) {
        run_free(r);
        return rc;
    }
    if (s->plan_mlir && *s->plan_mlir && !(r->plan_mlir = strdup(s->plan_mlir))) {
        run_free(r);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    /* start second + 16 bits of this process's epoch: loomd that start in
     * the same second (failover standbys, a quick restart) on one database
     * never hand out the same id */
    snprintf(r->id, sizeof r->id, "r-%06x%04x-%06" PRIx64, e->boot & 0xffffff, e->epoch & 0xffff,
             ++e->next_run);
    r->top = scope_new(r, &r->wf->graph, NULL, 0, 0);
    if (!r->top || loom_map_put(e->runs, r->id, r) != 0) {
        run_free(r);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    if ((rc = admit(e, r, s->allow_sla_miss, err)) != 0) {
        loom_map_del(e->runs, r->id);
        if (e->cfg.placement.run_done)
            e->cfg.placement.run_done(e->cfg.placement.self, r->id);
        LOOM_INFO(COMP, "msg=\"run refused\" run=%s workflow=%s why=\"%s\"", r->id, r->wf->name, err->msg);
        run_free(r);
        return rc;
    }
    if (s->idempotency_key && *s->idempotency_key)
        loom_map_put(e->idem, s->idempotency_key, strdup(r->id));
    char *inputs = loom_redact_inputs_json(r->wf, r->inputs); /* secret inputs: "***" */
    loom_store_run_t sr = {.id = r->id, .workflow = r->wf->name, .workflow_yaml = r->yaml,
                           .workflow_file = r->name, .inputs_json = inputs,
                           .state = LOOM_RUN_RUNNING, .created_ms = r->created_ms,
                           .started_ms = r->created_ms, .deadline_ms = r->deadline_ms,
                           .tenant = r->tenant, .labels_json = r->labels_json};
    int src = loom_store_run_create(e->cfg.store, &sr, err);
    free(inputs);
    if (src == LOOM_ETOOBIG) { /* the store cannot buffer more: refuse, do not lose it */
        loom_map_del(e->runs, r->id);
        if (s->idempotency_key && *s->idempotency_key)
            loom_map_del(e->idem, s->idempotency_key);
        run_free(r);
        return src;
    }
    if (src != 0)
        LOOM_WARN(COMP, "msg=\"store: run create failed\" run=%s err=\"%s\"", r->id, err->msg);
    loom_err_clear(err);
    e->stats.runs_submitted++;
    snprintf(run_id, 32, "%s", r->id);
    LOOM_DEBUG(COMP, "msg=\"run submitted\" run=%s workflow=%s steps=%zu sla_ms=%.0f", r->id,
               r->wf->name, r->wf->graph.n_steps, r->sla_ms);
    engine_emit(e, r, &(engine_ev_t){.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_QUEUED,
                                     .message = r->wf->name});
    scope_start(e, r->top);
    engine_reap_runs(e);
    return 0;
}

int loom_engine_cancel(loom_engine_t *e, const char *run_id, const char *reason, int *state,
                       loom_err_t *err)
{
    loom_run_t *r = run_id ? loom_map_get(e->runs, run_id) : NULL;
    if (!r)
        return loom_err_set(err, LOOM_ENOTFOUND, "no active run '%s'", run_id ? run_id : "");
    char msg[300];
    snprintf(msg, sizeof msg, "cancelled%s%s", reason && *reason ? ": " : "",
             reason ? reason : "");
    engine_run_finish(e, r, LOOM_RUN_CANCELLED, msg, NULL);
    if (state)
        *state = LOOM_RUN_CANCELLED;
    engine_reap_runs(e);
    return 0;
}

/* ---- dispatch --------------------------------------------------------------------- */

typedef struct {
    loom_worker_rec_t *w;
    loom_task_t **v;
    size_t n, cap;
    size_t bytes; /* the tasks' inputs */
    int unsent;   /* the worker could not take the batch: its tasks went back to ready */
} wbatch_t;

/* One AssignBatch message carries about this much input at most (several
 * messages to one worker otherwise); a worker takes no message above the
 * protocol's payload limit, so a task whose input alone (plus room for its
 * other fields) is above it cannot be sent: it fails. */
#define BATCH_BYTES (4u << 20)
#define MAX_TASK_INPUT (LOOM_DEFAULT_MAX_PAYLOAD - (64u << 10))

/* Appends t to b. 0, or LOOM_ENOMEM. */
static int batch_push(wbatch_t *b, loom_task_t *t)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 32;
        loom_task_t **nv = realloc(b->v, ncap * sizeof *nv);
        if (!nv)
            return LOOM_ENOMEM;
        b->v = nv;
        b->cap = ncap;
    }
    b->v[b->n++] = t;
    b->bytes += t->input_len;
    return 0;
}

/* 1 when step j of p's scope may run on w right after p there, with no
 * round trip to loomd: p is a plain task whose output loomd does not check
 * (engine_output_checked), and j becomes ready exactly when p succeeds (p's
 * step is its only unfinished dependency) and is a plain step (no when:,
 * foreach or loop, not an op loomd runs inline) that w runs. */
static int chainable(const loom_engine_t *e, const loom_task_t *p, size_t j, const loom_worker_rec_t *w)
{
    const scope_t *sc = p->scope;
    const step_rt_t *st = &sc->st[j];
    const loom_wf_step_t *s = &sc->g->steps[j];
    const char *op = loom_op_kind_name(s->op);
    return !p->run->final && p->index < 0 && !p->kv_part && !p->chained && !sc->st[p->step].is_foreach &&
           !engine_output_checked(&sc->g->steps[p->step]) && st->state == LOOM_TASK_PENDING &&
           st->waiting == 1 && !st->ahead && s->op != LOOM_OP_LOOP && !s->foreach && !s->when &&
           !runs_inline(e, op) && loom_worker_runs(w, op);
}

/* The task of step j sent ahead behind p, on p's worker w: j is chainable
 * behind p, not an llm.generate split across devices, its input reads p's
 * output only as whole values (engine_render_chained; and then not in a run
 * with secret inputs, which loomd redacts from outputs), and the placement
 * policy puts it on w as well (colocated; not asked when placed is set: the
 * worker already holds it, engine_chain_held). NULL when it cannot be. */
static loom_task_t *chain_task(loom_engine_t *e, loom_task_t *p, size_t j, loom_worker_rec_t *w,
                               uint64_t now, int placed)
{
    scope_t *sc = p->scope;
    loom_run_t *r = p->run;
    const loom_wf_step_t *s = &sc->g->steps[j];
    const char *op = loom_op_kind_name(s->op);
    if (!chainable(e, p, j, w))
        return NULL;
    char sid[256], pid[256];
    engine_step_path(sc, j, sid, sizeof sid);
    engine_step_path(sc, p->step, pid, sizeof pid);
    if (s->op == LOOM_OP_LLM_GENERATE && e->cfg.placement.split_kv &&
        e->cfg.placement.split_kv(e->cfg.placement.self, r->id, sid))
        return NULL;
    char *in = NULL, **at = NULL;
    size_t len = 0, n_at = 0;
    if (engine_render_chained(e, r, sc, j, p->step, &in, &len, &at, &n_at) != 0) {
        LOOM_DEBUG(COMP, "msg=\"not chained: its input reads its predecessor's output other than as a whole value\" step=%s", sid);
        return NULL;
    }
    loom_placement_why_t why = {0};
    loom_placement_req_t req = {.run_id = r->id, .step_id = sid, .op = op, .model = s->model,
                                .attempt = 1, .workflow = r->wf, .sla_ms = r->sla_ms,
                                .plan_mlir = r->plan_mlir,
                                .elapsed_ms = (double)(now - r->start_mono),
                                .note = placement_note, .note_ud = e, .why = &why};
    loom_task_t *t = NULL;
    if ((!n_at || !r->n_secrets) && len <= MAX_TASK_INPUT &&
        (placed || !e->cfg.placement.colocated ||
         e->cfg.placement.colocated(e->cfg.placement.self, &req, pid, w, e->cfg.reg)))
        t = task_make(e, sc, j, -1, in, len); /* owns in from here */
    else
        free(in);
    LOOM_DEBUG(COMP, "msg=\"chain\" step=%s after=%s chained=%d", sid, pid, t != NULL);
    if (!t) {
        for (size_t m = 0; m < n_at; m++)
            free(at[m]);
        free(at);
        return NULL;
    }
    t->ahead = t->ran_chained = 1;
    t->after = p;
    p->chained = t;
    sc->st[j].ahead = t;
    t->after_at = at;
    t->n_after_at = n_at;
    engine_worker_attach(t, w);
    t->state = LOOM_TASK_ASSIGNED;
    t->predicted_ms = why.predicted_ms;
    t->predicted_cost = why.predicted_cost;
    t->reason = why.reason[0] ? strdup(why.reason) : NULL;
    return t;
}

/* Worker-side chaining, one link: a task for a dependent of p's step,
 * sent ahead to p's worker w to run right after p there (chain_task).
 * NULL when no dependent qualifies. */
static loom_task_t *chain_one(loom_engine_t *e, loom_task_t *p, loom_worker_rec_t *w, uint64_t now)
{
    scope_t *sc = p->scope;
    for (size_t k = sc->dep_off[p->step]; k < sc->dep_off[p->step + 1]; k++) {
        loom_task_t *t = chain_task(e, p, sc->dep_list[k], w, now, 0);
        if (t)
            return t;
    }
    return NULL;
}

loom_task_t *engine_chain_held(loom_engine_t *e, loom_task_t *p, size_t j)
{
    return p->worker ? chain_task(e, p, j, p->worker, loom_clock_ms(), 1) : NULL;
}

/* Sends up to cfg.chain_depth successors ahead behind p (placed on w, in
 * batch b), one behind the other, while w has room for them: a chain of
 * steps on one worker then costs one round trip per chain_depth steps
 * instead of one per step. Returns how many. */
static int chain_ahead(loom_engine_t *e, loom_task_t *p, loom_worker_rec_t *w, wbatch_t *b, uint64_t now)
{
    int n = 0;
    while (n < e->cfg.chain_depth && w->inflight < w->max_inflight && b->bytes < BATCH_BYTES) {
        loom_task_t *s = chain_one(e, p, w, now);
        if (!s)
            break;
        if (batch_push(b, s) != 0) {
            engine_task_free(e, s);
            break;
        }
        p = s;
        n++;
    }
    return n;
}

/* A plan-driven placement policy planned or re-planned a run: publish it. */
static void placement_note(void *ud, const char *run_id, int replanned, const char *message,
                           const struct Loom__V1__Plan *plan, const char *plan_hex)
{
    loom_engine_t *e = ud;
    loom_run_t *r = loom_map_get(e->runs, run_id);
    if (!r || r->final)
        return;
    engine_emit(e, r, &(engine_ev_t){.kind = replanned ? LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_REPLANNED
                                                       : LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_PLANNED,
                                     .message = message, .plan = plan, .plan_hex = plan_hex});
}

/* The prompt prefix keys of a whole llm.generate task (prefix-aware
 * placement), computed once: a task that waits for a worker is offered to
 * placement on every dispatch round. */
static void task_prefix_keys(loom_task_t *t)
{
    if (t->prefix_done)
        return;
    t->prefix_done = 1;
    uint64_t keys[LOOM_PREFIX_MAX_KEYS];
    json_t *in = json_loadb(t->input, t->input_len, 0, NULL);
    size_t n = in ? loom_prefix_keys(in, NULL, keys, LOOM_PREFIX_MAX_KEYS, &t->prompt_bytes) : 0;
    json_decref(in);
    if (n && (t->prefix_keys = malloc(n * sizeof *keys))) {
        memcpy(t->prefix_keys, keys, n * sizeof *keys);
        t->n_prefix_keys = n;
    }
}

/* Runs up to `budget` ready --inline-ops tasks in loomd, oldest first; the
 * successors they release join the same FIFO, so a chain of noops moves
 * without a worker round trip. The budget keeps the loop serving its
 * sockets during a long chain (loom_engine_tick asks for no wait while
 * tasks remain). */
static void run_inline(loom_engine_t *e, int budget)
{
    static const char null_json[] = "null";
    while (budget-- > 0 && e->lists[LIST_INLINE]) {
        loom_task_t *t = e->lists[LIST_INLINE];
        engine_list_del(e, t);
        t->ran_inline = 1;
        t->state = LOOM_TASK_ASSIGNED;
        t->started_ms = t->running_ms = loom_wall_ms();
        e->stats.tasks_dispatched++;
        engine_task_assigned(e, t);
        /* noop: null; echo: the input's "value" (as the workers' ops) */
        char *out = NULL;
        if (strcmp(t->op, "echo") == 0 && t->input) {
            json_t *in = json_loadb(t->input, t->input_len ? t->input_len : strlen(t->input), 0, NULL);
            json_t *v = json_is_object(in) ? json_object_get(in, "value") : NULL;
            out = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
            json_decref(in);
        }
        engine_inline_result(e, t, out ? out : null_json, out ? strlen(out) : sizeof null_json - 1);
        free(out);
    }
}

void loom_engine_dispatch(loom_engine_t *e)
{
    if (e->lists[LIST_INLINE])
        run_inline(e, 4096);
    if (!loom_sched_len(&e->ready))
        return;
    int capacity = loom_registry_free_capacity(e->cfg.reg);
    if (capacity <= 0)
        return;
    wbatch_t b[64];
    size_t nb = 0;
    loom_task_t *blocked = NULL, *too_big = NULL;
    int nblocked = 0;
    uint64_t now = loom_clock_ms();
    while (capacity > 0 && nblocked < 64) {
        loom_task_t *t = (loom_task_t *)loom_sched_pop(&e->ready);
        if (!t)
            break;
        if (t->input_len > MAX_TASK_INPUT) { /* failed after the sends: it may end runs */
            t->lnext = too_big;
            too_big = t;
            continue;
        }
        char sid[256];
        engine_step_path(t->scope, t->step, sid, sizeof sid);
        const loom_wf_step_t *s = &t->scope->g->steps[t->step];
        loom_placement_req_t req = {.run_id = t->run->id, .step_id = sid, .op = t->op,
                                    .model = s->model, .attempt = t->attempt,
                                    .avoid_worker = t->last_worker[0] ? t->last_worker : NULL,
                                    .workflow = t->run->wf, .sla_ms = t->run->sla_ms,
                                    .plan_mlir = t->run->plan_mlir,
                                    .elapsed_ms = (double)(now - t->run->start_mono),
                                    .note = placement_note, .note_ud = e};
        loom_placement_why_t why = {0};
        req.why = &why;
        if (!e->cfg.prefix_placement_off && t->kv_part == 0 && strcmp(t->op, "llm.generate") == 0) {
            task_prefix_keys(t);
            req.prefix_keys = t->prefix_keys;
            req.n_prefix_keys = t->n_prefix_keys;
            req.prompt_bytes = t->prompt_bytes;
        }
        int never = 0;
        loom_worker_rec_t *w = e->cfg.placement.pick(e->cfg.placement.self, &req, e->cfg.reg,
                                                      &never);
        if (!w) {
            if (never) {
                t->parked_since = now;
                engine_list_add(e, LIST_PARKED, t);
                LOOM_DEBUG(COMP, "msg=\"no worker runs op; parked\" task=%s op=%s", t->id, t->op);
            } else {
                t->lnext = blocked;
                blocked = t;
                nblocked++;
            }
            continue;
        }
        size_t k = nb; /* w's last batch, unless it is full */
        while (k > 0 && b[k - 1].w != w)
            k--;
        k = k > 0 && b[k - 1].bytes + t->input_len <= BATCH_BYTES ? k - 1 : nb;
        if (k == nb) {
            if (nb == 64) { /* more workers than batch slots: flush later */
                t->lnext = blocked;
                blocked = t;
                nblocked++;
                continue;
            }
            b[nb++] = (wbatch_t){.w = w};
        }
        if (batch_push(&b[k], t) != 0) {
            loom_sched_push(&e->ready, &t->qi);
            break;
        }
        engine_worker_attach(t, w);
        t->predicted_ms = why.predicted_ms;
        t->predicted_cost = why.predicted_cost;
        free(t->reason);
        t->reason = why.reason[0] ? strdup(why.reason) : NULL; /* NULL: default reason */
        t->state = LOOM_TASK_ASSIGNED;
        t->started_ms = loom_wall_ms();
        t->running_ms = 0; /* timeout_ms counts from the worker's Started */
        capacity--;
        e->stats.tasks_dispatched++;
        if (e->cfg.chain_depth > 0)
            capacity -= chain_ahead(e, t, w, &b[k], now);
    }
    while (blocked) {
        loom_task_t *t = blocked;
        blocked = t->lnext;
        t->lnext = NULL;
        loom_sched_push(&e->ready, &t->qi);
    }
    /* The tasks go out first, their records and STEP_STARTED events after:
     * a chained step's round trip does not wait for that bookkeeping. */
    for (size_t k = 0; k < nb; k++)
        if ((b[k].unsent = b[k].w->send_paused || e->cfg.send_tasks(e->cfg.ud, b[k].w, b[k].v, b[k].n) != 0))
            engine_tasks_unsent(e, b[k].w, b[k].v, b[k].n); /* back to ready: never started */
    if (e->cfg.placement.dispatched)
        e->cfg.placement.dispatched(e->cfg.placement.self);
    for (size_t k = 0; k < nb; k++) {
        for (size_t i = 0; !b[k].unsent && i < b[k].n; i++)
            if (!b[k].v[i]->ahead) /* recorded when released */
                engine_task_assigned(e, b[k].v[i]);
        free(b[k].v);
    }
    while (too_big) {
        loom_task_t *t = too_big;
        too_big = t->lnext;
        t->lnext = NULL;
        char msg[200];
        snprintf(msg, sizeof msg, "its input is %zu bytes; a worker takes at most %u bytes per task",
                 t->input_len, (unsigned)MAX_TASK_INPUT);
        engine_task_failed(e, t, LOOM_TASK_FAILED, msg, 0, LOOM__V1__STATUS_CODE__RESOURCE_EXHAUSTED);
    }
    engine_reap_runs(e);
}

int64_t loom_engine_tick(loom_engine_t *e)
{
    uint64_t now = loom_clock_ms();
    uint64_t next = now + 50;
    for (loom_task_t *t = e->lists[LIST_RETRY], *n; t; t = n) {
        n = t->lnext;
        if (t->not_before <= now) {
            engine_list_del(e, t);
            engine_make_ready(e, t);
        } else if (t->not_before < next) {
            next = t->not_before;
        }
    }
    for (loom_task_t *t = e->lists[LIST_TIMED], *n; t; t = n) {
        n = t->lnext;
        if (t->deadline_mono && t->deadline_mono <= now) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "timed out after %" PRId64 " ms of execution (timeout_ms; queued %" PRId64 " ms before)",
                     t->timeout_ms, (t->running_ms ? t->running_ms : t->started_ms) - t->ready_ms);
            if (t->worker && e->cfg.cancel_task)
                e->cfg.cancel_task(e->cfg.ud, t->worker, t, "timeout_ms passed");
            engine_list_del(e, t);
            /* the slot frees at once; a late result is stale */
            if (t->worker)
                snprintf(t->last_worker, sizeof t->last_worker, "%s", t->worker->id);
            engine_worker_detach(t);
            engine_task_failed(e, t, LOOM_TASK_TIMED_OUT, msg, 1, 0);
            n = e->lists[LIST_TIMED]; /* the list may have changed under us */
        } else if (t->deadline_mono && t->deadline_mono < next) {
            next = t->deadline_mono;
        }
    }
    for (loom_task_t *t = e->lists[LIST_PARKED], *n; t; t = n) {
        n = t->lnext;
        if (now - t->parked_since >= (uint64_t)e->cfg.placement_timeout_ms) {
            char msg[300];
            snprintf(msg, sizeof msg, "no registered worker runs op '%s' (waited %" PRId64 " ms)",
                     t->op, e->cfg.placement_timeout_ms);
            engine_list_del(e, t);
            engine_task_failed(e, t, LOOM_TASK_FAILED, msg, 0, LOOM__V1__STATUS_CODE__UNAVAILABLE);
            n = e->lists[LIST_PARKED];
        }
    }
    engine_objects_tick(e, now);
    if (now >= e->next_sla_check) {
        e->next_sla_check = now + 20;
        size_t it = 0;
        const char *k;
        void *v;
        while (loom_map_next(e->runs, &it, &k, &v))
            engine_sla_check(e, v, now);
    }
    engine_reap_runs(e);
    if (e->lists[LIST_INLINE])
        return 0; /* inline tasks left over from the last dispatch's budget */
    return (int64_t)(next > now ? next - now : 0);
}

void loom_worker_load(const loom_worker_rec_t *w, int *running, int *queued)
{
    int r = 0, held = 0;
    for (const loom_task_t *t = w->tasks; t; t = t->wnext, held++)
        r += t->started != 0;
    *running = r;
    *queued = held - r;
}

size_t loom_engine_active_runs(const loom_engine_t *e)
{
    return loom_map_len(e->runs);
}

loom_run_t *loom_engine_find_run(loom_engine_t *e, const char *run_id)
{
    return run_id ? loom_map_get(e->runs, run_id) : NULL;
}

const char *loom_run_id(const loom_run_t *r)
{
    return r->id;
}

const char *loom_run_workflow_name(const loom_run_t *r)
{
    return r->wf && r->wf->name ? r->wf->name : r->name ? r->name : "";
}

const loom_workflow_t *loom_run_workflow(const loom_run_t *r)
{
    return r->wf;
}

uint32_t loom_engine_epoch(const loom_engine_t *e)
{
    return e->epoch;
}

uint64_t loom_run_last_seq(const loom_run_t *r)
{
    return r->seq;
}

void loom_engine_stats(const loom_engine_t *e, loom_engine_stats_t *out)
{
    *out = e->stats;
    out->ready = loom_sched_len(&e->ready);
    out->live_tasks = loom_map_len(e->tasks);
}

void loom_task_step_path(const loom_task_t *t, char *buf, size_t n)
{
    engine_step_path(t->scope, t->step, buf, n);
}

const char *loom_task_model(const loom_task_t *t)
{
    return t->scope->g->steps[t->step].model;
}

/* Wrappers for recover.c. */
scope_t *engine_scope_new(loom_run_t *r)
{
    return scope_new(r, &r->wf->graph, NULL, 0, 0);
}

void engine_scope_start(loom_engine_t *e, scope_t *sc)
{
    scope_start(e, sc);
    engine_reap_runs(e);
}

void engine_run_free(loom_run_t *r)
{
    run_free(r);
}
