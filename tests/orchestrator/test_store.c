/* Unit tests for orchestrator/store.h through the in-memory store:
 * create/update/list/get, latest attempt wins, events, recovery replay,
 * bounded memory (old finished runs are dropped), a finished run's records
 * compacted with nothing lost, and finished runs kept apart from the heap
 * (loomd's RSS follows the byte budget, not the heap's history). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/store.h"

typedef struct {
    int runs, tasks;
    char last_run[64];
    char seen[16][64];
    char output[128];
} acc_t;

static int on_run(void *ud, const loom_store_run_t *r)
{
    acc_t *a = ud;
    if (a->runs < 16)
        snprintf(a->seen[a->runs], sizeof a->seen[0], "%s", r->id);
    a->runs++;
    snprintf(a->last_run, sizeof a->last_run, "%s:%s", r->id, loom_store_run_state_name(r->state));
    return 0;
}

static int on_task(void *ud, const loom_store_task_t *t)
{
    acc_t *a = ud;
    a->tasks++;
    snprintf(a->output, sizeof a->output, "%s#%d a%d %s %s", t->step_id, t->index, t->attempt,
             loom_store_task_state_name(t->state), t->output_json ? t->output_json : "-");
    return 0;
}

static void state_names_round_trip(void **state)
{
    (void)state;
    for (int s = LOOM_RUN_PENDING; s <= LOOM_RUN_TIMED_OUT; s++)
        assert_int_equal(loom_store_run_state_parse(loom_store_run_state_name(s)), s);
    for (int s = LOOM_TASK_PENDING; s <= LOOM_TASK_SKIPPED; s++)
        assert_int_equal(loom_store_task_state_parse(loom_store_task_state_name(s)), s);
    assert_int_equal(loom_store_run_state_parse("bogus"), -1);
    assert_string_equal(loom_store_run_state_name(99), "unknown");
    assert_true(loom_store_task_state_final(LOOM_TASK_SKIPPED));
    assert_false(loom_store_task_state_final(LOOM_TASK_RUNNING));
}

static void runs_tasks_events(void **state)
{
    (void)state;
    loom_store_t *s = loom_store_mem_new(0, 0, 0);
    assert_non_null(s);
    assert_string_equal(loom_store_name(s), "mem");
    loom_err_t err;
    loom_store_run_t r = {.id = "r1", .workflow = "wf", .workflow_yaml = "version: 1",
                          .inputs_json = "{}", .state = LOOM_RUN_PENDING};
    assert_int_equal(loom_store_run_create(s, &r, &err), 0);
    assert_int_equal(loom_store_run_create(s, &r, &err), LOOM_EEXIST);

    loom_store_task_t t = {.run_id = "r1", .step_id = "a", .attempt = 1, .op = "noop",
                           .state = LOOM_TASK_RUNNING, .worker_id = "w1"};
    assert_int_equal(loom_store_task_put(s, &t, &err), 0);
    t.attempt = 2;
    t.state = LOOM_TASK_SUCCEEDED;
    t.output_json = "{\"x\":1}";
    assert_int_equal(loom_store_task_put(s, &t, &err), 0);
    /* A late update from attempt 1 must not overwrite attempt 2. */
    loom_store_task_t stale = {.run_id = "r1", .step_id = "a", .attempt = 1,
                               .state = LOOM_TASK_FAILED, .error = "late"};
    assert_int_equal(loom_store_task_put(s, &stale, &err), 0);

    acc_t a = {0};
    assert_int_equal(loom_store_run_get(s, "r1", on_run, on_task, &a, &err), 0);
    assert_int_equal(a.tasks, 1);
    assert_string_equal(a.output, "a#0 a2 succeeded {\"x\":1}");
    assert_int_equal(loom_store_run_get(s, "nope", on_run, on_task, &a, &err), LOOM_ENOTFOUND);

    /* Recovery: an unfinished run replays with its succeeded tasks. */
    memset(&a, 0, sizeof a);
    assert_int_equal(loom_store_load_unfinished(s, on_run, on_task, &a, &err), 0);
    assert_int_equal(a.runs, 1);
    assert_int_equal(a.tasks, 1);

    for (int i = 1; i <= 5; i++) {
        loom_store_event_t ev = {.run_id = "r1", .seq = i, .kind = "task.succeeded"};
        assert_int_equal(loom_store_event_append(s, &ev, &err), 0);
    }
    r.state = LOOM_RUN_SUCCEEDED;
    r.outputs_json = "{\"answer\":42}";
    assert_int_equal(loom_store_run_update(s, &r, &err), 0);
    memset(&a, 0, sizeof a);
    assert_int_equal(loom_store_load_unfinished(s, on_run, on_task, &a, &err), 0);
    assert_int_equal(a.runs, 0);
    memset(&a, 0, sizeof a);
    loom_store_filter_t f = {.state = -1};
    assert_int_equal(loom_store_run_list(s, &f, on_run, &a, &err), 0);
    assert_string_equal(a.last_run, "r1:succeeded");

    loom_store_worker_t w = {.id = "w1", .kind = "cpu", .state = "ready", .slots = 2};
    assert_int_equal(loom_store_worker_put(s, &w, &err), 0);
    assert_int_equal(loom_store_flush(s, &err), 0);
    loom_store_destroy(&s);
    loom_store_destroy(&s); /* safe twice */
    assert_null(s);
}

static int count_event(void *ud, const loom_store_event_t *ev)
{
    (void)ev;
    ++*(int *)ud;
    return 0;
}

static void memory_is_bounded(void **state)
{
    (void)state;
    loom_store_t *s = loom_store_mem_new(3, 4, 0);
    loom_err_t err;
    char id[32];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "r%d", i);
        loom_store_run_t r = {.id = id, .state = LOOM_RUN_RUNNING};
        assert_int_equal(loom_store_run_create(s, &r, &err), 0);
        for (int e = 1; e <= 10; e++) {
            loom_store_event_t ev = {.run_id = id, .seq = e, .kind = "x"};
            assert_int_equal(loom_store_event_append(s, &ev, &err), 0);
        }
        r.state = LOOM_RUN_SUCCEEDED;
        assert_int_equal(loom_store_run_update(s, &r, &err), 0);
    }
    acc_t a = {0};
    loom_store_filter_t f = {.state = -1};
    assert_int_equal(loom_store_run_list(s, &f, on_run, &a, &err), 0);
    assert_int_equal(a.runs, 3);
    assert_string_equal(a.seen[0], "r9"); /* newest first */
    assert_string_equal(a.seen[2], "r7");
    assert_int_equal(loom_store_run_get(s, "r0", on_run, NULL, &a, &err), LOOM_ENOTFOUND);
    int n = 0;
    assert_int_equal(loom_store_events(s, "r9", 0, count_event, &n, &err), 0);
    assert_int_equal(n, 4);
    n = 0;
    assert_int_equal(loom_store_events(s, "r9", 2, count_event, &n, &err), 0);
    assert_int_equal(n, 2);
    loom_store_destroy(&s);
}

typedef struct {
    int n, bad;
    int64_t last_seq;
    char first_reason[64];
} walk_t;

static int walk_task(void *ud, const loom_store_task_t *t)
{
    walk_t *w = ud;
    char out[32];
    snprintf(out, sizeof out, "%d", t->index * 3);
    /* creation order, every field as written; task 7 was retried */
    if (t->index != w->n || strcmp(t->run_id, "big") != 0 || strcmp(t->step_id, "each") != 0 ||
        strcmp(t->op, "noop") != 0 || strcmp(t->device, "cpu") != 0 ||
        strcmp(t->worker_id, t->index % 2 ? "w1" : "w0") != 0 ||
        (t->index < 1000 && strcmp(t->output_json, out) != 0) ||
        t->attempt != (t->index == 7 ? 2 : 1) || t->started_ms != 1000 + t->index ||
        t->predicted_ms != 2.5)
        w->bad++;
    if (w->n == 0)
        snprintf(w->first_reason, sizeof w->first_reason, "%s", t->reason);
    w->n++;
    return 0;
}

static int walk_event(void *ud, const loom_store_event_t *ev)
{
    walk_t *w = ud;
    if (ev->seq != w->last_seq + 1 || strcmp(ev->run_id, "big") != 0 ||
        strcmp(ev->kind, ev->seq == 101 ? "run.finished" : "task.succeeded") != 0)
        w->bad++;
    w->last_seq = ev->seq;
    w->n++;
    return 0;
}

static void finished_run_compacted_loses_nothing(void **state)
{
    (void)state;
    loom_store_t *s = loom_store_mem_new(0, 0, 0);
    loom_err_t err;
    loom_store_run_t r = {.id = "big", .workflow = "wide", .workflow_yaml = "version: 1",
                          .inputs_json = "{\"items\":[]}", .tenant = "t1",
                          .labels_json = "{\"k\":\"v\"}", .state = LOOM_RUN_RUNNING};
    assert_int_equal(loom_store_run_create(s, &r, &err), 0);
    char out[32], reason[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(out, sizeof out, "%d", i * 3);
        snprintf(reason, sizeof reason, "least-loaded worker (w%d)", i % 2);
        loom_store_task_t t = {.run_id = "big", .step_id = "each", .index = i, .attempt = 1,
                               .op = "noop", .state = LOOM_TASK_RUNNING, .started_ms = 1000 + i,
                               .worker_id = i % 2 ? "w1" : "w0", .device = "cpu",
                               .reason = reason, .predicted_ms = 2.5};
        assert_int_equal(loom_store_task_put(s, &t, &err), 0);
        t.state = LOOM_TASK_SUCCEEDED;
        t.output_json = out;
        assert_int_equal(loom_store_task_put(s, &t, &err), 0);
        if (i % 10 == 0) {
            loom_store_event_t ev = {.run_id = "big", .seq = i / 10 + 1, .kind = "task.succeeded",
                                     .step_id = "each", .index = i, .detail_json = "{}"};
            assert_int_equal(loom_store_event_append(s, &ev, &err), 0);
        }
    }
    loom_store_task_t retry = {.run_id = "big", .step_id = "each", .index = 7, .attempt = 2,
                               .state = LOOM_TASK_SUCCEEDED, .output_json = "21"};
    assert_int_equal(loom_store_task_put(s, &retry, &err), 0);
    r.state = LOOM_RUN_SUCCEEDED;
    r.outputs_json = "{\"n\":1000}";
    assert_int_equal(loom_store_run_update(s, &r, &err), 0); /* compacted here */

    /* Late writes to the finished run: the final event, a stale attempt
     * (ignored), an update of a known task and a task not seen before. */
    loom_store_event_t fin = {.run_id = "big", .seq = 101, .kind = "run.finished"};
    assert_int_equal(loom_store_event_append(s, &fin, &err), 0);
    loom_store_task_t stale = {.run_id = "big", .step_id = "each", .index = 7, .attempt = 1,
                               .state = LOOM_TASK_FAILED, .error = "late"};
    assert_int_equal(loom_store_task_put(s, &stale, &err), 0);
    loom_store_task_t again = {.run_id = "big", .step_id = "each", .index = 3, .attempt = 1,
                               .state = LOOM_TASK_SUCCEEDED, .finished_ms = 5};
    assert_int_equal(loom_store_task_put(s, &again, &err), 0);
    loom_store_task_t late = {.run_id = "big", .step_id = "each", .index = 1000, .attempt = 1,
                              .op = "noop", .state = LOOM_TASK_CANCELLED, .worker_id = "w0",
                              .device = "cpu", .started_ms = 2000, .predicted_ms = 2.5};
    assert_int_equal(loom_store_task_put(s, &late, &err), 0);

    acc_t a = {0};
    walk_t w = {0};
    assert_int_equal(loom_store_run_get(s, "big", NULL, walk_task, &w, &err), 0);
    assert_int_equal(w.n, 1001);
    assert_int_equal(w.bad, 0);
    assert_string_equal(w.first_reason, "least-loaded worker (w0)");
    assert_int_equal(loom_store_run_get(s, "big", on_run, NULL, &a, &err), 0);
    assert_string_equal(a.last_run, "big:succeeded");
    walk_t we = {0};
    assert_int_equal(loom_store_events(s, "big", 0, walk_event, &we, &err), 0);
    assert_int_equal(we.n, 101);
    assert_int_equal(we.bad, 0);
    loom_store_destroy(&s);
}

/* /proc/self/status's RssAnon in bytes. */
static size_t rss_anon(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* What loomd does: each run's records are written between short-lived
 * engine allocations, which are all freed when the run ends (then
 * malloc_trim, as engine_reap_runs). The kept runs' records must not pin
 * the freed pages: RssAnon stays within the byte budget of kept runs plus
 * a little, run after run, and falls back once the store is gone. */
static void finished_runs_stay_apart_from_the_heap(void **state)
{
    (void)state;
#ifdef __SANITIZE_ADDRESS__
    print_message("skipped: AddressSanitizer's allocator keeps freed memory (make asan)\n");
    skip();
#endif
    enum { RUNS = 8, TASKS = 20000 };
    const size_t budget = 12 << 20, slack = 3 << 20;
    malloc_trim(0);
    size_t base = rss_anon();
    loom_store_t *s = loom_store_mem_new(0, 0, budget);
    loom_err_t err;
    char id[32], out[32];
    void **engine = malloc(TASKS * sizeof *engine);
    assert_non_null(engine);
    for (int n = 0; n < RUNS; n++) {
        snprintf(id, sizeof id, "r%d", n);
        loom_store_run_t r = {.id = id, .workflow = "wide", .state = LOOM_RUN_RUNNING};
        assert_int_equal(loom_store_run_create(s, &r, &err), 0);
        for (int i = 0; i < TASKS; i++) {
            engine[i] = malloc(320); /* a task's structures */
            assert_non_null(engine[i]);
            memset(engine[i], i, 320);
            snprintf(out, sizeof out, "{\"v\":%d}", i);
            loom_store_task_t t = {.run_id = id, .step_id = "each", .index = i, .attempt = 1,
                                   .op = "noop", .state = LOOM_TASK_SUCCEEDED,
                                   .worker_id = "w0", .device = "cpu", .output_json = out};
            assert_int_equal(loom_store_task_put(s, &t, &err), 0);
            loom_store_event_t ev = {.run_id = id, .seq = i + 1, .kind = "task.succeeded",
                                     .step_id = "each", .index = i, .detail_json = out};
            assert_int_equal(loom_store_event_append(s, &ev, &err), 0);
        }
        r.state = LOOM_RUN_SUCCEEDED;
        assert_int_equal(loom_store_run_update(s, &r, &err), 0);
        for (int i = 0; i < TASKS; i++)
            free(engine[i]);
        malloc_trim(0);
        size_t now = rss_anon();
        print_message("after run %d: RssAnon +%.1f MiB (budget %.0f MiB)\n", n + 1,
                      (double)(now - base) / 1048576, (double)budget / 1048576);
        assert_true(now <= base + budget + slack);
    }
    acc_t a = {0};
    loom_store_filter_t f = {.state = -1};
    assert_int_equal(loom_store_run_list(s, &f, on_run, &a, &err), 0);
    assert_true(a.runs >= 1 && a.runs < RUNS); /* evicted by bytes */
    assert_string_equal(a.seen[0], "r7");
    loom_store_destroy(&s);
    free(engine);
    malloc_trim(0);
    assert_true(rss_anon() <= base + slack); /* the arenas were unmapped */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_names_round_trip),
        cmocka_unit_test(runs_tasks_events),
        cmocka_unit_test(memory_is_bounded),
        cmocka_unit_test(finished_run_compacted_loses_nothing),
        cmocka_unit_test(finished_runs_stay_apart_from_the_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
