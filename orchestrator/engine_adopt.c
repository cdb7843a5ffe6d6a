/* engine_adopt.c — loom_engine_reconcile (see engine.h): what loomd does
 * with the tasks a (re-)registering worker reports it still holds, so that
 * a worker restart, a network blip or a loomd restart neither loses a task
 * nor runs its step twice.
 *
 * Rules, per held task (matched to a live task by id, or by task key when
 * the id is from an earlier loomd):
 *   no live task           → drop (the step finished or its run is gone)
 *   finished on the worker → adopt and resend: the result wins over any
 *                            other attempt (which is cancelled)
 *   running on the worker  → adopt, unless another worker has started it
 *                            too (then the worker drops its copy)
 *   queued on the worker   → adopt when loomd has not given it to another
 *                            worker yet; else drop
 * Tasks loomd had on the worker that it no longer holds are lost
 * (engine_task_lost: an attempt only if they had started).
 *
 * A held task that matches no live task may be a successor an earlier
 * loomd sent ahead behind another (worker-side chaining): never recorded,
 * so a restarted loomd recovers its step as pending. When its key names a
 * pending top-level step whose one unfinished dependency's task was just
 * adopted on (or sent ahead to) the same worker, it is rebuilt as sent
 * ahead behind that task (engine_chain_held) and adopted like the others:
 * the predecessor's result releases it and its own result (sent after)
 * finishes it, so it neither runs again nor is lost. */
#include "orchestrator/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define COMP "loomd"

/* Moves live task t onto w as the worker knows it (its id and attempt). */
static int adopt(loom_engine_t *e, loom_task_t *t, loom_worker_rec_t *w, const loom_held_task_t *h)
{
    if (strlen(h->task_id) >= sizeof t->id)
        return -1;
    if (t->worker && t->worker != w && e->cfg.cancel_task)
        e->cfg.cancel_task(e->cfg.ud, t->worker, t, "adopted by the worker that already runs it");
    engine_worker_detach(t);
    engine_list_del(e, t);
    loom_sched_remove(&e->ready, &t->qi);
    if (strcmp(t->id, h->task_id) != 0) {
        loom_map_del(e->tasks, t->id);
        snprintf(t->id, sizeof t->id, "%s", h->task_id);
        if (loom_map_put(e->tasks, t->id, t) != 0) { /* out of memory: run it again */
            loom_sched_push(&e->ready, &t->qi);
            return -1;
        }
    }
    t->attempt = (int)h->attempt;
    t->started = h->state != LOOM_HELD_QUEUED;
    t->running_ms = t->started ? loom_wall_ms() : 0;
    if (t->state != LOOM_TASK_ASSIGNED) {
        t->state = LOOM_TASK_ASSIGNED;
        engine_task_assigned(e, t);
    }
    engine_worker_attach(t, w);
    engine_objects_note_worker(t->run, t, w);
    if (t->started && !t->ahead) /* its execution clock starts again here (one ahead: when released) */
        engine_start_timeout(e, t);
    LOOM_INFO(COMP, "msg=\"task adopted\" task=%s worker=%s attempt=%d state=%s", t->id, w->id,
              t->attempt, h->state == LOOM_HELD_FINISHED ? "finished" :
              h->state == LOOM_HELD_RUNNING ? "running" : "queued");
    return 0;
}

static loom_adopt_t decide(loom_engine_t *e, loom_worker_rec_t *w, loom_task_t *t,
                           const loom_held_task_t *h)
{
    if (!t || t->run->final)
        return LOOM_ADOPT_DROP;
    if (t->worker == w && strcmp(t->id, h->task_id) == 0 && (int)h->attempt == t->attempt) {
        if (h->state != LOOM_HELD_QUEUED && !t->started) {
            t->started = 1;
            t->running_ms = loom_wall_ms();
            if (!t->ahead) /* one still ahead is not loomd's yet (engine.c, chain_ahead) */
                engine_start_timeout(e, t);
        }
        return h->state == LOOM_HELD_FINISHED ? LOOM_ADOPT_RESEND : LOOM_ADOPT_KEEP;
    }
    int elsewhere = t->worker && t->worker != w;
    switch (h->state) {
    case LOOM_HELD_FINISHED:
        break;
    case LOOM_HELD_RUNNING:
        if (elsewhere && t->started)
            return LOOM_ADOPT_DROP;
        break;
    default:
        if (elsewhere)
            return LOOM_ADOPT_DROP;
        break;
    }
    if (adopt(e, t, w, h) != 0)
        return LOOM_ADOPT_DROP;
    return h->state == LOOM_HELD_FINISHED ? LOOM_ADOPT_RESEND : LOOM_ADOPT_KEEP;
}

/* The task of a dependency of step j (top scope of r) that w holds. */
static loom_task_t *held_predecessor(loom_run_t *r, size_t j, loom_worker_rec_t *w)
{
    const loom_wf_step_t *s = &r->top->g->steps[j];
    for (loom_task_t *t = r->tasks; t; t = t->rnext)
        if (t->scope == r->top && t->index < 0 && t->worker == w)
            for (size_t k = 0; k < s->n_deps; k++)
                if (s->deps[k].step == t->step)
                    return t;
    return NULL;
}

/* The unfinished run that task key names when it is "<run id>:<step id>"
 * (*step: the step id); NULL otherwise: loop bodies and foreach items are
 * not chained after a restart (recover.c runs them again from their start). */
static loom_run_t *chained_run(loom_engine_t *e, const char *key, const char **step)
{
    const char *colon = strchr(key, ':');
    char rid[32];
    if (!colon || (size_t)(colon - key) >= sizeof rid || strpbrk(colon + 1, "/#["))
        return NULL;
    memcpy(rid, key, (size_t)(colon - key));
    rid[colon - key] = 0;
    loom_run_t *r = loom_map_get(e->runs, rid);
    if (step)
        *step = colon + 1;
    return r && !r->final ? r : NULL;
}

/* Held task h, matched to no live task: when it is a chained successor
 * (see the top of this file), rebuilt behind its predecessor on w and
 * adopted. 1 when it was. */
static int adopt_chained(loom_engine_t *e, loom_worker_rec_t *w, const loom_held_task_t *h)
{
    const char *step = NULL;
    loom_run_t *r = chained_run(e, h->task_key, &step);
    const loom_wf_step_t *s = r ? loom_wf_graph_find(r->top->g, step) : NULL;
    if (!s || r->top->st[s->index].state != LOOM_TASK_PENDING || r->top->st[s->index].ahead)
        return 0;
    loom_task_t *p = held_predecessor(r, s->index, w);
    loom_task_t *t = p ? engine_chain_held(e, p, s->index) : NULL;
    if (!t)
        return 0;
    if (adopt(e, t, w, h) != 0) {
        engine_task_free(e, t);
        return 0;
    }
    LOOM_INFO(COMP, "msg=\"chained task adopted\" task=%s key=%s after=%s", t->id, h->task_key, p->id);
    return 1;
}

void loom_engine_reconcile(loom_engine_t *e, loom_worker_rec_t *w, const loom_held_task_t *held,
                           size_t n, loom_adopt_t *decision)
{
    /* 1. Tasks loomd had on w: kept when held under the same attempt. */
    loom_map_t *ids = loom_map_new(NULL);
    for (size_t i = 0; ids && i < n; i++)
        if (held[i].task_id)
            loom_map_put(ids, held[i].task_id, (void *)&held[i]);
    for (loom_task_t *t = w->tasks; t;) {
        const loom_held_task_t *h = ids ? loom_map_get(ids, t->id) : NULL;
        if (!h || (int)h->attempt != t->attempt) {
            /* detaches t, and may free the tasks chained behind it: from the top */
            engine_task_lost(e, t, w);
            t = w->tasks;
        } else {
            t = t->wnext;
        }
    }
    loom_map_destroy(&ids);
    /* 2. Each held task: by id, else (an earlier loomd's id) by key. */
    loom_map_t *keys = NULL;
    unsigned char *matched = calloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        decision[i] = LOOM_ADOPT_DROP;
        if (!held[i].task_id)
            continue;
        loom_task_t *t = loom_map_get(e->tasks, held[i].task_id);
        if (t) {
            decision[i] = decide(e, w, t, &held[i]);
            if (matched)
                matched[i] = 1;
            continue;
        }
        if (!held[i].task_key || !held[i].task_key[0])
            continue;
        if (!keys && (keys = loom_map_new(NULL)))
            for (size_t j = i; j < n; j++)
                if (held[j].task_key && held[j].task_key[0] &&
                    !loom_map_get(e->tasks, held[j].task_id))
                    loom_map_put(keys, held[j].task_key, (void *)&held[j]);
    }
    if (keys && loom_map_len(keys)) {
        /* One pass over the live tasks (registrations are rare). Collected
         * first: adopting renames tasks in e->tasks. */
        size_t it = 0, nt = 0;
        const char *k;
        void *v;
        loom_task_t **match = calloc(loom_map_len(keys), sizeof *match);
        const loom_held_task_t **mh = calloc(loom_map_len(keys), sizeof *mh);
        while (match && mh && nt < loom_map_len(keys) && loom_map_next(e->tasks, &it, &k, &v)) {
            char key[400];
            loom_task_key(v, key, sizeof key);
            const loom_held_task_t *h = loom_map_get(keys, key);
            if (h) {
                match[nt] = v;
                mh[nt++] = h;
            }
        }
        for (size_t j = 0; j < nt; j++) {
            decision[mh[j] - held] = decide(e, w, match[j], mh[j]);
            if (matched)
                matched[mh[j] - held] = 1;
        }
        free(match);
        free(mh);
    }
    loom_map_destroy(&keys);
    /* 3. Chained successors, each behind the one before it: a chain is
     * rebuilt one link per pass (the worker lists tasks in no set order),
     * over the unmatched held tasks of runs loomd still runs (a worker may
     * hold thousands of finished tasks of runs long gone). */
    size_t *cand = matched ? malloc((n ? n : 1) * sizeof *cand) : NULL, nc = 0;
    for (size_t i = 0; cand && i < n; i++)
        if (!matched[i] && held[i].task_id && held[i].task_key && chained_run(e, held[i].task_key, NULL))
            cand[nc++] = i;
    for (int progress = 1; progress && nc;) {
        progress = 0;
        for (size_t c = 0; c < nc; c++) {
            size_t i = cand[c];
            if (!matched[i] && adopt_chained(e, w, &held[i])) {
                matched[i] = progress = 1;
                decision[i] = held[i].state == LOOM_HELD_FINISHED ? LOOM_ADOPT_RESEND : LOOM_ADOPT_KEEP;
            }
        }
    }
    free(cand);
    free(matched);
    engine_reap_runs(e);
}
