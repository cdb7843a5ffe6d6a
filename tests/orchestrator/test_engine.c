/* Unit tests for loomd's state machines and scheduler without sockets:
 * the engine (orchestrator/engine.h) runs against the in-memory store, a
 * registry with hand-registered workers and the default placement; the
 * test plays the workers by capturing dispatched tasks and feeding back
 * results. Also the least-slack ready queue (orchestrator/sched.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "orchestrator/engine.h"
#include "common/utf8.h"
#include "orchestrator/sched.h"

/* ---- harness ------------------------------------------------------------------ */

#define MAXT 256

typedef struct {
    loom_store_t *store;
    loom_registry_t *reg;
    loom_engine_t *eng;
    loom_task_t *sent[MAXT]; /* dispatched, not yet answered */
    loom_worker_rec_t *sent_to[MAXT];
    int nsent;
    int cancels;
    char last_cancel[64];
    int finals;
    int kinds[64];
    int nkinds;
    char progress[256];   /* STEP_PROGRESS texts, concatenated */
    int nprogress;
    int last_step_state[32]; /* per kind: step_state of the last event */
    loom_worker_rec_t *refuse; /* sends to it fail (its socket's queue is full) */
    int refused;               /* how many sends failed so */
    int sends;                 /* send_tasks calls that succeeded */
} h_t;

static int h_send(void *ud, loom_worker_rec_t *w, loom_task_t **tasks, size_t n)
{
    h_t *h = ud;
    if (w == h->refuse) {
        h->refused++;
        return -1;
    }
    h->sends++;
    for (size_t i = 0; i < n && h->nsent < MAXT; i++) {
        h->sent_to[h->nsent] = w;
        h->sent[h->nsent++] = tasks[i];
    }
    return 0;
}

static void h_cancel(void *ud, loom_worker_rec_t *w, const loom_task_t *t, const char *reason)
{
    (void)w;
    h_t *h = ud;
    h->cancels++;
    snprintf(h->last_cancel, sizeof h->last_cancel, "%s", reason);
    (void)t;
}

static void h_event(void *ud, loom_run_t *run, const Loom__V1__RunEvent *ev, int final)
{
    (void)run;
    h_t *h = ud;
    if (h->nkinds < 64)
        h->kinds[h->nkinds++] = ev->kind;
    if (ev->kind < 32)
        h->last_step_state[ev->kind] = ev->step_state;
    if (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS && ev->text && ev->text[0]) {
        assert_true(loom_utf8_valid(ev->text, strlen(ev->text)));
        strncat(h->progress, ev->text, sizeof h->progress - strlen(h->progress) - 1);
        h->nprogress++;
    }
    h->finals += final;
}

static loom_worker_rec_t *add_worker(h_t *h, const char *id, int slots)
{
    const char *ops[] = {"noop", "echo", "tool.exec", "sleep"};
    int known;
    return loom_registry_register(h->reg, id, (const uint8_t *)id, strlen(id), "cpu", "test", "",
                                  slots, 0, 0, 0, 0, slots, ops, 4, NULL, &known);
}

/* ref_bytes: loomd's output_ref_bytes; the state-machine tests use -1
 * (no output by reference), so task inputs are exactly the steps' fields */
static h_t *h_make(int depth, unsigned inline_ops, int64_t ref_bytes)
{
    h_t *h = calloc(1, sizeof *h);
    h->store = loom_store_mem_new(0, 0, 0);
    h->reg = loom_registry_new(depth);
    loom_engine_cfg_t c = {.store = h->store, .reg = h->reg,
                           .placement = loom_placement_least_loaded(), .send_tasks = h_send,
                           .cancel_task = h_cancel, .on_event = h_event, .ud = h,
                           .backoff_ms = 1, .placement_timeout_ms = 50, .inline_ops = inline_ops,
                           .output_ref_bytes = ref_bytes};
    h->eng = loom_engine_new(&c);
    return h;
}

static h_t *h_new(int depth)
{
    return h_make(depth, 0, -1);
}

/* loomd "crashes" and a new one starts over the same store: a new engine
 * and an empty registry (workers register again) */
static void h_restart(h_t *h, int chain_depth, int adopt_grace_ms)
{
    loom_engine_destroy(&h->eng);
    h->nsent = 0;
    loom_registry_destroy(&h->reg);
    h->reg = loom_registry_new(4);
    loom_engine_cfg_t c = {.store = h->store, .reg = h->reg,
                           .placement = loom_placement_least_loaded(), .send_tasks = h_send,
                           .cancel_task = h_cancel, .on_event = h_event, .ud = h, .backoff_ms = 1,
                           .output_ref_bytes = -1, .chain_depth = chain_depth,
                           .adopt_grace_ms = adopt_grace_ms};
    h->eng = loom_engine_new(&c);
}

static void h_free(h_t *h)
{
    loom_engine_destroy(&h->eng);
    loom_registry_destroy(&h->reg);
    loom_store_destroy(&h->store);
    free(h);
}

static int submit(h_t *h, const char *yaml, const char *inputs, double sla, char id[32])
{
    loom_submit_t s = {.yaml = yaml, .yaml_len = strlen(yaml), .name = "t.yaml",
                       .inputs_json = inputs, .sla_latency_ms = sla};
    loom_err_t err;
    loom_err_clear(&err);
    int rc = loom_engine_submit(h->eng, &s, id, &err);
    if (rc)
        fprintf(stderr, "submit: %s\n", err.msg);
    return rc;
}

/* Answers the i-th dispatched task and removes it from the list. */
static int answer(h_t *h, int i, int ok, const char *out, int retryable)
{
    loom_task_t *t = h->sent[i];
    loom_worker_rec_t *w = h->sent_to[i];
    char id[24];
    snprintf(id, sizeof id, "%s", t->id);
    int attempt = t->attempt;
    memmove(&h->sent[i], &h->sent[i + 1], (size_t)(h->nsent - i - 1) * sizeof *h->sent);
    memmove(&h->sent_to[i], &h->sent_to[i + 1], (size_t)(h->nsent - i - 1) * sizeof *h->sent_to);
    h->nsent--;
    loom_err_t err;
    return loom_engine_result(h->eng, w, id, (uint32_t)attempt, ok, out, out ? strlen(out) : 0,
                              ok ? NULL : "boom", retryable, 0, 0, &err);
}

typedef struct {
    int state;
    char outputs[512];
    char error[512];
    int steps;
} view_t;

static int on_run(void *ud, const loom_store_run_t *r)
{
    view_t *v = ud;
    v->state = r->state;
    snprintf(v->outputs, sizeof v->outputs, "%s", r->outputs_json ? r->outputs_json : "");
    snprintf(v->error, sizeof v->error, "%s", r->error ? r->error : "");
    return 0;
}

static view_t view(h_t *h, const char *id)
{
    view_t v = {0};
    loom_err_t err;
    loom_store_run_get(h->store, id, on_run, NULL, &v, &err);
    return v;
}

static char *step_id(loom_task_t *t)
{
    static char buf[128];
    loom_task_step_path(t, buf, sizeof buf);
    return buf;
}

/* ---- scheduler ---------------------------------------------------------------- */

static void sched_orders_by_priority_then_fifo(void **state)
{
    (void)state;
    loom_sched_t s;
    loom_sched_init(&s);
    loom_sched_item_t it[100];
    for (int i = 0; i < 100; i++) {
        it[i].prio = (i * 37) % 10; /* many equal priorities */
        it[i].slot = SIZE_MAX;
        assert_int_equal(loom_sched_push(&s, &it[i]), 0);
    }
    loom_sched_remove(&s, &it[50]);
    assert_false(loom_sched_queued(&it[50]));
    int64_t last = -1;
    uint64_t last_seq = 0;
    int n = 0;
    for (loom_sched_item_t *p; (p = loom_sched_pop(&s)); n++) {
        assert_true(p->prio >= last);
        if (p->prio == last)
            assert_true(p->seq > last_seq); /* FIFO among equals */
        last = p->prio;
        last_seq = p->seq;
        assert_ptr_not_equal(p, &it[50]);
    }
    assert_int_equal(n, 99);
    loom_sched_free(&s);
}

/* ---- engine -------------------------------------------------------------------- */

static const char *chain_yaml = "version: 1\nname: chain\ninputs:\n  x: int\nsteps:\n"
                                "  a:\n    op: echo\n    value: ${inputs.x}\n"
                                "  b:\n    op: echo\n    value: \"got ${steps.a.output.value}\"\n"
                                "outputs:\n  b: ${steps.b.output.value}\n";

static void dependencies_release_in_order_and_stitch(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, chain_yaml, "{\"x\": 41}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_string_equal(step_id(h->sent[0]), "a");
    assert_string_equal(h->sent[0]->input, "{\"value\":41}");
    assert_int_equal(answer(h, 0, 1, "{\"value\":41}", 1), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_string_equal(step_id(h->sent[0]), "b");
    assert_string_equal(h->sent[0]->input, "{\"value\":\"got 41\"}");
    assert_int_equal(answer(h, 0, 1, "{\"value\":\"got 41\"}", 1), 0);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(v.outputs, "{\"b\":\"got 41\"}");
    assert_int_equal(h->finals, 1);
    assert_int_equal(loom_engine_active_runs(h->eng), 0);
    h_free(h);
}

static void bad_inputs_are_the_users_error(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    char id[32];
    loom_submit_t s = {.yaml = chain_yaml, .yaml_len = strlen(chain_yaml), .name = "t.yaml",
                       .inputs_json = "{\"x\": \"nope\"}"};
    loom_err_t err;
    assert_int_equal(loom_engine_submit(h->eng, &s, id, &err), LOOM_EINVAL);
    assert_non_null(strstr(err.msg, "input 'x' must be int"));
    assert_string_equal(err.field, "inputs.x");
    s.inputs_json = "{}";
    assert_int_equal(loom_engine_submit(h->eng, &s, id, &err), LOOM_EINVAL);
    assert_non_null(strstr(err.msg, "missing required input 'x'"));
    s.yaml = "version: 1\nname: x\nsteps:\n  a:\n    op: nosuch\n";
    s.yaml_len = strlen(s.yaml);
    assert_int_not_equal(loom_engine_submit(h->eng, &s, id, &err), 0);
    assert_int_equal(err.line, 5);
    h_free(h);
}

static void retries_back_off_then_fail_the_run(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    const char *y = "version: 1\nname: r\nsteps:\n  a:\n    op: noop\n    retries: 1\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_int_equal(answer(h, 0, 0, NULL, 1), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0); /* backing off */
    loom_sleep_ms(3);
    loom_engine_tick(h->eng);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_int_equal(h->sent[0]->attempt, 2);
    assert_int_equal(answer(h, 0, 0, NULL, 1), 0);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_FAILED);
    assert_non_null(strstr(v.error, "step 'a' failed: boom"));
    h_free(h);
}

static void permanent_failures_are_not_retried(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    const char *y = "version: 1\nname: r\nsteps:\n  a:\n    op: noop\n    retries: 3\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, 0, 0, NULL, 0), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_FAILED);
    h_free(h);
}

static void results_from_the_wrong_worker_or_attempt_are_rejected(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 1);
    loom_worker_rec_t *w2 = add_worker(h, "w2", 1);
    const char *y = "version: 1\nname: r\nsteps:\n  a:\n    op: noop\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    loom_task_t *t = h->sent[0];
    loom_worker_rec_t *owner = h->sent_to[0], *other = owner == w2 ? loom_registry_by_id(h->reg, "w1") : w2;
    loom_err_t err;
    assert_int_equal(loom_engine_result(h->eng, other, t->id, 1, 1, "1", 1, NULL, 1, 0, 0, &err),
                     LOOM_EPROTO);
    assert_non_null(strstr(err.msg, "does not own"));
    assert_int_equal(loom_engine_result(h->eng, owner, t->id, 7, 1, "1", 1, NULL, 1, 0, 0, &err),
                     LOOM_ENOTFOUND);
    assert_int_equal(loom_engine_result(h->eng, owner, "ffff", 1, 1, "1", 1, NULL, 1, 0, 0, &err),
                     LOOM_ENOTFOUND);
    assert_int_equal(view(h, id).state, LOOM_RUN_RUNNING);
    assert_int_equal(answer(h, 0, 1, "1", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    h_free(h);
}

static void a_lost_worker_s_task_runs_elsewhere(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    loom_worker_rec_t *w1 = add_worker(h, "w1", 1);
    const char *y = "version: 1\nname: r\nsteps:\n  a:\n    op: noop\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_ptr_equal(h->sent_to[0], w1);
    h->nsent = 0;
    loom_worker_rec_t *w2 = add_worker(h, "w2", 1);
    loom_engine_started(h->eng, w1, h->sent[0]->id, 1); /* it ran there: an attempt */
    w1->state = LOOM_WORKER_LOST;
    loom_engine_worker_lost(h->eng, w1);
    assert_int_equal(w1->inflight, 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_ptr_equal(h->sent_to[0], w2);
    assert_int_equal(h->sent[0]->attempt, 2);
    assert_int_equal(answer(h, 0, 1, "null", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    h_free(h);
}

/* Tasks only queued on a lost worker never ran: re-queued under the same
 * attempt, however often their workers die (issue: 8 kills used to fail
 * runs whose tools never started). */
static void queued_tasks_of_lost_workers_use_no_attempt(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    const char *y = "version: 1\nname: q\nsteps:\n  a:\n    op: noop\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    for (int kill = 0; kill < 8; kill++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", kill);
        loom_worker_rec_t *w = add_worker(h, name, 1);
        loom_engine_dispatch(h->eng);
        assert_int_equal(h->nsent, 1);
        assert_int_equal(h->sent[0]->attempt, 1);
        h->nsent = 0;
        w->state = LOOM_WORKER_LOST;
        loom_engine_worker_lost(h->eng, w);
    }
    loom_worker_rec_t *last = add_worker(h, "last", 1);
    loom_engine_dispatch(h->eng);
    assert_ptr_equal(h->sent_to[0], last);
    assert_int_equal(h->sent[0]->attempt, 1);
    assert_int_equal(answer(h, 0, 1, "null", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    h_free(h);
}

/* A worker whose socket refuses a send (its queue full) is back-pressure,
 * not a loss: the tasks go back under the same attempt, run on another
 * worker, the refusing one gets nothing until it is heard from, then
 * takes tasks again; it is never lost and its running task stays. */
static void a_full_send_queue_holds_tasks_back_without_losing_the_worker(void **state)
{
    (void)state;
    h_t *h = h_new(2);
    loom_worker_rec_t *slow = add_worker(h, "slow", 1);
    const char *y = "version: 1\nname: bp\ninputs:\n  xs: list\n"
                    "steps:\n  a:\n    op: noop\n    foreach: ${inputs.xs}\n";
    char id[32];
    loom_submit_t s = {.yaml = y, .yaml_len = strlen(y), .name = "t.yaml",
                       .inputs_json = "{\"xs\": [1, 2, 3, 4, 5, 6]}"};
    loom_err_t err;
    assert_int_equal(loom_engine_submit(h->eng, &s, id, &err), 0);
    loom_engine_dispatch(h->eng); /* slow takes 2 (1 slot x depth 2) and starts one */
    assert_int_equal(h->nsent, 2);
    loom_engine_started(h->eng, slow, h->sent[0]->id, 1);
    loom_task_t *running = h->sent[0];
    assert_int_equal(answer(h, 1, 1, "1", 1), 0); /* the queued one finishes: room for 1 */
    h->nsent = 0;                                 /* running: answered at the end */
    h->refuse = slow;
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->refused, 1);
    assert_int_equal(slow->state, LOOM_WORKER_READY);
    assert_true(slow->send_paused);
    assert_int_equal(loom_worker_room(slow), 0);
    assert_ptr_equal(running->worker, slow); /* what it runs stays its own */
    loom_engine_dispatch(h->eng);             /* paused: not tried again */
    assert_int_equal(h->refused, 1);
    loom_worker_rec_t *other = add_worker(h, "other", 1);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 2);
    for (int i = 0; i < h->nsent; i++) {
        assert_ptr_equal(h->sent_to[i], other);
        assert_int_equal(h->sent[i]->attempt, 1); /* no attempt used */
    }
    while (h->nsent)
        assert_int_equal(answer(h, 0, 1, "1", 1), 0);
    other->state = LOOM_WORKER_DRAINING; /* the rest can only go to slow */
    h->refuse = NULL;
    loom_registry_touch(h->reg, slow);   /* a heartbeat from it */
    assert_false(slow->send_paused);
    loom_engine_dispatch(h->eng);
    int to_slow = 0;
    for (int i = 0; i < h->nsent; i++)
        to_slow += h->sent_to[i] == slow;
    assert_true(to_slow >= 1);
    while (h->nsent)
        assert_int_equal(answer(h, 0, 1, "1", 1), 0);
    loom_engine_dispatch(h->eng);
    while (h->nsent)
        assert_int_equal(answer(h, 0, 1, "1", 1), 0);
    h->sent[h->nsent] = running; /* the one slow kept running all along */
    h->sent_to[h->nsent++] = slow;
    assert_int_equal(answer(h, 0, 1, "1", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    for (int i = 0; i < h->nkinds; i++)
        assert_int_not_equal(h->kinds[i], LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_WORKER_LOST);
    loom_engine_stats_t st;
    loom_engine_stats(h->eng, &st);
    assert_int_equal(st.tasks_lost, 0);
    assert_int_equal(st.tasks_unsent, 1);
    h_free(h);
}

/* Inputs of several MB travel in several AssignBatch messages (about 4 MiB
 * each); a task whose input is above the workers' 16 MiB message limit
 * fails with RESOURCE_EXHAUSTED instead of being sent. */
static void big_inputs_split_batches_and_too_big_ones_fail(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w", 4);
    const char *y = "version: 1\nname: big\ninputs:\n  xs: list\n"
                    "steps:\n  a:\n    op: echo\n    value: ${item}\n    foreach: ${inputs.xs}\n";
    size_t item = 3u << 20, n = 3 * (item + 3) + 16;
    char *in = malloc(n), *p = in;
    p += sprintf(p, "{\"xs\": [");
    for (int i = 0; i < 3; i++) {
        *p++ = i ? ',' : '"';
        if (i)
            *p++ = '"';
        memset(p, 'a' + i, item);
        p += item;
        *p++ = '"';
    }
    strcpy(p, "]}");
    char id[32];
    assert_int_equal(submit(h, y, in, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 3);
    assert_int_equal(h->sends, 3); /* 3 MB each: one message per task */
    while (h->nsent)
        assert_int_equal(answer(h, 0, 1, "1", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    free(in);

    size_t huge = 17u << 20;
    in = malloc(huge + 16);
    p = in + sprintf(in, "{\"s\": \"");
    memset(p, 'x', huge);
    strcpy(p + huge, "\"}");
    const char *y2 = "version: 1\nname: huge\ninputs:\n  s: string\nsteps:\n  a:\n    op: echo\n    value: ${inputs.s}\n";
    assert_int_equal(submit(h, y2, in, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_FAILED);
    assert_non_null(strstr(v.error, "a worker takes at most"));
    free(in);
    h_free(h);
}

/* A worker that re-registers (same process, new connection) and still
 * runs its task keeps it; one that restarted (holds nothing) loses it. */
static void re_registration_keeps_held_tasks_and_loses_the_rest(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    loom_worker_rec_t *w = add_worker(h, "w1", 2);
    const char *y = "version: 1\nname: rr\nsteps:\n  a:\n    op: noop\n  b:\n    op: noop\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 2);
    loom_engine_started(h->eng, w, h->sent[0]->id, 1);
    loom_engine_started(h->eng, w, h->sent[1]->id, 1);
    char key[400];
    loom_task_key(h->sent[0], key, sizeof key);
    loom_held_task_t held = {.task_id = h->sent[0]->id, .task_key = key, .attempt = 1,
                             .state = LOOM_HELD_RUNNING};
    loom_adopt_t d = LOOM_ADOPT_DROP;
    loom_task_t *kept = h->sent[0], *gone = h->sent[1];
    h->nsent = 0;
    loom_engine_reconcile(h->eng, w, &held, 1, &d);
    assert_int_equal(d, LOOM_ADOPT_KEEP);
    assert_ptr_equal(kept->worker, w);
    assert_null(gone->worker); /* not held: lost while running, attempt 2 */
    assert_int_equal(gone->attempt, 2);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_int_equal(answer(h, 0, 1, "null", 1), 0);
    loom_err_t err;
    assert_int_equal(loom_engine_result(h->eng, w, held.task_id, 1, 1, "null", 4, NULL, 1, 0, 0, &err), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    h_free(h);
}

/* Streamed tokens may split a UTF-8 character between worker messages:
 * every event's text is valid UTF-8 and the character arrives whole. */
static void progress_text_is_valid_utf8_across_chunks(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    loom_worker_rec_t *w = add_worker(h, "w1", 1);
    const char *y = "version: 1\nname: p\nsteps:\n  a:\n    op: sleep\n    ms: 1\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->last_step_state[LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_STARTED],
                     LOOM__V1__STEP_STATE__STEP_RUNNING);
    loom_task_t *t = h->sent[0];
    loom_engine_progress(h->eng, w, t->id, 1, "caf\xc3");     /* é cut after its first byte */
    loom_engine_progress(h->eng, w, t->id, 1, "\xa9 \xe2\x82"); /* ... and a euro sign */
    loom_engine_progress(h->eng, w, t->id, 1, "\xac!\xff");
    assert_string_equal(h->progress, "caf\xc3\xa9 \xe2\x82\xac!\xef\xbf\xbd");
    assert_int_equal(h->nprogress, 3);
    assert_int_equal(answer(h, 0, 1, "{}", 1), 0);
    h_free(h);
}

static void least_slack_goes_first(void **state)
{
    (void)state;
    h_t *h = h_new(1);
    add_worker(h, "w1", 1); /* one slot: the queue order decides */
    const char *y = "version: 1\nname: s\nsteps:\n  a:\n    op: noop\n";
    char busy[32], loose[32], tight[32];
    assert_int_equal(submit(h, y, NULL, 0, busy), 0);
    loom_engine_dispatch(h->eng); /* occupies the slot */
    assert_int_equal(submit(h, y, NULL, 60000, loose), 0);
    assert_int_equal(submit(h, y, NULL, 500, tight), 0);
    assert_int_equal(answer(h, 0, 1, "null", 1), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_string_equal(loom_run_id(h->sent[0]->run), tight);
    h_free(h);
}

static void foreach_gathers_in_item_order_and_when_skips(void **state)
{
    (void)state;
    h_t *h = h_new(8);
    add_worker(h, "w1", 4);
    const char *y = "version: 1\nname: f\ninputs:\n  xs: list\nsteps:\n"
                    "  each:\n    op: echo\n    foreach: ${inputs.xs}\n    value: ${item}\n"
                    "  never:\n    op: echo\n    when: ${inputs.xs} == 1\n    value: 1\n"
                    "  after:\n    op: echo\n    value: ${steps.never.output}\n"
                    "outputs:\n  each: ${steps.each.output}\n  after: ${steps.after.output.value}\n";
    char id[32];
    assert_int_equal(submit(h, y, "{\"xs\": [10, 20, 30]}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 4); /* 3 items + after (never was skipped) */
    for (int i = h->nsent - 1; i >= 0; i--) { /* answer in reverse order */
        char out[64];
        snprintf(out, sizeof out, "%s", h->sent[i]->input);
        assert_int_equal(answer(h, i, 1, out, 1), 0);
    }
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(v.outputs,
                        "{\"each\":[{\"value\":10},{\"value\":20},{\"value\":30}],\"after\":null}");
    h_free(h);
}

static void cancel_reaches_running_tasks(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, chain_yaml, "{\"x\": 1}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    int st = 0;
    loom_err_t err;
    assert_int_equal(loom_engine_cancel(h->eng, id, "test", &st, &err), 0);
    assert_int_equal(h->cancels, 1);
    assert_string_equal(h->last_cancel, "run cancelled");
    assert_int_equal(view(h, id).state, LOOM_RUN_CANCELLED);
    assert_int_equal(loom_engine_cancel(h->eng, id, "again", &st, &err), LOOM_ENOTFOUND);
    assert_int_equal(loom_registry_by_id(h->reg, "w1")->inflight, 0);
    h_free(h);
}

/* timeout_ms counts execution: the clock starts at the worker's Started,
 * not while the task waits (queued on the worker) */
static void timeouts_cancel_and_fail(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    loom_worker_rec_t *w1 = add_worker(h, "w1", 2);
    const char *y = "version: 1\nname: t\nsteps:\n  a:\n    op: sleep\n    ms: 100\n    timeout_ms: 5\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    loom_sleep_ms(10);
    loom_engine_tick(h->eng);
    assert_int_equal(h->cancels, 0); /* sent 10 ms ago, not started: no timeout */
    loom_engine_started(h->eng, w1, h->sent[0]->id, 1);
    loom_sleep_ms(10);
    loom_engine_tick(h->eng);
    assert_int_equal(h->cancels, 1);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_FAILED);
    assert_non_null(strstr(v.error, "timed out"));
    h_free(h);
}

static void no_capable_worker_refused_or_fails_after_the_placement_timeout(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    const char *y = "version: 1\nname: t\nsteps:\n  a:\n    op: tool.http\n    url: http://127.0.0.1:1/\n";
    char id[32];
    /* admission: no registered worker runs tool.http, so the run is refused */
    assert_int_equal(submit(h, y, NULL, 0, id), LOOM_EINFEASIBLE);
    assert_int_equal(loom_engine_active_runs(h->eng), 0);
    /* the client asks to queue it anyway: it waits for a capable worker */
    loom_submit_t s = {.yaml = y, .yaml_len = strlen(y), .name = "t.yaml", .allow_sla_miss = 1};
    loom_err_t err;
    loom_err_clear(&err);
    assert_int_equal(loom_engine_submit(h->eng, &s, id, &err), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0);
    loom_sleep_ms(60);
    loom_engine_tick(h->eng);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_FAILED);
    assert_non_null(strstr(v.error, "no registered worker runs op 'tool.http'"));
    h_free(h);
}

static void sla_miss_is_marked(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    const char *y = "version: 1\nname: s\nsteps:\n  a:\n    op: noop\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 5, id), 0);
    loom_engine_dispatch(h->eng);
    loom_sleep_ms(30);
    loom_engine_tick(h->eng);
    int missed = 0;
    for (int i = 0; i < h->nkinds; i++)
        missed |= h->kinds[i] == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_SLA_MISSED;
    assert_true(missed);
    assert_int_equal(answer(h, 0, 1, "null", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    h_free(h);
}

static void a_restarted_engine_recovers_unfinished_runs(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, chain_yaml, "{\"x\": 5}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, 0, 1, "{\"value\":5}", 1), 0); /* a done, b in flight */
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    h_restart(h, 0, 20);
    add_worker(h, "w1", 2);
    int n = 0;
    loom_err_t err;
    assert_int_equal(loom_engine_recover(h->eng, &n, &err), 0);
    assert_int_equal(n, 1);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0); /* held for workers that may still run b */
    for (uint64_t until = loom_clock_ms() + 5000; !h->nsent && loom_clock_ms() < until;) {
        loom_engine_tick(h->eng);
        loom_engine_dispatch(h->eng);
    }
    assert_int_equal(h->nsent, 1); /* only b: a's success was recorded */
    assert_string_equal(step_id(h->sent[0]), "b");
    assert_string_equal(h->sent[0]->input, "{\"value\":\"got 5\"}");
    assert_string_equal(loom_run_id(h->sent[0]->run), id);
    assert_int_equal(answer(h, 0, 1, "{\"value\":\"got 5\"}", 1), 0);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(v.outputs, "{\"b\":\"got 5\"}");
    n = -1;
    assert_int_equal(loom_engine_recover(h->eng, &n, &err), 0);
    assert_int_equal(n, 0);
    h_free(h);
}

/* loomd restarts while w1 still runs b: the new loomd holds b back, w1
 * re-registers holding b (the old loomd's task id, the stable key) and
 * keeps it; its result finishes the run; b is never dispatched again. */
static void a_restarted_engine_adopts_tasks_workers_still_run(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    loom_worker_rec_t *w = add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, chain_yaml, "{\"x\": 5}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, 0, 1, "{\"value\":5}", 1), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    char old_id[24], key[400];
    snprintf(old_id, sizeof old_id, "%s", h->sent[0]->id);
    loom_task_key(h->sent[0], key, sizeof key);
    h_restart(h, 0, 60000);
    int n = 0;
    loom_err_t err;
    assert_int_equal(loom_engine_recover(h->eng, &n, &err), 0);
    w = add_worker(h, "w1", 2);
    loom_held_task_t held[2] = {
        {.task_id = old_id, .task_key = key, .attempt = 1, .state = LOOM_HELD_RUNNING},
        {.task_id = "0.99", .task_key = "r-gone:x", .attempt = 1, .state = LOOM_HELD_QUEUED}};
    loom_adopt_t d[2];
    loom_engine_reconcile(h->eng, w, held, 2, d);
    assert_int_equal(d[0], LOOM_ADOPT_KEEP);
    assert_int_equal(d[1], LOOM_ADOPT_DROP);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0);
    assert_int_equal(loom_engine_result(h->eng, w, old_id, 1, 1, "{\"value\":\"got 5\"}", 17, NULL,
                                        1, 0, 0, &err), 0);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(v.outputs, "{\"b\":\"got 5\"}");
    h_free(h);
}

static void loops_iterate_and_stop(void **state)
{
    (void)state;
    h_t *h = h_new(4);
    add_worker(h, "w1", 2);
    const char *y = "version: 1\nname: l\nsteps:\n  lp:\n    op: loop\n    max_iterations: 5\n"
                    "    until: ${steps.b.output.value} == 3\n    body:\n"
                    "      a:\n        op: echo\n        value: ${loop.iteration}\n"
                    "      b:\n        op: echo\n        value: ${steps.a.output.value}\n"
                    "      c:\n        op: echo\n        when: ${steps.b.output.value} > 100\n        value: 0\n"
                    "outputs:\n  n: ${steps.lp.output.iterations}\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    for (int guard = 0; guard < 50; guard++) {
        loom_engine_dispatch(h->eng);
        if (!h->nsent)
            break;
        char out[64];
        snprintf(out, sizeof out, "%s", h->sent[0]->input);
        assert_int_equal(answer(h, 0, 1, out, 1), 0);
    }
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(v.outputs, "{\"n\":4}");
    h_free(h);
}

/* loomd --inline-ops: noop and echo run in the engine itself; a long
 * chain moves in bounded dispatch turns (tick asks for no wait meanwhile),
 * a loop of echo steps iterates, a run cancelled with inline tasks queued
 * leaves none behind, and the worker op of the same run still goes out. */
static void inline_ops_run_in_the_engine(void **state)
{
    (void)state;
    h_t *h = h_make(4, LOOM_INLINE_NOOP | LOOM_INLINE_ECHO, -1);
    add_worker(h, "w1", 2);
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_puts(&b, "version: 1\nname: c\nsteps:\n");
    for (int i = 0; i < 6000; i++) {
        loom_buf_printf(&b, "  s%d:\n    op: %s\n", i, i % 2 ? "noop" : "echo\n    value: 7");
        if (i)
            loom_buf_printf(&b, "    needs: [s%d]\n", i - 1);
    }
    loom_buf_puts(&b, "  t:\n    op: sleep\n    needs: [s5999]\n    ms: 1\n"
                      "outputs:\n  last: ${steps.s5999.output}\n");
    char id[32], id2[32];
    assert_int_equal(submit(h, b.data, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0); /* the budget stopped the chain mid-way */
    assert_int_equal(loom_engine_tick(h->eng), 0);
    for (int guard = 0; guard < 10 && !h->nsent; guard++)
        loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1); /* the sleep step goes to the worker */
    assert_string_equal(step_id(h->sent[0]), "t");
    assert_int_equal(answer(h, 0, 1, "{}", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(view(h, id).outputs, "{\"last\":null}");
    /* cancelled while its chain is queued inline */
    assert_int_equal(submit(h, b.data, NULL, 0, id2), 0);
    loom_engine_dispatch(h->eng);
    int st = 0;
    loom_err_t err;
    assert_int_equal(loom_engine_cancel(h->eng, id2, "test", &st, &err), 0);
    assert_int_equal(loom_engine_tick(h->eng) > 0, 1); /* nothing inline left */
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0);
    assert_int_equal(view(h, id2).state, LOOM_RUN_CANCELLED);
    loom_buf_free(&b);
    /* a loop of echo steps, all inline */
    const char *y = "version: 1\nname: l\nsteps:\n  lp:\n    op: loop\n    max_iterations: 5\n"
                    "    until: ${steps.b.output} == 3\n    body:\n"
                    "      a:\n        op: echo\n        value: ${loop.iteration}\n"
                    "      b:\n        op: echo\n        value: ${steps.a.output}\n"
                    "outputs:\n  n: ${steps.lp.output.iterations}\n";
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    for (int guard = 0; guard < 10; guard++)
        loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(view(h, id).outputs, "{\"n\":4}");
    h_free(h);
}

/* Which outputs may travel by reference (workers/common/outref.h): not one
 * a when:/foreach: (also inside a loop body) reads, nor one the run's
 * outputs use; found in one pass at submit, not per task. */
static void outputs_read_by_control_stay_inline(void **state)
{
    (void)state;
    h_t *h = h_make(4, 0, 0);
    add_worker(h, "w1", 8);
    const char *y = "version: 1\nname: r\nsteps:\n"
                    "  a:\n    op: echo\n    value: 1\n"
                    "  b:\n    op: echo\n    value: 2\n"
                    "  c:\n    op: echo\n    value: 3\n"
                    "  d:\n    op: echo\n    value: 4\n"
                    "  e:\n    op: echo\n    value: 5\n"
                    "  w:\n    op: echo\n    when: ${steps.a.output} == 1\n    value: 0\n"
                    "  f:\n    op: echo\n    foreach: ${steps.b.output}\n    value: 0\n"
                    "  lp:\n    op: loop\n    max_iterations: 1\n    until: true\n    body:\n"
                    "      x:\n        op: echo\n        when: ${steps.c.output} > 0\n        value: 0\n"
                    "outputs:\n  o: ${steps.d.output}\n";
    char id[32];
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    int seen = 0;
    for (int i = 0; i < h->nsent; i++) {
        const char *sid = step_id(h->sent[i]);
        int by_ref = strstr(h->sent[i]->input, "$by_reference_over") != NULL;
        if (strlen(sid) == 1 && strchr("abcde", sid[0])) {
            assert_int_equal(by_ref, sid[0] == 'e');
            seen++;
        }
    }
    assert_int_equal(seen, 5);
    h_free(h);
}

/* ---- worker-side chaining (orchestrator/README.md, "Chains") --------------------- */

static h_t *h_chain(int depth, int chain_depth)
{
    h_t *h = calloc(1, sizeof *h);
    h->store = loom_store_mem_new(0, 0, 0);
    h->reg = loom_registry_new(depth);
    loom_engine_cfg_t c = {.store = h->store, .reg = h->reg,
                           .placement = loom_placement_least_loaded(), .send_tasks = h_send,
                           .cancel_task = h_cancel, .on_event = h_event, .ud = h,
                           .backoff_ms = 1, .placement_timeout_ms = 50, .output_ref_bytes = -1,
                           .chain_depth = chain_depth};
    h->eng = loom_engine_new(&c);
    return h;
}

/* a -> b -> c -> d: each echoes the previous output (whole value) */
static const char *echo_chain = "version: 1\nname: ec\ninputs:\n  x: int\nsteps:\n"
                                "  a:\n    op: echo\n    value: ${inputs.x}\n"
                                "  b:\n    op: echo\n    value: ${steps.a.output}\n    retries: 1\n"
                                "  c:\n    op: echo\n    value:\n      - 1\n      - ${steps.b.output}\n"
                                "  d:\n    op: echo\n    value:\n      k: ${steps.c.output}\n"
                                "outputs:\n  d: ${steps.d.output}\n";

typedef struct {
    char steps[16][16];
    int attempts[16], states[16], n;
} records_t;

static int on_task_rec(void *ud, const loom_store_task_t *t)
{
    records_t *r = ud;
    if (r->n < 16) {
        snprintf(r->steps[r->n], sizeof r->steps[r->n], "%s", t->step_id);
        r->attempts[r->n] = t->attempt;
        r->states[r->n++] = t->state;
    }
    return 0;
}

/* the stored task record of step (latest attempt); NULL when none */
static int record_of(h_t *h, const char *id, const char *step, int *attempt, int *st)
{
    records_t r = {0};
    view_t v = {0};
    loom_err_t err;
    loom_store_run_get(h->store, id, on_run, on_task_rec, &r, &err);
    (void)v;
    for (int i = 0; i < r.n; i++)
        if (strcmp(r.steps[i], step) == 0) {
            *attempt = r.attempts[i];
            *st = r.states[i];
            return 1;
        }
    return 0;
}

static void chains_run_ahead_on_one_worker_with_outputs_substituted(void **state)
{
    (void)state;
    h_t *h = h_chain(4, 8);
    add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, echo_chain, "{\"x\": 7}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    /* one message: a, then b, c, d sent ahead, each behind the one before */
    assert_int_equal(h->sends, 1);
    assert_int_equal(h->nsent, 4);
    assert_false(h->sent[0]->ahead);
    for (int i = 1; i < 4; i++) {
        assert_true(h->sent[i]->ahead);
        assert_ptr_equal(h->sent[i]->after, h->sent[i - 1]);
        assert_int_equal(h->sent[i]->n_after_at, 1);
    }
    assert_string_equal(h->sent[1]->input, "{\"value\":null}");
    assert_string_equal(h->sent[1]->after_at[0], "/value");
    assert_string_equal(h->sent[2]->input, "{\"value\":[1,null]}");
    assert_string_equal(h->sent[2]->after_at[0], "/value/1");
    assert_string_equal(h->sent[3]->after_at[0], "/value/k");
    int att, st;
    assert_false(record_of(h, id, "b", &att, &st)); /* not loomd's yet: no record */
    /* the worker reports in order; each result releases the next */
    assert_int_equal(answer(h, 0, 1, "7", 1), 0);
    assert_true(record_of(h, id, "b", &att, &st));
    assert_int_equal(st, LOOM_TASK_RUNNING);
    assert_false(h->sent[0]->ahead);
    assert_string_equal(h->sent[0]->input, "{\"value\":7}"); /* loomd's copy has the output */
    assert_int_equal(answer(h, 0, 1, "7", 1), 0);
    assert_int_equal(answer(h, 0, 1, "[1,7]", 1), 0);
    assert_int_equal(answer(h, 0, 1, "{\"k\":[1,7]}", 1), 0);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(v.outputs, "{\"d\":{\"k\":[1,7]}}");
    loom_engine_stats_t es;
    loom_engine_stats(h->eng, &es);
    assert_int_equal(es.tasks_chained, 3);
    assert_int_equal(es.tasks_dispatched, 4);
    assert_int_equal(loom_registry_by_id(h->reg, "w1")->inflight, 0);
    h_free(h);
}

/* b fails (retryable): c and d, sent ahead, are taken back (cancelled on
 * the worker, never recorded); b's retry takes them ahead again */
static void a_failed_step_takes_back_the_chain_behind_it(void **state)
{
    (void)state;
    h_t *h = h_chain(4, 8);
    loom_worker_rec_t *w1 = add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, echo_chain, "{\"x\": 1}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, 0, 1, "1", 1), 0);  /* a */
    assert_int_equal(answer(h, 0, 0, NULL, 1), 0); /* b fails: retried */
    assert_int_equal(h->cancels, 2);               /* c, d */
    assert_int_equal(w1->inflight, 0);
    int att, st;
    assert_false(record_of(h, id, "c", &att, &st));
    h->nsent = 0;
    usleep(5000); /* the retry's backoff (1 ms) */
    loom_engine_tick(h->eng);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 3); /* b attempt 2, c and d behind it */
    assert_int_equal(h->sent[0]->attempt, 2);
    assert_true(h->sent[1]->ahead && h->sent[2]->ahead);
    assert_int_equal(h->sent[1]->attempt, 1);
    /* b fails for good (retries: 1 spent): the run fails, c and d never ran */
    assert_int_equal(answer(h, 0, 0, NULL, 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_FAILED);
    assert_false(record_of(h, id, "c", &att, &st));
    assert_false(record_of(h, id, "d", &att, &st));
    assert_true(record_of(h, id, "b", &att, &st));
    assert_int_equal(att, 2);
    assert_int_equal(w1->inflight, 0);
    h_free(h);
}

/* The worker dies while b runs (started) with c and d ahead behind it: b
 * runs again elsewhere as attempt 2, c and d as attempt 1, a not again. */
static void a_lost_worker_re_runs_only_the_unfinished_steps_of_a_chain(void **state)
{
    (void)state;
    h_t *h = h_chain(4, 8);
    loom_worker_rec_t *w1 = add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, echo_chain, "{\"x\": 3}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, 0, 1, "3", 1), 0); /* a; b released */
    loom_engine_started(h->eng, w1, h->sent[0]->id, 1);
    h->nsent = 0;
    loom_worker_rec_t *w2 = add_worker(h, "w2", 2);
    w1->state = LOOM_WORKER_LOST;
    loom_engine_worker_lost(h->eng, w1);
    assert_int_equal(w1->inflight, 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 3);
    assert_ptr_equal(h->sent_to[0], w2);
    assert_string_equal(step_id(h->sent[0]), "b");
    assert_int_equal(h->sent[0]->attempt, 2);
    assert_true(h->sent[1]->ahead);
    assert_int_equal(h->sent[1]->attempt, 1);
    for (int k = 0; k < 3; k++)
        assert_int_equal(answer(h, 0, 1, k == 0 ? "3" : k == 1 ? "[1,3]" : "{\"k\":[1,3]}", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);
    int att, st;
    assert_true(record_of(h, id, "a", &att, &st));
    assert_int_equal(att, 1);
    assert_true(record_of(h, id, "b", &att, &st));
    assert_int_equal(att, 2);
    assert_true(record_of(h, id, "d", &att, &st));
    assert_int_equal(att, 1);
    h_free(h);
}

/* Cancelling the run reaches the tasks sent ahead too; they leave no record. */
static void cancel_stops_a_chain(void **state)
{
    (void)state;
    h_t *h = h_chain(4, 8);
    loom_worker_rec_t *w1 = add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, echo_chain, "{\"x\": 1}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, 0, 1, "1", 1), 0); /* a; b released, c and d ahead */
    int st = 0;
    loom_err_t err;
    assert_int_equal(loom_engine_cancel(h->eng, id, "test", &st, &err), 0);
    assert_int_equal(h->cancels, 3); /* b, c, d */
    assert_int_equal(view(h, id).state, LOOM_RUN_CANCELLED);
    assert_int_equal(w1->inflight, 0);
    int att, tst;
    assert_true(record_of(h, id, "b", &att, &tst));
    assert_int_equal(tst, LOOM_TASK_CANCELLED);
    assert_false(record_of(h, id, "c", &att, &tst));
    h_free(h);
}

/* loomd restarts while w1 holds a chain it sent ahead (a, then b, c, d
 * behind it, none of b..d recorded): the new loomd recovers a as ready and
 * b..d as pending. A worker that does not hold a gets nothing for b; w1
 * re-registers holding all four (in no order, with one of a gone run):
 * a is adopted by its key and b, c, d rebuilt ahead behind it, so the
 * results w1 sends (a's first) finish the run and nothing is dispatched
 * again. */
static void a_restarted_engine_adopts_a_chain_held_ahead(void **state)
{
    (void)state;
    h_t *h = h_chain(4, 8);
    loom_worker_rec_t *w = add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, echo_chain, "{\"x\": 7}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 4);
    char ids[4][24], keys[4][400];
    for (int i = 0; i < 4; i++) {
        snprintf(ids[i], sizeof ids[i], "%s", h->sent[i]->id);
        loom_task_key(h->sent[i], keys[i], sizeof keys[i]);
    }
    h_restart(h, 8, 60000);
    int n = 0;
    loom_err_t err;
    assert_int_equal(loom_engine_recover(h->eng, &n, &err), 0);
    assert_int_equal(n, 1);
    /* w2 holds b (say) without a: not rebuilt there */
    loom_worker_rec_t *w2 = add_worker(h, "w2", 2);
    loom_held_task_t other = {.task_id = ids[1], .task_key = keys[1], .attempt = 1,
                              .state = LOOM_HELD_FINISHED};
    loom_adopt_t d2;
    loom_engine_reconcile(h->eng, w2, &other, 1, &d2);
    assert_int_equal(d2, LOOM_ADOPT_DROP);
    w = add_worker(h, "w1", 2);
    loom_held_task_t held[5] = {
        {.task_id = ids[3], .task_key = keys[3], .attempt = 1, .state = LOOM_HELD_QUEUED},
        {.task_id = "0.99", .task_key = "r-gone:x", .attempt = 1, .state = LOOM_HELD_QUEUED},
        {.task_id = ids[2], .task_key = keys[2], .attempt = 1, .state = LOOM_HELD_RUNNING},
        {.task_id = ids[1], .task_key = keys[1], .attempt = 1, .state = LOOM_HELD_FINISHED},
        {.task_id = ids[0], .task_key = keys[0], .attempt = 1, .state = LOOM_HELD_FINISHED}};
    loom_adopt_t d[5];
    loom_engine_reconcile(h->eng, w, held, 5, d);
    assert_int_equal(d[0], LOOM_ADOPT_KEEP);
    assert_int_equal(d[1], LOOM_ADOPT_DROP);
    assert_int_equal(d[2], LOOM_ADOPT_KEEP);
    assert_int_equal(d[3], LOOM_ADOPT_RESEND);
    assert_int_equal(d[4], LOOM_ADOPT_RESEND);
    assert_int_equal(w->inflight, 4);
    int att, st;
    assert_false(record_of(h, id, "b", &att, &st)); /* still ahead: not recorded */
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 0);
    const char *out[4] = {"7", "7", "[1,7]", "{\"k\":[1,7]}"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(loom_engine_result(h->eng, w, ids[i], 1, 1, out[i], strlen(out[i]), NULL, 0,
                                            0, 0, &err), 0);
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_SUCCEEDED);
    assert_string_equal(v.outputs, "{\"d\":{\"k\":[1,7]}}");
    assert_int_equal(h->nsent, 0); /* nothing ran twice */
    assert_true(record_of(h, id, "c", &att, &st));
    assert_int_equal(att, 1);
    assert_int_equal(st, LOOM_TASK_SUCCEEDED);
    assert_int_equal(w->inflight, 0);
    h_free(h);
}

/* What a worker cannot do in loomd's place is not chained: a field of the
 * predecessor's output, an interpolation, a when:, another worker's op; nor
 * beyond the worker's room or the configured depth. */
static void only_what_a_worker_can_resolve_is_chained(void **state)
{
    (void)state;
    h_t *h = h_chain(4, 8);
    add_worker(h, "w1", 2);
    char id[32];
    assert_int_equal(submit(h, chain_yaml, "{\"x\": 1}", 0, id), 0); /* b reads a.output.value */
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    assert_int_equal(answer(h, 0, 1, "{\"value\":1}", 1), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, 0, 1, "{\"value\":\"got 1\"}", 1), 0);
    const char *y = "version: 1\nname: n\nsteps:\n  a:\n    op: echo\n    value: 1\n"
                    "  b:\n    op: echo\n    value: \"x${steps.a.output}\"\n"
                    "  c:\n    op: noop\n    needs: [b]\n    when: ${steps.b.output} == 1\n";
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 1);
    h->nsent = 0;
    h_free(h);
    /* depth 2: a and 2 ahead; the rest follows the third's result */
    h = h_chain(4, 2);
    add_worker(h, "w1", 2);
    assert_int_equal(submit(h, echo_chain, "{\"x\": 1}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 3);
    h_free(h);
    /* room on the worker: slots 1 x depth 2 */
    h = h_chain(2, 8);
    add_worker(h, "w1", 1);
    assert_int_equal(submit(h, echo_chain, "{\"x\": 1}", 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(h->nsent, 2);
    h_free(h);
}

/* The index of the dispatched task of step sid (-1: none). */
static int sent_of(h_t *h, const char *sid)
{
    for (int i = 0; i < h->nsent; i++)
        if (!strcmp(step_id(h->sent[i]), sid))
            return i;
    return -1;
}

/* c, dispatched at sent[*i], cannot fetch its input `lost` by reference. */
static void lose_input(h_t *h, int i, char digit)
{
    loom_task_t *t = h->sent[i];
    loom_worker_rec_t *w = h->sent_to[i];
    char tid[24], lost[65];
    snprintf(tid, sizeof tid, "%s", t->id);
    memset(lost, digit, 64);
    lost[64] = 0;
    int attempt = t->attempt;
    memmove(&h->sent[i], &h->sent[i + 1], (size_t)(h->nsent - i - 1) * sizeof *h->sent);
    memmove(&h->sent_to[i], &h->sent_to[i + 1], (size_t)(h->nsent - i - 1) * sizeof *h->sent_to);
    h->nsent--;
    loom_err_t err;
    assert_int_equal(loom_engine_input_lost(h->eng, w, tid, (uint32_t)attempt, lost,
                                            "cannot fetch an upstream output by reference from worker w0: gone", &err),
                     0);
}

/* Runs the workflow below until c has p's output (object id of digit 1);
 * returns c's index in sent, p's input in p_input. */
static int until_c(h_t *h, char id[32], char *p_input, size_t n)
{
    const char *y = "version: 1\nname: r\nsteps:\n"
                    "  a:\n    op: echo\n    value: A\n"
                    "  q:\n    op: echo\n    value: Q\n"
                    "  p:\n    op: echo\n    value: ${steps.a.output}\n"
                    "  c:\n    op: echo\n    value: ${steps.p.output}\n"
                    "  d:\n    op: echo\n    value:\n      - ${steps.p.output}\n      - ${steps.q.output}\n"
                    "  e:\n    op: echo\n    needs: [c]\n    value: ${steps.a.output}\n"
                    "outputs:\n  c: ${steps.c.output}\n  d: ${steps.d.output}\n  e: ${steps.e.output}\n";
    assert_int_equal(submit(h, y, NULL, 0, id), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(answer(h, sent_of(h, "a"), 1, "\"A\"", 1), 0);
    loom_engine_dispatch(h->eng);
    int i = sent_of(h, "p");
    assert_true(i >= 0);
    snprintf(p_input, n, "%s", h->sent[i]->input);
    assert_int_equal(answer(h, i, 1, "{\"$object\": {\"id\": \"1111111111111111111111111111111111111111111111111111111111111111\"}}", 1), 0);
    loom_engine_dispatch(h->eng);
    assert_int_equal(sent_of(h, "d"), -1); /* q is not done */
    i = sent_of(h, "c");
    assert_true(i >= 0);
    assert_non_null(strstr(h->sent[i]->input, "1111111111"));
    return i;
}

/* c cannot fetch p's output by reference (its holder died): loomd runs p
 * again from the input it kept, c waits and starts again with the new
 * output, twice; d (p and q) still waits for q; a's output, which p read,
 * is still there for e. In a second run a third loss fails the run with
 * the reason. */
static void a_lost_input_reruns_its_producer(void **state)
{
    (void)state;
    h_t *h = h_new(8);
    add_worker(h, "w1", 8);
    char id[32], p_input[512];
    int i = until_c(h, id, p_input, sizeof p_input);
    for (char round = '2'; round <= '3'; round++) {
        lose_input(h, i, (char)(round - 1));
        assert_int_equal(view(h, id).state, LOOM_RUN_RUNNING);
        loom_engine_dispatch(h->eng);
        assert_int_equal(sent_of(h, "c"), -1);
        i = sent_of(h, "p");
        assert_true(i >= 0);
        assert_string_equal(h->sent[i]->input, p_input); /* its input, though a's output was consumed */
        char ref[200];
        snprintf(ref, sizeof ref, "{\"$object\": {\"id\": \"%064d\"}}", 0);
        memset(ref + 20, round, 64);
        assert_int_equal(answer(h, i, 1, ref, 1), 0);
        loom_engine_dispatch(h->eng);
        assert_int_equal(sent_of(h, "d"), -1); /* still waits for q */
        i = sent_of(h, "c");
        assert_true(i >= 0);
        assert_non_null(strchr(h->sent[i]->input, round));
    }
    assert_int_equal(answer(h, i, 1, "\"C\"", 1), 0);
    loom_engine_dispatch(h->eng);
    i = sent_of(h, "e");
    assert_true(i >= 0);
    assert_non_null(strstr(h->sent[i]->input, "\"A\""));
    assert_int_equal(answer(h, i, 1, "\"A\"", 1), 0);
    assert_int_equal(answer(h, sent_of(h, "q"), 1, "\"Q\"", 1), 0);
    loom_engine_dispatch(h->eng);
    i = sent_of(h, "d");
    assert_true(i >= 0);
    assert_non_null(strstr(h->sent[i]->input, "3333333333"));
    assert_int_equal(answer(h, i, 1, "[1, 2]", 1), 0);
    assert_int_equal(view(h, id).state, LOOM_RUN_SUCCEEDED);

    i = until_c(h, id, p_input, sizeof p_input);
    for (int round = 1; round <= 3; round++) { /* p makes the same object each time */
        lose_input(h, i, '1');
        if (round == 3) /* p ran again twice already */
            break;
        loom_engine_dispatch(h->eng);
        assert_int_equal(answer(h, sent_of(h, "p"), 1,
                                "{\"$object\": {\"id\": \"1111111111111111111111111111111111111111111111111111111111111111\"}}", 1),
                         0);
        loom_engine_dispatch(h->eng);
        i = sent_of(h, "c");
        assert_true(i >= 0);
    }
    view_t v = view(h, id);
    assert_int_equal(v.state, LOOM_RUN_FAILED);
    assert_non_null(strstr(v.error, "step 'c' failed: cannot fetch an upstream output by reference from worker w0"));
    h_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sched_orders_by_priority_then_fifo),
        cmocka_unit_test(dependencies_release_in_order_and_stitch),
        cmocka_unit_test(bad_inputs_are_the_users_error),
        cmocka_unit_test(retries_back_off_then_fail_the_run),
        cmocka_unit_test(permanent_failures_are_not_retried),
        cmocka_unit_test(results_from_the_wrong_worker_or_attempt_are_rejected),
        cmocka_unit_test(a_lost_worker_s_task_runs_elsewhere),
        cmocka_unit_test(least_slack_goes_first),
        cmocka_unit_test(foreach_gathers_in_item_order_and_when_skips),
        cmocka_unit_test(cancel_reaches_running_tasks),
        cmocka_unit_test(timeouts_cancel_and_fail),
        cmocka_unit_test(no_capable_worker_refused_or_fails_after_the_placement_timeout),
        cmocka_unit_test(sla_miss_is_marked),
        cmocka_unit_test(a_restarted_engine_recovers_unfinished_runs),
        cmocka_unit_test(a_restarted_engine_adopts_tasks_workers_still_run),
        cmocka_unit_test(queued_tasks_of_lost_workers_use_no_attempt),
        cmocka_unit_test(a_full_send_queue_holds_tasks_back_without_losing_the_worker),
        cmocka_unit_test(big_inputs_split_batches_and_too_big_ones_fail),
        cmocka_unit_test(progress_text_is_valid_utf8_across_chunks),
        cmocka_unit_test(re_registration_keeps_held_tasks_and_loses_the_rest),
        cmocka_unit_test(loops_iterate_and_stop),
        cmocka_unit_test(inline_ops_run_in_the_engine),
        cmocka_unit_test(outputs_read_by_control_stay_inline),
        cmocka_unit_test(chains_run_ahead_on_one_worker_with_outputs_substituted),
        cmocka_unit_test(a_failed_step_takes_back_the_chain_behind_it),
        cmocka_unit_test(a_lost_worker_re_runs_only_the_unfinished_steps_of_a_chain),
        cmocka_unit_test(cancel_stops_a_chain),
        cmocka_unit_test(a_restarted_engine_adopts_a_chain_held_ahead),
        cmocka_unit_test(only_what_a_worker_can_resolve_is_chained),
        cmocka_unit_test(a_lost_input_reruns_its_producer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
