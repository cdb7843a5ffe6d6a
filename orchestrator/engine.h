/* engine.h — runs and tasks: the state machines of loomd, free of sockets.
 *
 * A run is a parsed workflow plus its inputs. Steps are released when
 * their dependencies are final; a released step is skipped (`when:`
 * false), fans out (`foreach:` → one task per item, gathered in order),
 * iterates (loop: body scope per iteration until `until:` holds or
 * `max_iterations`), or becomes one task. A task's input is the step's
 * op-specific fields rendered against inputs and upstream outputs
 * (planner/expr.h); outputs are freed once no downstream step needs them.
 *
 * Task states: pending → ready (in the least-slack queue) → assigned
 * (sent to a worker) → succeeded / failed / timed out / cancelled. A failed
 * or timed-out task is retried with exponential backoff while the step has
 * `retries:` left; a task whose worker is lost is re-queued (not counted as
 * a retry). A step that fails for good fails its run and cancels the rest.
 *
 * The engine calls back into loomd to send task batches and cancels to
 * workers and to publish run events; it writes runs, tasks and events to
 * the store. Single-threaded: call everything from loomd's event loop. */
#ifndef LOOM_ORCHESTRATOR_ENGINE_H
#define LOOM_ORCHESTRATOR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/map.h"
#include "loom/v1/rpc.pb-c.h"
#include "orchestrator/placement.h"
#include "orchestrator/registry.h"
#include "orchestrator/sched.h"
#include "orchestrator/store.h"

typedef struct loom_engine loom_engine_t;
typedef struct loom_run loom_run_t;

/* A dispatchable unit. Read-only outside engine.c, except the worker
 * list links, which the engine also owns. */
typedef struct loom_task {
    loom_sched_item_t qi;      /* ready-queue entry (first member) */
    char id[24];               /* wire id: hex of a process-unique counter */
    loom_run_t *run;
    struct scope *scope;
    size_t step;               /* index in scope's graph */
    int index;                 /* foreach item, or -1 */
    int attempt;               /* 1, 2, ... (retries and re-runs after a lost worker) */
    int tries;                 /* attempts that failed (counted against retries:) */
    int lost;                  /* times a worker died under it after it started */
    int started;               /* the worker said this attempt began executing (Started) */
    int requeued;              /* times re-queued from a lost worker before it started */
    int ran_inline;            /* loomd ran it itself (--inline-ops), no worker */
    loom_task_state_t state;
    const char *op;            /* borrowed from the workflow (or static: a KV split's part) */
    int kv_part;               /* an llm.generate step its module splits across devices:
                                * 1 = its llm.prefill, 2 = its llm.decode (0 = whole) */
    int kv_handed;             /* a prefill whose decode started from its announced KV
                                * stream: its own outcome no longer decides the step */
    char *input;               /* rendered input JSON (owned) */
    size_t input_len;
    int64_t timeout_ms;        /* 0 = none */
    uint64_t deadline_mono;    /* loom_clock_ms() when it times out; 0 = none */
    uint64_t not_before;       /* retry backoff: not dispatched before (mono ms) */
    uint64_t parked_since;     /* waiting for a capable worker (mono ms); 0 = not parked */
    int64_t ready_ms, started_ms; /* wall clock: ready, sent to a worker */
    int64_t running_ms;        /* wall clock: the worker started it (Started); 0 = not yet */
    uint64_t ready_ns;         /* loom_clock_ns() when it last became ready (latency) */
    char last_worker[128];     /* worker of the previous attempt ("" = none) */
    loom_worker_rec_t *worker; /* while assigned */
    double predicted_ms, predicted_cost; /* placement's prediction for this attempt; 0 = none */
    char *reason;              /* placement's reason for this attempt (owned); NULL = least-loaded */
    uint64_t *prefix_keys;     /* a whole llm.generate's prompt prefix keys (protocol/prefix_key.h),
                                * computed at its first dispatch (owned); NULL = not yet / none */
    size_t n_prefix_keys, prompt_bytes;
    int prefix_done;           /* prefix_keys computed (maybe none) */
    char utf8_tail[4];         /* progress: a character cut at the end of the last chunk */
    int n_utf8_tail;
    struct loom_task *wnext, *wprev; /* in worker->tasks */
    struct loom_task *rnext, *rprev; /* in the run's live tasks */
    struct loom_task *lnext, *lprev; /* in one of the engine's timer lists */
    int list;                  /* which timer list (0 = none) */
    /* Worker-side chaining (README "Chains"): a task sent ahead behind its
     * predecessor on the same worker, before the predecessor's result.
     * ahead: not yet released (its step is still pending in loomd: no
     * record, no event, no attempt used); after: the predecessor while that
     * one has not succeeded; chained: the task sent behind this one. */
    int ahead;
    int ran_chained;           /* this attempt was sent ahead (STEP_STARTED says so) */
    struct loom_task *after, *chained;
    char **after_at;           /* JSON Pointers where the predecessor's output goes (owned) */
    size_t n_after_at;
} loom_task_t;

typedef struct loom_engine_cfg {
    loom_store_t *store;          /* borrowed */
    loom_registry_t *reg;         /* borrowed */
    loom_placement_t placement;
    /* Sends n tasks to w in one message (the engine already marked them
     * assigned). Returns 0 when sent; non-zero when w's socket did not
     * take them (its send queue full, its connection gone): back-pressure,
     * not a loss. The engine takes them back under the same attempt and
     * pauses w (registry.h, send_paused) until it is heard from again. */
    int (*send_tasks)(void *ud, loom_worker_rec_t *w, loom_task_t **tasks, size_t n);
    /* Tells w to stop task t (timeout, run cancelled). */
    void (*cancel_task)(void *ud, loom_worker_rec_t *w, const loom_task_t *t, const char *reason);
    /* A run event happened (already stored). final: the run reached a final
     * state with this event. */
    void (*on_event)(void *ud, loom_run_t *run, const Loom__V1__RunEvent *ev, int final);
    void *ud;
    int64_t placement_timeout_ms; /* fail a task no worker can run after this (default 30000) */
    int max_lost;                 /* re-runs after lost workers before failing (default 3) */
    int64_t backoff_ms;           /* first retry delay (default 100), doubles, max 5000 */
    int64_t adopt_grace_ms;       /* after recovery, hold recovered tasks this long so workers
                                   * that still run them can re-register and keep them (default 3000) */
    unsigned inline_ops;          /* LOOM_INLINE_* bits: ops loomd runs itself (default none) */
    int64_t output_ref_bytes;     /* step outputs (parts) over this many bytes stay on their worker
                                   * and travel by reference (workers/common/outref.h); 0 = 65536,
                                   * < 0 = never */
    int chain_depth;              /* worker-side chaining: successors sent ahead behind a task
                                   * on the same worker, at most (README "Chains"); 0 = none */
    int64_t object_retention_ms;  /* a run's objects are kept on their workers (as a cache, for
                                   * `loom logs`) this long after it ended, then forgotten
                                   * (engine_objects.c); 0 = 3600000, < 0 = until evicted */
    int prefix_placement_off;     /* 1: placement ignores the prompt prefixes workers hold */
} loom_engine_cfg_t;

/* Cheap ops without side effects that loomd may run itself instead of
 * sending them to a worker (loomd --inline-ops noop,echo). */
enum { LOOM_INLINE_NOOP = 1 << 0, LOOM_INLINE_ECHO = 1 << 1 };

loom_engine_t *loom_engine_new(const loom_engine_cfg_t *cfg);
void loom_engine_destroy(loom_engine_t **pe);

typedef struct loom_submit {
    const char *yaml;
    size_t yaml_len;
    const char *name;          /* file name for messages */
    const char *inputs_json;   /* object, or NULL/"" = {} */
    double sla_latency_ms;     /* override; 0 = the workflow's */
    const char *idempotency_key; /* may be NULL */
    const char *cwd;           /* the client's working directory (absolute): tool.exec's
                                * default cwd, so relative tool paths work as typed; may be NULL */
    const char *tenant;        /* whose run (NULL = "default"); Get/List/Watch/Cancel of
                                * other tenants are refused unless the caller is admin */
    int allow_sla_miss;        /* run even when admission finds no placement that fits */
    const char *plan_mlir;     /* a partitioned module (loom run --plan) the run follows
                                * instead of its own plan; NULL = plan it */
    const char *labels_json;   /* the client's labels, a JSON object of strings; may be NULL */
} loom_submit_t;

/* Parses, validates and starts a run. On success copies its id into
 * run_id. Bad workflows/inputs: LOOM_EPARSE / LOOM_EINVAL with err naming
 * file:line:col and field. Admission (unless s->allow_sla_miss): when
 * workers are registered but none of the ready ones runs one of the
 * workflow's ops, or the placement policy finds no placement on them that
 * meets the SLA, the run is refused with LOOM_EINFEASIBLE and the reason
 * (nothing is stored). With no ready worker at all the run is accepted and
 * waits for one. */
int loom_engine_submit(loom_engine_t *e, const loom_submit_t *s, char run_id[32], loom_err_t *err);

/* After a restart: rebuilds every run the store reports unfinished, marks
 * its top-level steps that already succeeded (with their stored outputs)
 * as done, and dispatches only what is left. *n (may be NULL) receives how
 * many runs were recovered. Runs whose workflow no longer parses are marked
 * failed. */
int loom_engine_recover(loom_engine_t *e, int *n, loom_err_t *err);

/* Cancels an active run (its running tasks get cancel messages). Returns 0
 * (and *state = its store state), or LOOM_ENOTFOUND when it is not active. */
int loom_engine_cancel(loom_engine_t *e, const char *run_id, const char *reason, int *state,
                       loom_err_t *err);

/* Pops ready tasks by least slack and sends them, batched per worker. */
void loom_engine_dispatch(loom_engine_t *e);

/* A worker reported a result. LOOM_EPROTO when w does not own the task
 * (err says why); stale attempts and unknown tasks return LOOM_ENOTFOUND.
 * output is the JSON text (len bytes; NULL/0 = null). code: the failure's
 * Loom__V1__StatusCode as the worker gave it (0 = none). */
int loom_engine_result(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                       uint32_t attempt, int ok, const char *output, size_t len,
                       const char *error, int retryable, int code, double step_ms,
                       loom_err_t *err);

/* w could not fetch an input of a task it owns by reference (object_id:
 * the holder died, dropped it or sent it corrupted; ResultRequest.
 * lost_input): the dependency whose output holds it runs again (elsewhere,
 * an event with the reason) and the task's step waits for it and starts
 * again. When that cannot be (no such dependency, a foreach item, the
 * producer re-ran too often, or its input is gone), the task fails with
 * the reason as loom_engine_result would. */
int loom_engine_input_lost(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id, uint32_t attempt,
                           const char *object_id, const char *error, loom_err_t *err);

/* w refused a task it owns (draining, no capacity): it goes back to the
 * queue for another worker without counting against retries. Same
 * ownership checks as loom_engine_result. */
int loom_engine_refused(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                        uint32_t attempt, const char *why, loom_err_t *err);

/* Progress (streamed tokens) of a running task; published as an event. */
void loom_engine_progress(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                          uint32_t attempt, const char *text);
/* A worker's note about a running task (e.g. "KV transfer failed: ...;
 * prefill re-run here"): a progress event with a message, stored with the
 * run's events (streamed text is not). */
void loom_engine_progress_note(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                               uint32_t attempt, const char *message);
/* An output a running task announced early (ProgressRequest.early_output):
 * for the prefill of a split llm.generate, the reference of its KV stream,
 * so its decode is dispatched now and fetches layers while the prefill
 * computes (issue 15, layer-wise streaming). Ignored for other tasks. */
void loom_engine_early_output(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                              uint32_t attempt, const char *json);

/* w said these tasks began executing (WorkerHub.Started); tasks it does
 * not own or other attempts are ignored. */
void loom_engine_started(loom_engine_t *e, loom_worker_rec_t *w, const char *task_id,
                         uint32_t attempt);

/* w was lost: its tasks go back to the queue. A task that had started
 * counts as an attempt (at most max_lost of them); one that was only
 * queued on w is re-queued under the same attempt. */
void loom_engine_worker_lost(loom_engine_t *e, loom_worker_rec_t *w);

/* ---- reconciliation when a worker (re-)registers (engine_adopt.c) ---- */

typedef enum {
    LOOM_HELD_QUEUED = 1,   /* received, not started */
    LOOM_HELD_RUNNING = 2,  /* executing */
    LOOM_HELD_FINISHED = 3, /* finished; the worker can send the result again */
} loom_held_state_t;

typedef struct loom_held_task {
    const char *task_id, *task_key;
    uint32_t attempt;
    loom_held_state_t state;
} loom_held_task_t;

typedef enum {
    LOOM_ADOPT_DROP = 0,   /* the worker discards it (no run, no report) */
    LOOM_ADOPT_KEEP = 1,   /* the worker keeps running it for loomd */
    LOOM_ADOPT_RESEND = 2, /* the worker sends its result again */
} loom_adopt_t;

/* w registered (again) holding held[0..n). Tasks loomd had on w that w no
 * longer holds are lost (as loom_engine_worker_lost); each held task is
 * matched to a live task by id or, after a loomd restart, by task key,
 * and adopted onto w when that runs it at most once (decision[i] says what
 * w does with it). */
void loom_engine_reconcile(loom_engine_t *e, loom_worker_rec_t *w, const loom_held_task_t *held,
                           size_t n, loom_adopt_t *decision);

/* The task's stable key (see worker.proto AssignRequest.task_key). */
void loom_task_key(const loom_task_t *t, char *buf, size_t n);
/* The set of workers changed: parked tasks get another chance. */
void loom_engine_workers_changed(loom_engine_t *e);

/* Timeouts, retry backoff, parked tasks, SLA misses. Returns the number of
 * ms until it wants to be called again. */
int64_t loom_engine_tick(loom_engine_t *e);

/* Active (non-final) runs. */
size_t loom_engine_active_runs(const loom_engine_t *e);
/* What worker w holds: *running = tasks it said it started (busy slots),
 * *queued = tasks sent to it that have not started. One definition for
 * ListWorkers, /metrics and the dashboard's utilisation (busy / slots). */
void loom_worker_load(const loom_worker_rec_t *w, int *running, int *queued);
loom_run_t *loom_engine_find_run(loom_engine_t *e, const char *run_id);
const char *loom_run_id(const loom_run_t *r);
/* The workflow's name (its `name:`), for per-workflow metrics. */
const char *loom_run_workflow_name(const loom_run_t *r);
/* The run's parsed workflow (borrowed, valid while the run is active). */
const struct loom_workflow *loom_run_workflow(const loom_run_t *r);
uint64_t loom_run_last_seq(const loom_run_t *r);
/* This loomd process's epoch (changes on every restart). */
uint32_t loom_engine_epoch(const loom_engine_t *e);

/* The task's step id as clients see it ("loop/body" inside loops). */
void loom_task_step_path(const loom_task_t *t, char *buf, size_t n);
/* The model resource name of its step (llm/embed ops), or NULL. */
const char *loom_task_model(const loom_task_t *t);

/* Counters for logs and the benchmark. */
typedef struct loom_engine_stats {
    uint64_t tasks_dispatched, tasks_succeeded, tasks_failed, tasks_retried, tasks_lost;
    uint64_t results_rejected;  /* not owned / unknown / stale */
    uint64_t tasks_unsent;      /* taken back because a worker's socket refused them (back-pressure) */
    uint64_t tasks_chained;     /* released after being sent ahead behind their predecessor */
    uint64_t runs_submitted, runs_finished;
    size_t ready, live_tasks;
} loom_engine_stats_t;
void loom_engine_stats(const loom_engine_t *e, loom_engine_stats_t *out);

/* Event kind names used in the store ("step.finished", ...) and back. */
const char *loom_event_kind_name(int kind);
int loom_event_kind_parse(const char *name);

#endif
