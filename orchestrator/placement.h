/* placement.h — the one interface that decides which worker runs a ready
 * task. loomd calls pick() for each task it pops from the ready queue
 * (least slack first). The default policy is least-loaded among the ready
 * workers that list the task's op; the planner plugs its plan-driven
 * policy in behind the same vtable (loom_placement_t). */
#ifndef LOOM_ORCHESTRATOR_PLACEMENT_H
#define LOOM_ORCHESTRATOR_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "orchestrator/registry.h"

struct Loom__V1__Plan;

/* What a policy says about the worker it picked (filled by pick when the
 * caller passes one): the prediction for this task on it and why it was
 * chosen. Left zero / "" when the policy has nothing to say (least-loaded:
 * loomd then records its own "least-loaded ..." reason). */
typedef struct loom_placement_why {
    double predicted_ms;   /* 0 = no prediction */
    double predicted_cost; /* USD for this task on the chosen worker; 0 = none */
    char reason[768]; /* the placement, then the inputs it receives from other devices */
} loom_placement_why_t;

/* What placement may look at for a task (borrowed for the call). */
typedef struct loom_placement_req {
    const char *run_id;
    const char *step_id;
    const char *op;
    const char *device_class; /* target class from a plan ("gpu", "H100"...); NULL = any */
    const char *model;        /* model resource name for llm/embed ops; NULL otherwise */
    int attempt;
    const char *avoid_worker; /* the worker a previous attempt failed on; NULL = none */
    /* For plan-driven policies (may be NULL / 0): */
    const struct loom_workflow *workflow; /* the run's parsed workflow */
    double sla_ms;            /* the run's SLA; 0 = none */
    double elapsed_ms;        /* since the run started */
    const char *plan_mlir;    /* a partitioned module the run follows (loom run --plan): each
                               * node runs on the device (worker id) its function names */
    /* Reports a plan or re-plan of the run; loomd publishes it as a PLANNED
     * (replanned = 0) or REPLANNED event with message as its text and plan
     * (may be NULL; borrowed for the call) as its Plan; plan_hex (may be
     * NULL) is plan encoded as loomd stores it (loom_plan_codec_hex,
     * plan_codec.h) when the policy keeps that already (a cached plan). */
    void (*note)(void *note_ud, const char *run_id, int replanned, const char *message,
                 const struct Loom__V1__Plan *plan, const char *plan_hex);
    void *note_ud;
    loom_placement_why_t *why; /* out, may be NULL: see loom_placement_why_t */
    /* Prefix-aware placement of a whole llm.generate task (NULL / 0: off or
     * not one): its prompt's prefix keys (protocol/prefix_key.h, shortest
     * first), matched against what each worker reports holding, and the
     * length of its canonical prompt text. */
    const uint64_t *prefix_keys;
    size_t n_prefix_keys;
    size_t prompt_bytes;
} loom_placement_req_t;

typedef struct loom_placement {
    const char *name;
    /* Returns a ready worker with free capacity for req, or NULL when none
     * is free now. Sets *never = 1 when no registered worker could ever run
     * it (no one lists the op / class), so loomd can report that. */
    loom_worker_rec_t *(*pick)(void *self, const loom_placement_req_t *req, loom_registry_t *reg,
                               int *never);
    void (*destroy)(void *self);
    /* Optional: admission at submit, before any task of the run is
     * dispatched (req: run_id, workflow, sla_ms, note). Returns 0 to admit,
     * or LOOM_EINFEASIBLE with err saying why no placement on the live
     * workers meets the run's SLA. allow_miss: the client asked to run
     * anyway (the policy admits, and may keep what it planned). */
    int (*admit)(void *self, const loom_placement_req_t *req, loom_registry_t *reg, int allow_miss,
                 loom_err_t *err);
    /* Optional: calibration. A task of run_id's step (path "loop/body")
     * succeeded on w after measured_ms of execution (the worker's own
     * figure); predicted_ms is what pick said for it (0 = nothing). */
    void (*observe)(void *self, const char *run_id, const char *step_id, const char *op,
                    const loom_worker_rec_t *w, double predicted_ms, double measured_ms);
    /* Optional: 1 when the run's plan module splits llm.generate step
     * step_id across devices (llm.prefill, loom.kv.transfer, llm.decode on
     * another device): loomd then runs the step as an llm.prefill task and
     * an llm.decode task that gets the prefill's KV cache (the decode
     * worker fetches it from the prefill worker: the KV handoff). */
    int (*split_kv)(void *self, const char *run_id, const char *step_id);
    /* Optional: worker-side chaining. req is step req->step_id, ready the
     * moment its predecessor pred_step_id (whose task was just placed on w)
     * succeeds: 1 when the policy puts it on w too, so loomd sends it ahead
     * behind its predecessor (filling why like pick); 0 = place it when it
     * is ready. NULL: successors follow their predecessor to any worker
     * that runs their op (least-loaded has no reason to move them). */
    int (*colocated)(void *self, const loom_placement_req_t *req, const char *pred_step_id,
                     const loom_worker_rec_t *w, loom_registry_t *reg);
    /* Optional: a task sent ahead (colocated) became ready, its predecessor
     * having succeeded; it runs, or ran, on the worker it was sent to. What
     * pick would check for a ready task besides choosing its worker (a
     * plan-driven policy re-plans a run that fell behind its plan; that
     * applies to the steps not sent yet). */
    void (*chained_ready)(void *self, const loom_placement_req_t *req, loom_registry_t *reg);
    /* Optional: the tasks picked in this dispatch round were sent (their
     * records and events follow): what need not delay them (the planner
     * lowers and announces the plans it made in the round). */
    void (*dispatched)(void *self);
    /* Optional: the run reached a final state (the policy may drop what it
     * kept about it). */
    void (*run_done)(void *self, const char *run_id);
    void *self;
} loom_placement_t;

/* Least in-flight/slots ratio among ready workers listing the op (and
 * matching device_class when one is given: by kind or model prefix);
 * prefers not to reuse avoid_worker when another is free. loomd's
 * --placement least-loaded, and the planner's fallback. */
loom_placement_t loom_placement_least_loaded(void);

/* The planner's policy (placement_planner.c): each run is planned against
 * the live registry (every ready worker is a device class with its measured
 * GFLOP/s, GB/s, memory and price; planner/place.h) on its first dispatch,
 * its tasks go to the planned workers, and the run is re-planned when a
 * planned worker is gone or the run falls behind its plan. Steps it cannot
 * plan fall back to least-loaded. Returns a policy with self == NULL on OOM. */
loom_placement_t loom_placement_planner(void);

/* The planner's plan cache (placement_planner.c): runs of the same workflow
 * text and SLA on an unchanged fleet and calibration reuse one plan. */
typedef struct loom_placement_plan_cache_stats {
    uint64_t hits;          /* runs that borrowed a cached plan */
    uint64_t misses;        /* runs planned afresh (first of their workflow, or not cacheable) */
    uint64_t invalidated;   /* entries replaced because the fleet or calibration changed */
    uint64_t entries;       /* entries held now */
} loom_placement_plan_cache_stats_t;

/* Fills *out for a planner policy; -1 (and zeros) for any other policy. */
int loom_placement_plan_cache_stats(const loom_placement_t *pl, loom_placement_plan_cache_stats_t *out);

/* Serves the Plan RPC (placement_planner.c): decomposes and places the
 * workflow text without running it, on the live ready workers when
 * fleet_yaml is NULL or empty, else on that fleet (whose catalog: key is a
 * path on loomd's machine). sla_ms > 0 overrides the workflow's SLA;
 * objective: 0 = the workflow's, 1 = cost, 2 = latency. On success *out is
 * the caller's (free with loom_placement_plan_free). */
int loom_placement_plan_request(loom_registry_t *reg, const char *yaml, const char *name, double sla_ms,
                                int objective, const char *fleet_yaml, struct Loom__V1__Plan **out,
                                loom_err_t *err);
void loom_placement_plan_free(struct Loom__V1__Plan *p);

#endif
