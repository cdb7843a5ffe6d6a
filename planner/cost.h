/* cost.h — the cost model: for every granular op and every device class
 * present in a fleet, the time and dollar cost of one execution, and for
 * every edge that crosses classes, the transfer time and cost.
 *
 * Analytic estimate (roofline, after Asgar et al. 2025, t_ij = max_r(θ/perf)
 * + l_i + d_ij):
 *   t = max(flops / (peak[prec] x eff_compute), bytes / (bw x eff_memory))
 *       / batch_gain + launch_us + fixed_ms
 * where for LLM ops served in batches of B the weights are read once per
 * batch (batch_gain lets `bytes` be shared); an op whose mem_bytes exceeds
 * the class's memory does not fit (time = +inf). External ops (tools) take
 * fixed_ms anywhere and hold a host slot.
 * Cost = device-seconds held x the fleet's $/device-second (rented: hourly
 * price; owned: energy only), divided by B for batched ops.
 * Transfers: bytes / min(link gbps of both ends) + max(link latency), priced
 * at bytes x max(usd_per_gb) plus both devices' time held.
 * A profile entry replaces (latency_ms, cost_usd) or scales (scale) these.
 *
 * "Device" below means a fleet entry index k (0..loom_cost_devices()-1). */
#ifndef LOOM_PLANNER_COST_H
#define LOOM_PLANNER_COST_H

#include <stddef.h>

#include "common/err.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/profile.h"

typedef struct loom_cost loom_cost_t;

/* Where a figure came from. */
typedef enum {
    LOOM_COST_ROOFLINE = 0,
    LOOM_COST_PROFILE,        /* measured latency (and maybe cost) */
    LOOM_COST_PROFILE_SCALED, /* analytic x measured scale */
} loom_cost_src_t;

/* Builds the table for graph g over fleet f (both borrowed; must outlive
 * the result). prof may be NULL. Caller owns the result. */
loom_cost_t *loom_cost_new(const loom_graph_t *g, const loom_fleet_t *f, const loom_profile_t *prof,
                           loom_err_t *err);
void loom_cost_destroy(loom_cost_t **pc);

size_t loom_cost_devices(const loom_cost_t *c);
const char *loom_cost_device_name(const loom_cost_t *c, int k);
const loom_fleet_t *loom_cost_fleet(const loom_cost_t *c);
const loom_graph_t *loom_cost_graph(const loom_cost_t *c);

/* Per execution of node `node` on device k. Infeasible (does not fit or
 * unsupported precision): fits = 0, time = +inf. */
int loom_cost_fits(const loom_cost_t *c, int node, int k);
double loom_cost_ms(const loom_cost_t *c, int node, int k);     /* mean latency */
double loom_cost_sd_ms(const loom_cost_t *c, int node, int k);  /* std deviation */
double loom_cost_usd(const loom_cost_t *c, int node, int k);
double loom_cost_busy_s(const loom_cost_t *c, int node, int k); /* device-seconds held (÷ batch) */
loom_cost_src_t loom_cost_source(const loom_cost_t *c, int node, int k);
/* Which roofline resource bounds the op: "compute", "memory", "fixed", "profile". */
const char *loom_cost_bound(const loom_cost_t *c, int node, int k);

/* Marks device k unusable for node (e.g. the worker behind it does not
 * list the op): afterwards loom_cost_fits() is 0 there. */
void loom_cost_forbid(loom_cost_t *c, int node, int k);

/* Sets the time of every op whose figure is an uncalibrated roofline
 * estimate (compute- or memory-bound, no profile entry) to 0, keeping
 * fixed latencies (tools, sleeps, expect: hints), measured and scaled
 * figures and transfers: what is left is a lower bound of the run's
 * latency that rests on no guess of the hardware's speed. */
void loom_cost_drop_estimates(loom_cost_t *c);

/* Edge idx from device ka to kb (0 when ka == kb: co-located). */
double loom_cost_xfer_ms(const loom_cost_t *c, int edge, int ka, int kb);
double loom_cost_xfer_usd(const loom_cost_t *c, int edge, int ka, int kb);

/* Prefix reuse (issue 15): an LLM call whose prompt starts with `prefix`
 * tokens whose KV device h holds (its engine's prefix cache), the whole
 * prompt `prompt` tokens, priced three ways for running on device k:
 *   there:     on h: wait_h + prefill(prompt - prefix on h) + decode on h
 *   move:      the prefix's KV from h to k over the KV edge's link, then
 *              wait_k + prefill(prompt - prefix on k) + decode on k
 *   recompute: wait_k + prefill(prompt on k) + decode on k
 * prefill(t) scales the prefill node's time by t / its planned tokens (the
 * KV transfer likewise); decode is the decode node's time (-1: none). The
 * waits are the queues ahead on each (ms). `best` is the cheapest of the
 * three (there only when k == h, where move is the same as there). */
typedef enum { LOOM_PREFIX_THERE = 0, LOOM_PREFIX_MOVE = 1, LOOM_PREFIX_RECOMPUTE = 2 } loom_prefix_choice_t;
typedef struct loom_prefix_price {
    double there_ms, move_ms, recompute_ms;
    loom_prefix_choice_t best;
} loom_prefix_price_t;
void loom_cost_prefix(const loom_cost_t *c, int prefill, int decode, double prompt, double prefix, int h, int k,
                      double wait_h, double wait_k, loom_prefix_price_t *out);
const char *loom_prefix_choice_name(loom_prefix_choice_t x);

#endif
