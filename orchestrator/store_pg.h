/* store_pg.h — Loom's PostgreSQL store (the only user of libpq).
 *
 * Writes never block the caller: each write is copied into a bounded queue
 * that a writer thread drains in batches, one transaction per batch, sent
 * with libpq's pipeline mode. A write may carry a completion callback that
 * runs once the row is durable (committed); callbacks run on the caller's
 * thread, in loom_store_pg_dispatch(), which the owner calls whenever
 * loom_store_pg_fd() is readable (it is an eventfd, pollable by zmq_poll).
 *
 * When the database is unreachable the writer keeps the queue, reconnects
 * with exponential backoff, and reports itself down in the stats. New run
 * submissions are refused (LOOM_ETOOBIG) while the queue holds queue_max
 * writes or more; writes about already admitted runs are always accepted,
 * so nothing a client was told about is dropped.
 *
 * Reads (recovery at start, dashboard JSON) use a second connection and are
 * synchronous; they are safe from one other thread at a time (the HTTP
 * thread) thanks to an internal lock.
 *
 * All strings passed in are copied; NULL means SQL NULL. Doubles equal to
 * NAN and times equal to 0 mean NULL. Times are wall-clock ms since epoch. */
#ifndef LOOM_ORCHESTRATOR_STORE_PG_H
#define LOOM_ORCHESTRATOR_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "orchestrator/metrics.h"
#include "orchestrator/store.h"

typedef struct loom_store_pg loom_store_pg_t;

/* Runs on the owner's thread once the write is durable (status 0) or
 * definitely failed (negative LOOM_E*, e.g. a constraint violation). */
typedef void (*loom_store_pg_done_fn)(void *arg, int status);

typedef struct loom_store_pg_opts {
    const char *url;     /* postgresql://... (required) */
    size_t queue_max;    /* writes buffered before submissions are refused; 0 = 65536 */
    size_t batch_max;    /* writes per transaction; 0 = 256 */
    int connect_timeout_s; /* 0 = 5 */
    size_t max_finished_bytes; /* finished runs kept in memory for reads (0 = the mem
                                * store's default); older ones are read back from the database */
    int max_finished_runs;     /* ... and at most this many of them (0 = the mem store's default) */
} loom_store_pg_opts_t;

typedef struct loom_store_pg_run {
    const char *id, *workflow_hash, *workflow_name;
    const char *state;   /* queued | running | succeeded | failed | cancelled */
    const char *inputs, *outputs, *error; /* JSON text / message, or NULL */
    const char *tenant;  /* whose run; NULL = "default" */
    const char *labels;  /* JSON object of strings, or NULL */
    double sla_ms, predicted_ms, predicted_cost;
    int64_t submitted_ms, started_ms, finished_ms;
    int error_code;      /* loom.v1.StatusCode of its error; 0 = none / leave unchanged */
} loom_store_pg_run_t;

typedef struct loom_store_pg_task {
    const char *run_id, *task_id, *step_id, *op;
    const char *state;   /* pending | running | done | failed | skipped */
    const char *device_class, *worker_id, *reason, *output, *error;
    const char *needs;   /* JSON array of task ids this task waits for */
    double predicted_ms, predicted_cost, actual_ms, cost;
    int attempts;        /* < 0 = leave unchanged */
    int64_t started_ms, finished_ms;
    int error_code;      /* loom.v1.StatusCode of its error; 0 = none / leave unchanged */
} loom_store_pg_task_t;

typedef struct loom_store_pg_worker {
    const char *id, *device_class, *device_name, *profile, *state;
    int slots;
} loom_store_pg_worker_t;

typedef struct loom_store_pg_stats {
    int connected;       /* 1 when the writer's connection is up */
    size_t queued;       /* writes not yet committed */
    size_t queue_max;
    double lag_ms;       /* age of the oldest uncommitted write, 0 when none */
    uint64_t committed;  /* writes committed since start */
    uint64_t failed;     /* writes the database rejected */
    uint64_t batches;
    uint64_t reconnects; /* successful connections after the first */
    uint64_t coalesced;  /* task writes folded into a later write of the
                          * same task in one batch (not sent on their own) */
} loom_store_pg_stats_t;

/* Applies deploy/sql migrations (embedded at build time) and re-creates the
 * views, under a session advisory lock: safe twice and from several
 * processes at once. *applied (may be NULL) receives how many migrations
 * this call applied. */
int loom_store_pg_migrate(const char *url, int *applied, loom_err_t *err);

/* Connects, migrates, starts the writer. Fails (NULL, err set) when the
 * database cannot be reached at start: loomd should not pretend to be
 * durable before it ever was. Later outages are tolerated. */
loom_store_pg_t *loom_store_pg_new(const loom_store_pg_opts_t *opts, loom_err_t *err);
/* Waits up to flush_ms for the queue to drain, stops the writer, closes
 * both connections. Pending callbacks are dropped. Safe on NULL/twice. */
void loom_store_pg_destroy(loom_store_pg_t **ps, int flush_ms);

/* ---- writes (owner's thread; each copies its arguments) ---------------- */
int loom_store_pg_put_workflow(loom_store_pg_t *s, const char *hash, const char *name,
                               double sla_ms, const char *yaml, loom_err_t *err);
/* Admission-checked: LOOM_ETOOBIG when the queue is at its bound. The
 * callback is the "row is durable, acknowledge the client" hook. */
int loom_store_pg_submit_run(loom_store_pg_t *s, const loom_store_pg_run_t *r,
                             loom_store_pg_done_fn done, void *arg, loom_err_t *err);
/* Updates state/times/outputs/error of a run (NULL fields keep their
 * value). For a terminal state the callback is the "report finished" hook. */
int loom_store_pg_update_run(loom_store_pg_t *s, const loom_store_pg_run_t *r,
                             loom_store_pg_done_fn done, void *arg, loom_err_t *err);
/* Inserts or updates a task; NULL/NAN/0 fields keep their stored value. */
int loom_store_pg_put_task(loom_store_pg_t *s, const loom_store_pg_task_t *t,
                           loom_store_pg_done_fn done, void *arg, loom_err_t *err);
int loom_store_pg_put_event(loom_store_pg_t *s, const char *run_id, const char *task_id,
                            const char *kind, const char *detail, loom_err_t *err);
int loom_store_pg_put_worker(loom_store_pg_t *s, const loom_store_pg_worker_t *w,
                             loom_err_t *err);
int loom_store_pg_put_worker_sample(loom_store_pg_t *s, const char *worker_id,
                                    int64_t at_ms, int busy_slots, int slots, loom_err_t *err);
int loom_store_pg_put_sla_outcome(loom_store_pg_t *s, const char *run_id,
                                  const char *workflow_name, double sla_ms,
                                  double latency_ms, int met, int64_t at_ms,
                                  loom_err_t *err);

/* ---- completions ------------------------------------------------------- */
/* An eventfd that is readable while completions wait for dispatch. */
int loom_store_pg_fd(const loom_store_pg_t *s);
/* Runs the waiting callbacks on this thread; returns how many ran. */
int loom_store_pg_dispatch(loom_store_pg_t *s);
/* Blocks until every write queued so far is committed or timeout_ms
 * passes (then LOOM_ETIMEDOUT). Runs callbacks. For tests and shutdown. */
int loom_store_pg_flush(loom_store_pg_t *s, int timeout_ms);

void loom_store_pg_get_stats(loom_store_pg_t *s, loom_store_pg_stats_t *out);

/* Failover fencing (lease_pg.h): from now on every write transaction
 * commits only while epoch is the leader's epoch in the database; once one
 * is refused, nothing more is written and loom_store_pg_fenced() is 1. */
void loom_store_pg_set_fence(loom_store_pg_t *s, int64_t epoch);
int loom_store_pg_fenced(loom_store_pg_t *s);

/* ---- reads ------------------------------------------------------------- */
/* One unfinished run and its tasks, for recovery. All pointers are borrowed
 * until the callback returns. */
typedef struct loom_store_pg_recovered {
    loom_store_pg_run_t run;
    const char *workflow_yaml;
    size_t n_tasks;
    const loom_store_pg_task_t *tasks;
} loom_store_pg_recovered_t;
typedef int (*loom_store_pg_recover_fn)(void *arg, const loom_store_pg_recovered_t *r);

/* Calls fn for every run whose state is not terminal, oldest first. A
 * negative return from fn stops the walk and is returned. */
int loom_store_pg_load_unfinished(loom_store_pg_t *s, loom_store_pg_recover_fn fn,
                                  void *arg, loom_err_t *err);

/* Runs one of the dashboard's fixed queries over the views and appends its
 * rows as a JSON array of objects to out. name is one of: recent_runs,
 * live_runs, sla, sla_hourly, cost_workflow, cost_hourly, utilisation,
 * cost_model_error, fleet, run_steps (arg = run id), run_events (arg = run id).
 * LOOM_ENOTFOUND for an unknown name. */
int loom_store_pg_query_json(loom_store_pg_t *s, const char *name, const char *arg,
                             loom_buf_t *out, loom_err_t *err);
/* The same, restricted to tenant's runs (NULL = every tenant): the run
 * lists and per-run queries only; others fail with LOOM_EPROTO (they span
 * every tenant: admin only). */
int loom_store_pg_query_json_tenant(loom_store_pg_t *s, const char *name, const char *arg,
                                    const char *tenant, loom_buf_t *out, loom_err_t *err);
/* Names accepted by loom_store_pg_query_json, NULL-terminated. */
extern const char *const loom_store_pg_query_names[];

/* ---- store.h vtable ----------------------------------------------------- */
/* Opens the PostgreSQL store behind store.h's interface (loomd --db).
 * Writes go to PostgreSQL through the writer queue and to an in-memory
 * store that answers run_list / run_get / events without a database round
 * trip (run_get falls back to the database for runs no longer in memory).
 * load_unfinished reads the database. *raw (may be NULL) receives the
 * PostgreSQL handle for the HTTP endpoint, borrowed until the returned
 * store is destroyed. */
loom_store_t *loom_store_pg_open(const loom_store_pg_opts_t *opts, loom_store_pg_t **raw,
                                 loom_err_t *err);

/* A loom_metrics_db_fn: arg is a loom_store_pg_t. */
void loom_store_pg_metrics_db(void *arg, loom_metrics_db_t *out);

#endif
