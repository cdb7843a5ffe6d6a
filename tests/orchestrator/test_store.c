/* Unit tests for orchestrator/store.h through the in-memory store:
 * create/update/list/get, latest attempt wins, events, recovery replay,
 * and bounded memory (old finished runs are dropped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(state_names_round_trip),
        cmocka_unit_test(runs_tasks_events),
        cmocka_unit_test(memory_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
