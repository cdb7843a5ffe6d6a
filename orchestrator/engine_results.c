/* engine_results.c — how task outcomes come back into the engine's state
 * machines: results (with model-output checks), refusals, progress, lost
 * workers, retries with backoff (engine_task_failed, also used by the
 * timeouts in loom_engine_tick). Steps and scopes are in engine.c. */
#include "orchestrator/engine_internal.h"
#include "orchestrator/secret_inputs.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "protocol/prefix_key.h"

#define COMP "loomd"

/* ---- results ------------------------------------------------------------------------ */

/* Re-queues t after a failure or a lost worker (delay_ms of backoff);
 * next_attempt: 1 when the attempt ran (or may have), 0 when it never
 * started (the same attempt is tried elsewhere). */
static void requeue(loom_engine_t *e, loom_task_t *t, uint64_t delay_ms, int next_attempt)
{
    engine_unchain(e, t);
    if (t->worker)
        snprintf(t->last_worker, sizeof t->last_worker, "%s", t->worker->id);
    engine_worker_detach(t);
    engine_list_del(e, t);
    if (next_attempt)
        t->attempt++;
    t->started = 0;
    t->ran_chained = 0;
    t->state = LOOM_TASK_READY;
    t->deadline_mono = 0;
    t->ready_ns = loom_clock_ns() + delay_ms * 1000000ull;
    if (delay_ms) {
        t->not_before = loom_clock_ms() + delay_ms;
        engine_list_add(e, LIST_RETRY, t);
    } else {
        engine_make_ready(e, t);
    }
}

/* A task attempt failed: retry or fail its step. */
int engine_error_code(loom_task_state_t state, int code)
{
    if (state == LOOM_TASK_TIMED_OUT)
        return LOOM__V1__STATUS_CODE__DEADLINE_EXCEEDED;
    if (state == LOOM_TASK_CANCELLED)
        return LOOM__V1__STATUS_CODE__CANCELLED;
    return code > 0 ? code : LOOM__V1__STATUS_CODE__UNKNOWN;
}

/* What the Started/Get/events report about the attempt that ended step i. */
static void note_last_attempt(loom_task_t *t)
{
    step_rt_t *st = &t->scope->st[t->step];
    if (st->is_foreach)
        return;
    snprintf(st->last_task, sizeof st->last_task, "%s", t->id);
    snprintf(st->last_worker, sizeof st->last_worker, "%s",
             t->worker ? t->worker->id : t->ran_inline ? "loomd" : t->last_worker);
    st->last_attempt = t->attempt;
}

void engine_task_failed(loom_engine_t *e, loom_task_t *t, loom_task_state_t how, const char *error,
                        int retryable, int code)
{
    scope_t *sc = t->scope;
    const loom_wf_step_t *s = &sc->g->steps[t->step];
    if (t->kv_handed) {
        /* a streaming prefill whose decode already started: the decode
         * re-runs the prefill itself when the stream breaks; no retry here,
         * and the step goes on with the decode */
        engine_task_attempt_failed(e, t, how, error);
        e->stats.tasks_failed++;
        sc->st[t->step].tasks_live--;
        engine_task_free(e, t);
        return;
    }
    t->tries++;
    engine_task_attempt_failed(e, t, how, error);
    if (retryable && t->tries <= s->retries) {
        uint64_t delay = (uint64_t)e->cfg.backoff_ms << (t->tries - 1 < 6 ? t->tries - 1 : 6);
        if (delay > 5000)
            delay = 5000;
        e->stats.tasks_retried++;
        requeue(e, t, delay, 1);
        engine_task_retried(e, t, error, engine_error_code(how, code));
        return;
    }
    e->stats.tasks_failed++;
    char msg[900];
    if (t->index >= 0)
        snprintf(msg, sizeof msg, "item %d: %s", t->index, error ? error : "failed");
    else
        snprintf(msg, sizeof msg, "%s", error ? error : "failed");
    size_t i = t->step;
    sc->st[i].tasks_live--;
    sc->st[i].error_code = engine_error_code(how, code);
    note_last_attempt(t);
    engine_task_free(e, t);
    engine_finish_step(e, sc, i, how, msg);
}

/* An llm.generate/llm.decode step with `format: json` or `schema:` outputs the parsed
 * JSON (docs/WORKFLOWS.md's op reference); the LLM engine returns the
 * model's text. Parses it (one ``` fence around it is allowed). Returns a
 * new value, or NULL with why in msg (ASCII only: the model's bytes are
 * not copied verbatim). */
static json_t *model_json(const loom_wf_step_t *ws, const json_t *text, char *msg, size_t n)
{
    if (!json_is_string(text) || (ws->op != LOOM_OP_LLM_GENERATE && ws->op != LOOM_OP_LLM_DECODE))
        return NULL;
    const loom_value_t *f = loom_wf_step_field(ws, "format");
    if ((!f || !f->str || strcmp(f->str, "json") != 0) && !loom_wf_step_field(ws, "schema"))
        return NULL;
    const char *p = json_string_value(text), *end = p + json_string_length(text);
    while (p < end && strchr(" \t\r\n", *p))
        p++;
    if (end - p >= 3 && strncmp(p, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
        while (end > p && strchr(" \t\r\n", end[-1]))
            end--;
        if (end - p >= 3 && strncmp(end - 3, "```", 3) == 0)
            end -= 3;
    }
    json_error_t je;
    json_t *v = json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY, &je);
    if (!v) {
        snprintf(msg, n, "step '%s' has format: json but the model's output (%zu bytes) is not JSON: %s at byte %d",
                 ws->id, json_string_length(text), je.text, je.position);
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20)
                *c = '?';
    }
    return v;
}

static void result_accepted(loom_engine_t *e, loom_worker_rec_t *w, loom_task_t *t, int ok,
                            const char *output, size_t len, const char *error, int retryable,
                            int code, double step_ms);
static void accept_redacted(loom_engine_t *e, loom_worker_rec_t *w, loom_task_t *t, int ok,
                            const char *output, size_t len, const char *error, int retryable,
                            int code, double step_ms);

int loom_engine_result(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                       uint32_t attempt, int ok, const char *output, size_t len,
                       const char *error, int retryable, int code, double step_ms,
                       loom_err_t *err)
{
    loom_task_t *t = task_id ? loom_map_get(e->tasks, task_id) : NULL;
    if (!t) {
        e->stats.results_rejected++;
        return loom_err_set(err, LOOM_ENOTFOUND, "result for unknown or finished task '%s'",
                            task_id ? task_id : "");
    }
    if (ok && strcmp(t->last_worker, w->id) == 0 && (int)attempt <= t->attempt &&
        !(t->worker == w && (int)attempt == t->attempt) && t->state != LOOM_TASK_SUCCEEDED) {
        /* A worker declared lost finished an earlier attempt after all:
         * take its result (the work is done) and stop the new attempt,
         * rather than running the step's side effects twice. (A late
         * failure is ignored: the current attempt goes on.) */
        LOOM_INFO(COMP, "msg=\"late result from a lost worker accepted\" task=%s worker=%s", t->id,
                  w->id);
        if (t->worker && e->cfg.cancel_task)
            e->cfg.cancel_task(e->cfg.ud, t->worker, t, "an earlier attempt finished");
        engine_worker_detach(t);
        engine_list_del(e, t);
        loom_sched_remove(&e->ready, &t->qi);
        t->attempt = (int)attempt;
        engine_worker_attach(t, w);
    }
    if (t->worker != w) {
        e->stats.results_rejected++;
        return loom_err_set(err, LOOM_EPROTO,
                            "worker %s sent a result for task %s, which it does not own", w->id,
                            task_id);
    }
    if ((int)attempt != t->attempt) {
        e->stats.results_rejected++;
        return loom_err_set(err, LOOM_ENOTFOUND, "stale result for task %s (attempt %u, now %d)",
                            task_id, attempt, t->attempt);
    }
    if (t->ahead) { /* a worker reports a chained task after its predecessor */
        e->stats.results_rejected++;
        return loom_err_set(err, LOOM_EPROTO, "worker %s sent the result of chained task %s before its "
                            "predecessor's", w->id, task_id);
    }
    accept_redacted(e, w, t, ok, output, len, error, retryable, code, step_ms);
    return 0;
}

/* result_accepted with the run's secret inputs redacted: a value echoed by
 * a tool, a model or an inline echo never reaches the store or events. */
static void accept_redacted(loom_engine_t *e, loom_worker_rec_t *w, loom_task_t *t, int ok,
                            const char *output, size_t len, const char *error, int retryable,
                            int code, double step_ms)
{
    loom_run_t *r = t->run;
    char *red_out = NULL, *red_err = NULL;
    if (r->n_secrets) {
        size_t n;
        if ((red_out = loom_redact_text(output, len, r->secrets, r->n_secrets, &n))) {
            output = red_out;
            len = n;
        }
        if (error && (red_err = loom_redact_text(error, strlen(error), r->secrets, r->n_secrets, &n)))
            error = red_err;
    }
    result_accepted(e, w, t, ok, output, len, error, retryable, code, step_ms);
    free(red_out);
    free(red_err);
}

/* w's engine now holds the KV of t's prompt and answer (llm_prefix.h keeps
 * it after every generation): what w reports in its next heartbeat, known
 * now, so the conversation's next turn, often submitted at once, can go
 * where it lives. Tokens are estimated at 4 bytes of text each until the
 * heartbeat brings the worker's own count. */
static void learn_prefixes(loom_worker_rec_t *w, const loom_task_t *t, const char *answer)
{
    json_t *in = json_loadb(t->input, t->input_len, 0, NULL);
    uint64_t keys[LOOM_PREFIX_MAX_KEYS];
    uint32_t toks[LOOM_PREFIX_MAX_KEYS];
    size_t tl = 0, n = in ? loom_prefix_keys(in, answer, keys, LOOM_PREFIX_MAX_KEYS, &tl) : 0;
    json_decref(in);
    for (size_t i = 0; i < n; i++)
        toks[i] = (uint32_t)((i + 1) * LOOM_PREFIX_BLOCK / 4);
    for (size_t i = 0; i < n / 2; i++) { /* longest first, as workers report them */
        uint64_t k = keys[i];
        uint32_t x = toks[i];
        keys[i] = keys[n - 1 - i], toks[i] = toks[n - 1 - i];
        keys[n - 1 - i] = k, toks[n - 1 - i] = x;
    }
    if (n)
        loom_worker_set_prefixes(w, keys, toks, n, 0);
}

/* An owned result of the current attempt: into the state machines. w is
 * NULL for a task loomd ran inline. */
static void result_accepted(loom_engine_t *e, loom_worker_rec_t *w, loom_task_t *t, int ok,
                            const char *output, size_t len, const char *error, int retryable,
                            int code, double step_ms)
{
    if (w)
        w->tasks_done++;
    loom_run_t *r = t->run;
    if (!ok) {
        if (w)
            w->tasks_failed++;
        engine_task_failed(e, t, LOOM_TASK_FAILED, error && *error ? error : "task failed", retryable,
                           code);
        engine_reap_runs(e);
        return;
    }
    json_error_t je;
    json_t *out = len ? json_loadb(output, len, JSON_DECODE_ANY, &je) : json_null();
    if (!out) /* not JSON: keep it as a string so references still work */
        out = json_stringn(output, len);
    if (!out)
        out = json_null();
    if (t->kv_part == 1) { /* the prefill of a split llm.generate: its decode gets the KV cache */
        int rc = t->kv_handed ? 0 : engine_kv_handoff(e, t, out); /* (a streamed one has it) */
        json_decref(out);
        e->stats.tasks_succeeded++;
        r->tasks_done++;
        engine_task_succeeded(e, t, output, len, step_ms);
        t->scope->st[t->step].tasks_live--;
        engine_task_free(e, t);
        if (rc)
            engine_run_finish(e, r, LOOM_RUN_FAILED, "loomd ran out of memory", NULL);
        engine_reap_runs(e);
        return;
    }
    char why[400] = "";
    json_t *parsed = model_json(&t->scope->g->steps[t->step], out, why, sizeof why);
    if (parsed) {
        json_decref(out);
        out = parsed;
    } else if (why[0]) { /* a retry may sample a better answer: retryable */
        json_decref(out);
        if (w)
            w->tasks_failed++;
        engine_task_failed(e, t, LOOM_TASK_FAILED, why, 1, LOOM__V1__STATUS_CODE__INVALID_ARGUMENT);
        engine_reap_runs(e);
        return;
    }
    scope_t *sc = t->scope;
    size_t i = t->step;
    step_rt_t *st = &sc->st[i];
    if (t->kv_part == 2) /* the decode of a split generate was its KV cache's one consumer */
        engine_objects_consumed_text(e, r, t->input, t->input_len, "prefill");
    e->stats.tasks_succeeded++;
    r->tasks_done++;
    if (w && e->cfg.placement.observe && step_ms > 0) {
        char sid[256];
        engine_step_path(sc, i, sid, sizeof sid);
        e->cfg.placement.observe(e->cfg.placement.self, r->id, sid, t->op, w, t->predicted_ms, step_ms);
    }
    engine_lat_add(r, loom_clock_ns() - t->ready_ns);
    if (t->ran_chained && step_ms > 0) {
        /* it began on its worker before its predecessor's result reached
         * loomd (which released it then): its times count from there */
        int64_t began = loom_wall_ms() - (int64_t)step_ms;
        if (began < t->started_ms)
            t->started_ms = began;
        if (t->running_ms && began < t->running_ms)
            t->running_ms = began;
        if (t->index < 0 && began < st->started_ms)
            st->started_ms = began;
    }
    if (w && t->kv_part == 0 && !e->cfg.prefix_placement_off && json_is_string(out) &&
        strcmp(t->op, "llm.generate") == 0)
        learn_prefixes(w, t, json_string_value(out));
    engine_task_succeeded(e, t, output, len, step_ms);
    note_last_attempt(t);
    if (t->index >= 0) {
        json_array_set_new(st->results, (size_t)t->index, out);
        st->n_done++;
        st->tasks_live--;
        engine_task_free(e, t);
        if (st->n_done == st->n_items)
            engine_finish_step(e, sc, i, LOOM_TASK_SUCCEEDED, NULL);
    } else {
        json_decref(st->output);
        st->output = out;
        /* an output by reference lives on its worker: keep what made it,
         * to make it again if that worker dies before its consumers ran */
        free(st->rerun_input);
        st->rerun_input = output && len && memmem(output, len, "\"$object\"", 9) ? strndup(t->input, t->input_len) : NULL;
        st->tasks_live--;
        /* a successor sent ahead behind t (on the worker it ran or runs
         * already) stays: finishing the step releases it */
        if (t->chained) {
            t->chained->after = NULL;
            t->chained = NULL;
        }
        engine_task_free(e, t);
        engine_finish_step(e, sc, i, LOOM_TASK_SUCCEEDED, NULL);
    }
    engine_reap_runs(e);
    return;
}

void engine_inline_result(loom_engine_t *e, loom_task_t *t, const char *output, size_t len)
{
    accept_redacted(e, NULL, t, 1, output, len, NULL, 0, 0, 0);
}

int loom_engine_refused(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                        uint32_t attempt, const char *why, loom_err_t *err)
{
    loom_task_t *t = task_id ? loom_map_get(e->tasks, task_id) : NULL;
    if (!t || t->worker != w || (int)attempt != t->attempt) {
        e->stats.results_rejected++;
        return loom_err_set(err, t && t->worker != w ? LOOM_EPROTO : LOOM_ENOTFOUND,
                            "refusal for a task worker %s does not hold", w->id);
    }
    if (t->ahead) { /* sent ahead and refused: its step is released the usual way */
        engine_task_free(e, t);
        engine_reap_runs(e);
        return 0;
    }
    if (++t->lost > e->cfg.max_lost + 3) {
        engine_worker_detach(t);
        engine_task_failed(e, t, LOOM_TASK_FAILED, why ? why : "refused by every worker", 0,
                           LOOM__V1__STATUS_CODE__UNAVAILABLE);
    } else {
        requeue(e, t, 10, 0);
        engine_task_retried(e, t, why, LOOM__V1__STATUS_CODE__UNAVAILABLE);
    }
    engine_reap_runs(e);
    return 0;
}

void loom_engine_progress(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                          uint32_t attempt, const char *text)
{
    loom_task_t *t = task_id ? loom_map_get(e->tasks, task_id) : NULL;
    if (!t || t->worker != w || (int)attempt != t->attempt)
        return;
    loom_run_t *r = t->run;
    char *red = r->n_secrets && text ? loom_redact_text(text, strlen(text), r->secrets,
                                                        r->n_secrets, NULL)
                                     : NULL;
    engine_task_progress(e, t, red ? red : text);
    free(red);
}

void loom_engine_progress_note(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                               uint32_t attempt, const char *message)
{
    loom_task_t *t = task_id ? loom_map_get(e->tasks, task_id) : NULL;
    if (!t || t->worker != w || (int)attempt != t->attempt)
        return;
    char sid[256];
    engine_step_path(t->scope, t->step, sid, sizeof sid);
    engine_ev_t ev = {.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS, .step_id = sid,
                      .task_id = t->id, .attempt = t->attempt, .message = message,
                      .worker_id = w->id, .step_state = LOOM__V1__STEP_STATE__STEP_RUNNING};
    engine_emit(e, t->run, &ev);
}

/* The step of sc among step c's dependencies whose output holds object id. */
static long producer_of(scope_t *sc, size_t c, const char *id)
{
    const loom_wf_step_t *s = &sc->g->steps[c];
    for (size_t k = 0; k < s->n_deps; k++) {
        step_rt_t *d = &sc->st[s->deps[k].step];
        char *text = d->output ? json_dumps(d->output, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        int has = text && strstr(text, id) != NULL;
        free(text);
        if (has)
            return (long)s->deps[k].step;
    }
    return -1;
}

int loom_engine_input_lost(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id, uint32_t attempt,
                           const char *object_id, const char *error, loom_err_t *err)
{
    loom_task_t *t = task_id ? loom_map_get(e->tasks, task_id) : NULL;
    long p = -1;
    if (t && t->worker == w && (int)attempt == t->attempt && t->index < 0 && !t->kv_part && object_id &&
        strlen(object_id) == 64)
        p = producer_of(t->scope, t->step, object_id);
    char why[700];
    snprintf(why, sizeof why, "%s", error && *error ? error : "an input by reference could not be fetched");
    if (p < 0 || engine_rerun_step(e, t->scope, (size_t)p, why) != 0) /* nothing to re-run: it fails as it is */
        return loom_engine_result(e, w, task_id, attempt, 0, NULL, 0, error, 0,
                                  LOOM__V1__STATUS_CODE__DATA_LOSS, 0, err);
    /* the consumer waits for the producer's new output, then starts again */
    scope_t *sc = t->scope;
    size_t c = t->step;
    engine_task_attempt_failed(e, t, LOOM_TASK_FAILED, why);
    char msg[900];
    snprintf(msg, sizeof msg, "waits for step '%s' to run again: %s", sc->g->steps[p].id, why);
    sc->st[c].tasks_live--;
    sc->st[c].state = LOOM_TASK_PENDING;
    sc->st[c].waiting++;
    engine_step_event(e, sc, c, t, LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_RETRIED, msg, why);
    engine_task_free(e, t);
    LOOM_INFO(COMP, "msg=\"re-running a producer whose output's holder is gone\" run=%s step=%s consumer=%s worker=%s",
              sc->run->id, sc->g->steps[p].id, sc->g->steps[c].id, w->id);
    engine_reap_runs(e);
    return 0;
}

void loom_engine_early_output(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                              uint32_t attempt, const char *json)
{
    loom_task_t *t = task_id ? loom_map_get(e->tasks, task_id) : NULL;
    if (!t || t->worker != w || (int)attempt != t->attempt || t->kv_part != 1 || t->kv_handed)
        return;
    json_error_t je;
    json_t *out = json_loads(json, 0, &je);
    if (!json_is_object(out) || !json_is_object(json_object_get(out, "kv"))) {
        LOOM_WARN(COMP, "msg=\"ignored an early output that is no KV reference\" task=%s worker=%s", t->id, w->id);
        json_decref(out);
        return;
    }
    int rc = engine_kv_handoff(e, t, out);
    json_decref(out);
    if (rc) {
        engine_run_finish(e, t->run, LOOM_RUN_FAILED, "loomd ran out of memory", NULL);
        engine_reap_runs(e);
        return;
    }
    t->kv_handed = 1;
    loom_engine_progress_note(e, w, task_id, attempt,
                              "KV cache streamed layer by layer: the decode starts now, while the prefill runs");
}

void loom_engine_started(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                         uint32_t attempt)
{
    loom_task_t *t = task_id ? loom_map_get(e->tasks, task_id) : NULL;
    /* a worker sends a chained task's Started after its predecessor's
     * result, which released it; one still ahead is not loomd's yet */
    if (!t || t->worker != w || (int)attempt != t->attempt || t->started || t->ahead)
        return;
    t->started = 1;
    t->running_ms = loom_wall_ms();
    engine_start_timeout(e, t);
    engine_task_running(e, t);
}

/* timeout_ms counts execution: loomd's clock (a backstop to the worker's
 * own, which starts at the same moment) starts when the worker says it
 * started the task, so time queued on the worker is not counted. */
void engine_start_timeout(loom_engine_t *e, loom_task_t *t)
{
    if (t->timeout_ms <= 0)
        return;
    t->deadline_mono = loom_clock_ms() + (uint64_t)t->timeout_ms;
    engine_list_add(e, LIST_TIMED, t);
}

/* Re-queues beyond this many of a task that never started mean it is
 * what kills its workers before they can say it started: fail it. */
#define MAX_UNSTARTED_REQUEUES 20

void engine_task_lost(loom_engine_t *e, loom_task_t *t, loom_worker_rec_t *w)
{
    if (t->ahead) { /* never released: its step runs when its predecessor has */
        engine_task_free(e, t);
        return;
    }
    e->stats.tasks_lost++;
    char msg[300];
    if (!t->started) { /* only queued there: no side effect, no attempt used */
        if (++t->requeued <= MAX_UNSTARTED_REQUEUES) {
            requeue(e, t, 0, 0);
            return;
        }
        snprintf(msg, sizeof msg, "its workers were lost %d times before it could start (last: %s)",
                 t->requeued, w->id);
        engine_worker_detach(t);
        engine_task_failed(e, t, LOOM_TASK_FAILED, msg, 0, LOOM__V1__STATUS_CODE__UNAVAILABLE);
        return;
    }
    t->lost++;
    if (t->kv_handed) { /* its decode runs already and falls back by itself */
        snprintf(msg, sizeof msg, "worker %s was lost while streaming the KV cache; the decode re-runs the prefill", w->id);
        engine_worker_lost_event(e, t, w);
        engine_task_failed(e, t, LOOM_TASK_FAILED, msg, 0, LOOM__V1__STATUS_CODE__UNAVAILABLE);
        return;
    }
    /* A worker whose tools outlive it (spool) may be restarted with its
     * result: its started tasks wait before they run elsewhere
     * (engine_adopt.c takes them back when it re-registers) until the
     * heartbeat timeout plus the adoption grace (both --heartbeat-timeout-ms)
     * have passed since its last message. */
    uint64_t hold = 0;
    if (w->state == LOOM_WORKER_LOST && w->keeps_tools && !w->revoked) {
        uint64_t now = loom_clock_ms(), until = w->last_seen_mono + 2 * (uint64_t)e->cfg.adopt_grace_ms;
        hold = until > now + (uint64_t)e->cfg.adopt_grace_ms ? until - now : (uint64_t)e->cfg.adopt_grace_ms;
    }
    snprintf(msg, sizeof msg, "worker %s was lost while running it%s", w->id,
             hold ? "; waiting for it to come back with the result" : "");
    engine_worker_lost_event(e, t, w);
    if (t->lost > e->cfg.max_lost) {
        engine_worker_detach(t);
        engine_task_failed(e, t, LOOM_TASK_FAILED, msg, 0, LOOM__V1__STATUS_CODE__UNAVAILABLE);
    } else {
        requeue(e, t, hold, 1);
        engine_task_retried(e, t, msg, LOOM__V1__STATUS_CODE__UNAVAILABLE);
    }
}

void engine_tasks_unsent(loom_engine_t *e, loom_worker_rec_t *w, loom_task_t **tasks, size_t n)
{
    uint64_t now = loom_clock_ms();
    if (!w->send_paused && (!w->send_paused_logged || now - w->send_paused_logged >= 10000)) { /* a line in 10 s */
        w->send_paused_logged = now;
        LOOM_WARN(COMP, "msg=\"worker's send queue is full or its connection is gone; its new tasks wait "
                        "in loomd until it is heard from again\" worker=%s tasks=%zu inflight=%d",
                  w->id, n, w->inflight - (int)n);
    }
    w->send_paused = 1;
    e->stats.tasks_unsent += n;
    /* last first: a task sent ahead comes after its predecessor, whose
     * requeue would free it (engine_unchain) */
    for (size_t i = n; i-- > 0;)
        if (tasks[i]->ahead)
            engine_task_free(e, tasks[i]);
        else if (tasks[i]->worker == w && !tasks[i]->started)
            requeue(e, tasks[i], 0, 0); /* never left loomd: the same attempt */
}

void loom_engine_worker_lost(loom_engine_t *e, loom_worker_rec_t *w)
{
    while (w->tasks)
        engine_task_lost(e, w->tasks, w);
    engine_reap_runs(e);
}

void loom_engine_workers_changed(loom_engine_t *e)
{
    while (e->lists[LIST_PARKED]) {
        loom_task_t *t = e->lists[LIST_PARKED];
        engine_list_del(e, t);
        t->parked_since = 0;
        loom_sched_push(&e->ready, &t->qi);
    }
}
