/* place.h — SLA-constrained placement: choose a device class (fleet entry)
 * for every granular op so that the run's cost is minimal while the
 * end-to-end latency at the target percentile, on the critical path,
 * stays within the SLA.
 *
 * Latency model: each node's latency is a random variable built from its
 * mean and spread on its device (cost.h), its branch probability (prob) and
 * its iteration count (1 + Binomial(iters_max-1, ...), mean iters_mean).
 * For search, latencies are moment-matched: a path's latency is taken as
 * Normal(sum of means, sum of variances), and the critical path is the one
 * maximising mean + z x sd (z from the percentile), found by a DP over the
 * topological order that keeps, per node, the (mean, var) pair of its worst
 * incoming path. The verdict is re-checked by Monte Carlo (loom_plan_mc).
 *
 * Methods: exact branch and bound over nodes in topological order (cost
 * lower bound = partial cost + cheapest remaining; latency lower bound =
 * mean critical path with the fastest remaining choices) for graphs up to
 * opts.exact_max_nodes nodes and opts.node_budget search nodes; otherwise
 * (or when the budget runs out) a heuristic: cheapest-then-repair and
 * fastest-then-relax greedy passes plus 1-move local search, keeping the
 * best. The plan says which method produced it and the optimality gap when
 * known (0 for a completed exact search).
 *
 * Monte Carlo calibration (graphs up to 5000 ops): the moment model can
 * underestimate the tail of branchy graphs, so a plan that meets the SLA is
 * sampled (loom_plan_mc); when the sampled percentile misses the SLA, the
 * search is repeated with the SLA tightened by the difference (up to four
 * rounds) and the cheapest plan whose sampled percentile meets the SLA is
 * kept. If none does, the first plan is kept and loom_plan_mc_target_ms()
 * shows the sampled figure above the SLA.
 *
 * When nothing meets the SLA the plan is the fastest placement found,
 * feasible = 0 and miss_ms says by how much it misses. */
#ifndef LOOM_PLANNER_PLACE_H
#define LOOM_PLANNER_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "planner/cost.h"
#include "planner/graph.h"

typedef enum {
    LOOM_PLACE_AUTO = 0,   /* exact when small enough, else heuristic */
    LOOM_PLACE_EXACT,      /* branch and bound (stops at node_budget) */
    LOOM_PLACE_HEURISTIC,
} loom_place_method_t;

typedef struct loom_place_opts {
    double sla_ms;          /* end-to-end latency bound; <= 0 = none */
    double percentile;      /* 0.5 .. 0.999; 0 = 0.5 (mean/median) */
    loom_place_method_t method;
    int exact_max_nodes;    /* AUTO uses exact up to this many nodes (0 = 16) */
    uint64_t node_budget;   /* B&B search nodes (0 = 2,000,000) */
    int minimize_latency;   /* objective: latency instead of cost (SLA ignored) */
    int mc_samples;         /* Monte Carlo calibration samples (0 = 2000, < 0 = off); see below */
} loom_place_opts_t;

/* Default options: sla 0, percentile 0.5, AUTO. */
void loom_place_opts_init(loom_place_opts_t *o);

typedef struct loom_plan loom_plan_t;

/* Plans graph g (loom_graph_topo must succeed) with cost table c (both
 * borrowed for the plan's lifetime). Returns 0 and a plan (caller owns) even
 * when the SLA cannot be met (see loom_plan_feasible); negative LOOM_E* when
 * no placement exists at all (an op fits on no device: LOOM_EINFEASIBLE). */
int loom_place(const loom_graph_t *g, const loom_cost_t *c, const loom_place_opts_t *opts,
               loom_plan_t **out, loom_err_t *err);
/* A plan for a given assignment (device per node), e.g. a homogeneous
 * baseline; evaluated like loom_place's. assign is copied. */
int loom_plan_fixed(const loom_graph_t *g, const loom_cost_t *c, const loom_place_opts_t *opts,
                    const int *assign, loom_plan_t **out, loom_err_t *err);
void loom_plan_destroy(loom_plan_t **pp);

/* Device (fleet entry) of node id. */
int loom_plan_device(const loom_plan_t *p, int node);
const int *loom_plan_assignment(const loom_plan_t *p); /* borrowed, one per node */
double loom_plan_cost_usd(const loom_plan_t *p);       /* expected $ per run */
double loom_plan_mean_ms(const loom_plan_t *p);        /* model: mean critical path */
double loom_plan_target_ms(const loom_plan_t *p);      /* model: latency at the percentile */
int loom_plan_feasible(const loom_plan_t *p);          /* meets the SLA (model) */
double loom_plan_miss_ms(const loom_plan_t *p);        /* target - SLA when infeasible, else 0 */
const char *loom_plan_method(const loom_plan_t *p);    /* "exact", "exact-budget", "heuristic", "fixed" */
double loom_plan_gap(const loom_plan_t *p);            /* relative gap; 0 proven optimal; <0 unknown */
uint64_t loom_plan_searched(const loom_plan_t *p);     /* B&B nodes or heuristic evaluations */
double loom_plan_elapsed_ms(const loom_plan_t *p);     /* planner CPU time */
/* Sampled latency at the percentile from the calibration (-1 when not
 * sampled), and how many tightening rounds it took (0 = none needed). */
double loom_plan_mc_target_ms(const loom_plan_t *p);
int loom_plan_mc_rounds(const loom_plan_t *p);
/* Mean start of node (ms after the run starts) under the model: the mean
 * of its worst incoming path (transfers included). */
double loom_plan_start_ms(const loom_plan_t *p, int node);
/* 1 when node is on the (model's) critical path. */
int loom_plan_critical(const loom_plan_t *p, int node);

/* Monte Carlo check of the plan: samples run latencies (lognormal node
 * times, Bernoulli branches, binomial loops) and returns the empirical
 * p50 and the latency at percentile pct, plus the fraction within sla_ms. */
int loom_plan_mc(const loom_plan_t *p, int samples, uint64_t seed, double pct, double sla_ms,
                 double *p50_ms, double *pct_ms, double *attain);

/* Runner-up for node: the best other device (cheapest that keeps the SLA,
 * else the fastest), what the run would then cost and its target latency.
 * Where the node cannot move alone (its KV cache would cross an endpoint),
 * the ops sharing its KV cache move with it. Returns the device or -1 when
 * there is no other device. */
int loom_plan_runner_up(const loom_plan_t *p, int node, double *cost_usd, double *target_ms,
                        int *feasible);

/* Evaluates an assignment with the model above (no plan needed). */
void loom_place_eval(const loom_graph_t *g, const loom_cost_t *c, const int *assign, double z,
                     double *cost_usd, double *mean_ms, double *target_ms);
/* z for a percentile (inverse standard normal CDF). */
double loom_place_z(double percentile);

#endif
