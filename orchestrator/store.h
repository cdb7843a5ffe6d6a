/* store.h — where loomd records runs, tasks, events and workers.
 *
 * One interface, several implementations behind a vtable:
 *   - store_mem.c: in memory, bounded (keeps the most recent finished runs),
 *     the default and what tests and benchmarks use;
 *   - store_pg.c (store engineer): PostgreSQL through libpq, with a writer
 *     queue so the event loop never waits on the database.
 *
 * The event loop is single-threaded: loomd calls every function from one
 * thread. An implementation may hand work to its own threads, but a call
 * returns without waiting for them; records passed in are only borrowed
 * for the duration of the call (copy what you keep).
 *
 * Recovery: after a restart loomd calls loom_store_load_unfinished(); the
 * store replays, for each run not in a final state, the run record (with
 * its workflow YAML and inputs) and then every task that succeeded (with
 * its output), so loomd can rebuild the run and dispatch only what is left.
 *
 * Reads (run_get, run_list, events) call back with borrowed records; the
 * pointers inside are valid only during the callback. */
#ifndef LOOM_ORCHESTRATOR_STORE_H
#define LOOM_ORCHESTRATOR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct loom_store loom_store_t;

/* Run states. Values are stable: the PostgreSQL store stores them by name
 * (loom_store_run_state_name) and may also store these numbers. */
typedef enum {
    LOOM_RUN_PENDING = 0,   /* accepted, nothing dispatched yet */
    LOOM_RUN_RUNNING = 1,
    LOOM_RUN_SUCCEEDED = 2,
    LOOM_RUN_FAILED = 3,
    LOOM_RUN_CANCELLED = 4,
    LOOM_RUN_TIMED_OUT = 5, /* a run-level deadline (not the SLA) passed */
} loom_run_state_t;

/* Task states (one task = one attempt-able unit: a step, or one foreach
 * item of a step, or one loop iteration of a step). */
typedef enum {
    LOOM_TASK_PENDING = 0,  /* waits on dependencies */
    LOOM_TASK_READY = 1,    /* dependencies met, queued for a worker */
    LOOM_TASK_ASSIGNED = 2, /* sent to a worker, not yet started */
    LOOM_TASK_RUNNING = 3,
    LOOM_TASK_SUCCEEDED = 4,
    LOOM_TASK_FAILED = 5,
    LOOM_TASK_CANCELLED = 6,
    LOOM_TASK_TIMED_OUT = 7,
    LOOM_TASK_SKIPPED = 8,  /* `when:` was false, or an upstream failed */
} loom_task_state_t;

/* "pending", "running", ... Static storage; "unknown" when out of range.
 * These are the store's own names (PostgreSQL's state columns); what people
 * and clients see is protocol/states.h's vocabulary, through the two
 * mappings below. */
const char *loom_store_run_state_name(loom_run_state_t s);
const char *loom_store_task_state_name(loom_task_state_t s);
/* Parses a name back; returns -1 when unknown. */
int loom_store_run_state_parse(const char *name);
int loom_store_task_state_parse(const char *name);
/* Store state -> Loom__V1__RunState / Loom__V1__StepState (pending ->
 * QUEUED, assigned -> RUNNING, timed out -> FAILED). */
int loom_store_run_state_pb(loom_run_state_t s);
int loom_store_task_state_pb(loom_task_state_t s);
/* True for succeeded/failed/cancelled/timed out (and skipped for tasks). */
int loom_store_run_state_final(loom_run_state_t s);
int loom_store_task_state_final(loom_task_state_t s);

/* A run. Strings may be NULL when unknown. JSON fields hold JSON text. */
typedef struct loom_store_run {
    const char *id;            /* e.g. "r-000001a2" — unique */
    const char *workflow;      /* workflow name */
    const char *workflow_yaml; /* full source, for recovery and audit */
    const char *workflow_file; /* path it was loaded from, for messages */
    const char *inputs_json;   /* object of inputs */
    const char *outputs_json;  /* object of outputs once succeeded */
    const char *error;         /* why it failed, human-readable */
    const char *tenant;        /* whose run (the token's tenant; "default" without tokens) */
    int error_code;            /* its Loom__V1__StatusCode (0 = not kept: readers derive
                                * it from the state; both stores keep it) */
    loom_run_state_t state;
    int64_t created_ms;        /* wall clock, ms since the epoch; 0 = unset */
    int64_t started_ms;
    int64_t finished_ms;
    int64_t deadline_ms;       /* created + sla.latency_ms; 0 = no SLA */
    int sla_missed;            /* 1 when it finished (or is still running) past its deadline */
    int tasks_total, tasks_done; /* progress counters */
    const char *labels_json;   /* the submitter's labels as a JSON object of strings (NULL = none);
                                * set by run_create, kept by run_update */
    double cost;               /* USD so far: the sum of its tasks' costs (run_update) */
} loom_store_run_t;

/* One attempt of a task. (run_id, step_id, index, attempt) is the key;
 * a later update with the same key replaces the earlier record. */
typedef struct loom_store_task {
    const char *run_id;
    const char *step_id;
    int index;                 /* foreach item or loop iteration; 0 otherwise */
    int attempt;               /* 1 for the first try */
    const char *op;            /* "tool.exec", "llm.generate", ... */
    const char *worker_id;     /* NULL until assigned */
    const char *device;        /* device kind/class it ran on, e.g. "cpu" */
    loom_task_state_t state;
    int64_t ready_ms;          /* wall clock ms; 0 = unset */
    int64_t started_ms;
    int64_t finished_ms;
    const char *output_json;   /* set when succeeded (may be large) */
    const char *error;         /* set when failed / timed out */
    int error_code;            /* its Loom__V1__StatusCode (0 = not kept, as error_code above) */
    /* Optional plan and cost data (0 / NULL = unknown), kept by stores with
     * history (PostgreSQL) for the cost-model-error and placement views. */
    double predicted_ms, predicted_cost, cost;
    const char *reason;        /* the plan's explanation of the placement */
    const char *needs_json;    /* JSON array of the step ids it waited for */
} loom_store_task_t;

/* An event of a run, in order. seq is assigned by loomd (1, 2, ...). */
typedef struct loom_store_event {
    const char *run_id;
    int64_t seq;
    int64_t ts_ms;             /* wall clock */
    const char *kind;          /* "run.started", "task.succeeded", "run.sla_missed", ... */
    const char *step_id;       /* NULL for run-level events */
    int index, attempt;
    const char *detail_json;   /* optional object with kind-specific fields */
} loom_store_event_t;

/* A worker as the registry sees it, written on register, state changes and
 * periodically (a sample of its load). */
typedef struct loom_store_worker {
    const char *id;
    const char *kind;          /* "cpu", "gpu", "npu" */
    const char *model;         /* e.g. "AMD EPYC 7B13", "H100 SXM" */
    const char *state;         /* "ready", "draining", "dead" */
    const char *profile_json;  /* the full registered profile */
    int slots, busy;
    int64_t ts_ms;             /* when this sample was taken */
    uint64_t tasks_done, tasks_failed;
} loom_store_worker_t;

/* Filter for run_list. Zero / NULL fields do not filter. */
typedef struct loom_store_filter {
    int state;                 /* a loom_run_state_t, or -1 for any */
    const char *workflow;
    const char *tenant;        /* only this tenant's runs */
    int64_t after_ms;          /* only runs created at or after (0 = any) */
    int64_t until_ms;          /* only runs created before (0 = any) */
    /* only runs carrying every one of these labels (n_labels pairs) */
    const char *const *label_keys, *const *label_values;
    int n_labels;
    int limit;                 /* 0 = implementation default (100) */
    /* paging: only runs before this one in (created_ms, id) order, newest
     * first; before_id NULL = from the newest */
    int64_t before_ms;
    const char *before_id;
} loom_store_filter_t;

/* Whether run r passes the filter's state/workflow/tenant/time/label tests
 * (not the paging). For implementations. */
int loom_store_filter_match(const loom_store_filter_t *f, const loom_store_run_t *r);

/* Read callbacks. Return 0 to continue, non-zero to stop early. */
typedef int (*loom_store_run_fn)(void *ud, const loom_store_run_t *run);
typedef int (*loom_store_task_fn)(void *ud, const loom_store_task_t *task);
typedef int (*loom_store_event_fn)(void *ud, const loom_store_event_t *ev);

/* The implementation vtable. Every function returns 0 or a negative LOOM_E*
 * and fills err. `self` is the implementation's state. */
typedef struct loom_store_ops {
    const char *name; /* "mem", "pg" */
    int (*run_create)(void *self, const loom_store_run_t *run, loom_err_t *err);
    /* Replaces the mutable fields (state, timings, outputs, error, sla_missed,
     * counters) of an existing run. */
    int (*run_update)(void *self, const loom_store_run_t *run, loom_err_t *err);
    int (*task_put)(void *self, const loom_store_task_t *task, loom_err_t *err);
    int (*event_append)(void *self, const loom_store_event_t *ev, loom_err_t *err);
    int (*worker_put)(void *self, const loom_store_worker_t *w, loom_err_t *err);
    /* Newest first. */
    int (*run_list)(void *self, const loom_store_filter_t *f, loom_store_run_fn fn, void *ud,
                    loom_err_t *err);
    /* LOOM_ENOTFOUND when absent. Calls run_fn once, then task_fn for the
     * latest attempt of each task (may be NULL to skip tasks). */
    int (*run_get)(void *self, const char *run_id, loom_store_run_fn run_fn,
                   loom_store_task_fn task_fn, void *ud, loom_err_t *err);
    /* Events with seq > after_seq, in order. */
    int (*events)(void *self, const char *run_id, int64_t after_seq, loom_store_event_fn fn,
                  void *ud, loom_err_t *err);
    /* For each run not in a final state: run_fn(run), then task_fn for
     * every succeeded task of that run (with output_json). */
    int (*load_unfinished)(void *self, loom_store_run_fn run_fn, loom_store_task_fn task_fn,
                           void *ud, loom_err_t *err);
    /* Waits until everything accepted so far is durable (no-op in memory).
     * Called at shutdown and by tests. */
    int (*flush)(void *self, loom_err_t *err);
    void (*destroy)(void *self);
    /* Durability hook (optional; NULL = every accepted write is already
     * durable, as in memory). Calls fn(ud, 0) once every write accepted
     * before this call is durable, or fn(ud, <0) if one of them failed for
     * good. fn runs inside poll(), on loomd's thread; loomd polls poll_fd()
     * (readable while callbacks wait) in its event loop. loomd acknowledges
     * a submission only from this callback after run_create, and reports a
     * run finished only from it after the final run_update. */
    int (*when_durable)(void *self, void (*fn)(void *ud, int status), void *ud,
                        loom_err_t *err);
    /* Like when_durable, and fn(ud, <0) also when run_id's own row (its
     * run_create) was refused for good (optional; NULL = when_durable). */
    int (*when_run_durable)(void *self, const char *run_id, void (*fn)(void *ud, int status),
                            void *ud, loom_err_t *err);
    int (*poll_fd)(void *self);
    int (*poll)(void *self);
    /* CURVE mode's worker id -> public key bindings (optional; NULL = kept
     * only in loomd's memory). key_put records (or replaces) one binding,
     * durable soon after like worker_put; keys_load calls fn for every
     * stored binding (at start, before any worker registers). */
    int (*worker_key_put)(void *self, const char *worker_id, const char *key, loom_err_t *err);
    int (*worker_keys_load)(void *self, int (*fn)(void *ud, const char *worker_id,
                                                  const char *key),
                            void *ud, loom_err_t *err);
} loom_store_ops_t;

/* Wraps an implementation. The store takes ownership of self (ops->destroy
 * is called by loom_store_destroy). Returns NULL on OOM (and destroys self). */
loom_store_t *loom_store_new(const loom_store_ops_t *ops, void *self);
void loom_store_destroy(loom_store_t **ps);
const char *loom_store_name(const loom_store_t *s);

/* In-memory store. max_finished_runs and max_finished_bytes bound memory:
 * when more runs than that are final, or the final runs hold more bytes
 * (each run's records live in its own page arena, compacted when the run
 * ends: its mapped bytes plus a small heap header), the oldest final ones
 * (and their tasks and events) are dropped; the newest final run is
 * always kept (0 = defaults: 1000 runs, LOOM_STORE_MEM_DEFAULT_BYTES).
 * max_events_per_run caps each run's event log; later events are counted,
 * not kept (0 = default 100000). */
#define LOOM_STORE_MEM_DEFAULT_BYTES ((size_t)128 << 20)
loom_store_t *loom_store_mem_new(int max_finished_runs, int max_events_per_run,
                                size_t max_finished_bytes);

/* Thin dispatchers to the vtable (same contracts as above). */
int loom_store_run_create(loom_store_t *s, const loom_store_run_t *run, loom_err_t *err);
int loom_store_run_update(loom_store_t *s, const loom_store_run_t *run, loom_err_t *err);
int loom_store_task_put(loom_store_t *s, const loom_store_task_t *task, loom_err_t *err);
int loom_store_event_append(loom_store_t *s, const loom_store_event_t *ev, loom_err_t *err);
int loom_store_worker_put(loom_store_t *s, const loom_store_worker_t *w, loom_err_t *err);
int loom_store_run_list(loom_store_t *s, const loom_store_filter_t *f, loom_store_run_fn fn,
                        void *ud, loom_err_t *err);
int loom_store_run_get(loom_store_t *s, const char *run_id, loom_store_run_fn run_fn,
                       loom_store_task_fn task_fn, void *ud, loom_err_t *err);
int loom_store_events(loom_store_t *s, const char *run_id, int64_t after_seq,
                      loom_store_event_fn fn, void *ud, loom_err_t *err);
int loom_store_load_unfinished(loom_store_t *s, loom_store_run_fn run_fn,
                               loom_store_task_fn task_fn, void *ud, loom_err_t *err);
int loom_store_flush(loom_store_t *s, loom_err_t *err);
/* The durability hook above. Without a when_durable slot fn runs at once.
 * poll_fd is -1 and poll returns 0 when the store has no async side.
 * run_create may fail with LOOM_ETOOBIG when the store cannot buffer more
 * (PostgreSQL down for long): refuse the submission (RESOURCE_EXHAUSTED). */
int loom_store_when_durable(loom_store_t *s, void (*fn)(void *ud, int status), void *ud,
                            loom_err_t *err);
int loom_store_when_run_durable(loom_store_t *s, const char *run_id, void (*fn)(void *ud, int status),
                                void *ud, loom_err_t *err);
int loom_store_poll_fd(loom_store_t *s);
int loom_store_poll(loom_store_t *s);
/* Worker key bindings (above). Without the slots: put and load do nothing
 * and return 0; loom_store_keeps_worker_keys says which. */
int loom_store_worker_key_put(loom_store_t *s, const char *worker_id, const char *key,
                              loom_err_t *err);
int loom_store_worker_keys_load(loom_store_t *s,
                                int (*fn)(void *ud, const char *worker_id, const char *key),
                                void *ud, loom_err_t *err);
int loom_store_keeps_worker_keys(const loom_store_t *s);

#endif
