/* metrics.c — atomic counters rendered as Prometheus text. See metrics.h. */
#include "orchestrator/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "common/err.h"

/* Dispatch latency buckets, seconds: 50 us .. 5 s. */
static const double buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                 0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1,
                                 2.5,     5};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

static const char *const run_states[] = {"succeeded", "failed", "cancelled", "timed_out"};
#define NRUNSTATES 4
static const char *const task_states[] = {"succeeded", "failed", "cancelled", "timed_out",
                                          "skipped"};
#define NTASKSTATES 5
static const char *const classes[] = {"cpu", "gpu", "npu", "other"};
#define NCLASSES 4

struct loom_metrics {
    atomic_uint_fast64_t runs_submitted, sla_misses, refused, tasks_dispatched;
    atomic_uint_fast64_t runs_finished[NRUNSTATES];
    atomic_uint_fast64_t tasks_finished[NTASKSTATES];
    atomic_int_fast64_t queue_depth, runs_active;
    atomic_int_fast64_t workers[NCLASSES];
    atomic_uint_fast64_t hist[NBUCKETS + 1]; /* last = +Inf */
    atomic_uint_fast64_t hist_sum_ns;
    pthread_mutex_t db_mu;
    loom_metrics_db_fn db_fn;
    void *db_arg;
};

static int index_of(const char *const *names, int n, const char *s, int dflt) {
    for (int i = 0; i < n; i++)
        if (s && strcmp(names[i], s) == 0) return i;
    return dflt;
}

loom_metrics_t *loom_metrics_new(void) {
    loom_metrics_t *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->db_mu, NULL);
    return m;
}

void loom_metrics_destroy(loom_metrics_t **pm) {
    if (!pm || !*pm) return;
    pthread_mutex_destroy(&(*pm)->db_mu);
    free(*pm);
    *pm = NULL;
}

void loom_metrics_run_submitted(loom_metrics_t *m) { atomic_fetch_add(&m->runs_submitted, 1); }
void loom_metrics_run_finished(loom_metrics_t *m, const char *state) {
    atomic_fetch_add(&m->runs_finished[index_of(run_states, NRUNSTATES, state, 1)], 1);
}
void loom_metrics_sla_missed(loom_metrics_t *m) { atomic_fetch_add(&m->sla_misses, 1); }
void loom_metrics_submission_refused(loom_metrics_t *m) { atomic_fetch_add(&m->refused, 1); }

void loom_metrics_task_dispatched(loom_metrics_t *m, double s) {
    atomic_fetch_add(&m->tasks_dispatched, 1);
    if (!(s >= 0)) s = 0; /* also NAN */
    size_t b = 0;
    while (b < NBUCKETS && s > buckets[b]) b++;
    atomic_fetch_add(&m->hist[b], 1);
    atomic_fetch_add(&m->hist_sum_ns, (uint64_t)(s * 1e9));
}
void loom_metrics_task_finished(loom_metrics_t *m, const char *state) {
    atomic_fetch_add(&m->tasks_finished[index_of(task_states, NTASKSTATES, state, 1)], 1);
}
void loom_metrics_set_queue_depth(loom_metrics_t *m, int64_t n) { atomic_store(&m->queue_depth, n); }
void loom_metrics_set_runs_active(loom_metrics_t *m, int64_t n) { atomic_store(&m->runs_active, n); }
void loom_metrics_set_workers(loom_metrics_t *m, const char *dc, int64_t n) {
    atomic_store(&m->workers[index_of(classes, NCLASSES, dc, NCLASSES - 1)], n);
}

void loom_metrics_sync_engine(loom_metrics_t *m, uint64_t runs_submitted,
                              uint64_t tasks_succeeded, uint64_t tasks_failed,
                              int64_t queue_depth, int64_t runs_active) {
    atomic_store(&m->runs_submitted, runs_submitted);
    atomic_store(&m->tasks_finished[0], tasks_succeeded);
    atomic_store(&m->tasks_finished[1], tasks_failed);
    atomic_store(&m->queue_depth, queue_depth);
    atomic_store(&m->runs_active, runs_active);
}

void loom_metrics_set_db_source(loom_metrics_t *m, loom_metrics_db_fn fn, void *arg) {
    pthread_mutex_lock(&m->db_mu);
    m->db_fn = fn;
    m->db_arg = arg;
    pthread_mutex_unlock(&m->db_mu);
}

/* Returns 1 and fills d when a database source is set. */
static int db_stats(loom_metrics_t *m, loom_metrics_db_t *d) {
    memset(d, 0, sizeof *d);
    pthread_mutex_lock(&m->db_mu);
    int have = m->db_fn != NULL;
    if (have) m->db_fn(m->db_arg, d);
    pthread_mutex_unlock(&m->db_mu);
    return have;
}

#define U(x) ((unsigned long long)atomic_load(&(x)))
#define I(x) ((long long)atomic_load(&(x)))

static void family(loom_buf_t *o, const char *name, const char *type, const char *help) {
    loom_buf_printf(o, "# HELP loom_%s %s\n# TYPE loom_%s %s\n", name, help, name, type);
}

int loom_metrics_render(loom_metrics_t *m, loom_buf_t *o) {
    size_t before = o->len;
    family(o, "runs_submitted_total", "counter", "Runs accepted from clients.");
    loom_buf_printf(o, "loom_runs_submitted_total %llu\n", U(m->runs_submitted));
    family(o, "runs_finished_total", "counter", "Runs that reached a final state.");
    for (int i = 0; i < NRUNSTATES; i++)
        loom_buf_printf(o, "loom_runs_finished_total{state=\"%s\"} %llu\n", run_states[i],
                        U(m->runs_finished[i]));
    family(o, "runs_active", "gauge", "Runs not yet in a final state.");
    loom_buf_printf(o, "loom_runs_active %lld\n", I(m->runs_active));
    family(o, "sla_misses_total", "counter", "Runs that finished past their SLA deadline.");
    loom_buf_printf(o, "loom_sla_misses_total %llu\n", U(m->sla_misses));
    family(o, "submissions_refused_total", "counter",
           "Submissions refused because the database write queue was full.");
    loom_buf_printf(o, "loom_submissions_refused_total %llu\n", U(m->refused));
    family(o, "tasks_dispatched_total", "counter", "Tasks sent to workers.");
    loom_buf_printf(o, "loom_tasks_dispatched_total %llu\n", U(m->tasks_dispatched));
    family(o, "tasks_finished_total", "counter", "Tasks that reached a final state.");
    for (int i = 0; i < NTASKSTATES; i++)
        loom_buf_printf(o, "loom_tasks_finished_total{state=\"%s\"} %llu\n", task_states[i],
                        U(m->tasks_finished[i]));
    family(o, "task_queue_depth", "gauge", "Tasks ready and waiting for a worker.");
    loom_buf_printf(o, "loom_task_queue_depth %lld\n", I(m->queue_depth));
    family(o, "dispatch_latency_seconds", "histogram",
           "Time from a task becoming ready to its dispatch.");
    unsigned long long cum = 0;
    for (size_t b = 0; b <= NBUCKETS; b++) {
        cum += U(m->hist[b]);
        if (b < NBUCKETS)
            loom_buf_printf(o, "loom_dispatch_latency_seconds_bucket{le=\"%g\"} %llu\n",
                            buckets[b], cum);
        else
            loom_buf_printf(o, "loom_dispatch_latency_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    loom_buf_printf(o, "loom_dispatch_latency_seconds_sum %.9f\n", (double)U(m->hist_sum_ns) / 1e9);
    loom_buf_printf(o, "loom_dispatch_latency_seconds_count %llu\n", cum);
    family(o, "workers", "gauge", "Registered workers by device class.");
    for (int i = 0; i < NCLASSES; i++)
        loom_buf_printf(o, "loom_workers{device_class=\"%s\"} %lld\n", classes[i],
                        I(m->workers[i]));
    loom_metrics_db_t d;
    if (db_stats(m, &d)) {
        family(o, "db_up", "gauge", "1 when the database writer is connected.");
        loom_buf_printf(o, "loom_db_up %d\n", d.connected ? 1 : 0);
        family(o, "db_queue_depth", "gauge", "Writes buffered and not yet committed.");
        loom_buf_printf(o, "loom_db_queue_depth %zu\n", d.queued);
        family(o, "db_queue_limit", "gauge", "Buffered writes at which submissions are refused.");
        loom_buf_printf(o, "loom_db_queue_limit %zu\n", d.queue_max);
        family(o, "db_lag_seconds", "gauge", "Age of the oldest uncommitted write.");
        loom_buf_printf(o, "loom_db_lag_seconds %.6f\n", d.lag_ms / 1000.0);
        family(o, "db_writes_committed_total", "counter", "Writes committed.");
        loom_buf_printf(o, "loom_db_writes_committed_total %llu\n",
                        (unsigned long long)d.committed);
        family(o, "db_writes_failed_total", "counter", "Writes the database rejected.");
        loom_buf_printf(o, "loom_db_writes_failed_total %llu\n", (unsigned long long)d.failed);
        family(o, "db_reconnects_total", "counter", "Reconnections after a lost connection.");
        loom_buf_printf(o, "loom_db_reconnects_total %llu\n", (unsigned long long)d.reconnects);
    }
    family(o, "up", "gauge", "1 when loomd is healthy, 0 when degraded.");
    loom_buf_printf(o, "loom_up %d\n", loom_metrics_healthy(m, NULL, 0));
    /* buf appends fail only on OOM; check once at the end */
    return o->len > before && o->data[o->len - 1] == '\n' ? 0 : LOOM_ENOMEM;
}

int loom_metrics_healthy(loom_metrics_t *m, char *reason, size_t n) {
    loom_metrics_db_t d;
    const char *why = NULL;
    if (db_stats(m, &d)) {
        if (!d.connected) why = "database unreachable, buffering writes";
        else if (d.queue_max && d.queued >= d.queue_max) why = "database write queue full";
    }
    if (reason && n) snprintf(reason, n, "%s", why ? why : "");
    return why == NULL;
}

int loom_metrics_summary_json(loom_metrics_t *m, loom_buf_t *o) {
    loom_metrics_db_t d;
    int have_db = db_stats(m, &d);
    char reason[128];
    int ok = loom_metrics_healthy(m, reason, sizeof reason);
    unsigned long long fin = 0;
    for (int i = 0; i < NRUNSTATES; i++) fin += U(m->runs_finished[i]);
    int rc = loom_buf_printf(o,
        "{\"status\":\"%s\",\"reason\":\"%s\",\"runs_submitted\":%llu,\"runs_finished\":%llu,"
        "\"runs_active\":%lld,\"sla_misses\":%llu,\"tasks_dispatched\":%llu,"
        "\"task_queue_depth\":%lld,\"workers\":{\"cpu\":%lld,\"gpu\":%lld,\"npu\":%lld,"
        "\"other\":%lld},\"db\":",
        ok ? "ok" : "degraded", reason, U(m->runs_submitted), fin, I(m->runs_active),
        U(m->sla_misses), U(m->tasks_dispatched), I(m->queue_depth), I(m->workers[0]),
        I(m->workers[1]), I(m->workers[2]), I(m->workers[3]));
    if (rc) return rc;
    if (!have_db) return loom_buf_puts(o, "null}");
    return loom_buf_printf(o, "{\"connected\":%s,\"queued\":%zu,\"lag_ms\":%.1f}}",
                           d.connected ? "true" : "false", d.queued, d.lag_ms);
}
