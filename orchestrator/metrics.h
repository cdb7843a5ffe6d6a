/* metrics.h — loomd's Prometheus metrics: counters, gauges and the
 * dispatch-latency histogram, updated by the event loop and rendered in the
 * text exposition format by the HTTP thread (/metrics). Every update is a
 * lock-free atomic, so instrumenting dispatch costs a few nanoseconds.
 *
 * Exposed families (all prefixed loom_):
 *   runs_submitted_total, runs_finished_total{state}, runs_active,
 *   sla_misses_total, tasks_dispatched_total, tasks_finished_total{state},
 *   task_queue_depth, dispatch_latency_seconds (histogram),
 *   workers{device_class}, db_up, db_queue_depth, db_queue_limit,
 *   db_lag_seconds, db_writes_committed_total, db_writes_failed_total,
 *   db_reconnects_total, submissions_refused_total;
 * per workflow: run_duration_seconds{workflow} (histogram),
 *   workflow_runs_total{workflow,state}, sla_runs_total{workflow,outcome};
 * per worker: worker_up, worker_slots, worker_busy_slots, worker_queued_tasks,
 *   worker_tasks_done_total, worker_tasks_failed_total,
 *   worker_free_memory_bytes, llm_tokens_prompt_total,
 *   llm_tokens_generated_total, llm_compute_seconds_total (all {worker}). */
#ifndef LOOM_ORCHESTRATOR_METRICS_H
#define LOOM_ORCHESTRATOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct loom_metrics loom_metrics_t;

/* The database side, filled on demand by the store (see set_db_source). */
typedef struct loom_metrics_db {
    int connected;
    size_t queued, queue_max;
    double lag_ms;
    uint64_t committed, failed, reconnects;
} loom_metrics_db_t;
typedef void (*loom_metrics_db_fn)(void *arg, loom_metrics_db_t *out);

/* Returns NULL on OOM. */
loom_metrics_t *loom_metrics_new(void);
void loom_metrics_destroy(loom_metrics_t **pm);

void loom_metrics_run_submitted(loom_metrics_t *m);
/* state: succeeded | failed | cancelled (others, e.g. the store's
 * timed_out, count as failed: protocol/states.h's vocabulary). */
void loom_metrics_run_finished(loom_metrics_t *m, const char *state);
void loom_metrics_sla_missed(loom_metrics_t *m);
void loom_metrics_submission_refused(loom_metrics_t *m);
/* latency_s: from the task becoming ready to its dispatch to a worker. */
void loom_metrics_task_dispatched(loom_metrics_t *m, double latency_s);
/* state: succeeded | failed | cancelled | skipped (others count as failed). */
void loom_metrics_task_finished(loom_metrics_t *m, const char *state);
void loom_metrics_set_queue_depth(loom_metrics_t *m, int64_t tasks_waiting);
void loom_metrics_set_runs_active(loom_metrics_t *m, int64_t runs);
/* device_class: cpu | gpu | npu (others are counted as "other"). */
void loom_metrics_set_workers(loom_metrics_t *m, const char *device_class, int64_t n);

/* Sets the counters the engine keeps itself (totals since start) and the
 * queue / active-run gauges; loomd calls it a few times a second. */
void loom_metrics_sync_engine(loom_metrics_t *m, uint64_t runs_submitted,
                              uint64_t tasks_succeeded, uint64_t tasks_failed,
                              int64_t queue_depth, int64_t runs_active);

/* A run reached its final state (state as in run_finished): its latency
 * goes into the per-workflow histogram; with an SLA (sla_s > 0) it counts
 * as met (succeeded within the SLA) or missed. Workflows past the first 200
 * are counted under workflow="other". */
void loom_metrics_run_done(loom_metrics_t *m, const char *workflow, const char *state,
                           double elapsed_s, double sla_s);
/* One worker as loomd sees it, set on every metrics sync (the set is
 * replaced by begin/…/end). busy = tasks running (the worker said
 * Started), queued = tasks sent to it that have not started
 * (loom_worker_load). */
typedef struct loom_metrics_worker {
    const char *id, *device_class;
    int up;                  /* 0 once lost */
    int slots, busy, queued;
    uint64_t done, failed, free_memory_bytes;
} loom_metrics_worker_t;
void loom_metrics_workers_begin(loom_metrics_t *m);
void loom_metrics_worker(loom_metrics_t *m, const loom_metrics_worker_t *w);
void loom_metrics_workers_end(loom_metrics_t *m);
/* An LLM task's tokens (prompt, generated) and compute time on a worker. */
void loom_metrics_llm_tokens(loom_metrics_t *m, const char *worker, uint64_t prompt,
                             uint64_t generated, double compute_s);

/* Without a source, the db_* families are not exposed and health ignores
 * the database. fn runs on the rendering thread. */
void loom_metrics_set_db_source(loom_metrics_t *m, loom_metrics_db_fn fn, void *arg);

/* Appends the exposition text. Returns 0 or LOOM_ENOMEM. */
int loom_metrics_render(loom_metrics_t *m, loom_buf_t *out);

/* 1 when healthy. Degraded when the database is unreachable or its write
 * queue is at the bound; reason (may be NULL) gets a short phrase. */
int loom_metrics_healthy(loom_metrics_t *m, char *reason, size_t n);

/* Failover role (lease_pg.h): a standby is alive (/healthz) but not ready
 * (/readyz 503, loom_leader 0), so a load balancer or a Kubernetes Service
 * sends traffic to the leader only. Starts as LEADER (no lease = the only
 * loomd). */
typedef enum { LOOM_METRICS_LEADER = 0, LOOM_METRICS_STANDBY = 1 } loom_metrics_role_t;
void loom_metrics_set_role(loom_metrics_t *m, loom_metrics_role_t r);
loom_metrics_role_t loom_metrics_role(loom_metrics_t *m);

/* Plain numbers for the dashboard's live summary: appends a JSON object. */
int loom_metrics_summary_json(loom_metrics_t *m, loom_buf_t *out);

#endif
