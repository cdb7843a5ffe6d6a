/* sim.h — discrete-event simulation of a fleet serving a workload:
 * Poisson arrivals per workflow, every granular op dispatched to its
 * planned device class, FIFO queueing per class, batching (decode and
 * embed share a device among `batch` requests; other device ops hold a
 * whole device), cross-device transfers as delays, branch probabilities,
 * loop iteration counts and lognormal service-time spread (the cost
 * model's mean and sd per op and device). Tool calls are external: they
 * delay the run but hold no device.
 *
 * Reports per workflow and overall: runs, SLA attainment, p50/p95/p99
 * latency; per device class: utilisation and mean queueing delay; the
 * fleet's cost over the simulated time. */
#ifndef LOOM_PLANNER_SIM_H
#define LOOM_PLANNER_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "planner/cost.h"
#include "planner/fleet.h"
#include "planner/graph.h"

typedef struct loom_sim_workflow {
    const char *name;
    const loom_graph_t *g;    /* borrowed; topo order computed */
    const loom_cost_t *cost;  /* built over the simulated fleet */
    const int *assign;        /* fleet entry per node (e.g. loom_plan_assignment) */
    double rate_per_s;
    double sla_ms;            /* 0 = none */
} loom_sim_workflow_t;

typedef struct loom_sim_opts {
    double seconds;           /* arrivals stop after this simulated time (0 = 60) */
    uint64_t max_runs;        /* and after this many arrivals (0 = unlimited) */
    uint64_t seed;            /* 0 = 1 */
} loom_sim_opts_t;

typedef struct loom_sim_stats {
    uint64_t runs;
    double mean_ms, p50_ms, p95_ms, p99_ms, attain;
} loom_sim_stats_t;

typedef struct loom_sim_device {
    const char *name;         /* class name (borrowed from the catalog) */
    int count;
    int owned;
    double utilisation;       /* busy device-time / (count x time) */
    double wait_ms;           /* mean queueing delay of ops placed here */
    uint64_t ops;
} loom_sim_device_t;

/* Plain result record, read-only for callers; free with loom_sim_result_destroy. */
typedef struct loom_sim_result {
    loom_sim_stats_t all;
    loom_sim_stats_t *wf;     /* one per workflow */
    size_t nwf;
    loom_sim_device_t *dev;   /* one per fleet entry */
    size_t ndev;
    double sim_seconds;       /* simulated time until the last run finished */
    uint64_t events;
    double wall_ms;
    double usd, usd_per_1k_runs;
} loom_sim_result_t;

int loom_sim_run(const loom_fleet_t *f, const loom_sim_workflow_t *w, size_t nw, const loom_sim_opts_t *o,
                 loom_sim_result_t **out, loom_err_t *err);
void loom_sim_result_destroy(loom_sim_result_t **pr);

#endif
