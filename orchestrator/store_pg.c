/* store_pg.c — PostgreSQL store: migrations, write statements, recovery
 * reads and the dashboard's view queries. See store_pg.h. */
#include "orchestrator/store_pg.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/map.h"
#include "common/sha.h"
#include "orchestrator/store_pg_writer.h"

/* loom_store_sql_migrations[] and loom_store_sql_views, generated from
 * deploy/sql by deploy/sql/embed.sh into $(BUILD)/gen (see deploy/module.mk). */
#include "store_sql.inc"

/* Key of the session advisory lock that serialises migrations ("loom"). */
#define MIGRATE_LOCK_KEY "1819242349"

struct loom_store_pg {
    loom_pgw_t *writer;
    char *url;
    pthread_mutex_t read_mu;
    PGconn *reader; /* under read_mu */
};

/* ---- helpers ------------------------------------------------------------ */

static const char *first_line(const char *s) {
    static __thread char line[300];
    if (!s) return "";
    size_t n = strcspn(s, "\n");
    if (n >= sizeof line) n = sizeof line - 1;
    memcpy(line, s, n);
    line[n] = 0;
    return line;
}

static PGconn *connect_url(const char *url, const char *app, loom_err_t *err) {
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {url, app, "5", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        loom_err_set(err, LOOM_EDB, "cannot connect to the database");
        loom_err_detail(err, "%s", c ? first_line(PQerrorMessage(c)) : "out of memory");
        loom_err_hint(err, "check --db / LOOM_DB (postgresql://user@host:port/db)");
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

/* Runs sql (no parameters; may hold several statements). */
static int exec_simple(PGconn *c, const char *sql, const char *what, loom_err_t *err) {
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        loom_err_set(err, LOOM_EDB, "%s failed", what);
        loom_err_detail(err, "%s", first_line(PQresultErrorMessage(r)));
        PQclear(r);
        return LOOM_EDB;
    }
    PQclear(r);
    return 0;
}

/* ---- migrations --------------------------------------------------------- */

static int migrate_locked(PGconn *c, int *applied, loom_err_t *err) {
    int rc = exec_simple(c,
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())", "creating schema_migrations", err);
    if (rc) return rc;
    for (const loom_store_sql_t *m = loom_store_sql_migrations; m->name; m++) {
        char ver[16], hex[LOOM_SHA256_HEX_LEN];
        snprintf(ver, sizeof ver, "%d", m->version);
        loom_sha256_hex(m->sql, strlen(m->sql), hex);
        const char *p[3] = {ver, m->name, hex};
        PGresult *r = PQexecParams(c, "SELECT sha256 FROM schema_migrations WHERE version = $1",
                                   1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            loom_err_set(err, LOOM_EDB, "reading schema_migrations failed");
            loom_err_detail(err, "%s", first_line(PQresultErrorMessage(r)));
            PQclear(r);
            return LOOM_EDB;
        }
        if (PQntuples(r) == 1) {
            if (strcmp(PQgetvalue(r, 0, 0), hex) != 0)
                LOOM_WARN("store", "msg=\"applied migration differs from the shipped file\" "
                          "migration=%s", m->name);
            PQclear(r);
            continue;
        }
        PQclear(r);
        if ((rc = exec_simple(c, "BEGIN", "BEGIN", err))) return rc;
        if ((rc = exec_simple(c, m->sql, m->name, err))) {
            loom_err_field(err, "%s", m->name);
            exec_simple(c, "ROLLBACK", "ROLLBACK", NULL);
            return rc;
        }
        r = PQexecParams(c, "INSERT INTO schema_migrations (version, name, sha256) "
                            "VALUES ($1, $2, $3)", 3, NULL, p, NULL, NULL, 0);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            loom_err_set(err, LOOM_EDB, "recording migration %s failed", m->name);
            loom_err_detail(err, "%s", first_line(PQresultErrorMessage(r)));
        }
        PQclear(r);
        if (!ok) {
            exec_simple(c, "ROLLBACK", "ROLLBACK", NULL);
            return LOOM_EDB;
        }
        if ((rc = exec_simple(c, "COMMIT", "COMMIT", err))) return rc;
        LOOM_INFO("store", "msg=\"migration applied\" migration=%s", m->name);
        if (applied) (*applied)++;
    }
    if ((rc = exec_simple(c, "BEGIN", "BEGIN", err))) return rc;
    if ((rc = exec_simple(c, loom_store_sql_views, "creating views", err))) {
        exec_simple(c, "ROLLBACK", "ROLLBACK", NULL);
        return rc;
    }
    return exec_simple(c, "COMMIT", "COMMIT", err);
}

int loom_store_pg_migrate(const char *url, int *applied, loom_err_t *err) {
    if (applied) *applied = 0;
    if (!url || !*url) return loom_err_set(err, LOOM_EINVAL, "no database URL");
    PGconn *c = connect_url(url, "loomd-migrate", err);
    if (!c) return LOOM_EDB;
    int rc = exec_simple(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                         "taking the migration lock", err);
    if (rc == 0) {
        rc = migrate_locked(c, applied, err);
        exec_simple(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", "unlock", NULL);
    }
    PQfinish(c);
    return rc;
}

/* ---- write statements --------------------------------------------------- */

enum { ST_WORKFLOW, ST_RUN_INSERT, ST_RUN_UPDATE, ST_TASK, ST_EVENT, ST_WORKER, ST_SAMPLE,
       ST_SLA, ST_WORKER_KEY, ST__COUNT };

#define TS(n) "to_timestamp($" #n "::float8 / 1000)"

static const loom_pgw_stmt_t stmts[ST__COUNT] = {
    [ST_WORKFLOW] = {"loom_workflow",
        "INSERT INTO workflows (hash, name, sla_ms, yaml) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (hash) DO NOTHING", 4},
    [ST_RUN_INSERT] = {"loom_run_insert",
        "INSERT INTO runs (id, workflow_hash, workflow_name, state, inputs, sla_ms, "
        "predicted_ms, predicted_cost, submitted_at, tenant, labels) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, " TS(9) ", coalesce($10, 'default'), $11::jsonb) "
        "ON CONFLICT (id) DO NOTHING", 11, .keyed = 1},
    /* Updates the run and, when it reaches a final state, records its SLA
     * outcome from the stored submission time and SLA in the same statement. */
    [ST_RUN_UPDATE] = {"loom_run_update",
        "WITH u AS (UPDATE runs SET state = coalesce($2, state), outputs = coalesce($3, outputs), "
        "error = coalesce($4, error), started_at = coalesce(" TS(5) ", started_at), "
        "finished_at = coalesce(" TS(6) ", finished_at), "
        "predicted_ms = coalesce($7, predicted_ms), "
        "predicted_cost = coalesce($8, predicted_cost), "
        "error_code = coalesce($9::int, error_code) WHERE id = $1 RETURNING *), "
        "l AS (SELECT u.*, extract(epoch FROM u.finished_at - u.submitted_at) * 1000 AS ms FROM u "
        "      WHERE u.state IN ('succeeded', 'failed', 'cancelled', 'timed_out') "
        "      AND u.finished_at IS NOT NULL) "
        "INSERT INTO sla_outcomes (run_id, workflow_name, sla_ms, latency_ms, met, at) "
        "SELECT id, workflow_name, sla_ms, ms, state = 'succeeded' AND (sla_ms IS NULL OR ms <= sla_ms), "
        "finished_at FROM l ON CONFLICT (run_id) DO UPDATE SET latency_ms = EXCLUDED.latency_ms, "
        "met = EXCLUDED.met, at = EXCLUDED.at", 9},
    [ST_TASK] = {"loom_task",
        "INSERT INTO tasks AS t (run_id, task_id, step_id, op, state, device_class, worker_id, "
        "reason, needs, predicted_ms, predicted_cost, actual_ms, cost, attempts, output, error, "
        "started_at, finished_at, error_code) VALUES ($1, $2, coalesce($3, $2), coalesce($4, ''), "
        "coalesce($5, 'pending'), $6, $7, $8, $9, $10, $11, $12, $13, coalesce($14::int, 0), "
        "$15, $16, " TS(17) ", " TS(18) ", $19::int) "
        "ON CONFLICT (run_id, task_id) DO UPDATE SET "
        "step_id = coalesce($3, t.step_id), op = coalesce($4, t.op), "
        "state = coalesce($5, t.state), device_class = coalesce($6, t.device_class), "
        "worker_id = coalesce($7, t.worker_id), reason = coalesce($8, t.reason), "
        "needs = coalesce($9, t.needs), predicted_ms = coalesce($10, t.predicted_ms), "
        "predicted_cost = coalesce($11, t.predicted_cost), "
        "actual_ms = coalesce($12, t.actual_ms), cost = coalesce($13, t.cost), "
        "attempts = coalesce($14::int, t.attempts), output = coalesce($15, t.output), "
        "error = coalesce($16, t.error), started_at = coalesce(" TS(17) ", t.started_at), "
        "finished_at = coalesce(" TS(18) ", t.finished_at), "
        "error_code = coalesce($19::int, t.error_code)", 19,
        /* keyed by (run_id, task_id), NULL keeps: one row write per task
         * per batch however many transitions it went through */
        2},
    [ST_EVENT] = {"loom_event",
        "INSERT INTO events (run_id, task_id, kind, detail) VALUES ($1, $2, $3, $4)", 4, 0,
        /* every event of a batch in one INSERT, ids in queue order */
        "INSERT INTO events (run_id, task_id, kind, detail) SELECT r, t, k, d "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY "
        "AS u(r, t, k, d, n) ORDER BY n"},
    [ST_WORKER] = {"loom_worker",
        "INSERT INTO workers (id, device_class, device_name, slots, profile, state, last_seen) "
        "VALUES ($1, $2, coalesce($3, ''), coalesce($4::int, 1), $5, coalesce($6, 'ready'), now()) "
        "ON CONFLICT (id) DO UPDATE SET device_class = EXCLUDED.device_class, "
        "device_name = EXCLUDED.device_name, slots = EXCLUDED.slots, "
        "profile = coalesce(EXCLUDED.profile, workers.profile), state = EXCLUDED.state, "
        "last_seen = now()", 6},
    [ST_SAMPLE] = {"loom_sample",
        "WITH u AS (UPDATE workers SET last_seen = " TS(2) " WHERE id = $1) "
        "INSERT INTO worker_samples (worker_id, at, busy_slots, slots) "
        "VALUES ($1, " TS(2) ", $3, $4) ON CONFLICT DO NOTHING", 4},
    [ST_SLA] = {"loom_sla",
        "INSERT INTO sla_outcomes (run_id, workflow_name, sla_ms, latency_ms, met, at) "
        "VALUES ($1, $2, $3, $4, $5, " TS(6) ") ON CONFLICT (run_id) DO UPDATE SET "
        "sla_ms = EXCLUDED.sla_ms, latency_ms = EXCLUDED.latency_ms, met = EXCLUDED.met, "
        "at = EXCLUDED.at", 6},
    /* loomd rebinds an id only once its old key left the allow-list */
    [ST_WORKER_KEY] = {"loom_worker_key",
        "INSERT INTO worker_keys (worker_id, curve_key) VALUES ($1, $2) "
        "ON CONFLICT (worker_id) DO UPDATE SET curve_key = EXCLUDED.curve_key, bound_at = now() "
        "WHERE worker_keys.curve_key <> EXCLUDED.curve_key", 2},
};

/* Text forms of numbers for parameters; NULL for NAN / 0 times. */
typedef struct { char s[LOOM_PGW_MAX_PARAMS][32]; } numbufs_t;

static const char *dbl(numbufs_t *nb, int i, double v) {
    if (isnan(v)) return NULL;
    snprintf(nb->s[i], sizeof nb->s[i], "%.17g", v);
    return nb->s[i];
}
static const char *tms(numbufs_t *nb, int i, int64_t ms) {
    if (ms == 0) return NULL;
    snprintf(nb->s[i], sizeof nb->s[i], "%" PRId64, ms);
    return nb->s[i];
}
static const char *num(numbufs_t *nb, int i, long long v) {
    snprintf(nb->s[i], sizeof nb->s[i], "%lld", v);
    return nb->s[i];
}

/* ---- lifecycle ---------------------------------------------------------- */

loom_store_pg_t *loom_store_pg_new(const loom_store_pg_opts_t *o, loom_err_t *err) {
    if (!o || !o->url || !*o->url) {
        loom_err_set(err, LOOM_EINVAL, "no database URL");
        return NULL;
    }
    if (loom_store_pg_migrate(o->url, NULL, err) != 0) return NULL;
    loom_store_pg_t *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(o->url))) {
        free(s);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->read_mu, NULL);
    s->writer = loom_pgw_new(o->url, stmts, ST__COUNT, o->queue_max ? o->queue_max : 65536,
                             o->batch_max ? o->batch_max : 256, err);
    if (!s->writer) {
        loom_store_pg_destroy(&s, 0);
        return NULL;
    }
    return s;
}

void loom_store_pg_destroy(loom_store_pg_t **ps, int flush_ms) {
    if (!ps || !*ps) return;
    loom_store_pg_t *s = *ps;
    loom_pgw_destroy(&s->writer, flush_ms);
    PQfinish(s->reader);
    pthread_mutex_destroy(&s->read_mu);
    free(s->url);
    free(s);
    *ps = NULL;
}

/* ---- writes ------------------------------------------------------------- */

int loom_store_pg_put_workflow(loom_store_pg_t *s, const char *hash, const char *name,
                               double sla_ms, const char *yaml, loom_err_t *err) {
    numbufs_t nb;
    const char *p[] = {hash, name, dbl(&nb, 2, sla_ms), yaml};
    return loom_pgw_enqueue(s->writer, ST_WORKFLOW, p, 0, NULL, NULL, err);
}

int loom_store_pg_submit_run(loom_store_pg_t *s, const loom_store_pg_run_t *r,
                             loom_store_pg_done_fn done, void *arg, loom_err_t *err) {
    numbufs_t nb;
    const char *p[] = {r->id, r->workflow_hash, r->workflow_name, r->state ? r->state : "queued",
                       r->inputs, dbl(&nb, 5, r->sla_ms), dbl(&nb, 6, r->predicted_ms),
                       dbl(&nb, 7, r->predicted_cost), tms(&nb, 8, r->submitted_ms), r->tenant,
                       r->labels};
    return loom_pgw_enqueue(s->writer, ST_RUN_INSERT, p, 1, done, arg, err);
}

int loom_store_pg_update_run(loom_store_pg_t *s, const loom_store_pg_run_t *r,
                             loom_store_pg_done_fn done, void *arg, loom_err_t *err) {
    numbufs_t nb;
    const char *p[] = {r->id, r->state, r->outputs, r->error, tms(&nb, 4, r->started_ms),
                       tms(&nb, 5, r->finished_ms), dbl(&nb, 6, r->predicted_ms),
                       dbl(&nb, 7, r->predicted_cost),
                       r->error_code ? num(&nb, 8, r->error_code) : NULL};
    return loom_pgw_enqueue(s->writer, ST_RUN_UPDATE, p, 0, done, arg, err);
}

int loom_store_pg_put_task(loom_store_pg_t *s, const loom_store_pg_task_t *t,
                           loom_store_pg_done_fn done, void *arg, loom_err_t *err) {
    numbufs_t nb;
    const char *p[] = {t->run_id, t->task_id, t->step_id, t->op, t->state, t->device_class,
                       t->worker_id, t->reason, t->needs, dbl(&nb, 9, t->predicted_ms),
                       dbl(&nb, 10, t->predicted_cost), dbl(&nb, 11, t->actual_ms),
                       dbl(&nb, 12, t->cost), t->attempts < 0 ? NULL : num(&nb, 13, t->attempts),
                       t->output, t->error, tms(&nb, 16, t->started_ms),
                       tms(&nb, 17, t->finished_ms),
                       t->error_code ? num(&nb, 18, t->error_code) : NULL};
    return loom_pgw_enqueue(s->writer, ST_TASK, p, 0, done, arg, err);
}

int loom_store_pg_put_event(loom_store_pg_t *s, const char *run_id, const char *task_id,
                            const char *kind, const char *detail, loom_err_t *err) {
    const char *p[] = {run_id, task_id, kind, detail};
    return loom_pgw_enqueue(s->writer, ST_EVENT, p, 0, NULL, NULL, err);
}

int loom_store_pg_put_worker(loom_store_pg_t *s, const loom_store_pg_worker_t *w,
                             loom_err_t *err) {
    numbufs_t nb;
    const char *p[] = {w->id, w->device_class, w->device_name, num(&nb, 3, w->slots),
                       w->profile, w->state};
    return loom_pgw_enqueue(s->writer, ST_WORKER, p, 0, NULL, NULL, err);
}

int loom_store_pg_put_worker_sample(loom_store_pg_t *s, const char *worker_id, int64_t at_ms,
                                    int busy_slots, int slots, loom_err_t *err) {
    numbufs_t nb;
    const char *p[] = {worker_id, tms(&nb, 1, at_ms), num(&nb, 2, busy_slots),
                       num(&nb, 3, slots)};
    return loom_pgw_enqueue(s->writer, ST_SAMPLE, p, 0, NULL, NULL, err);
}

int loom_store_pg_put_sla_outcome(loom_store_pg_t *s, const char *run_id,
                                  const char *workflow_name, double sla_ms, double latency_ms,
                                  int met, int64_t at_ms, loom_err_t *err) {
    numbufs_t nb;
    const char *p[] = {run_id, workflow_name, dbl(&nb, 2, sla_ms), dbl(&nb, 3, latency_ms),
                       met ? "true" : "false", tms(&nb, 5, at_ms)};
    return loom_pgw_enqueue(s->writer, ST_SLA, p, 0, NULL, NULL, err);
}

int loom_store_pg_fd(const loom_store_pg_t *s) { return loom_pgw_fd(s->writer); }
int loom_store_pg_dispatch(loom_store_pg_t *s) { return loom_pgw_dispatch(s->writer); }
int loom_store_pg_flush(loom_store_pg_t *s, int timeout_ms) {
    return loom_pgw_flush(s->writer, timeout_ms);
}

void loom_store_pg_set_fence(loom_store_pg_t *s, int64_t epoch) { loom_pgw_set_fence(s->writer, epoch); }
int loom_store_pg_fenced(loom_store_pg_t *s) { return loom_pgw_fenced(s->writer); }

void loom_store_pg_get_stats(loom_store_pg_t *s, loom_store_pg_stats_t *out) {
    loom_pgw_stats_t w;
    loom_pgw_get_stats(s->writer, &w);
    out->connected = w.connected;
    out->queued = w.queued;
    out->queue_max = w.queue_max;
    out->lag_ms = w.lag_ms;
    out->committed = w.committed;
    out->failed = w.failed;
    out->batches = w.batches;
    out->reconnects = w.reconnects;
    out->coalesced = w.coalesced;
}

/* ---- reads -------------------------------------------------------------- */

/* Runs a parameterised read on the reader connection (reconnecting once
 * when it was lost). Caller holds read_mu and PQclear()s the result. */
static PGresult *read_query(loom_store_pg_t *s, const char *sql, int np, const char *const *p,
                            loom_err_t *err) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!s->reader || PQstatus(s->reader) != CONNECTION_OK) {
            PQfinish(s->reader);
            s->reader = connect_url(s->url, "loomd-reader", err);
            if (!s->reader) return NULL;
        }
        PGresult *r = PQexecParams(s->reader, sql, np, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK) return r;
        int lost = PQstatus(s->reader) != CONNECTION_OK;
        loom_err_set(err, LOOM_EDB, "database query failed");
        loom_err_detail(err, "%s", first_line(PQresultErrorMessage(r)));
        PQclear(r);
        if (!lost) return NULL;
    }
    return NULL;
}

static const char *val(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}
static double dval(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NAN : strtod(PQgetvalue(r, row, col), NULL);
}
static int64_t tval(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

int loom_store_pg_load_unfinished(loom_store_pg_t *s, loom_store_pg_recover_fn fn, void *arg,
                                  loom_err_t *err) {
    pthread_mutex_lock(&s->read_mu);
    int rc = 0;
    PGresult *runs = read_query(s,
        "SELECT r.id, r.workflow_hash, r.workflow_name, r.state, r.inputs, r.sla_ms, "
        "r.predicted_ms, r.predicted_cost, " MS("r.submitted_at") ", " MS("r.started_at") ", "
        "w.yaml, r.tenant FROM runs r JOIN workflows w ON w.hash = r.workflow_hash "
        "WHERE r.state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out') "
        "ORDER BY r.submitted_at, r.id", 0, NULL, err);
    if (!runs) {
        rc = LOOM_EDB;
        goto unlock;
    }
    for (int i = 0; i < PQntuples(runs) && rc == 0; i++) {
        loom_store_pg_recovered_t rec = {0};
        loom_store_pg_run_t *r = &rec.run;
        r->id = val(runs, i, 0);
        r->workflow_hash = val(runs, i, 1);
        r->workflow_name = val(runs, i, 2);
        r->state = val(runs, i, 3);
        r->inputs = val(runs, i, 4);
        r->sla_ms = dval(runs, i, 5);
        r->predicted_ms = dval(runs, i, 6);
        r->predicted_cost = dval(runs, i, 7);
        r->submitted_ms = tval(runs, i, 8);
        r->started_ms = tval(runs, i, 9);
        r->finished_ms = 0;
        rec.workflow_yaml = val(runs, i, 10);
        r->tenant = val(runs, i, 11);
        const char *p[1] = {r->id};
        PGresult *tr = read_query(s,
            "SELECT task_id, step_id, op, state, device_class, worker_id, reason, needs, "
            "output, error, predicted_ms, predicted_cost, actual_ms, cost, attempts, "
            MS("started_at") ", " MS("finished_at") " FROM tasks WHERE run_id = $1 "
            "ORDER BY task_id", 1, p, err);
        if (!tr) {
            rc = LOOM_EDB;
            break;
        }
        int nt = PQntuples(tr);
        loom_store_pg_task_t *ts = calloc(nt ? (size_t)nt : 1, sizeof *ts);
        if (!ts) {
            PQclear(tr);
            rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
            break;
        }
        for (int j = 0; j < nt; j++) {
            loom_store_pg_task_t *t = &ts[j];
            t->run_id = r->id;
            t->task_id = val(tr, j, 0);
            t->step_id = val(tr, j, 1);
            t->op = val(tr, j, 2);
            t->state = val(tr, j, 3);
            t->device_class = val(tr, j, 4);
            t->worker_id = val(tr, j, 5);
            t->reason = val(tr, j, 6);
            t->needs = val(tr, j, 7);
            t->output = val(tr, j, 8);
            t->error = val(tr, j, 9);
            t->predicted_ms = dval(tr, j, 10);
            t->predicted_cost = dval(tr, j, 11);
            t->actual_ms = dval(tr, j, 12);
            t->cost = dval(tr, j, 13);
            t->attempts = (int)tval(tr, j, 14);
            t->started_ms = tval(tr, j, 15);
            t->finished_ms = tval(tr, j, 16);
        }
        rec.n_tasks = (size_t)nt;
        rec.tasks = ts;
        int frc = fn(arg, &rec);
        free(ts);
        PQclear(tr);
        if (frc < 0) rc = frc;
    }
    PQclear(runs);
unlock:
    pthread_mutex_unlock(&s->read_mu);
    return rc;
}

/* The dashboard's queries: each returns one JSON text value. */
#define JSON_OF(q) "SELECT coalesce(json_agg(t), '[]')::text FROM (" q ") t"
static const struct { const char *name, *sql; int takes_arg; } queries[] = {
    {"recent_runs", JSON_OF("SELECT * FROM v_recent_runs ORDER BY submitted_at DESC, id LIMIT 50"), 0},
    {"live_runs", JSON_OF("SELECT * FROM v_live_runs ORDER BY submitted_at, id"), 0},
    {"sla", JSON_OF("SELECT * FROM v_sla_attainment ORDER BY workflow"), 0},
    {"sla_hourly", JSON_OF("SELECT * FROM v_sla_attainment_hourly "
                           "WHERE hour > (SELECT max(hour) FROM v_sla_attainment_hourly) - interval '48 hours' "
                           "ORDER BY hour, workflow"), 0},
    {"cost_workflow", JSON_OF("SELECT * FROM v_cost_per_workflow ORDER BY workflow"), 0},
    {"cost_hourly", JSON_OF("SELECT * FROM v_cost_hourly "
                            "WHERE hour > (SELECT max(hour) FROM v_cost_hourly) - interval '48 hours' "
                            "ORDER BY hour, workflow"), 0},
    {"utilisation", JSON_OF("SELECT * FROM v_device_utilisation ORDER BY device_class"), 0},
    {"cost_model_error", JSON_OF("SELECT * FROM v_cost_model_error_by_op ORDER BY op, device_class"), 0},
    {"fleet", JSON_OF("SELECT * FROM v_fleet ORDER BY device_class, id"), 0},
    {"run_steps", JSON_OF("SELECT * FROM v_step_placement WHERE run_id = $1 "
                          "ORDER BY started_at NULLS LAST, task_id"), 1},
    {"run_events", JSON_OF("SELECT * FROM v_run_events WHERE run_id = $1 ORDER BY id"), 1},
};
#define NQUERIES (sizeof queries / sizeof queries[0])

const char *const loom_store_pg_query_names[] = {
    "recent_runs", "live_runs", "sla", "sla_hourly", "cost_workflow", "cost_hourly",
    "utilisation", "cost_model_error", "fleet", "run_steps", "run_events", NULL};

/* The per-run and run-list queries restricted to one tenant (their views
 * carry runs.tenant); the fleet-wide aggregates have no such form. */
static const struct { const char *name, *sql; } tenant_queries[] = {
    {"recent_runs", JSON_OF("SELECT * FROM v_recent_runs WHERE tenant = $1 "
                            "ORDER BY submitted_at DESC, id LIMIT 50")},
    {"live_runs", JSON_OF("SELECT * FROM v_live_runs WHERE tenant = $1 ORDER BY submitted_at, id")},
    {"run_steps", JSON_OF("SELECT * FROM v_step_placement WHERE tenant = $1 AND run_id = $2 "
                          "ORDER BY started_at NULLS LAST, task_id")},
    {"run_events", JSON_OF("SELECT * FROM v_run_events WHERE tenant = $1 AND run_id = $2 ORDER BY id")},
};

int loom_store_pg_query_json(loom_store_pg_t *s, const char *name, const char *arg,
                             loom_buf_t *out, loom_err_t *err) {
    return loom_store_pg_query_json_tenant(s, name, arg, NULL, out, err);
}

int loom_store_pg_query_json_tenant(loom_store_pg_t *s, const char *name, const char *arg,
                                    const char *tenant, loom_buf_t *out, loom_err_t *err) {
    size_t i = 0;
    while (i < NQUERIES && strcmp(queries[i].name, name) != 0) i++;
    if (i == NQUERIES) return loom_err_set(err, LOOM_ENOTFOUND, "unknown query '%s'", name);
    if (queries[i].takes_arg && !arg)
        return loom_err_set(err, LOOM_EINVAL, "query '%s' needs an argument", name);
    const char *sql = queries[i].sql;
    const char *p[2] = {arg, NULL};
    int np = queries[i].takes_arg;
    if (tenant) {
        size_t k = 0, nt = sizeof tenant_queries / sizeof tenant_queries[0];
        while (k < nt && strcmp(tenant_queries[k].name, name) != 0) k++;
        if (k == nt)
            return loom_err_set(err, LOOM_EPROTO, "'%s' spans every tenant: it needs the admin role",
                                name);
        sql = tenant_queries[k].sql;
        p[0] = tenant;
        p[1] = arg;
        np++;
    }
    pthread_mutex_lock(&s->read_mu);
    PGresult *r = read_query(s, sql, np, p, err);
    int rc = LOOM_EDB;
    if (r) {
        rc = PQntuples(r) == 1 ? loom_buf_puts(out, PQgetvalue(r, 0, 0)) : LOOM_EINTERNAL;
        PQclear(r);
    }
    pthread_mutex_unlock(&s->read_mu);
    return rc;
}

/* ---- store.h vtable ------------------------------------------------------ */

/* State of the vtable implementation: the PostgreSQL handle plus an
 * in-memory store that serves reads (a cache; its errors are ignored). */
typedef struct pgv {
    loom_store_pg_t *pg;
    loom_store_t *mem;
    loom_map_t *wf_seen; /* workflow hashes already queued for writing */
} pgv_t;

static double ms_or_null(double v) { return v > 0 ? v : NAN; }

/* "step" for index 0, "step#i" otherwise (foreach items, loop iterations). */
static const char *task_key(const char *step, int index, char *buf, size_t n) {
    if (index <= 0) return step;
    snprintf(buf, n, "%s#%d", step, index);
    return buf;
}

static int v_run_create(void *self, const loom_store_run_t *run, loom_err_t *err) {
    pgv_t *v = self;
    if (!run || !run->id) return loom_err_set(err, LOOM_EINVAL, "run without an id");
    const char *yaml = run->workflow_yaml ? run->workflow_yaml : "";
    char hash[LOOM_SHA256_HEX_LEN];
    loom_sha256_hex(yaml, strlen(yaml), hash);
    double sla = run->deadline_ms && run->created_ms ? (double)(run->deadline_ms - run->created_ms)
                                                     : NAN;
    if (!loom_map_has(v->wf_seen, hash)) {
        int rc = loom_store_pg_put_workflow(v->pg, hash, run->workflow ? run->workflow : "", sla,
                                            yaml, err);
        if (rc) return rc;
        if (loom_map_len(v->wf_seen) > 10000) {
            loom_map_destroy(&v->wf_seen); /* a bound; re-sending is harmless */
            v->wf_seen = loom_map_new(NULL);
        }
        if (v->wf_seen) loom_map_put(v->wf_seen, hash, (void *)1);
    }
    loom_store_pg_run_t r = {
        .id = run->id, .workflow_hash = hash, .workflow_name = run->workflow ? run->workflow : "",
        .state = loom_store_run_state_name(run->state), .inputs = run->inputs_json,
        .outputs = run->outputs_json, .error = run->error, .sla_ms = sla, .predicted_ms = NAN,
        .predicted_cost = NAN, .submitted_ms = run->created_ms ? run->created_ms : loom_wall_ms(),
        .started_ms = run->started_ms, .finished_ms = run->finished_ms, .tenant = run->tenant,
        .labels = run->labels_json};
    int rc = loom_store_pg_submit_run(v->pg, &r, NULL, NULL, err);
    if (rc) return rc;
    loom_store_run_create(v->mem, run, NULL);
    return 0;
}

static int v_run_update(void *self, const loom_store_run_t *run, loom_err_t *err) {
    pgv_t *v = self;
    if (!run || !run->id) return loom_err_set(err, LOOM_EINVAL, "run without an id");
    loom_store_pg_run_t r = {.id = run->id, .state = loom_store_run_state_name(run->state),
                             .outputs = run->outputs_json, .error = run->error,
                             .error_code = run->error_code,
                             .sla_ms = NAN, .predicted_ms = NAN, .predicted_cost = NAN,
                             .started_ms = run->started_ms, .finished_ms = run->finished_ms};
    if (loom_store_run_state_final(run->state) && !r.finished_ms) r.finished_ms = loom_wall_ms();
    int rc = loom_store_pg_update_run(v->pg, &r, NULL, NULL, err);
    if (rc) return rc;
    loom_store_run_update(v->mem, run, NULL);
    return 0;
}

static int v_task_put(void *self, const loom_store_task_t *t, loom_err_t *err) {
    pgv_t *v = self;
    if (!t || !t->run_id || !t->step_id) return loom_err_set(err, LOOM_EINVAL, "task without ids");
    char key[256];
    int final = loom_store_task_state_final(t->state);
    loom_store_pg_task_t pt = {
        .run_id = t->run_id, .task_id = task_key(t->step_id, t->index, key, sizeof key),
        .step_id = t->step_id, .op = t->op, .state = loom_store_task_state_name(t->state),
        .device_class = t->device, .worker_id = t->worker_id, .reason = t->reason,
        .needs = t->needs_json, .output = t->output_json, .error = t->error,
        .error_code = t->error_code, .predicted_ms = ms_or_null(t->predicted_ms), .predicted_cost = ms_or_null(t->predicted_cost),
        .actual_ms = final && t->started_ms && t->finished_ms
                         ? (double)(t->finished_ms - t->started_ms) : NAN,
        .cost = ms_or_null(t->cost), .attempts = t->attempt,
        .started_ms = t->started_ms, .finished_ms = t->finished_ms};
    int rc = loom_store_pg_put_task(v->pg, &pt, NULL, NULL, err);
    if (rc) return rc;
    loom_store_task_put(v->mem, t, NULL);
    return 0;
}

static int v_event_append(void *self, const loom_store_event_t *ev, loom_err_t *err) {
    pgv_t *v = self;
    if (!ev || !ev->run_id || !ev->kind) return loom_err_set(err, LOOM_EINVAL, "event without run/kind");
    char key[256];
    const char *task = ev->step_id ? task_key(ev->step_id, ev->index, key, sizeof key) : NULL;
    int rc = loom_store_pg_put_event(v->pg, ev->run_id, task, ev->kind, ev->detail_json, err);
    if (rc) return rc;
    loom_store_event_append(v->mem, ev, NULL);
    return 0;
}

static int v_worker_put(void *self, const loom_store_worker_t *w, loom_err_t *err) {
    pgv_t *v = self;
    if (!w || !w->id) return loom_err_set(err, LOOM_EINVAL, "worker without an id");
    loom_store_pg_worker_t pw = {.id = w->id, .device_class = w->kind ? w->kind : "cpu",
                                 .device_name = w->model, .profile = w->profile_json,
                                 .state = w->state, .slots = w->slots};
    int rc = loom_store_pg_put_worker(v->pg, &pw, err);
    if (rc == 0 && w->ts_ms)
        rc = loom_store_pg_put_worker_sample(v->pg, w->id, w->ts_ms, w->busy, w->slots, err);
    if (rc) return rc;
    loom_store_worker_put(v->mem, w, NULL);
    return 0;
}

static int v_worker_key_put(void *self, const char *worker_id, const char *key,
                            loom_err_t *err) {
    const char *p[] = {worker_id, key};
    return loom_pgw_enqueue(((pgv_t *)self)->pg->writer, ST_WORKER_KEY, p, 0, NULL, NULL, err);
}

static int v_worker_keys_load(void *self, int (*fn)(void *ud, const char *id, const char *key),
                              void *ud, loom_err_t *err) {
    loom_store_pg_t *s = ((pgv_t *)self)->pg;
    pthread_mutex_lock(&s->read_mu);
    PGresult *r = read_query(s, "SELECT worker_id, curve_key FROM worker_keys ORDER BY worker_id",
                             0, NULL, err);
    int rc = r ? 0 : LOOM_EDB;
    for (int i = 0; r && i < PQntuples(r) && rc == 0; i++)
        rc = fn(ud, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    pthread_mutex_unlock(&s->read_mu);
    return rc;
}

/* List: the runs in memory (the newest, the active and those not yet
 * written) merged with the database's history, newest first, by
 * (created, id); a run in both comes from memory. Without the database
 * (the writer's connection is down), memory alone. */
typedef struct {
    char id[64];
    int64_t created;
} list_key_t;

typedef struct {
    list_key_t *keys;
    int n, cap;
} list_keys_t;

static int on_mem_key(void *ud, const loom_store_run_t *r) {
    list_keys_t *k = ud;
    if (k->n == k->cap) return 1;
    snprintf(k->keys[k->n].id, sizeof k->keys[k->n].id, "%s", r->id);
    k->keys[k->n++].created = r->created_ms;
    return 0;
}

static int db_row_run(PGresult *r, int i, loom_store_run_fn fn, void *ud) {
    int st = loom_store_run_state_parse(val(r, i, 2));
    double sla = dval(r, i, 8);
    loom_store_run_t run = {.id = val(r, i, 0), .workflow = val(r, i, 1),
                            .state = st < 0 ? LOOM_RUN_FAILED : (loom_run_state_t)st,
                            .error = val(r, i, 3), .created_ms = tval(r, i, 4),
                            .started_ms = tval(r, i, 5), .finished_ms = tval(r, i, 6),
                            .tenant = val(r, i, 7), .sla_missed = strcmp(val(r, i, 9), "t") == 0,
                            .labels_json = val(r, i, 10), .cost = dval(r, i, 11)};
    run.deadline_ms = isnan(sla) ? 0 : run.created_ms + (int64_t)sla;
    return fn(ud, &run);
}

static int mem_emit(void *ud, const loom_store_run_t *r) {
    void **a = ud;
    return ((loom_store_run_fn)a[0])(a[1], r);
}

static int v_run_list(void *self, const loom_store_filter_t *f, loom_store_run_fn fn, void *ud,
                      loom_err_t *err) {
    pgv_t *v = self;
    int limit = f && f->limit > 0 ? f->limit : 100;
    list_keys_t mk = {.keys = calloc((size_t)limit, sizeof *mk.keys), .cap = limit};
    if (!mk.keys) return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    int rc = loom_store_run_list(v->mem, f, on_mem_key, &mk, err);
    if (rc) {
        free(mk.keys);
        return rc;
    }
    /* The same filter in SQL: $n parameters as text. */
    loom_store_pg_t *s = v->pg;
    char sql[2048], nums[6][32], *labels = NULL;
    const char *p[16];
    int np = 0;
    int n = snprintf(sql, sizeof sql,
        "SELECT r.id, r.workflow_name, r.state, r.error, " MS("r.submitted_at") ", "
        MS("r.started_at") ", " MS("r.finished_at") ", r.tenant, r.sla_ms, "
        "coalesce(NOT so.met, false), r.labels::text, "
        "(SELECT coalesce(sum(t.cost), 0) FROM tasks t WHERE t.run_id = r.id) "
        "FROM runs r LEFT JOIN sla_outcomes so ON so.run_id = r.id WHERE true");
#define COND(fmt, value) do { p[np++] = (value); \
        n += snprintf(sql + n, sizeof sql - (size_t)n, fmt, np); } while (0)
    if (f && f->state >= 0) COND(" AND r.state = $%d", loom_store_run_state_name(f->state));
    if (f && f->workflow) COND(" AND r.workflow_name = $%d", f->workflow);
    if (f && f->tenant) COND(" AND r.tenant = $%d", f->tenant);
    if (f && f->after_ms) {
        snprintf(nums[0], sizeof nums[0], "%" PRId64, f->after_ms);
        COND(" AND r.submitted_at >= to_timestamp($%d::float8 / 1000)", nums[0]);
    }
    if (f && f->until_ms) {
        snprintf(nums[1], sizeof nums[1], "%" PRId64, f->until_ms);
        COND(" AND r.submitted_at < to_timestamp($%d::float8 / 1000)", nums[1]);
    }
    if (f && f->n_labels > 0) {
        json_t *o = json_object();
        for (int i = 0; i < f->n_labels; i++)
            json_object_set_new(o, f->label_keys[i], json_string(f->label_values[i]));
        labels = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        COND(" AND r.labels @> $%d::jsonb", labels);
    }
    if (f && f->before_id) {
        snprintf(nums[2], sizeof nums[2], "%" PRId64, f->before_ms);
        p[np++] = nums[2];
        p[np++] = f->before_id;
        n += snprintf(sql + n, sizeof sql - (size_t)n, " AND (" MS("r.submitted_at")
                      ", r.id) < ($%d::bigint, $%d)", np - 1, np);
    }
#undef COND
    snprintf(nums[3], sizeof nums[3], "%d", limit);
    p[np++] = nums[3];
    snprintf(sql + n, sizeof sql - (size_t)n, " ORDER BY r.submitted_at DESC, r.id DESC LIMIT $%d",
             np);
    /* loomd's loop waits on this read: not while the database is down
     * (a reconnect could take the connect timeout) */
    loom_store_pg_stats_t ps;
    loom_store_pg_get_stats(s, &ps);
    pthread_mutex_lock(&s->read_mu);
    loom_err_t derr = {0};
    PGresult *r = ps.connected ? read_query(s, sql, np, p, &derr) : NULL;
    free(labels);
    if (!r) LOOM_DEBUG("store_pg", "msg=\"list: history unavailable\" err=\"%s\"", derr.msg);
    /* Merge, newest first; the database's copy of a run in memory is skipped. */
    int i = 0, j = 0, rows = r ? PQntuples(r) : 0, emitted = 0;
    void *pass[2] = {(void *)fn, ud};
    while (emitted < limit && (i < mk.n || j < rows)) {
        if (j < rows) {
            const char *id = val(r, j, 0);
            int dup = 0;
            for (int k = 0; k < mk.n && !dup; k++) dup = strcmp(mk.keys[k].id, id) == 0;
            if (dup) {
                j++;
                continue;
            }
        }
        int take_mem = i < mk.n && (j >= rows || mk.keys[i].created > tval(r, j, 4) ||
                                    (mk.keys[i].created == tval(r, j, 4) &&
                                     strcmp(mk.keys[i].id, val(r, j, 0)) > 0));
        int stop = take_mem ? loom_store_run_get(v->mem, mk.keys[i++].id, mem_emit, NULL, pass, NULL)
                            : db_row_run(r, j++, fn, ud);
        emitted++;
        if (stop && stop != LOOM_ENOTFOUND) break;
    }
    PQclear(r);
    pthread_mutex_unlock(&s->read_mu);
    free(mk.keys);
    return 0;
}

/* run_get for a run no longer in memory: read it back from the database. */
static int db_run_get(pgv_t *v, const char *id, loom_store_run_fn run_fn,
                      loom_store_task_fn task_fn, void *ud, loom_err_t *err) {
    loom_store_pg_t *s = v->pg;
    const char *p[1] = {id};
    pthread_mutex_lock(&s->read_mu);
    int rc = 0;
    PGresult *r = read_query(s,
        "SELECT r.id, r.workflow_name, w.yaml, r.inputs, r.outputs, r.error, r.state, "
        MS("r.submitted_at") ", " MS("r.started_at") ", " MS("r.finished_at") ", r.sla_ms, "
        "coalesce(NOT s.met, false), (SELECT count(*) FROM tasks t WHERE t.run_id = r.id), "
        "(SELECT count(*) FROM tasks t WHERE t.run_id = r.id AND t.state = 'succeeded'), "
        "r.tenant, r.error_code, r.labels::text, "
        "(SELECT coalesce(sum(t.cost), 0) FROM tasks t WHERE t.run_id = r.id) "
        "FROM runs r JOIN workflows w ON w.hash = r.workflow_hash "
        "LEFT JOIN sla_outcomes s ON s.run_id = r.id WHERE r.id = $1", 1, p, err);
    if (!r) {
        rc = LOOM_EDB;
        goto unlock;
    }
    if (PQntuples(r) != 1) {
        rc = loom_err_set(err, LOOM_ENOTFOUND, "no run '%s'", id);
        goto clear;
    }
    int st = loom_store_run_state_parse(val(r, 0, 6));
    double sla = dval(r, 0, 10);
    loom_store_run_t run = {.id = val(r, 0, 0), .workflow = val(r, 0, 1),
                            .workflow_yaml = val(r, 0, 2), .inputs_json = val(r, 0, 3),
                            .outputs_json = val(r, 0, 4), .error = val(r, 0, 5),
                            .state = st < 0 ? LOOM_RUN_FAILED : (loom_run_state_t)st,
                            .created_ms = tval(r, 0, 7), .started_ms = tval(r, 0, 8),
                            .finished_ms = tval(r, 0, 9),
                            .sla_missed = strcmp(val(r, 0, 11), "t") == 0,
                            .tasks_total = (int)tval(r, 0, 12), .tasks_done = (int)tval(r, 0, 13),
                            .tenant = val(r, 0, 14), .error_code = (int)tval(r, 0, 15),
                            .labels_json = val(r, 0, 16), .cost = dval(r, 0, 17)};
    run.deadline_ms = isnan(sla) ? 0 : run.created_ms + (int64_t)sla;
    if (run_fn && run_fn(ud, &run) != 0) goto clear;
    if (task_fn) {
        PGresult *tr = read_query(s,
            "SELECT step_id, task_id, attempts, op, worker_id, device_class, state, "
            MS("started_at") ", " MS("finished_at") ", output, error, error_code, reason, "
            "coalesce(predicted_ms, 0), coalesce(cost, 0) FROM tasks "
            "WHERE run_id = $1 ORDER BY started_at NULLS LAST, task_id", 1, p, err);
        if (!tr) {
            rc = LOOM_EDB;
            goto clear;
        }
        for (int i = 0; i < PQntuples(tr); i++) {
            const char *hash = strchr(val(tr, i, 1), '#');
            int ts = loom_store_task_state_parse(val(tr, i, 6));
            loom_store_task_t t = {.run_id = id, .step_id = val(tr, i, 0),
                                   .index = hash ? atoi(hash + 1) : 0,
                                   .attempt = (int)tval(tr, i, 2), .op = val(tr, i, 3),
                                   .worker_id = val(tr, i, 4), .device = val(tr, i, 5),
                                   .state = ts < 0 ? LOOM_TASK_FAILED : (loom_task_state_t)ts,
                                   .started_ms = tval(tr, i, 7), .finished_ms = tval(tr, i, 8),
                                   .output_json = val(tr, i, 9), .error = val(tr, i, 10),
                                   .error_code = (int)tval(tr, i, 11),
                                   .reason = val(tr, i, 12), .predicted_ms = dval(tr, i, 13),
                                   .cost = dval(tr, i, 14)};
            if (task_fn(ud, &t) != 0) break;
        }
        PQclear(tr);
    }
clear:
    PQclear(r);
unlock:
    pthread_mutex_unlock(&s->read_mu);
    return rc;
}

static int v_run_get(void *self, const char *id, loom_store_run_fn run_fn,
                     loom_store_task_fn task_fn, void *ud, loom_err_t *err) {
    pgv_t *v = self;
    int rc = loom_store_run_get(v->mem, id, run_fn, task_fn, ud, err);
    if (rc != LOOM_ENOTFOUND) return rc;
    loom_err_clear(err);
    return db_run_get(v, id, run_fn, task_fn, ud, err);
}

static int v_events(void *self, const char *run_id, int64_t after, loom_store_event_fn fn,
                    void *ud, loom_err_t *err) {
    return loom_store_events(((pgv_t *)self)->mem, run_id, after, fn, ud, err);
}

typedef struct {
    loom_store_run_fn run_fn;
    loom_store_task_fn task_fn;
    void *ud;
    loom_store_t *mem; /* the reads' copy: a recovered run is read and watched from it */
} recover_ctx_t;

static int v_recovered(void *arg, const loom_store_pg_recovered_t *r) {
    recover_ctx_t *c = arg;
    int st = loom_store_run_state_parse(r->run.state);
    int done = 0;
    for (size_t i = 0; i < r->n_tasks; i++) done += strcmp(r->tasks[i].state, "succeeded") == 0;
    loom_store_run_t run = {.id = r->run.id, .workflow = r->run.workflow_name,
                            .workflow_yaml = r->workflow_yaml, .inputs_json = r->run.inputs,
                            .state = st < 0 ? LOOM_RUN_PENDING : (loom_run_state_t)st,
                            .created_ms = r->run.submitted_ms, .started_ms = r->run.started_ms,
                            .tasks_total = (int)r->n_tasks, .tasks_done = done,
                            .tenant = r->run.tenant};
    run.deadline_ms = isnan(r->run.sla_ms) ? 0 : run.created_ms + (int64_t)r->run.sla_ms;
    /* this loomd (a restart, or a standby taking over) has not seen the run:
     * put it in the in-memory copy, so Watch and Get answer from there */
    loom_err_t merr;
    loom_store_run_create(c->mem, &run, &merr);
    if (c->run_fn && c->run_fn(c->ud, &run) != 0) return 1;
    for (size_t i = 0; c->task_fn && i < r->n_tasks; i++) {
        const loom_store_pg_task_t *t = &r->tasks[i];
        if (strcmp(t->state, "succeeded") != 0) continue; /* only finished work is kept */
        const char *hash = strchr(t->task_id, '#');
        loom_store_task_t tk = {.run_id = run.id, .step_id = t->step_id,
                                .index = hash ? atoi(hash + 1) : 0, .attempt = t->attempts,
                                .op = t->op, .worker_id = t->worker_id, .device = t->device_class,
                                .state = LOOM_TASK_SUCCEEDED, .started_ms = t->started_ms,
                                .finished_ms = t->finished_ms, .output_json = t->output,
                                .predicted_ms = isnan(t->predicted_ms) ? 0 : t->predicted_ms,
                                .reason = t->reason, .needs_json = t->needs};
        loom_store_task_put(c->mem, &tk, &merr);
        if (c->task_fn(c->ud, &tk) != 0) return 1;
    }
    return 0;
}

static int v_load_unfinished(void *self, loom_store_run_fn run_fn, loom_store_task_fn task_fn,
                             void *ud, loom_err_t *err) {
    recover_ctx_t c = {run_fn, task_fn, ud, ((pgv_t *)self)->mem};
    int rc = loom_store_pg_load_unfinished(((pgv_t *)self)->pg, v_recovered, &c, err);
    return rc > 0 ? 0 : rc;
}

static int v_flush(void *self, loom_err_t *err) {
    if (loom_store_pg_flush(((pgv_t *)self)->pg, 30000) != 0)
        return loom_err_set(err, LOOM_ETIMEDOUT, "database writes still pending after 30 s");
    return 0;
}

static void v_destroy(void *self) {
    pgv_t *v = self;
    if (!v) return;
    loom_store_pg_destroy(&v->pg, 5000);
    loom_store_destroy(&v->mem);
    loom_map_destroy(&v->wf_seen);
    free(v);
}

static int v_when_durable(void *self, void (*fn)(void *ud, int status), void *ud,
                          loom_err_t *err) {
    return loom_pgw_enqueue(((pgv_t *)self)->pg->writer, LOOM_PGW_BARRIER, NULL, 0, fn, ud, err);
}
static int v_when_run_durable(void *self, const char *run_id, void (*fn)(void *ud, int status), void *ud,
                              loom_err_t *err) {
    const char *key[1] = {run_id};
    return loom_pgw_enqueue(((pgv_t *)self)->pg->writer, LOOM_PGW_BARRIER, key, 0, fn, ud, err);
}
static int v_poll_fd(void *self) { return loom_store_pg_fd(((pgv_t *)self)->pg); }
static int v_poll(void *self) { return loom_store_pg_dispatch(((pgv_t *)self)->pg); }

static const loom_store_ops_t pg_ops = {
    .name = "pg",
    .run_create = v_run_create,
    .run_update = v_run_update,
    .task_put = v_task_put,
    .event_append = v_event_append,
    .worker_put = v_worker_put,
    .run_list = v_run_list,
    .run_get = v_run_get,
    .events = v_events,
    .load_unfinished = v_load_unfinished,
    .flush = v_flush,
    .destroy = v_destroy,
    .when_durable = v_when_durable,
    .when_run_durable = v_when_run_durable,
    .poll_fd = v_poll_fd,
    .poll = v_poll,
    .worker_key_put = v_worker_key_put,
    .worker_keys_load = v_worker_keys_load,
};

loom_store_t *loom_store_pg_open(const loom_store_pg_opts_t *opts, loom_store_pg_t **raw,
                                 loom_err_t *err) {
    pgv_t *v = calloc(1, sizeof *v);
    if (!v) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    v->pg = loom_store_pg_new(opts, err);
    if (!v->pg) goto fail;
    v->mem = loom_store_mem_new(opts->max_finished_runs, 0, opts->max_finished_bytes);
    v->wf_seen = loom_map_new(NULL);
    if (!v->mem || !v->wf_seen) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        goto fail;
    }
    loom_store_t *s = loom_store_new(&pg_ops, v);
    if (!s) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL; /* loom_store_new destroyed v */
    }
    if (raw) *raw = v->pg;
    return s;
fail:
    v_destroy(v);
    return NULL;
}

void loom_store_pg_metrics_db(void *arg, loom_metrics_db_t *out) {
    loom_store_pg_stats_t st;
    loom_store_pg_get_stats(arg, &st);
    out->connected = st.connected;
    out->queued = st.queued;
    out->queue_max = st.queue_max;
    out->lag_ms = st.lag_ms;
    out->committed = st.committed;
    out->failed = st.failed;
    out->reconnects = st.reconnects;
}
