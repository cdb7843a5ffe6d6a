/* test_lease_pg.c — loomd failover's database side against a real
 * PostgreSQL 15 (deploy/pg.sh): the leader lease (orchestrator/lease_pg.h)
 * and the writer's fencing (store_pg.h, deploy/sql/006_leader.sql).
 *
 *   - fencing: a store fenced with the leader's epoch commits while that
 *     epoch holds; once another leader bumped it, the store's next write is
 *     refused by the database, never acknowledged, and the store reports
 *     itself fenced (and flushes without waiting);
 *   - a new leader's epoch bump waits for the deposed leader's transaction
 *     in flight (the fence's row lock), so recovery sees what it committed;
 *   - the lease: the first of two leads and records its endpoints, the
 *     other stands by and reads them; when the leader's session ends, the
 *     standby leads with the next epoch; a leader whose event loop stops
 *     turning stops renewing, a standby ends its session after the TTL and
 *     takes over, and the stalled one finds itself deposed. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/clock.h"
#include "common/log.h"
#include "orchestrator/lease_pg.h"
#include "orchestrator/store_pg.h"
#include "tests/pg/pgtest.h"

static const char *url;

/* A fresh, migrated database per test. Returns its URL (static storage). */
static const char *fresh_db(const char *name) {
    const char *u = pgtest_fresh_db(url, name);
    loom_err_t err = {0};
    assert_int_equal(loom_store_pg_migrate(u, NULL, &err), 0);
    return u;
}

typedef struct {
    int calls, status;
} ack_t;

static void on_ack(void *arg, int status) {
    ack_t *a = arg;
    a->calls++;
    a->status = status;
}

static loom_store_pg_run_t run_rec(const char *id) {
    return (loom_store_pg_run_t){.id = id, .workflow_hash = "h1", .workflow_name = "wf",
                                 .state = "queued", .inputs = "{}", .sla_ms = NAN,
                                 .predicted_ms = NAN, .predicted_cost = NAN,
                                 .submitted_ms = 1767261600000};
}

static void exec_ok(PGconn *c, const char *sql) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void test_fenced_writes_are_refused(void **st) {
    (void)st;
    const char *u = fresh_db("fence1");
    PGconn *c = pgtest_connect(u);
    exec_ok(c, "UPDATE loom_leader SET epoch = 7 WHERE id = 1");
    loom_err_t err = {0};
    loom_store_pg_t *s = loom_store_pg_new(&(loom_store_pg_opts_t){.url = u}, &err);
    assert_non_null(s);
    loom_store_pg_set_fence(s, 7);
    assert_int_equal(loom_store_pg_put_workflow(s, "h1", "wf", 100, "name: wf\n", &err), 0);
    ack_t a1 = {0}, a2 = {0};
    loom_store_pg_run_t r = run_rec("r1");
    assert_int_equal(loom_store_pg_submit_run(s, &r, on_ack, &a1, &err), 0);
    assert_int_equal(loom_store_pg_flush(s, 10000), 0);
    assert_int_equal(a1.calls, 1);
    assert_int_equal(a1.status, 0);
    assert_int_equal(loom_store_pg_fenced(s), 0);
    /* another loomd takes the lead: epoch 8 */
    exec_ok(c, "UPDATE loom_leader SET epoch = 8 WHERE id = 1");
    r = run_rec("r2");
    assert_int_equal(loom_store_pg_submit_run(s, &r, on_ack, &a2, &err), 0);
    uint64_t t0 = loom_clock_ms();
    while (!loom_store_pg_fenced(s) && loom_clock_ms() - t0 < 10000)
        usleep(10000);
    assert_int_equal(loom_store_pg_fenced(s), 1);
    /* never committed, never acknowledged; flushing does not wait for it */
    t0 = loom_clock_ms();
    assert_int_equal(loom_store_pg_flush(s, 5000), LOOM_ETIMEDOUT);
    assert_true(loom_clock_ms() - t0 < 2000);
    assert_int_equal(a2.calls, 0);
    assert_int_equal(pgtest_count(c, "SELECT count(*) FROM runs WHERE id = 'r2'"), 0);
    assert_int_equal(pgtest_count(c, "SELECT count(*) FROM runs WHERE id = 'r1'"), 1);
    loom_store_pg_destroy(&s, 1000);
    PQfinish(c);
}

typedef struct {
    const char *url;
    uint64_t done_ms;
    int64_t epoch;
} bump_t;

static void *bump(void *p) {
    bump_t *b = p;
    PGconn *c = pgtest_connect(b->url);
    PGresult *r = PQexec(c, "UPDATE loom_leader SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch");
    b->epoch = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
    b->done_ms = loom_clock_ms();
    PQclear(r);
    PQfinish(c);
    return NULL;
}

/* The deposed leader's transaction that passed its fence check holds the
 * row: the next leader's bump waits for its commit, so whatever a leader
 * committed is visible to the next one's recovery. */
static void test_takeover_waits_for_fenced_transaction(void **st) {
    (void)st;
    const char *u = fresh_db("fence2");
    PGconn *old = pgtest_connect(u);
    exec_ok(old, "UPDATE loom_leader SET epoch = 3 WHERE id = 1");
    exec_ok(old, "BEGIN");
    exec_ok(old, "SELECT loom_fence(3)");
    bump_t b = {.url = u};
    pthread_t th;
    pthread_create(&th, NULL, bump, &b);
    usleep(300000);
    assert_int_equal(b.done_ms, 0); /* still waiting on the row */
    uint64_t commit_ms = loom_clock_ms();
    exec_ok(old, "COMMIT");
    pthread_join(th, NULL);
    assert_true(b.done_ms >= commit_ms);
    assert_int_equal(b.epoch, 4);
    /* the old epoch is fenced now */
    PGresult *r = PQexec(old, "SELECT loom_fence(3)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "LM001");
    PQclear(r);
    PQfinish(old);
}

static loom_lease_t *lease(const char *u, const char *holder, int ttl_ms) {
    loom_err_t err = {0};
    loom_lease_t *l = loom_lease_new(&(loom_lease_opts_t){.url = u, .holder = holder,
                                                          .poll_ms = 50, .check_ms = 100,
                                                          .ttl_ms = ttl_ms},
                                     &err);
    assert_non_null(l);
    return l;
}

/* Waits up to 15 s for l to reach role (keeping its loop "alive" when
 * alive is set); returns its epoch. */
static int64_t wait_role(loom_lease_t *l, loom_lease_role_t role, int alive) {
    uint64_t t0 = loom_clock_ms();
    int64_t epoch = 0;
    while (loom_clock_ms() - t0 < 15000) {
        if (alive)
            loom_lease_alive(l, loom_clock_ms());
        if (loom_lease_role(l, &epoch) == role)
            return epoch;
        usleep(20000);
    }
    fail_msg("role %d not reached", (int)role);
    return -1;
}

static void test_lease_lead_standby_takeover(void **st) {
    (void)st;
    const char *u = fresh_db("lease1");
    loom_err_t err = {0};
    loom_lease_t *a = lease(u, "a", 10000), *b = lease(u, "b", 10000);
    assert_int_equal(loom_lease_start(a, "tcp://a:7400", "tcp://a:7401", &err), 0);
    int64_t ea = wait_role(a, LOOM_LEASE_LEADER, 1);
    assert_int_equal(ea, 1);
    assert_int_equal(loom_lease_start(b, "tcp://b:7400", "tcp://b:7401", &err), 0);
    char cep[256] = "", wep[256] = "";
    uint64_t t0 = loom_clock_ms();
    while (!cep[0] && loom_clock_ms() - t0 < 10000) {
        loom_lease_alive(a, loom_clock_ms());
        loom_lease_leader(b, cep, sizeof cep, wep, sizeof wep);
        usleep(20000);
    }
    assert_string_equal(cep, "tcp://a:7400");
    assert_string_equal(wep, "tcp://a:7401");
    assert_int_equal(loom_lease_role(b, NULL), LOOM_LEASE_STANDBY);
    /* the leader goes (its session closes): the standby leads, epoch 2 */
    loom_lease_destroy(&a);
    assert_int_equal(wait_role(b, LOOM_LEASE_LEADER, 1), 2);
    PGconn *c = pgtest_connect(u);
    char *rows = pgtest_rows(c, "SELECT epoch, holder, client_endpoint FROM loom_leader");
    assert_string_equal(rows, "2|b|tcp://b:7400\n");
    free(rows);
    PQfinish(c);
    loom_lease_destroy(&b);
}

static void test_lease_stalled_leader_replaced(void **st) {
    (void)st;
    const char *u = fresh_db("lease2");
    loom_err_t err = {0};
    loom_lease_t *a = lease(u, "a", 2000), *b = lease(u, "b", 2000);
    assert_int_equal(loom_lease_start(a, "tcp://a:7400", "tcp://a:7401", &err), 0);
    assert_int_equal(wait_role(a, LOOM_LEASE_LEADER, 1), 1);
    assert_int_equal(loom_lease_start(b, "tcp://b:7400", "tcp://b:7401", &err), 0);
    /* a's event loop keeps turning: b stands by through several TTLs */
    uint64_t t0 = loom_clock_ms();
    while (loom_clock_ms() - t0 < 5000) {
        loom_lease_alive(a, loom_clock_ms());
        assert_int_equal(loom_lease_role(b, NULL), LOOM_LEASE_STANDBY);
        usleep(20000);
    }
    /* then it stalls: no renewal; b ends a's session and leads */
    assert_int_equal(wait_role(b, LOOM_LEASE_LEADER, 1), 2);
    /* a, back, finds itself deposed */
    assert_int_equal(wait_role(a, LOOM_LEASE_DEPOSED, 1), 0);
    loom_lease_destroy(&a);
    loom_lease_destroy(&b);
}

int main(void) {
    loom_log_set_level(LOOM_LOG_ERROR);
    url = pgtest_start();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fenced_writes_are_refused),
        cmocka_unit_test(test_takeover_waits_for_fenced_transaction),
        cmocka_unit_test(test_lease_lead_standby_takeover),
        cmocka_unit_test(test_lease_stalled_leader_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
