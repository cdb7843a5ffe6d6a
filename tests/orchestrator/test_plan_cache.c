/* test_plan_cache.c — the planner's plan cache (orchestrator/placement_planner.c):
 * runs of the same workflow text and SLA on an unchanged fleet borrow one
 * plan and announce exactly what a fresh plan announces; a fleet change
 * or a calibration change that moves the plan invalidates the entry; an
 * admission refusal from a cached plan is the refusal a fresh plan gives;
 * the stored form of a plan (plan_codec.h) decodes, and garbage does not.
 * The real policy on a real registry (no MLIR lowering linked here, so
 * PLANNED messages carry no lowering summary). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loom/v1/rpc.pb-c.h"
#include "orchestrator/placement.h"
#include "orchestrator/plan_codec.h"
#include "orchestrator/registry.h"
#include "planner/workflow.h"

static const char *CHAIN = "version: 1\nname: cached\nsteps:\n"
                           "  a:\n    op: noop\n"
                           "  b:\n    op: noop\n    needs: [a]\n"
                           "  c:\n    op: echo\n    value: ${steps.b.output}\n";

/* a step the planner knows takes ~1 s, under an SLA of 50 ms: no placement fits */
static const char *TOO_SLOW = "version: 1\nname: slow\nsla:\n  latency_ms: 50\nsteps:\n"
                              "  s:\n    op: sleep\n    ms: 1000\n    expect:\n      latency_ms: 1000\n";

typedef struct {
    char msg[2048];
    uint8_t plan[1 << 16];
    size_t plan_len;
    int notes;
    int hexed; /* notes that came with the Plan's hex */
    loom_placement_why_t why; /* the first step's placement reason */
} seen_t;

static void on_note(void *ud, const char *run_id, int replanned, const char *message,
                    const struct Loom__V1__Plan *plan, const char *plan_hex)
{
    (void)run_id;
    seen_t *s = ud;
    assert_int_equal(replanned, 0);
    snprintf(s->msg, sizeof s->msg, "%s", message);
    s->plan_len = 0;
    if (plan) {
        s->plan_len = loom__v1__plan__get_packed_size(plan);
        assert_true(s->plan_len <= sizeof s->plan);
        loom__v1__plan__pack(plan, s->plan);
        if (plan_hex) { /* a cached plan as loomd stores it: decodes to the same bytes */
            size_t n = 0;
            uint8_t *bytes = loom_plan_codec_bytes(plan_hex, strlen(plan_hex), 1, 0, &n);
            assert_non_null(bytes);
            assert_int_equal(n, s->plan_len);
            assert_memory_equal(bytes, s->plan, n);
            free(bytes);
            s->hexed++;
        }
    }
    s->notes++;
}

static void add_worker(loom_registry_t *reg, const char *id, double price)
{
    const char *ops[] = {"noop", "echo", "sleep"};
    int known;
    assert_non_null(loom_registry_register(reg, id, (const uint8_t *)id, strlen(id), "cpu", "test", "", 4,
                                           8000000000ull, 100, 20, price, 2, ops, 3, NULL, &known));
}

static loom_workflow_t *parse(const char *text)
{
    loom_workflow_t *wf = NULL;
    assert_int_equal(loom_workflow_parse("cached.yaml", text, strlen(text), &wf, NULL), 0);
    return wf;
}

/* Admits run_id of wf on pl and places its first step; the PLANNED event
 * lands in *s. Returns admit's verdict (the step is placed only when 0). */
static int run_first_step(loom_placement_t *pl, loom_registry_t *reg, const char *run_id, const loom_workflow_t *wf,
                          seen_t *s, loom_err_t *err)
{
    loom_placement_req_t req = {.run_id = run_id, .step_id = "a", .op = "noop", .attempt = 1, .workflow = wf,
                                .note = on_note, .note_ud = s, .why = &s->why};
    int rc = pl->admit(pl->self, &req, reg, 0, err);
    if (rc)
        return rc;
    int never = 0;
    assert_non_null(pl->pick(pl->self, &req, reg, &never));
    pl->dispatched(pl->self);
    return 0;
}

static loom_placement_plan_cache_stats_t stats(const loom_placement_t *pl)
{
    loom_placement_plan_cache_stats_t st;
    assert_int_equal(loom_placement_plan_cache_stats(pl, &st), 0);
    return st;
}

static void repeated_runs_borrow_one_plan_until_the_fleet_or_calibration_changes(void **state)
{
    (void)state;
    loom_registry_t *reg = loom_registry_new(4);
    add_worker(reg, "w1", 1.0);
    add_worker(reg, "w2", 2.0);
    loom_placement_t pl = loom_placement_planner(), fresh = loom_placement_planner();
    loom_workflow_t *wf1 = parse(CHAIN), *wf2 = parse(CHAIN), *wf3 = parse(CHAIN);
    loom_err_t err = {0};
    seen_t *first = calloc(1, sizeof *first), *again = calloc(1, sizeof *again), *ref = calloc(1, sizeof *ref);
    assert_non_null(first && again && ref);

    assert_int_equal(run_first_step(&pl, reg, "r1", wf1, first, &err), 0);
    loom_placement_plan_cache_stats_t st = stats(&pl);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.entries, 1);
    assert_int_equal(first->notes, 1);
    assert_non_null(strstr(first->msg, "plan v1 on 2 live workers"));

    /* the same text parsed again (another run's own workflow): borrowed */
    assert_int_equal(run_first_step(&pl, reg, "r2", wf2, again, &err), 0);
    st = stats(&pl);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_string_equal(again->msg, first->msg);
    assert_int_equal(again->plan_len, first->plan_len);
    assert_memory_equal(again->plan, first->plan, first->plan_len);
    assert_int_equal(again->hexed, 1);

    /* ... and it is what a policy without a cached plan announces */
    assert_int_equal(run_first_step(&fresh, reg, "r2", wf3, ref, &err), 0);
    assert_string_equal(ref->msg, again->msg);
    assert_non_null(strstr(again->why.reason, "planned: cpu worker w1"));
    assert_string_equal(again->why.reason, first->why.reason); /* kept in the entry */
    assert_string_equal(ref->why.reason, again->why.reason);
    assert_true(ref->why.predicted_ms == again->why.predicted_ms);
    assert_int_equal(ref->plan_len, again->plan_len);
    assert_memory_equal(ref->plan, again->plan, ref->plan_len);

    /* runs finishing drop their references; the entry stays */
    pl.run_done(pl.self, "r1");
    pl.run_done(pl.self, "r2");
    assert_int_equal(stats(&pl).entries, 1);

    /* a fleet change: a third worker registers */
    add_worker(reg, "w3", 0.5);
    assert_int_equal(run_first_step(&pl, reg, "r3", wf1, again, &err), 0);
    st = stats(&pl);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.invalidated, 1);
    assert_int_equal(st.entries, 1);
    assert_non_null(strstr(again->msg, "plan v1 on 3 live workers"));
    assert_int_equal(run_first_step(&pl, reg, "r4", wf2, first, &err), 0);
    assert_int_equal(stats(&pl).hits, 2);
    assert_string_equal(first->msg, again->msg);

    /* a calibration change that moves the plan's figures: step c measured
     * at 200 ms on the worker it went to, against a model of ~0.1 ms */
    loom_worker_rec_t *w = loom_registry_by_id(reg, "w3");
    assert_non_null(w);
    pl.observe(pl.self, "r4", "c", "echo", w, 0.1, 200);
    assert_int_equal(run_first_step(&pl, reg, "r5", wf3, again, &err), 0);
    st = stats(&pl);
    assert_int_equal(st.invalidated, 2);
    assert_int_equal(st.misses, 3);
    /* a noise-sized change (50x, but microseconds) is not */
    pl.observe(pl.self, "r5", "a", "noop", w, 0.1, 0.002);
    pl.observe(pl.self, "r5", "a", "noop", w, 0.1, 0.02);
    assert_int_equal(run_first_step(&pl, reg, "r6", wf1, first, &err), 0);
    st = stats(&pl);
    assert_int_equal(st.invalidated, 2);
    assert_int_equal(st.hits, 3);
    assert_string_equal(again->msg, first->msg);

    /* least-loaded has no plan cache */
    loom_placement_t ll = loom_placement_least_loaded();
    loom_placement_plan_cache_stats_t none;
    assert_int_equal(loom_placement_plan_cache_stats(&ll, &none), -1);
    assert_int_equal(none.hits, 0);

    pl.destroy(pl.self);
    fresh.destroy(fresh.self);
    free(first);
    free(again);
    free(ref);
    loom_workflow_destroy(&wf1);
    loom_workflow_destroy(&wf2);
    loom_workflow_destroy(&wf3);
    loom_registry_destroy(&reg);
}

static void a_refusal_from_a_cached_plan_is_the_fresh_refusal(void **state)
{
    (void)state;
    loom_registry_t *reg = loom_registry_new(4);
    add_worker(reg, "w1", 1.0);
    loom_placement_t pl = loom_placement_planner(), fresh = loom_placement_planner();
    loom_workflow_t *wf1 = parse(TOO_SLOW), *wf2 = parse(TOO_SLOW);
    seen_t s = {0};
    loom_err_t e1 = {0}, e2 = {0}, e3 = {0};
    loom_placement_req_t r1 = {.run_id = "s1", .workflow = wf1, .sla_ms = 50, .note = on_note, .note_ud = &s};
    loom_placement_req_t r2 = {.run_id = "s2", .workflow = wf2, .sla_ms = 50, .note = on_note, .note_ud = &s};
    assert_int_equal(pl.admit(pl.self, &r1, reg, 0, &e1), LOOM_EINFEASIBLE);
    assert_int_equal(pl.admit(pl.self, &r2, reg, 0, &e2), LOOM_EINFEASIBLE);
    assert_int_equal(fresh.admit(fresh.self, &r2, reg, 0, &e3), LOOM_EINFEASIBLE);
    loom_placement_plan_cache_stats_t st = stats(&pl);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_non_null(strstr(e1.msg, "meets the SLA of 50 ms"));
    assert_string_equal(e2.msg, e1.msg);
    assert_string_equal(e2.detail, e1.detail);
    assert_string_equal(e2.hint, e1.hint);
    assert_string_equal(e3.msg, e2.msg);
    assert_string_equal(e3.detail, e2.detail);
    /* allowed to miss: admitted on the same cached plan */
    assert_int_equal(pl.admit(pl.self, &r1, reg, 1, &e1), 0);
    assert_int_equal(stats(&pl).hits, 2);
    assert_int_equal(s.notes, 0); /* admission announces nothing */
    pl.destroy(pl.self);
    fresh.destroy(fresh.self);
    loom_workflow_destroy(&wf1);
    loom_workflow_destroy(&wf2);
    loom_registry_destroy(&reg);
}

/* The stored form of a Plan (plan_codec.h): round trip, and garbage refused. */
static void stored_plans_decode_and_garbage_is_refused(void **state)
{
    (void)state;
    Loom__V1__Plan p = LOOM__V1__PLAN__INIT;
    p.version = 3;
    p.predicted_latency_ms = 12.5;
    p.module_mlir = "module { }";
    char *hex = loom_plan_codec_hex(&p);
    assert_non_null(hex);
    size_t n = 0, want = loom__v1__plan__get_packed_size(&p);
    uint8_t *b = loom_plan_codec_bytes(hex, strlen(hex), 1, 7, &n);
    assert_non_null(b);
    assert_int_equal(n, want);
    Loom__V1__Plan *back = loom__v1__plan__unpack(NULL, n, b + 7);
    assert_non_null(back);
    assert_int_equal(back->version, 3);
    assert_string_equal(back->module_mlir, "module { }");
    loom__v1__plan__free_unpacked(back, NULL);
    free(b);
    /* odd length, not hex, too short, truncated stream, wrong length, huge length */
    assert_null(loom_plan_codec_bytes(hex, strlen(hex) - 1, 1, 0, &n));
    assert_null(loom_plan_codec_bytes("zz00000000", 10, 1, 0, &n));
    assert_null(loom_plan_codec_bytes("0100", 4, 1, 0, &n));
    assert_null(loom_plan_codec_bytes(hex, strlen(hex) - 4, 1, 0, &n));
    hex[0] = hex[0] == '0' ? '1' : '0'; /* the length prefix no longer matches */
    assert_null(loom_plan_codec_bytes(hex, strlen(hex), 1, 0, &n));
    assert_null(loom_plan_codec_bytes("ffffffff789c0300000001", 22, 1, 0, &n));
    free(hex);
    /* the plain (older) form is the encoding in hex */
    b = loom_plan_codec_bytes("0803", 4, 0, 0, &n);
    assert_non_null(b);
    assert_int_equal(n, 2);
    assert_int_equal(b[1], 3);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(repeated_runs_borrow_one_plan_until_the_fleet_or_calibration_changes),
        cmocka_unit_test(a_refusal_from_a_cached_plan_is_the_fresh_refusal),
        cmocka_unit_test(stored_plans_decode_and_garbage_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
