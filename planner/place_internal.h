/* place_internal.h — what the placement files share (place.c: evaluator,
 * heuristic, plans; place_exact.c: branch and bound; place_mc.c: Monte
 * Carlo). Internal to planner/. */
#ifndef LOOM_PLANNER_PLACE_INTERNAL_H
#define LOOM_PLANNER_PLACE_INTERNAL_H

#include <math.h>
#include <stdint.h>

#include "planner/cost.h"
#include "planner/graph.h"
#include "planner/place.h"

#define EPS 1e-9

struct loom_plan {
    const loom_graph_t *g;
    const loom_cost_t *c;
    loom_place_opts_t opts;
    double z;
    int *assign;
    unsigned char *crit;
    double *start;
    double cost, mean, target, miss, gap, elapsed_ms, mc_target;
    int feasible, mc_rounds;
    const char *method;
    uint64_t searched;
};

/* Working state shared by the evaluator and the searches. */
typedef struct {
    const loom_graph_t *g;
    const loom_cost_t *c;
    const int *topo;
    size_t n, ne, K;
    double z, sla;
    double *nmu, *nvar;      /* node moments for the current assignment */
    double *fmu, *fvar;      /* forward: worst path ending at v (including v) */
    double *tmu, *tvar;      /* backward: worst path after v (excluding v) */
    double *mu_vk, *var_vk;  /* node moments per (node, device), precomputed */
    double *usd_vk;          /* expected $ per (node, device) */
    double *ep;              /* per edge: probability it carries data */
    uint64_t evals;
} ctx_t;

static inline void node_moments(const ctx_t *x, int v, int k, double *mu, double *var)
{
    size_t i = (size_t)v * x->K + (size_t)k;
    *mu = x->mu_vk[i];
    *var = x->var_vk[i];
}

static inline double edge_p(const ctx_t *x, const loom_gedge_t *e)
{
    return x->ep[e - loom_graph_edge(x->g, 0)];
}

static inline double node_usd(const ctx_t *x, int v, int k) { return x->usd_vk[(size_t)v * x->K + (size_t)k]; }

/* Transfer time/cost of edge e (index ei) between devices; 0 when co-located. */
static inline double xms(const ctx_t *x, int ei, int ka, int kb)
{
    return ka == kb ? 0 : loom_cost_xfer_ms(x->c, ei, ka, kb);
}
static inline double xusd(const ctx_t *x, int ei, int ka, int kb)
{
    return ka == kb ? 0 : loom_cost_xfer_usd(x->c, ei, ka, kb);
}

static inline double score(const ctx_t *x, double mu, double var) { return mu + x->z * sqrt(var); }

/* Forward and backward moment DP for assignment a (place.c): fills the
 * ctx's F/T arrays and returns the target latency (mean of that path in
 * *mean_out when not NULL). */
double place_sweep(ctx_t *x, const int *a, double *mean_out);

/* Expected $ per run of assignment a (nodes and transfers). */
double place_cost(const ctx_t *x, const int *a);

/* Branch and bound (place_exact.c). Returns 1 found / 0 none; *complete
 * says whether the search finished. init_obj / init: an incumbent or
 * INFINITY / NULL. */
int place_exact(ctx_t *x, int *out, int minimize_latency, uint64_t budget, double init_obj, const int *init,
                int *complete, uint64_t *searched, double *root_lb);

/* Samples plan p (place_mc.c). tail (may be NULL, one entry per node)
 * counts, over the samples slower than sla_ms, how often each node was on
 * that sample's critical path. */
int place_mc_run(const loom_plan_t *p, int samples, uint64_t seed, double pct, double sla_ms, double *p50_ms,
                 double *pct_ms, double *attain, double *tail);

#endif
