/* test_store_pg.c — the PostgreSQL store against a real PostgreSQL 15
 * started by deploy/pg.sh: migrations (from empty, twice, four at once),
 * the batching writer (durability callbacks, a rejected write isolated from
 * its batch, several writes of one task coalesced into one), the queue bound while the server is down and no write lost
 * across a restart, recovery reads, finished runs evicted from memory by
 * the byte budget and read back from the database, and every view's rows
 * for a known set of runs. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/log.h"
#include "orchestrator/store_pg.h"
#include "tests/pg/pgtest.h"
#include "tests/pg/known_runs.h"

static const char *url;

/* A fresh database per test that needs one (pgtest.h). */
static const char *fresh_db(const char *name) { return pgtest_fresh_db(url, name); }

static int n_migrations(void) {
    /* One file per schema version in deploy/sql. */
    FILE *f = popen("ls deploy/sql/[0-9][0-9][0-9]_*.sql | wc -l", "r");
    int n = 0;
    assert_int_equal(fscanf(f, "%d", &n), 1);
    pclose(f);
    return n;
}

static void test_migrate_empty_and_again(void **st) {
    (void)st;
    const char *u = fresh_db("mig1");
    loom_err_t err = {0};
    int applied = -1;
    assert_int_equal(loom_store_pg_migrate(u, &applied, &err), 0);
    assert_int_equal(applied, n_migrations());
    PGconn *c = pgtest_connect(u);
    assert_int_equal(pgtest_count(c, "SELECT count(*) FROM schema_migrations"), n_migrations());
    /* every table and view of the schema exists */
    char *rows = pgtest_rows(c,
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables "
        "WHERE table_schema = 'public'");
    assert_non_null(strstr(rows, "events,loom_leader,runs,schema_migrations,sla_outcomes,tasks,"));
    assert_non_null(strstr(rows, "v_cost_model_error,v_cost_model_error_by_op,v_cost_per_run,"));
    assert_non_null(strstr(rows, "v_device_utilisation,v_device_utilisation_hourly,v_fleet,"));
    assert_non_null(strstr(rows, "v_step_placement,"));
    free(rows);
    /* again: nothing to apply, nothing broken */
    assert_int_equal(loom_store_pg_migrate(u, &applied, &err), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(pgtest_count(c, "SELECT count(*) FROM schema_migrations"), n_migrations());
    PQfinish(c);
}

typedef struct {
    const char *url;
    int rc, applied;
} mig_arg_t;

static void *mig_thread(void *p) {
    mig_arg_t *a = p;
    loom_err_t err = {0};
    a->rc = loom_store_pg_migrate(a->url, &a->applied, &err);
    if (a->rc) fprintf(stderr, "migrate: %s %s\n", err.msg, err.detail);
    return NULL;
}

static void test_migrate_concurrently(void **st) {
    (void)st;
    const char *u = fresh_db("mig4");
    pthread_t th[4];
    mig_arg_t a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (mig_arg_t){u, -1, 0};
        pthread_create(&th[i], NULL, mig_thread, &a[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].rc, 0);
        total += a[i].applied;
    }
    assert_int_equal(total, n_migrations()); /* each migration applied exactly once */
    PGconn *c = pgtest_connect(u);
    assert_int_equal(pgtest_count(c, "SELECT count(*) FROM schema_migrations"), n_migrations());
    PQfinish(c);
}

/* ---- writes ------------------------------------------------------------- */

typedef struct {
    PGconn *check;
    const char *run_id;
    int calls, status;
    long rows_at_callback;
} ack_t;

static void on_ack(void *arg, int status) {
    ack_t *a = arg;
    a->calls++;
    a->status = status;
    if (a->check && status == 0) {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE id = '%s'", a->run_id);
        a->rows_at_callback = pgtest_count(a->check, sql);
    }
}

static void test_ack_after_durable_and_bad_write_isolated(void **st) {
    (void)st;
    const char *u = fresh_db("ack");
    loom_err_t err = {0};
    loom_store_pg_t *s = loom_store_pg_new(&(loom_store_pg_opts_t){.url = u}, &err);
    assert_non_null(s);
    PGconn *c = pgtest_connect(u);
    assert_int_equal(loom_store_pg_put_workflow(s, "h1", "wf", 100, "name: wf\n", &err), 0);
    ack_t a = {.check = c, .run_id = "r1"};
    loom_store_pg_run_t r = run_rec("r1", "h1", "wf", "queued", 1767261600000);
    assert_int_equal(loom_store_pg_submit_run(s, &r, on_ack, &a, &err), 0);
    /* a task of a run that does not exist violates the foreign key: only
     * that write fails, the others of the same batch commit */
    ack_t bad = {0}, good = {0};
    loom_store_pg_task_t t = task_rec("nope", "x", "noop", "succeeded");
    assert_int_equal(loom_store_pg_put_task(s, &t, on_ack, &bad, &err), 0);
    t = task_rec("r1", "a", "noop", "succeeded");
    t.output = "{\"v\":1}";
    assert_int_equal(loom_store_pg_put_task(s, &t, on_ack, &good, &err), 0);
    assert_int_equal(loom_store_pg_flush(s, 10000), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.rows_at_callback, 1); /* durable when acknowledged */
    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.status, LOOM_EDB);
    assert_int_equal(good.calls, 1);
    assert_int_equal(good.status, 0);
    char *rows = pgtest_rows(c, "SELECT run_id, task_id, state, output, attempts FROM tasks");
    assert_string_equal(rows, "r1|a|succeeded|{\"v\":1}|0\n");
    free(rows);
    /* a partial update keeps what it does not mention */
    t = task_rec("r1", "a", NULL, NULL);
    t.attempts = 2;
    assert_int_equal(loom_store_pg_put_task(s, &t, NULL, NULL, &err), 0);
    assert_int_equal(loom_store_pg_flush(s, 10000), 0);
    rows = pgtest_rows(c, "SELECT op, state, output, attempts FROM tasks");
    assert_string_equal(rows, "noop|succeeded|{\"v\":1}|2\n");
    free(rows);
    loom_store_pg_stats_t stt;
    loom_store_pg_get_stats(s, &stt);
    assert_int_equal(stt.failed, 1);
    assert_int_equal(stt.queued, 0);
    assert_int_equal(stt.connected, 1);
    loom_store_pg_destroy(&s, 1000);
    loom_store_pg_destroy(&s, 1000); /* safe twice */
    PQfinish(c);
}

/* Several transitions of one task queued behind a blocked batch end up in
 * the same batch: the writer sends one task write (the final state, with
 * what each transition set), keeps every event row (in order, sent as one
 * INSERT), and still acknowledges each write once committed. A second
 * task's writes are not mixed in. */
static void test_batch_coalesces_task_updates(void **st) {
    (void)st;
    const char *u = fresh_db("coalesce");
    loom_err_t err = {0};
    loom_store_pg_t *s = loom_store_pg_new(&(loom_store_pg_opts_t){.url = u}, &err);
    assert_non_null(s);
    PGconn *c = pgtest_connect(u);
    assert_int_equal(loom_store_pg_put_workflow(s, "h1", "wf", 100, "name: wf\n", &err), 0);
    loom_store_pg_run_t r = run_rec("r1", "h1", "wf", "running", 1767261600000);
    assert_int_equal(loom_store_pg_submit_run(s, &r, NULL, NULL, &err), 0);
    assert_int_equal(loom_store_pg_flush(s, 10000), 0);

    /* hold the next batch on a lock so the task writes queue up behind it */
    PGconn *lk = pgtest_connect(u);
    PQclear(PQexec(lk, "BEGIN"));
    PGresult *res = PQexec(lk, "LOCK TABLE workers IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    loom_store_pg_worker_t wk = {.id = "w1", .device_class = "cpu", .slots = 1};
    assert_int_equal(loom_store_pg_put_worker(s, &wk, &err), 0);
    int waiting = 0;
    for (int i = 0; i < 200 && !waiting; i++) {
        waiting = pgtest_count(c, "SELECT count(*) FROM pg_locks WHERE NOT granted") > 0;
        if (!waiting) usleep(25000);
    }
    assert_true(waiting);

    ack_t acks[5] = {0};
    loom_store_pg_task_t t = task_rec("r1", "a", "noop", "pending");
    t.step_id = "s";
    t.attempts = 0;
    assert_int_equal(loom_store_pg_put_task(s, &t, on_ack, &acks[0], &err), 0);
    t = task_rec("r1", "a", NULL, "running");
    t.worker_id = "w1";
    t.device_class = "cpu";
    t.started_ms = 1767261601000;
    t.attempts = 1;
    assert_int_equal(loom_store_pg_put_task(s, &t, on_ack, &acks[1], &err), 0);
    assert_int_equal(loom_store_pg_put_event(s, "r1", "a", "task_started", "w1", &err), 0);
    /* another task in between: its own row, not merged with task a */
    t = task_rec("r1", "b", "noop", "pending");
    assert_int_equal(loom_store_pg_put_task(s, &t, on_ack, &acks[2], &err), 0);
    t = task_rec("r1", "a", NULL, "succeeded");
    t.output = "{\"v\":7}";
    t.actual_ms = 12.5;
    t.finished_ms = 1767261602000;
    assert_int_equal(loom_store_pg_put_task(s, &t, on_ack, &acks[3], &err), 0);
    assert_int_equal(loom_store_pg_put_event(s, "r1", "a", "task_finished", "ok", &err), 0);
    /* the batch's events go as one INSERT of arrays: text that needs
     * quoting in an array literal, the word NULL and real NULLs survive */
    assert_int_equal(loom_store_pg_put_event(s, "r1", NULL, "note", "q\"{a,b}\\ NULL\n", &err), 0);
    assert_int_equal(loom_store_pg_put_event(s, "r1", NULL, "NULL", NULL, &err), 0);
    loom_store_pg_stats_t before;
    loom_store_pg_get_stats(s, &before);
    assert_int_equal(before.coalesced, 0);

    PQclear(PQexec(lk, "COMMIT"));
    PQfinish(lk);
    assert_int_equal(loom_store_pg_flush(s, 10000), 0);
    for (int i = 0; i < 4; i++) {
        if (i == 2) continue;
        assert_int_equal(acks[i].calls, 1);
        assert_int_equal(acks[i].status, 0);
    }
    assert_int_equal(acks[2].calls, 1);
    loom_store_pg_stats_t stt;
    loom_store_pg_get_stats(s, &stt);
    /* the blocked batch held only the worker write (it was sent before
     * the task writes were queued), so the next batch had all three writes
     * of task a: two were folded into the last */
    assert_int_equal(stt.coalesced, 2);
    assert_int_equal(stt.failed, 0);
    char *rows = pgtest_rows(c, "SELECT task_id, step_id, op, state, device_class, worker_id, "
                                "attempts, output, actual_ms, "
                                "extract(epoch FROM started_at)::bigint, "
                                "extract(epoch FROM finished_at)::bigint FROM tasks ORDER BY 1");
    assert_string_equal(rows, "a|s|noop|succeeded|cpu|w1|1|{\"v\":7}|12.5|1767261601|1767261602\n"
                              "b|b|noop|pending|-|-|0|-|-|-|-\n");
    free(rows);
    rows = pgtest_rows(c, "SELECT task_id, kind, detail IS NULL, replace(detail, E'\\n', '/') "
                          "FROM events ORDER BY id");
    assert_string_equal(rows, "a|task_started|f|w1\na|task_finished|f|ok\n"
                              "-|note|f|q\"{a,b}\\ NULL/\n-|NULL|t|-\n");
    free(rows);
    loom_store_pg_destroy(&s, 1000);
    PQfinish(c);
}

static int wait_connected(loom_store_pg_t *s, int want, int ms) {
    for (int i = 0; i < ms / 50; i++) {
        loom_store_pg_stats_t stt;
        loom_store_pg_get_stats(s, &stt);
        if (stt.connected == want) return 1;
        usleep(50000);
    }
    return 0;
}

static void test_outage_bound_and_nothing_lost(void **st) {
    (void)st;
    if (getenv("LOOM_TEST_DB")) {
        skip(); /* needs to stop the server it started */
        return;
    }
    const char *u = fresh_db("outage");
    loom_err_t err = {0};
    loom_store_pg_t *s =
        loom_store_pg_new(&(loom_store_pg_opts_t){.url = u, .queue_max = 50}, &err);
    assert_non_null(s);
    assert_int_equal(loom_store_pg_put_workflow(s, "h1", "wf", 100, "name: wf\n", &err), 0);
    assert_int_equal(loom_store_pg_flush(s, 10000), 0);
    assert_true(wait_connected(s, 1, 5000));

    pgtest_stop_server();
    assert_true(wait_connected(s, 0, 5000)); /* noticed while idle */
    static char ids[100][16];
    static ack_t acks[100];
    int admitted = 0, refused = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(ids[i], sizeof ids[i], "r%03d", i);
        loom_store_pg_run_t r = run_rec(ids[i], "h1", "wf", "queued", 1767261600000 + i);
        loom_err_clear(&err);
        int rc = loom_store_pg_submit_run(s, &r, on_ack, &acks[i], &err);
        if (rc == 0) {
            admitted++;
            loom_store_pg_task_t t = task_rec(ids[i], "a", "noop", "succeeded");
            /* writes about admitted runs are always accepted */
            assert_int_equal(loom_store_pg_put_task(s, &t, NULL, NULL, &err), 0);
        } else {
            assert_int_equal(rc, LOOM_ETOOBIG);
            assert_non_null(strstr(err.msg, "queue full"));
            refused++;
        }
    }
    assert_true(admitted > 0 && refused > 0);
    loom_store_pg_stats_t stt;
    loom_store_pg_get_stats(s, &stt);
    assert_int_equal(stt.connected, 0);
    assert_true(stt.queued >= 50);
    usleep(300000);
    loom_store_pg_get_stats(s, &stt);
    assert_true(stt.lag_ms >= 250); /* the oldest buffered write ages */
    for (int i = 0; i < 100; i++) assert_int_equal(acks[i].calls, 0); /* nothing acked */

    pgtest_start_server();
    assert_int_equal(loom_store_pg_flush(s, 20000), 0);
    loom_store_pg_get_stats(s, &stt);
    assert_int_equal(stt.connected, 1);
    assert_true(stt.reconnects >= 1);
    PGconn *c = pgtest_connect(u);
    assert_int_equal(pgtest_count(c, "SELECT count(*) FROM runs"), admitted);
    assert_int_equal(pgtest_count(c, "SELECT count(*) FROM tasks"), admitted);
    int acked = 0;
    for (int i = 0; i < 100; i++) acked += acks[i].calls == 1 && acks[i].status == 0;
    assert_int_equal(acked, admitted);
    PQfinish(c);
    loom_store_pg_destroy(&s, 1000);
}

static void expect_rows(PGconn *c, const char *sql, const char *want) {
    char *got = pgtest_rows(c, sql);
    if (strcmp(got, want) != 0) fprintf(stderr, "query: %s\n--- got\n%s--- want\n%s", sql, got, want);
    assert_string_equal(got, want);
    free(got);
}

static void test_views_known_runs(void **st) {
    (void)st;
    const char *u = fresh_db("views");
    loom_err_t err = {0};
    loom_store_pg_t *s = loom_store_pg_new(&(loom_store_pg_opts_t){.url = u}, &err);
    assert_non_null(s);
    load_known_runs(s);
    PGconn *c = pgtest_connect(u);
    expect_rows(c, "SELECT id, workflow, state, latency_ms, sla_met, cost, n_tasks, n_done "
                   "FROM v_recent_runs ORDER BY submitted_at DESC",
                "r4|wf-b|running|-|-|0.002|2|1\n"
                "r3|wf-b|succeeded|300|t|0.002|1|1\n"
                "r2|wf-a|succeeded|1200|f|0.021|2|2\n"
                "r1|wf-a|succeeded|800|t|0.011|2|2\n");
    expect_rows(c, "SELECT id, n_done FROM v_live_runs", "r4|1\n");
    expect_rows(c, "SELECT workflow, hour, runs, met, missed, attainment, p95_ms "
                   "FROM v_sla_attainment_hourly ORDER BY hour",
                "wf-a|2026-01-01 10:00:00+00|2|1|1|0.5|1180\n"
                "wf-b|2026-01-01 11:00:00+00|1|1|0|1|300\n");
    expect_rows(c, "SELECT * FROM v_sla_attainment ORDER BY workflow",
                "wf-a|2|1|1|0.5\nwf-b|1|1|0|1\n");
    expect_rows(c, "SELECT run_id, workflow, cost FROM v_cost_per_run ORDER BY run_id",
                "r1|wf-a|0.011\nr2|wf-a|0.021\nr3|wf-b|0.002\nr4|wf-b|0.002\n");
    expect_rows(c, "SELECT workflow, runs, total_cost, avg_cost_per_run FROM v_cost_per_workflow "
                   "ORDER BY workflow",
                "wf-a|2|0.032|0.016\nwf-b|2|0.004|0.002\n");
    expect_rows(c, "SELECT workflow, hour, runs, cost FROM v_cost_hourly ORDER BY hour, workflow",
                "wf-a|2026-01-01 10:00:00+00|2|0.032\nwf-b|2026-01-01 11:00:00+00|2|0.004\n");
    expect_rows(c, "SELECT * FROM v_device_utilisation ORDER BY device_class",
                "cpu|1|4|2|0.5\ngpu|1|2|1|0.5\nnpu|1|1|0|0\n");
    expect_rows(c, "SELECT device_class, hour, busy_ms, tasks FROM v_device_utilisation_hourly "
                   "ORDER BY device_class, hour",
                "cpu|2026-01-01 10:00:00+00|270|2\ngpu|2026-01-01 10:00:00+00|1300|2\n"
                "npu|2026-01-01 11:00:00+00|400|2\n");
    expect_rows(c, "SELECT run_id, task_id, error_ms, rel_error FROM v_cost_model_error "
                   "ORDER BY run_id, task_id",
                "r1|answer|-100|-0.2\nr1|fetch|20|0.2\nr2|answer|400|0.8\nr2|fetch|50|0.5\n"
                "r3|embed|50|0.25\nr4|embed|-50|-0.25\n");
    expect_rows(c, "SELECT * FROM v_cost_model_error_by_op ORDER BY op",
                "embed|npu|2|0.25|0\nllm.generate|gpu|2|0.5|0.3\ntool.exec|cpu|2|0.35|0.35\n");
    expect_rows(c, "SELECT task_id, op, state, device_class, worker_id, reason, attempts "
                   "FROM v_step_placement WHERE run_id = 'r4' ORDER BY started_at",
                "embed|embed|succeeded|npu|w-npu-1|cheapest device meeting the SLA|1\n"
                "search|vector.search|running|cpu|w-cpu-1|cheapest device meeting the SLA|1\n");
    expect_rows(c, "SELECT id, device_class, slots, state, busy_slots FROM v_fleet ORDER BY id",
                "w-cpu-1|cpu|4|ready|2\nw-gpu-1|gpu|2|ready|1\nw-npu-1|npu|1|ready|0\n");
    expect_rows(c, "SELECT run_id, task_id, kind FROM v_run_events", "r4|search|task.started\n");

    /* the dashboard's JSON queries read the same views */
    loom_buf_t b = LOOM_BUF_INIT;
    assert_int_equal(loom_store_pg_query_json(s, "sla", NULL, &b, &err), 0);
    assert_non_null(strstr(b.data, "\"workflow\":\"wf-a\",\"runs\":2,\"met\":1,\"missed\":1"));
    for (const char *const *n = loom_store_pg_query_names; *n; n++) {
        loom_buf_reset(&b);
        assert_int_equal(loom_store_pg_query_json(s, *n, "r4", &b, &err), 0);
        assert_true(b.len >= 2 && b.data[0] == '[');
    }
    loom_buf_reset(&b);
    assert_int_equal(loom_store_pg_query_json(s, "run_steps", "r4", &b, &err), 0);
    assert_non_null(strstr(b.data, "\"task_id\":\"search\""));
    assert_int_equal(loom_store_pg_query_json(s, "drop table runs", NULL, &b, &err),
                     LOOM_ENOTFOUND);
    assert_int_equal(loom_store_pg_query_json(s, "run_steps", NULL, &b, &err), LOOM_EINVAL);
    loom_buf_free(&b);
    PQfinish(c);
    loom_store_pg_destroy(&s, 1000);
}

typedef struct {
    int runs;
    char ids[8][16];
    size_t tasks[8];
    char first_task_state[8][16];
    char yaml[8][64];
} rec_t;

static int on_recovered(void *arg, const loom_store_pg_recovered_t *r) {
    rec_t *rc = arg;
    int i = rc->runs++;
    snprintf(rc->ids[i], sizeof rc->ids[i], "%s", r->run.id);
    rc->tasks[i] = r->n_tasks;
    snprintf(rc->first_task_state[i], 16, "%s", r->n_tasks ? r->tasks[0].state : "");
    snprintf(rc->yaml[i], 64, "%s", r->workflow_yaml);
    return 0;
}

static void test_load_unfinished(void **st) {
    (void)st;
    const char *u = fresh_db("recover");
    loom_err_t err = {0};
    loom_store_pg_t *s = loom_store_pg_new(&(loom_store_pg_opts_t){.url = u}, &err);
    assert_non_null(s);
    load_known_runs(s);
    rec_t rc = {0};
    assert_int_equal(loom_store_pg_load_unfinished(s, on_recovered, &rc, &err), 0);
    assert_int_equal(rc.runs, 1);
    assert_string_equal(rc.ids[0], "r4");
    assert_int_equal(rc.tasks[0], 2);
    assert_string_equal(rc.first_task_state[0], "succeeded"); /* "embed" sorts first */
    assert_string_equal(rc.yaml[0], "name: wf-b\n");
    loom_store_pg_destroy(&s, 1000);
}

/* ---- the store.h vtable ------------------------------------------------- */

static int durable_calls, durable_status;
static void on_durable(void *ud, int status) {
    (void)ud;
    durable_calls++;
    durable_status = status;
}

typedef struct {
    int runs, tasks;
    char run_id[32], state[16], step[32];
    int64_t deadline, created;
    int index;
    char output[64];
    int run_code, task_code; /* error codes (the last task's) */
} seen_t;

static int seen_run(void *ud, const loom_store_run_t *r) {
    seen_t *s = ud;
    s->runs++;
    snprintf(s->run_id, sizeof s->run_id, "%s", r->id);
    snprintf(s->state, sizeof s->state, "%s", loom_store_run_state_name(r->state));
    s->deadline = r->deadline_ms;
    s->created = r->created_ms;
    s->run_code = r->error_code;
    return 0;
}
static int seen_task(void *ud, const loom_store_task_t *t) {
    seen_t *s = ud;
    s->tasks++;
    snprintf(s->step, sizeof s->step, "%s", t->step_id);
    s->index = t->index;
    snprintf(s->output, sizeof s->output, "%s", t->output_json ? t->output_json : "");
    s->task_code = t->error_code;
    return 0;
}

static void test_vtable(void **st) {
    (void)st;
    const char *u = fresh_db("vtable");
    loom_err_t err = {0};
    loom_store_pg_t *raw = NULL;
    loom_store_t *s = loom_store_pg_open(&(loom_store_pg_opts_t){.url = u}, &raw, &err);
    assert_non_null(s);
    assert_non_null(raw);
    assert_string_equal(loom_store_name(s), "pg");
    assert_true(loom_store_poll_fd(s) >= 0);
    int64_t t0 = 1767261600000LL;
    loom_store_run_t run = {.id = "r-1", .workflow = "wf", .workflow_yaml = "name: wf\n",
                            .inputs_json = "{}", .state = LOOM_RUN_PENDING, .created_ms = t0,
                            .deadline_ms = t0 + 1000};
    assert_int_equal(loom_store_run_create(s, &run, &err), 0);
    assert_int_equal(loom_store_when_durable(s, on_durable, NULL, &err), 0);
    /* a succeeded foreach item and a task still running */
    loom_store_task_t t = {.run_id = "r-1", .step_id = "fan", .index = 2, .attempt = 1,
                           .op = "tool.exec", .worker_id = "w1", .device = "cpu",
                           .state = LOOM_TASK_SUCCEEDED, .started_ms = t0 + 10,
                           .finished_ms = t0 + 60, .output_json = "{\"n\":2}",
                           .predicted_ms = 40, .reason = "only cpu can run tool.exec"};
    assert_int_equal(loom_store_task_put(s, &t, &err), 0);
    loom_store_task_t t2 = {.run_id = "r-1", .step_id = "next", .attempt = 2, .op = "noop",
                            .state = LOOM_TASK_RUNNING, .started_ms = t0 + 70};
    assert_int_equal(loom_store_task_put(s, &t2, &err), 0);
    loom_store_event_t ev = {.run_id = "r-1", .seq = 1, .ts_ms = t0, .kind = "run.started"};
    assert_int_equal(loom_store_event_append(s, &ev, &err), 0);
    loom_store_worker_t w = {.id = "w1", .kind = "cpu", .model = "EPYC", .state = "ready",
                             .slots = 4, .busy = 1, .ts_ms = t0};
    assert_int_equal(loom_store_worker_put(s, &w, &err), 0);
    /* the durability callback runs from poll once the run row is committed */
    for (int i = 0; i < 200 && !durable_calls; i++) {
        usleep(10000);
        loom_store_poll(s);
    }
    assert_int_equal(durable_calls, 1);
    assert_int_equal(durable_status, 0);
    assert_int_equal(loom_store_flush(s, &err), 0);

    PGconn *c = pgtest_connect(u);
    expect_rows(c, "SELECT id, workflow_name, state, sla_ms FROM runs", "r-1|wf|pending|1000\n");
    expect_rows(c, "SELECT task_id, step_id, state, device_class, actual_ms, predicted_ms, attempts "
                   "FROM tasks ORDER BY task_id",
                "fan#2|fan|succeeded|cpu|50|40|1\nnext|next|running|-|-|-|2\n");
    expect_rows(c, "SELECT device_class, slots, busy_slots FROM v_fleet", "cpu|4|1\n");

    /* recovery: the unfinished run and only its succeeded task */
    seen_t seen = {0};
    assert_int_equal(loom_store_load_unfinished(s, seen_run, seen_task, &seen, &err), 0);
    assert_int_equal(seen.runs, 1);
    assert_string_equal(seen.run_id, "r-1");
    assert_int_equal(seen.deadline - seen.created, 1000);
    assert_int_equal(seen.tasks, 1);
    assert_string_equal(seen.step, "fan");
    assert_int_equal(seen.index, 2);
    assert_string_equal(seen.output, "{\"n\":2}");

    /* finishing the run records its SLA outcome (1200 ms > 1000 ms: missed) */
    run.state = LOOM_RUN_SUCCEEDED;
    run.started_ms = t0 + 5;
    run.finished_ms = t0 + 1200;
    run.outputs_json = "{\"ok\":true}";
    assert_int_equal(loom_store_run_update(s, &run, &err), 0);
    assert_int_equal(loom_store_flush(s, &err), 0);
    expect_rows(c, "SELECT run_id, latency_ms, met FROM sla_outcomes", "r-1|1200|f\n");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(loom_store_load_unfinished(s, seen_run, seen_task, &seen, &err), 0);
    assert_int_equal(seen.runs, 0);

    /* a failed run keeps its error codes (run and task), not only messages */
    loom_store_run_t run2 = {.id = "r-2", .workflow = "wf", .workflow_yaml = "name: wf\n",
                             .inputs_json = "{}", .state = LOOM_RUN_PENDING, .created_ms = t0};
    assert_int_equal(loom_store_run_create(s, &run2, &err), 0);
    loom_store_task_t t3 = {.run_id = "r-2", .step_id = "slow", .attempt = 1, .op = "tool.exec",
                            .state = LOOM_TASK_TIMED_OUT, .started_ms = t0 + 1,
                            .finished_ms = t0 + 400, .error = "timed out after 400 ms",
                            .error_code = 4 /* DEADLINE_EXCEEDED */};
    assert_int_equal(loom_store_task_put(s, &t3, &err), 0);
    run2.state = LOOM_RUN_FAILED;
    run2.finished_ms = t0 + 401;
    run2.error = "step slow timed out";
    run2.error_code = 4;
    assert_int_equal(loom_store_run_update(s, &run2, &err), 0);
    assert_int_equal(loom_store_flush(s, &err), 0);
    expect_rows(c, "SELECT id, error_code FROM v_recent_runs WHERE id = 'r-2'",
                "r-2|DEADLINE_EXCEEDED\n");
    expect_rows(c, "SELECT task_id, state, error_code FROM v_step_placement WHERE run_id = 'r-2'",
                "slow|timed_out|DEADLINE_EXCEEDED\n");

    /* reads: from memory, and from the database in a fresh process */
    memset(&seen, 0, sizeof seen);
    assert_int_equal(loom_store_run_get(s, "r-1", seen_run, seen_task, &seen, &err), 0);
    assert_string_equal(seen.state, "succeeded");
    loom_store_destroy(&s);
    s = loom_store_pg_open(&(loom_store_pg_opts_t){.url = u}, NULL, &err);
    assert_non_null(s);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(loom_store_run_get(s, "r-1", seen_run, seen_task, &seen, &err), 0);
    assert_string_equal(seen.state, "succeeded");
    assert_int_equal(seen.tasks, 2);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(loom_store_run_get(s, "r-2", seen_run, seen_task, &seen, &err), 0);
    assert_string_equal(seen.state, "failed");
    assert_int_equal(seen.run_code, 4);
    assert_int_equal(seen.task_code, 4);
    assert_int_equal(loom_store_run_get(s, "nope", seen_run, NULL, &seen, &err), LOOM_ENOTFOUND);
    loom_store_destroy(&s);
    PQfinish(c);
}

static int count_ev(void *ud, const loom_store_event_t *ev) {
    (void)ev;
    ++*(int *)ud;
    return 0;
}

/* A byte budget too small for two finished runs: the older one leaves
 * memory whole (its events, served from memory only, are gone), and Get
 * reads it back from PostgreSQL with its tasks. */
static void test_evicted_by_bytes_read_back(void **st) {
    (void)st;
    const char *u = fresh_db("evict");
    loom_err_t err = {0};
    loom_store_t *s =
        loom_store_pg_open(&(loom_store_pg_opts_t){.url = u, .max_finished_bytes = 1}, NULL, &err);
    assert_non_null(s);
    int64_t t0 = 1767261600000LL;
    const char *ids[] = {"r-old", "r-new"};
    for (int k = 0; k < 2; k++) {
        loom_store_run_t run = {.id = ids[k], .workflow = "wf", .workflow_yaml = "name: wf\n",
                                .inputs_json = "{}", .state = LOOM_RUN_RUNNING,
                                .created_ms = t0 + k};
        assert_int_equal(loom_store_run_create(s, &run, &err), 0);
        for (int i = 0; i < 50; i++) {
            loom_store_task_t t = {.run_id = ids[k], .step_id = "each", .index = i, .attempt = 1,
                                   .op = "noop", .worker_id = "w1", .device = "cpu",
                                   .state = LOOM_TASK_SUCCEEDED, .started_ms = t0 + 10,
                                   .finished_ms = t0 + 20, .output_json = "{\"n\":1}"};
            assert_int_equal(loom_store_task_put(s, &t, &err), 0);
        }
        loom_store_event_t ev = {.run_id = ids[k], .seq = 1, .ts_ms = t0, .kind = "run.started"};
        assert_int_equal(loom_store_event_append(s, &ev, &err), 0);
        run.state = LOOM_RUN_SUCCEEDED;
        run.finished_ms = t0 + 30;
        run.outputs_json = "{\"ok\":true}";
        assert_int_equal(loom_store_run_update(s, &run, &err), 0);
    }
    assert_int_equal(loom_store_flush(s, &err), 0);
    int n = 0;
    assert_int_equal(loom_store_events(s, "r-new", 0, count_ev, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(loom_store_events(s, "r-old", 0, count_ev, &n, &err), LOOM_ENOTFOUND);
    seen_t seen = {0};
    assert_int_equal(loom_store_run_get(s, "r-old", seen_run, seen_task, &seen, &err), 0);
    assert_string_equal(seen.state, "succeeded");
    assert_int_equal(seen.tasks, 50);
    loom_store_destroy(&s);
}

/* Every query of the Grafana dashboard runs against the views (with
 * Grafana's macros replaced) and reads only views. */
static void test_grafana_queries(void **st) {
    (void)st;
    const char *u = fresh_db("grafana");
    loom_err_t err = {0};
    loom_store_pg_t *s = loom_store_pg_new(&(loom_store_pg_opts_t){.url = u}, &err);
    assert_non_null(s);
    load_known_runs(s);
    json_error_t je;
    json_t *d = json_load_file("deploy/grafana/loom.json", 0, &je);
    assert_non_null(d);
    PGconn *c = pgtest_connect(u);
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(json_object_get(d, "panels"), i, p) {
        const char *sql = json_string_value(
            json_object_get(json_array_get(json_object_get(p, "targets"), 0), "rawSql"));
        assert_non_null(sql);
        char q[2048], *o = q;
        for (const char *x = sql; *x && o < q + sizeof q - 16;) {
            if (strncmp(x, "$__timeFilter(", 14) == 0) {
                o += sprintf(o, "true");
                x = strchr(x, ')') + 1;
            } else if (strncmp(x, "$run", 4) == 0) {
                o += sprintf(o, "r1");
                x += 4;
            } else {
                *o++ = *x++;
            }
        }
        *o = 0;
        assert_null(strstr(q, "FROM runs"));
        assert_null(strstr(q, "FROM tasks"));
        PGresult *r = PQexec(c, q);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) fprintf(stderr, "%s: %s", q, PQresultErrorMessage(r));
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_true(PQntuples(r) > 0); /* the known runs show up in every panel */
        PQclear(r);
        n++;
    }
    assert_true(n >= 8);
    json_decref(d);
    PQfinish(c);
    loom_store_pg_destroy(&s, 1000);
}

static void test_bad_url(void **st) {
    (void)st;
    loom_err_t err = {0};
    assert_null(loom_store_pg_new(&(loom_store_pg_opts_t){.url = "postgresql://127.0.0.1:1/x"}, &err));
    assert_int_equal(err.code, LOOM_EDB);
    assert_non_null(strstr(err.msg, "cannot connect"));
    assert_null(loom_store_pg_new(&(loom_store_pg_opts_t){.url = ""}, &err));
    assert_int_equal(err.code, LOOM_EINVAL);
    assert_null(loom_store_pg_new(&(loom_store_pg_opts_t){.url = "not a url = ="}, &err));
}

int main(void) {
    loom_log_set_level(LOOM_LOG_WARN);
    url = pgtest_start();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_empty_and_again),
        cmocka_unit_test(test_migrate_concurrently),
        cmocka_unit_test(test_ack_after_durable_and_bad_write_isolated),
        cmocka_unit_test(test_batch_coalesces_task_updates),
        cmocka_unit_test(test_views_known_runs),
        cmocka_unit_test(test_load_unfinished),
        cmocka_unit_test(test_vtable),
        cmocka_unit_test(test_evicted_by_bytes_read_back),
        cmocka_unit_test(test_grafana_queries),
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_outage_bound_and_nothing_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
