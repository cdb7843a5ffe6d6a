/* known_runs.h — a known set of workflows, workers, runs and tasks written
 * through the store's API, whose view rows the tests assert (see
 * test_views_known_runs for the expected values). Header-only, cmocka. */
#ifndef LOOM_TESTS_KNOWN_RUNS_H
#define LOOM_TESTS_KNOWN_RUNS_H

#include <math.h>
#include <string.h>

#include "orchestrator/store_pg.h"

static __attribute__((unused)) loom_store_pg_run_t run_rec(const char *id, const char *wf_hash, const char *wf,
                                   const char *state, int64_t submitted) {
    return (loom_store_pg_run_t){.id = id, .workflow_hash = wf_hash, .workflow_name = wf,
                                 .state = state, .inputs = "{\"q\":1}", .sla_ms = NAN,
                                 .predicted_ms = NAN, .predicted_cost = NAN,
                                 .submitted_ms = submitted};
}

static __attribute__((unused)) loom_store_pg_task_t task_rec(const char *run, const char *task, const char *op,
                                     const char *state) {
    return (loom_store_pg_task_t){.run_id = run, .task_id = task, .op = op, .state = state,
                                  .predicted_ms = NAN, .predicted_cost = NAN,
                                  .actual_ms = NAN, .cost = NAN, .attempts = -1};
}

/* ---- the known set of runs --------------------------------------------- */

#define T0 1767261600000LL /* 2026-01-01 10:00:00 UTC */

static __attribute__((unused)) void task_full(loom_store_pg_t *s, const char *run, const char *task, const char *op,
                      const char *dev, const char *state, double pred, double actual,
                      double cost, int64_t start) {
    loom_store_pg_task_t t = task_rec(run, task, op, state);
    t.device_class = dev;
    t.worker_id = !strcmp(dev, "cpu") ? "w-cpu-1" : !strcmp(dev, "gpu") ? "w-gpu-1" : "w-npu-1";
    t.reason = "cheapest device meeting the SLA";
    t.needs = !strcmp(task, "answer") ? "[\"fetch\"]" : !strcmp(task, "search") ? "[\"embed\"]" : "[]";
    t.predicted_ms = pred;
    t.actual_ms = actual;
    t.cost = cost;
    t.attempts = 1;
    t.started_ms = start;
    t.finished_ms = isnan(actual) ? 0 : start + (int64_t)actual;
    t.output = isnan(actual) ? NULL : "{}";
    loom_err_t err;
    assert_int_equal(loom_store_pg_put_task(s, &t, NULL, NULL, &err), 0);
}

static __attribute__((unused)) void finish_run(loom_store_pg_t *s, const char *id, const char *wf, double sla,
                       int64_t submitted, int64_t latency, const char *state) {
    loom_err_t err;
    loom_store_pg_run_t r = run_rec(id, NULL, NULL, state, 0);
    r.started_ms = submitted + 1;
    r.finished_ms = submitted + latency;
    assert_int_equal(loom_store_pg_update_run(s, &r, NULL, NULL, &err), 0);
    assert_int_equal(loom_store_pg_put_sla_outcome(s, id, wf, sla, (double)latency,
                                                   latency <= sla, submitted + latency, &err), 0);
}

static __attribute__((unused)) void load_known_runs(loom_store_pg_t *s) {
    loom_err_t err;
    assert_int_equal(loom_store_pg_put_workflow(s, "ha", "wf-a", 1000, "name: wf-a\n", &err), 0);
    assert_int_equal(loom_store_pg_put_workflow(s, "hb", "wf-b", 500, "name: wf-b\n", &err), 0);
    const loom_store_pg_worker_t ws[] = {
        {"w-cpu-1", "cpu", "EPYC", NULL, "ready", 4},
        {"w-gpu-1", "gpu", "H100", NULL, "ready", 2},
        {"w-npu-1", "npu", "NPU-1", NULL, "ready", 1},
    };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(loom_store_pg_put_worker(s, &ws[i], &err), 0);
        assert_int_equal(loom_store_pg_put_worker_sample(s, ws[i].id, T0, 0, ws[i].slots, &err), 0);
    }
    assert_int_equal(loom_store_pg_put_worker_sample(s, "w-cpu-1", T0 + 60000, 2, 4, &err), 0);
    assert_int_equal(loom_store_pg_put_worker_sample(s, "w-gpu-1", T0 + 60000, 1, 2, &err), 0);

    struct { const char *id, *h, *wf; int64_t at; } runs[] = {
        {"r1", "ha", "wf-a", T0}, {"r2", "ha", "wf-a", T0 + 1800000},
        {"r3", "hb", "wf-b", T0 + 3900000}, {"r4", "hb", "wf-b", T0 + 4200000}};
    for (int i = 0; i < 4; i++) {
        loom_store_pg_run_t r = run_rec(runs[i].id, runs[i].h, runs[i].wf, "running", runs[i].at);
        r.sla_ms = !strcmp(runs[i].wf, "wf-a") ? 1000 : 500;
        assert_int_equal(loom_store_pg_submit_run(s, &r, NULL, NULL, &err), 0);
    }
    task_full(s, "r1", "fetch", "tool.exec", "cpu", "succeeded", 100, 120, 0.001, T0 + 10);
    task_full(s, "r1", "answer", "llm.generate", "gpu", "succeeded", 500, 400, 0.01, T0 + 200);
    finish_run(s, "r1", "wf-a", 1000, T0, 800, "succeeded");
    task_full(s, "r2", "fetch", "tool.exec", "cpu", "succeeded", 100, 150, 0.001, T0 + 1800010);
    task_full(s, "r2", "answer", "llm.generate", "gpu", "succeeded", 500, 900, 0.02, T0 + 1800200);
    finish_run(s, "r2", "wf-a", 1000, T0 + 1800000, 1200, "succeeded");
    task_full(s, "r3", "embed", "embed", "npu", "succeeded", 200, 250, 0.002, T0 + 3900010);
    finish_run(s, "r3", "wf-b", 500, T0 + 3900000, 300, "succeeded");
    task_full(s, "r4", "embed", "embed", "npu", "succeeded", 200, 150, 0.002, T0 + 4200010);
    task_full(s, "r4", "search", "vector.search", "cpu", "running", 50, NAN, NAN, T0 + 4200200);
    assert_int_equal(loom_store_pg_put_event(s, "r4", "search", "task.started", "{}", &err), 0);
    assert_int_equal(loom_store_pg_flush(s, 10000), 0);
}

#endif
