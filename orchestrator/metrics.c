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

/* State labels: the words of protocol/states.h (a step past its timeout_ms
 * is "failed"; any name not listed counts as failed). */
static const char *const run_states[] = {"succeeded", "failed", "cancelled"};
#define NRUNSTATES 3
static const char *const task_states[] = {"succeeded", "failed", "cancelled", "skipped"};
#define NTASKSTATES 4
static const char *const classes[] = {"cpu", "gpu", "npu", "other"};
#define NCLASSES 4

/* Run latency buckets, seconds: 50 ms .. 30 min. */
static const double run_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
                                     1800};
#define NRUNBUCKETS (sizeof run_buckets / sizeof run_buckets[0])
#define MAX_WORKFLOWS 200
#define MAX_WORKERS 1024

typedef struct {
    char name[128];
    uint64_t hist[NRUNBUCKETS + 1];
    double sum_s;
    uint64_t by_state[NRUNSTATES];
    uint64_t sla_met, sla_missed;
} wf_stats_t;

typedef struct {
    char id[128], device_class[16];
    loom_metrics_worker_t w; /* id/device_class point at the copies above */
    uint64_t tokens_prompt, tokens_generated;
    double compute_s;
} worker_stats_t;

struct loom_metrics {
    atomic_uint_fast64_t runs_submitted, sla_misses, refused, tasks_dispatched;
    atomic_uint_fast64_t runs_finished[NRUNSTATES];
    atomic_uint_fast64_t tasks_finished[NTASKSTATES];
    atomic_int_fast64_t queue_depth, runs_active;
    atomic_int role; /* loom_metrics_role_t */
    atomic_int_fast64_t workers[NCLASSES];
    atomic_uint_fast64_t hist[NBUCKETS + 1]; /* last = +Inf */
    atomic_uint_fast64_t hist_sum_ns;
    pthread_mutex_t db_mu;
    loom_metrics_db_fn db_fn;
    void *db_arg;
    /* Per workflow and per worker (under mu: updated by the loop a few
     * times a second or once per run, read by /metrics). */
    pthread_mutex_t mu;
    wf_stats_t *wfs;
    size_t n_wfs;
    worker_stats_t *workers_now;
    size_t n_workers, n_next;
    worker_stats_t *workers_next;
};

static int index_of(const char *const *names, int n, const char *s, int dflt) {
    for (int i = 0; i < n; i++)
        if (s && strcmp(names[i], s) == 0) return i;
    return dflt;
}

loom_metrics_t *loom_metrics_new(void) {
    loom_metrics_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->wfs = calloc(MAX_WORKFLOWS + 1, sizeof *m->wfs);
    m->workers_now = calloc(MAX_WORKERS, sizeof *m->workers_now);
    m->workers_next = calloc(MAX_WORKERS, sizeof *m->workers_next);
    if (!m->wfs || !m->workers_now || !m->workers_next) {
        free(m->wfs), free(m->workers_now), free(m->workers_next), free(m);
        return NULL;
    }
    pthread_mutex_init(&m->db_mu, NULL);
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void loom_metrics_destroy(loom_metrics_t **pm) {
    if (!pm || !*pm) return;
    pthread_mutex_destroy(&(*pm)->db_mu);
    pthread_mutex_destroy(&(*pm)->mu);
    free((*pm)->wfs);
    free((*pm)->workers_now);
    free((*pm)->workers_next);
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
void loom_metrics_set_role(loom_metrics_t *m, loom_metrics_role_t r) { atomic_store(&m->role, (int)r); }
loom_metrics_role_t loom_metrics_role(loom_metrics_t *m) { return (loom_metrics_role_t)atomic_load(&m->role); }
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

void loom_metrics_run_done(loom_metrics_t *m, const char *workflow, const char *state,
                           double elapsed_s, double sla_s) {
    pthread_mutex_lock(&m->mu);
    wf_stats_t *w = NULL;
    for (size_t i = 0; i < m->n_wfs && !w; i++)
        if (strcmp(m->wfs[i].name, workflow ? workflow : "") == 0) w = &m->wfs[i];
    if (!w && m->n_wfs < MAX_WORKFLOWS) {
        w = &m->wfs[m->n_wfs++];
        snprintf(w->name, sizeof w->name, "%s", workflow ? workflow : "");
    }
    if (!w) { /* the overflow slot */
        w = &m->wfs[MAX_WORKFLOWS];
        snprintf(w->name, sizeof w->name, "other");
    }
    if (!(elapsed_s >= 0)) elapsed_s = 0;
    size_t b = 0;
    while (b < NRUNBUCKETS && elapsed_s > run_buckets[b]) b++;
    w->hist[b]++;
    w->sum_s += elapsed_s;
    int st = index_of(run_states, NRUNSTATES, state, 1);
    w->by_state[st]++;
    if (sla_s > 0) {
        if (st == 0 && elapsed_s <= sla_s) w->sla_met++;
        else w->sla_missed++;
    }
    pthread_mutex_unlock(&m->mu);
}

void loom_metrics_workers_begin(loom_metrics_t *m) {
    pthread_mutex_lock(&m->mu);
    m->n_next = 0;
    pthread_mutex_unlock(&m->mu);
}

/* The entry of worker id in a set (NULL when absent). */
static worker_stats_t *find_worker(worker_stats_t *set, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i].id, id) == 0) return &set[i];
    return NULL;
}

void loom_metrics_worker(loom_metrics_t *m, const loom_metrics_worker_t *w) {
    pthread_mutex_lock(&m->mu);
    if (m->n_next < MAX_WORKERS) {
        worker_stats_t *x = &m->workers_next[m->n_next++];
        worker_stats_t *old = find_worker(m->workers_now, m->n_workers, w->id);
        memset(x, 0, sizeof *x);
        if (old) { /* token counters live as long as the worker is listed */
            x->tokens_prompt = old->tokens_prompt;
            x->tokens_generated = old->tokens_generated;
            x->compute_s = old->compute_s;
        }
        snprintf(x->id, sizeof x->id, "%s", w->id);
        snprintf(x->device_class, sizeof x->device_class, "%s", w->device_class);
        x->w = *w;
    }
    pthread_mutex_unlock(&m->mu);
}

void loom_metrics_workers_end(loom_metrics_t *m) {
    pthread_mutex_lock(&m->mu);
    worker_stats_t *t = m->workers_now;
    m->workers_now = m->workers_next;
    m->workers_next = t;
    m->n_workers = m->n_next;
    pthread_mutex_unlock(&m->mu);
}

void loom_metrics_llm_tokens(loom_metrics_t *m, const char *worker, uint64_t prompt,
                             uint64_t generated, double compute_s) {
    pthread_mutex_lock(&m->mu);
    worker_stats_t *x = find_worker(m->workers_now, m->n_workers, worker);
    if (x) {
        x->tokens_prompt += prompt;
        x->tokens_generated += generated;
        x->compute_s += compute_s > 0 ? compute_s : 0;
    }
    pthread_mutex_unlock(&m->mu);
}

/* A label value with \, " and newlines escaped (Prometheus text format). */
static void label(loom_buf_t *o, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') loom_buf_putc(o, '\\');
        if (*s == '\n') {
            loom_buf_puts(o, "\\n");
            continue;
        }
        loom_buf_putc(o, *s);
    }
}

static void render_workflows(loom_metrics_t *m, loom_buf_t *o);
static void render_workers(loom_metrics_t *m, loom_buf_t *o);

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
    pthread_mutex_lock(&m->mu);
    render_workflows(m, o);
    render_workers(m, o);
    pthread_mutex_unlock(&m->mu);
    family(o, "leader", "gauge", "1 while this loomd is the leader (serves), 0 on a standby.");
    loom_buf_printf(o, "loom_leader %d\n", loom_metrics_role(m) == LOOM_METRICS_LEADER);
    family(o, "up", "gauge", "1 when loomd is healthy, 0 when degraded.");
    loom_buf_printf(o, "loom_up %d\n", loom_metrics_healthy(m, NULL, 0));
    /* buf appends fail only on OOM; check once at the end */
    return o->len > before && o->data[o->len - 1] == '\n' ? 0 : LOOM_ENOMEM;
}

static void render_workflows(loom_metrics_t *m, loom_buf_t *o) {
    size_t n = m->n_wfs + (m->wfs[MAX_WORKFLOWS].name[0] ? 1 : 0);
    if (!n) return;
    family(o, "run_duration_seconds", "histogram",
           "Run latency from submission to its final state, per workflow.");
    for (size_t i = 0; i < n; i++) {
        const wf_stats_t *w = i < m->n_wfs ? &m->wfs[i] : &m->wfs[MAX_WORKFLOWS];
        unsigned long long cum = 0;
        for (size_t b = 0; b <= NRUNBUCKETS; b++) {
            cum += w->hist[b];
            loom_buf_puts(o, "loom_run_duration_seconds_bucket{workflow=\"");
            label(o, w->name);
            if (b < NRUNBUCKETS) loom_buf_printf(o, "\",le=\"%g\"} %llu\n", run_buckets[b], cum);
            else loom_buf_printf(o, "\",le=\"+Inf\"} %llu\n", cum);
        }
        loom_buf_puts(o, "loom_run_duration_seconds_sum{workflow=\"");
        label(o, w->name);
        loom_buf_printf(o, "\"} %.6f\n", w->sum_s);
        loom_buf_puts(o, "loom_run_duration_seconds_count{workflow=\"");
        label(o, w->name);
        loom_buf_printf(o, "\"} %llu\n", cum);
    }
    family(o, "workflow_runs_total", "counter", "Runs that reached a final state, per workflow.");
    for (size_t i = 0; i < n; i++) {
        const wf_stats_t *w = i < m->n_wfs ? &m->wfs[i] : &m->wfs[MAX_WORKFLOWS];
        for (int s = 0; s < NRUNSTATES; s++) {
            loom_buf_puts(o, "loom_workflow_runs_total{workflow=\"");
            label(o, w->name);
            loom_buf_printf(o, "\",state=\"%s\"} %llu\n", run_states[s],
                            (unsigned long long)w->by_state[s]);
        }
    }
    family(o, "sla_runs_total", "counter",
           "Finished runs with an SLA, per workflow: met = succeeded within it, else missed.");
    for (size_t i = 0; i < n; i++) {
        const wf_stats_t *w = i < m->n_wfs ? &m->wfs[i] : &m->wfs[MAX_WORKFLOWS];
        for (int k = 0; k < 2; k++) {
            loom_buf_puts(o, "loom_sla_runs_total{workflow=\"");
            label(o, w->name);
            loom_buf_printf(o, "\",outcome=\"%s\"} %llu\n", k ? "missed" : "met",
                            (unsigned long long)(k ? w->sla_missed : w->sla_met));
        }
    }
}

/* One per-worker family: NAME{worker,device_class} VALUE for every worker. */
#define WORKER_FAMILY(name, type, help, fmt, expr)                                        \
    do {                                                                                  \
        family(o, name, type, help);                                                      \
        for (size_t i = 0; i < m->n_workers; i++) {                                       \
            const worker_stats_t *x = &m->workers_now[i];                                 \
            loom_buf_puts(o, "loom_" name "{worker=\"");                                  \
            label(o, x->id);                                                              \
            loom_buf_printf(o, "\",device_class=\"%s\"} " fmt "\n", x->device_class, expr); \
        }                                                                                 \
    } while (0)

static void render_workers(loom_metrics_t *m, loom_buf_t *o) {
    if (!m->n_workers) return;
    WORKER_FAMILY("worker_up", "gauge", "1 while the worker heartbeats, 0 once lost.", "%d",
                  x->w.up);
    WORKER_FAMILY("worker_slots", "gauge", "Tasks the worker runs at once.", "%d", x->w.slots);
    WORKER_FAMILY("worker_busy_slots", "gauge", "Slots running a task now.", "%d", x->w.busy);
    WORKER_FAMILY("worker_queued_tasks", "gauge",
                  "Tasks sent to the worker beyond its slots, waiting there.", "%d", x->w.queued);
    WORKER_FAMILY("worker_tasks_done_total", "counter", "Tasks the worker finished.", "%llu",
                  (unsigned long long)x->w.done);
    WORKER_FAMILY("worker_tasks_failed_total", "counter", "Tasks that failed on the worker.",
                  "%llu", (unsigned long long)x->w.failed);
    WORKER_FAMILY("worker_free_memory_bytes", "gauge", "Device memory free (last heartbeat).",
                  "%llu", (unsigned long long)x->w.free_memory_bytes);
    WORKER_FAMILY("llm_tokens_prompt_total", "counter", "Prompt tokens processed by LLM tasks.",
                  "%llu", (unsigned long long)x->tokens_prompt);
    WORKER_FAMILY("llm_tokens_generated_total", "counter",
                  "Tokens generated by LLM tasks (rate() = tokens/s).", "%llu",
                  (unsigned long long)x->tokens_generated);
    WORKER_FAMILY("llm_compute_seconds_total", "counter", "Compute time of LLM tasks.", "%.6f",
                  x->compute_s);
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
