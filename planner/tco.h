/* tco.h — fleet total cost of ownership: the cheapest set of device counts
 * that serves a workload (workflows x request rates) within every SLA.
 *
 * Method: for each workflow, candidate placements are planned (place.h)
 * on every single class, on every pair of classes and on all classes
 * together; candidates that miss the SLA are dropped. Each candidate has a
 * busy time per run on each class (device-seconds, after batching). An ILP
 * (GLPK) then chooses integer rented counts r_j and the share y_wp of each
 * workflow's traffic served by each candidate:
 *   min  sum_j hourly_j x r_j + sum_j energy_j x o_j
 *   s.t. sum_p y_wp = 1                                    (each workflow)
 *        busy_j = sum_wp rate_w x y_wp x b_wpj <= U x r_j + o_j
 *        0 <= o_j <= U x owned_j
 * where owned_j are devices already owned (sunk: only the energy of the
 * load o_j they serve counts), U the target utilisation (headroom for
 * queueing, default 0.7), and a rented device's hourly price includes its
 * energy (as in `loom plan`'s cost and `loom simulate`'s bill).
 * Homogeneous fleets (every workflow on one class) are priced beside it. */
#ifndef LOOM_PLANNER_TCO_H
#define LOOM_PLANNER_TCO_H

#include <stddef.h>

#include "common/err.h"
#include "planner/catalog.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/place.h"

typedef struct loom_tco_workflow {
    const char *name;
    const loom_graph_t *g;      /* borrowed; topo order computed */
    loom_place_opts_t opts;     /* SLA and percentile */
    double rate_per_s;
} loom_tco_workflow_t;

/* Per class figures (one entry per catalog class). A plain result record,
 * read-only for callers. */
typedef struct loom_tco_class {
    const char *name;           /* borrowed from the catalog */
    int rented, owned;          /* devices in the chosen fleet */
    double busy;                /* mean devices busy (device-seconds per second) */
    double usd_per_hour;        /* this class's share of the fleet cost */
    /* homogeneous fleet of this class alone */
    int homo_ok;                /* every workflow meets its SLA on it */
    int homo_count;
    double homo_usd_per_hour;
} loom_tco_class_t;

typedef struct loom_tco_result {
    int feasible;               /* some fleet serves every workflow */
    char infeasible_why[256];
    size_t nclasses;
    loom_tco_class_t *classes;
    double usd_per_hour, usd_per_1k_runs, runs_per_s;
    size_t candidates;          /* placements evaluated */
    double solve_ms;            /* wall time of candidate planning + ILP */
    double ilp_ms;
    char **mix;                 /* per workflow: "H100-SXM+L4 80%, L4 20%" (owned) */
    size_t nworkflows;
} loom_tco_result_t;

typedef struct loom_tco_opts {
    double utilization;         /* (0,1], 0 = 0.7 */
    int no_pairs;               /* skip two-class candidates (faster) */
} loom_tco_opts_t;

/* owned may be NULL (nothing owned). Caller owns *out. Returns 0 (check
 * out->feasible) or a negative LOOM_E*. */
int loom_tco_solve(const loom_catalog_t *cat, const loom_fleet_t *owned, const loom_tco_workflow_t *w, size_t nw,
                   const loom_tco_opts_t *opts, loom_tco_result_t **out, loom_err_t *err);
void loom_tco_result_destroy(loom_tco_result_t **pr);

#endif
