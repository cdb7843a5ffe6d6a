/* engine_internal.h — shared between engine.c (state machines),
 * engine_results.c (task outcomes) and stitch.c (rendering, events, store
 * records). Not a public interface. */
#ifndef LOOM_ORCHESTRATOR_ENGINE_INTERNAL_H
#define LOOM_ORCHESTRATOR_ENGINE_INTERNAL_H

#include <jansson.h>

#include "common/map.h"
#include "orchestrator/engine.h"
#include "planner/expr.h"
#include "planner/workflow.h"

/* Task latency histogram: 32 buckets per power of 10 (7.5% wide, so a
 * p50 compared with a round trip is not a 33%-wide guess) from 1 us to
 * 1000 s. */
#define LAT_PER_DECADE 32
#define LAT_BUCKETS (9 * LAT_PER_DECADE)

/* LIST_INLINE: ready tasks of --inline-ops ops, run by loomd itself in
 * FIFO order (engine.c, engine_run_inline) instead of going to a worker */
enum { LIST_NONE = 0, LIST_RETRY = 1, LIST_TIMED = 2, LIST_PARKED = 3, LIST_INLINE = 4, LIST_COUNT = 5 };

/* Runtime state of one step in one scope. */
typedef struct step_rt {
    loom_task_state_t state;  /* PENDING, READY (released), then final */
    int waiting;              /* dependencies not yet final */
    int consumers;            /* dependents not yet final */
    int keep;                 /* output needed after the dependents (outputs, loops) */
    int freed;                /* output dropped because nobody needs it */
    json_t *output;           /* once succeeded (null when skipped) */
    int is_foreach;
    json_t *items, *results;  /* foreach: the items and the gathered outputs */
    size_t n_items, n_done;
    int tasks_live;
    int started_event;        /* STEP_STARTED sent */
    int control_read;         /* top level: a when:/foreach:/until: reads its output */
    int error_code;           /* Loom__V1__StatusCode of its failure (0 = by state) */
    char last_task[24];       /* the attempt that ended a plain step: task, worker, attempt */
    char last_worker[128];
    int last_attempt;
    int cancel_recorded;      /* foreach: the cancelled step was recorded */
    int64_t started_ms, finished_ms;
    /* re-running a producer whose output's holder died (engine_rerun_step) */
    char *rerun_input;        /* the input of the task that made an output holding
                                 references, while that output is kept */
    int reruns;               /* times it ran again for that reason */
    /* loops */
    struct scope *body;       /* the running iteration */
    int iteration;            /* iterations completed */
    json_t *prev;             /* previous iteration's outputs {id: output} */
    struct loom_task *ahead;  /* its task, sent ahead behind its predecessor's (engine.c,
                               * chain_ahead); released when the predecessor succeeds */
} step_rt_t;

/* The steps of a graph being executed: the top level, or one loop iteration. */
typedef struct scope {
    struct loom_run *run;
    const loom_wf_graph_t *g;
    step_rt_t *st;
    struct scope *parent;     /* NULL at the top */
    size_t owner;             /* the loop step in parent */
    int iteration;
    size_t remaining;         /* steps not final */
    size_t *dep_off, *dep_list; /* dependents (CSR) */
    int has_loop;
    int done;                 /* all steps final; the scope is being retired */
    struct scope *dead_next;  /* retired scopes, freed at the end of the engine call */
} scope_t;

struct loom_run {
    char id[32];
    loom_workflow_t *wf;        /* shared with the runs of the same document (wf_shared) */
    struct wf_shared *wf_shared; /* engine_workflow_release() drops the run's reference */
    char *yaml, *name, *workflow_dir, *client_cwd;
    char *tenant;               /* whose run: the submitter's token tenant ("default") */
    char *plan_mlir;            /* the module it must follow (loom run --plan); NULL = none */
    char *labels_json;          /* the client's labels (JSON object) or NULL */
    double cost;                /* USD so far: sum of its finished tasks' costs */
    char **secrets;             /* values of secret inputs, redacted from what is written */
    size_t n_secrets;
    json_t *inputs;
    scope_t *top;
    loom_run_state_t state;
    int final;
    int64_t created_ms, started_ms, finished_ms, deadline_ms;
    uint64_t start_mono, deadline_mono;
    double sla_ms;
    int sla_missed;
    int sla_at_risk;          /* SLA_AT_RISK sent */
    uint64_t next_risk_check; /* loom_clock_ms() */
    int64_t *cp;              /* remaining critical path (ms) per top-level step */
    uint64_t seq;             /* last event seq */
    int tasks_total, tasks_done;
    size_t live_tasks;
    loom_task_t *tasks;       /* live tasks */
    char *error;
    int error_code;           /* Loom__V1__StatusCode of a failed/cancelled run */
    uint32_t lat_hist[LAT_BUCKETS]; /* task latency (ready -> result), log buckets */
    char **obj_workers;       /* workers that may hold objects of the run (engine_objects.c) */
    size_t n_obj_workers;
    struct loom_run *dead_next;
};

struct loom_engine {
    loom_engine_cfg_t cfg;
    loom_map_t *runs;         /* id -> active loom_run_t */
    loom_map_t *tasks;        /* id -> live loom_task_t */
    loom_map_t *idem;         /* idempotency key -> run id (owned strings) */
    loom_map_t *workflows;    /* "<file>\x1f<text>" -> struct wf_shared: parsed once (stitch.c) */
    loom_sched_t ready;
    loom_task_t *lists[LIST_COUNT];
    loom_task_t *inline_tail;  /* the last of lists[LIST_INLINE] (a FIFO) */
    loom_run_t *dead;         /* final runs to free at the end of the call */
    scope_t *dead_scopes;     /* finished loop iterations, likewise */
    uint64_t next_task, next_run, next_sla_check;
    uint64_t freed_tasks;     /* tasks of runs freed since the last malloc_trim */
    uint32_t boot;
    uint32_t epoch;           /* this loomd process (task ids, RegisterReply.epoch) */
    loom_engine_stats_t stats;
    struct forget *forget_head, *forget_tail; /* runs whose objects are forgotten later (engine_objects.c) */
};

/* A step's expected duration: expect.latency_ms, else a default per op. */
int64_t engine_estimate_ms(const loom_wf_step_t *s);

/* Resolver context for planner/expr. */
typedef struct rctx {
    loom_run_t *run;
    scope_t *sc;
    json_t *item;
    int has_item;
    /* rendering a successor sent ahead (engine_render_chained): step pred
     * of scope pred_sc has no output yet; a whole-value reference to it
     * renders as a placeholder, any other use of it fails */
    const struct scope *pred_sc;
    size_t pred;
    /* rendering a task input of a workflow with `secrets:`: a fresh random
     * tag that each ${secrets.NAME} written in the workflow carries to the
     * worker (${secrets.NAME#tag}), so text that arrives as data (an input,
     * an upstream output) can never name a secret; "" otherwise */
    char secret_tag[33];
} rctx_t;

/* An event to publish (strings borrowed). */
typedef struct engine_ev {
    int kind;                 /* Loom__V1__RunEventKind */
    const char *step_id, *task_id, *worker_id;
    int attempt;
    int step_state;           /* Loom__V1__StepState, 0 = none */
    const char *message, *output, *error, *text, *device;
    const Loom__V1__Plan *plan; /* PLANNED / REPLANNED (borrowed) */
    const char *plan_hex;       /* plan as stored (plan_codec.h), when the caller has it (else emit encodes it) */
    double step_ms;
    int error_code;           /* Loom__V1__StatusCode of error (0 = UNKNOWN) */
    int final;
} engine_ev_t;

/* stitch.c */
json_t *engine_resolve(void *ctx, const loom_ref_t *ref, loom_err_t *err);
int engine_render_input(const loom_engine_t *e, loom_run_t *r, scope_t *sc, size_t i, rctx_t *rc, char **out, size_t *len,
                        loom_err_t *err);
int engine_render_outputs(loom_run_t *r, char **out, loom_err_t *err);
/* Renders step i's input before its dependency pred (same scope) has an
 * output, for a task sent ahead behind pred's (worker-side chaining): each
 * value that is exactly ${steps.<pred>.output} becomes null and its JSON
 * Pointer is added to *at (*n_at of them, owned by the caller). Fails
 * (non-zero) when the input reads pred's output any other way (a field of
 * it, inside a string) or does not render; the step then goes the usual
 * way. */
int engine_render_chained(const loom_engine_t *e, loom_run_t *r, scope_t *sc, size_t i, size_t pred,
                          char **out, size_t *len, char ***at, size_t *n_at);
/* 1 when loomd checks or transforms step s's output after the worker's
 * result (an llm op with format: json or schema:), so a result the worker
 * calls a success may still fail the step in loomd. */
int engine_output_checked(const loom_wf_step_t *s);
int engine_output_refs_step(const loom_workflow_t *wf, const char *step_id);
/* Sets control_read of the top scope's steps (stitch.c, one pass). */
void engine_mark_control_reads(scope_t *top);
int engine_prepare_run(loom_engine_t *e, loom_run_t *r, const loom_submit_t *s, loom_err_t *err);
/* Drops r's reference to its parsed workflow (the last one frees it). */
void engine_workflow_release(loom_run_t *r);
/* The map of parsed workflows for loom_engine_t.workflows (NULL on OOM). */
loom_map_t *engine_workflows_new(void);
void engine_emit(loom_engine_t *e, loom_run_t *r, const engine_ev_t *ev);
/* Runs step i of sc (a plain step that succeeded, with st->rerun_input)
 * again, because the holder of its output is gone; its dependents that
 * have not started wait for it again. 0, or -1 when it cannot be. */
int engine_rerun_step(loom_engine_t *e, scope_t *sc, size_t i, const char *why);
void engine_step_event(loom_engine_t *e, scope_t *sc, size_t i, const loom_task_t *t, int kind,
                       const char *message, const char *error);
void engine_step_finished(loom_engine_t *e, scope_t *sc, size_t i, loom_task_state_t state,
                          const char *error);
void engine_task_assigned(loom_engine_t *e, loom_task_t *t);
/* The worker said it started t (Started): its record's start becomes the
 * start of execution (time queued on the worker is not the task's). */
void engine_task_running(loom_engine_t *e, loom_task_t *t);
void engine_task_attempt_failed(loom_engine_t *e, loom_task_t *t, loom_task_state_t how,
                                const char *error);
/* The llm.prefill part of a split llm.generate step succeeded with KV
 * cache reference kv: queues the step's llm.decode part (t's input plus
 * "prefill": kv) on the same step. 0 or LOOM_ENOMEM. */
int engine_kv_handoff(loom_engine_t *e, loom_task_t *t, const json_t *kv);

/* STEP_RETRIED: t is tried again (its new attempt) after why (code: the
 * Loom__V1__StatusCode of the failed attempt; 0 = UNKNOWN). */
void engine_task_retried(loom_engine_t *e, loom_task_t *t, const char *why, int code);
void engine_task_succeeded(loom_engine_t *e, loom_task_t *t, const char *output, size_t len,
                           double step_ms);
void engine_task_progress(loom_engine_t *e, loom_task_t *t, const char *text);
void engine_task_cancelled(loom_engine_t *e, loom_task_t *t, const char *why);
void engine_worker_lost_event(loom_engine_t *e, loom_task_t *t, loom_worker_rec_t *w);

/* engine_objects.c: the lifetime of a run's objects on its workers. */
/* t, which may store objects (by-reference output, llm.*), went to w. */
void engine_objects_note_worker(loom_run_t *r, const loom_task_t *t, const loom_worker_rec_t *w);
/* Every consumer of output finished: release the objects it references. */
void engine_objects_consumed(loom_engine_t *e, const loom_run_t *r, const json_t *output);
/* The same for the JSON text json (its member key when key is not NULL). */
void engine_objects_consumed_text(loom_engine_t *e, const loom_run_t *r, const char *json, size_t len,
                                  const char *key);
/* r ended: release what is still held for it, forget it after the retention. */
void engine_objects_run_done(loom_engine_t *e, loom_run_t *r);
void engine_objects_tick(loom_engine_t *e, uint64_t now);
void engine_objects_free(loom_engine_t *e);
void engine_objects_run_free(loom_run_t *r);

/* engine.c */
void engine_lat_add(loom_run_t *r, uint64_t ns);
/* Latency (us) below which fraction q of the run's tasks finished. */
double engine_lat_quantile(const loom_run_t *r, double q);
void engine_scope_done(loom_engine_t *e, scope_t *sc);
void engine_run_finish(loom_engine_t *e, loom_run_t *r, loom_run_state_t state, const char *error,
                       const char *outputs);
void engine_sla_check(loom_engine_t *e, loom_run_t *r, uint64_t now);
void engine_step_path(const scope_t *sc, size_t i, char *buf, size_t n);
scope_t *engine_scope_new(loom_run_t *r);
void engine_scope_start(loom_engine_t *e, scope_t *sc);
void engine_run_free(loom_run_t *r);

/* engine.c helpers used by engine_results.c: the retry/timed/parked task
 * lists, worker bookkeeping, freeing tasks and finished runs, and a step's
 * final state (which releases its dependents). */
void engine_list_add(loom_engine_t *e, int which, loom_task_t *t);
void engine_list_del(loom_engine_t *e, loom_task_t *t);
/* t became ready: to loomd's inline FIFO (an --inline-ops op) or the ready
 * queue that placement draws from */
void engine_make_ready(loom_engine_t *e, loom_task_t *t);
void engine_worker_detach(loom_task_t *t);
void engine_worker_attach(loom_task_t *t, loom_worker_rec_t *w);
void engine_task_free(loom_engine_t *e, loom_task_t *t);
/* p's attempt ends without success (or p goes away): the tasks sent ahead
 * behind it (chain_ahead) are cancelled on their worker and freed
 * unrecorded; their steps stay pending and are released the usual way. */
void engine_unchain(loom_engine_t *e, loom_task_t *p);
void engine_reap_runs(loom_engine_t *e);
/* A worker reports holding (queued, running or finished) a task of step j
 * of p's scope that loomd does not know: one sent ahead behind p by an
 * earlier loomd (chain_ahead), now adopted with p on p's worker. Rebuilds it
 * as sent ahead behind p there, unrecorded until p succeeds; NULL when j
 * could not have been chained behind p. */
loom_task_t *engine_chain_held(loom_engine_t *e, loom_task_t *p, size_t j);
void engine_finish_step(loom_engine_t *e, scope_t *sc, size_t i, loom_task_state_t state,
                        const char *error);
/* engine_results.c: a failed attempt of t; retried with backoff while
 * retryable and attempts remain, else the step ends in state how. */
void engine_task_failed(loom_engine_t *e, loom_task_t *t, loom_task_state_t how, const char *error,
                        int retryable, int code);
/* The status code of a step that ended in state with code (0 = none
 * given): what RunEvent.error.code and Get's errors carry. */
int engine_error_code(loom_task_state_t state, int code);
/* engine_results.c: t's worker w is gone (lost, or re-registered without
 * it): re-queue (an attempt only if it had started) or fail it. */
void engine_task_lost(loom_engine_t *e, loom_task_t *t, loom_worker_rec_t *w);
/* engine_results.c: w's socket did not take these tasks (send_tasks
 * failed): back to the ready queue under the same attempt, w paused. */
void engine_tasks_unsent(loom_engine_t *e, loom_worker_rec_t *w, loom_task_t **tasks, size_t n);
/* engine_results.c: t (an --inline-ops op) ran in loomd and produced
 * output (JSON text): its step goes on as after a worker's result. */
void engine_inline_result(loom_engine_t *e, loom_task_t *t, const char *output, size_t len);
/* Starts t's timeout_ms clock (it began executing). */
void engine_start_timeout(loom_engine_t *e, loom_task_t *t);

#endif
