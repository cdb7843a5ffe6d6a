/* recover.c — loom_engine_recover (see engine.h): rebuilds unfinished runs
 * from the store after loomd restarts. Only top-level steps are restored
 * (a foreach step as a whole, with its gathered output); a loop or fan-out
 * that was half done runs again from its start, like any step whose
 * success was never recorded. */
#include "orchestrator/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define COMP "loomd"

typedef struct done_step {
    char *step;
    char *output;
    struct done_step *next;
} done_step_t;

typedef struct {
    loom_engine_t *e;
    int have;
    loom_store_run_t run;      /* strings owned */
    done_step_t *done;
    int recovered;
} rec_t;

static void rec_clear(rec_t *c)
{
    free((char *)c->run.id);
    free((char *)c->run.workflow_yaml);
    free((char *)c->run.workflow_file);
    free((char *)c->run.inputs_json);
    free((char *)c->run.tenant);
    free((char *)c->run.labels_json);
    while (c->done) {
        done_step_t *d = c->done;
        c->done = d->next;
        free(d->step);
        free(d->output);
        free(d);
    }
    memset(&c->run, 0, sizeof c->run);
    c->have = 0;
}

static int last_seq(void *ud, const loom_store_event_t *ev)
{
    uint64_t *seq = ud;
    if ((uint64_t)ev->seq > *seq)
        *seq = (uint64_t)ev->seq;
    return 0;
}

static void fail_stored(loom_engine_t *e, const loom_store_run_t *sr, const char *why)
{
    loom_store_run_t u = *sr;
    u.state = LOOM_RUN_FAILED;
    u.finished_ms = loom_wall_ms();
    u.error = why;
    loom_err_t err;
    loom_store_run_update(e->cfg.store, &u, &err);
    LOOM_WARN(COMP, "msg=\"run not recovered\" run=%s reason=\"%s\"", sr->id, why);
}

/* Workers that kept running this run's tasks while loomd was away
 * re-register within about a heartbeat and keep them (engine_adopt.c):
 * until then the recovered tasks wait instead of being dispatched again. */
static void hold_for_adoption(loom_engine_t *e, loom_run_t *r)
{
    uint64_t until = loom_clock_ms() + (uint64_t)e->cfg.adopt_grace_ms;
    for (loom_task_t *t = r->tasks; t; t = t->rnext) {
        if (t->state != LOOM_TASK_READY || t->list)
            continue;
        loom_sched_remove(&e->ready, &t->qi);
        t->not_before = until;
        engine_list_add(e, LIST_RETRY, t);
    }
}

/* Rebuilds the collected run and starts what is left of it. */
static void restore(rec_t *c)
{
    loom_engine_t *e = c->e;
    const loom_store_run_t *sr = &c->run;
    loom_err_t err;
    loom_err_clear(&err);
    if (!sr->workflow_yaml || !sr->id || strlen(sr->id) >= 32) {
        fail_stored(e, sr, "loomd restarted and the run's workflow was not stored");
        return;
    }
    loom_run_t *r = calloc(1, sizeof *r);
    if (!r)
        return;
    loom_submit_t s = {.yaml = sr->workflow_yaml, .yaml_len = strlen(sr->workflow_yaml),
                       .name = sr->workflow_file, .inputs_json = sr->inputs_json,
                       .tenant = sr->tenant, .labels_json = sr->labels_json};
    if (engine_prepare_run(e, r, &s, &err) != 0) {
        char why[600];
        snprintf(why, sizeof why, "loomd restarted and could not rebuild the run: %s", err.msg);
        fail_stored(e, sr, why);
        engine_run_free(r);
        return;
    }
    if (r->n_secrets) { /* stored as "***": the values are gone with the old loomd */
        fail_stored(e, sr, "loomd restarted and the run has secret inputs, which are never "
                           "stored; submit it again");
        engine_run_free(r);
        return;
    }
    snprintf(r->id, sizeof r->id, "%s", sr->id);
    if (sr->created_ms) { /* keep the original clock: the SLA counts from submission */
        int64_t age = loom_wall_ms() - sr->created_ms;
        r->created_ms = r->started_ms = sr->created_ms;
        r->start_mono = loom_clock_ms() - (uint64_t)(age > 0 ? age : 0);
        if (sr->deadline_ms) {
            r->deadline_ms = sr->deadline_ms;
            int64_t left = sr->deadline_ms - loom_wall_ms();
            r->deadline_mono = loom_clock_ms() + (uint64_t)(left > 0 ? left : 0);
            r->sla_ms = (double)(sr->deadline_ms - sr->created_ms);
        }
    }
    r->top = engine_scope_new(r);
    if (!r->top || loom_map_put(e->runs, r->id, r) != 0) {
        engine_run_free(r);
        return;
    }
    loom_store_events(e->cfg.store, r->id, 0, last_seq, &r->seq, &err);
    scope_t *sc = r->top;
    int restored = 0;
    for (done_step_t *d = c->done; d; d = d->next) {
        const loom_wf_step_t *st = loom_wf_graph_find(sc->g, d->step);
        if (!st || sc->st[st->index].state != LOOM_TASK_PENDING)
            continue;
        step_rt_t *rt = &sc->st[st->index];
        json_t *out = d->output ? json_loads(d->output, JSON_DECODE_ANY, NULL) : NULL;
        rt->state = LOOM_TASK_SUCCEEDED;
        rt->output = out ? out : json_null();
        rt->started_event = 1;
        sc->remaining--;
        r->tasks_done++;
        restored++;
        for (size_t k = sc->dep_off[st->index]; k < sc->dep_off[st->index + 1]; k++)
            sc->st[sc->dep_list[k]].waiting--;
    }
    /* Outputs already consumed by finished dependents are not needed again. */
    for (size_t i = 0; i < sc->g->n_steps; i++) {
        if (sc->st[i].state != LOOM_TASK_SUCCEEDED)
            continue;
        const loom_wf_step_t *st = &sc->g->steps[i];
        for (size_t k = 0; k < st->n_deps; k++)
            sc->st[st->deps[k].step].consumers--;
    }
    LOOM_INFO(COMP, "msg=\"run recovered\" run=%s workflow=%s steps_done=%d steps=%zu", r->id,
              r->wf->name, restored, sc->g->n_steps);
    char msg[160];
    snprintf(msg, sizeof msg, "recovered after a loomd restart; %d of %zu steps already done",
             restored, sc->g->n_steps);
    engine_emit(e, r, &(engine_ev_t){.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_QUEUED,
                                     .message = msg});
    c->recovered++;
    if (sc->remaining == 0)
        engine_scope_done(e, sc);
    engine_scope_start(e, sc); /* no-op for a finished run; frees it */
    if (loom_map_get(e->runs, sr->id) == r)
        hold_for_adoption(e, r);
}

static int on_run(void *ud, const loom_store_run_t *run)
{
    rec_t *c = ud;
    if (c->have)
        restore(c);
    rec_clear(c);
    c->run = *run;
    c->run.id = run->id ? strdup(run->id) : NULL;
    c->run.workflow_yaml = run->workflow_yaml ? strdup(run->workflow_yaml) : NULL;
    c->run.workflow_file = run->workflow_file ? strdup(run->workflow_file) : NULL;
    c->run.inputs_json = run->inputs_json ? strdup(run->inputs_json) : NULL;
    c->run.tenant = run->tenant ? strdup(run->tenant) : NULL;
    c->run.labels_json = run->labels_json ? strdup(run->labels_json) : NULL;
    c->run.workflow = c->run.outputs_json = c->run.error = NULL;
    c->have = 1;
    return 0;
}

static int on_task(void *ud, const loom_store_task_t *t)
{
    rec_t *c = ud;
    /* top-level steps only: not loop bodies ("loop/body"), nor foreach items ("step[3]") */
    if (!c->have || t->state != LOOM_TASK_SUCCEEDED || !t->step_id || strpbrk(t->step_id, "/[") ||
        t->index != 0)
        return 0;
    done_step_t *d = calloc(1, sizeof *d);
    if (!d)
        return 0;
    d->step = strdup(t->step_id);
    d->output = t->output_json ? strdup(t->output_json) : NULL;
    d->next = c->done;
    c->done = d;
    return 0;
}

int loom_engine_recover(loom_engine_t *e, int *n, loom_err_t *err)
{
    rec_t c = {.e = e};
    int rc = loom_store_load_unfinished(e->cfg.store, on_run, on_task, &c, err);
    if (c.have)
        restore(&c);
    rec_clear(&c);
    if (n)
        *n = c.recovered;
    return rc;
}
