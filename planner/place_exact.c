/* place_exact.c — exact placement by branch and bound over the nodes in
 * topological order (see place.h for the bounds). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planner/place_internal.h"

/* Latency objective: placements within TIE_MS of each other count as
 * equally fast, and the cheaper one wins (docs/PLANNER.md). */
#define TIE_MS 1e-6

typedef struct {
    ctx_t *x;
    int *a, *best;
    int **order;        /* per node: devices sorted by cost (or time) */
    int *norder;
    double *suffix_min; /* min remaining node cost from depth d */
    double *tmin;       /* longest min-time path after v */
    double *fmean;      /* mean finish of assigned nodes */
    double best_obj;
    double best_cost;   /* latency objective: cost of the incumbent (tie-break) */
    uint64_t nodes, budget;
    int minimize_latency, found, stopped;
} bnb_t;

static void bnb(bnb_t *b, size_t d, double partial, double lb_lat)
{
    ctx_t *x = b->x;
    if (b->stopped)
        return;
    if (++b->nodes > b->budget) {
        b->stopped = 1;
        return;
    }
    if (d == x->n) {
        double tgt = place_sweep(x, b->a, NULL);
        if (b->minimize_latency) {
            /* fastest; among equally fast placements the cheapest */
            if (tgt < b->best_obj - TIE_MS || (tgt <= b->best_obj + TIE_MS && partial < b->best_cost - 1e-15)) {
                b->best_obj = tgt < b->best_obj ? tgt : b->best_obj;
                b->best_cost = partial;
                memcpy(b->best, b->a, x->n * sizeof(int));
                b->found = 1;
            }
        } else if ((x->sla <= 0 || tgt <= x->sla + EPS) && partial < b->best_obj - 1e-15) {
            b->best_obj = partial;
            memcpy(b->best, b->a, x->n * sizeof(int));
            b->found = 1;
        }
        return;
    }
    int v = x->topo[d];
    size_t ni;
    const int *in = loom_graph_in(x->g, v, &ni);
    for (int oi = 0; oi < b->norder[v]; oi++) {
        int k = b->order[v][oi];
        b->a[v] = k;
        double c = partial + node_usd(x, v, k), fin = 0;
        for (size_t j = 0; j < ni; j++) {
            const loom_gedge_t *e = loom_graph_edge(x->g, in[j]);
            c += edge_p(x, e) * xusd(x, in[j], b->a[e->src], k);
            double f = b->fmean[e->src] + edge_p(x, e) * xms(x, in[j], b->a[e->src], k);
            if (f > fin)
                fin = f;
        }
        double mu, var;
        node_moments(x, v, k, &mu, &var);
        b->fmean[v] = fin + mu;
        double lb = b->fmean[v] + b->tmin[v];
        if (lb < lb_lat)
            lb = lb_lat;
        if (b->minimize_latency) {
            /* slower than the best, or as fast but not cheaper */
            if (lb > b->best_obj + TIE_MS ||
                (lb >= b->best_obj - TIE_MS && c + b->suffix_min[d + 1] >= b->best_cost - 1e-15))
                continue;
        } else {
            if (c + b->suffix_min[d + 1] >= b->best_obj - 1e-15)
                continue; /* sorted by cost: later devices can still be cheaper with transfers */
            if (x->sla > 0 && lb > x->sla + EPS)
                continue;
        }
        bnb(b, d + 1, c, lb);
        if (b->stopped)
            return;
    }
}

typedef struct {
    const ctx_t *x;
    int v, by_time;
} sort_ctx_t;

static _Thread_local sort_ctx_t sort_ctx;

static int dev_cmp(const void *pa, const void *pb)
{
    int ka = *(const int *)pa, kb = *(const int *)pb;
    double a = sort_ctx.by_time ? loom_cost_ms(sort_ctx.x->c, sort_ctx.v, ka) : node_usd(sort_ctx.x, sort_ctx.v, ka);
    double b = sort_ctx.by_time ? loom_cost_ms(sort_ctx.x->c, sort_ctx.v, kb) : node_usd(sort_ctx.x, sort_ctx.v, kb);
    return a < b ? -1 : a > b ? 1 : ka - kb;
}

/* Returns 1 found / 0 none; *complete says whether the search finished.
 * init_obj / init: a known solution (incumbent) or INFINITY / NULL. */
int place_exact(ctx_t *x, int *out, int minimize_latency, uint64_t budget, double init_obj,
                 const int *init, int *complete, uint64_t *searched, double *root_lb)
{
    size_t n = x->n, K = x->K;
    bnb_t b = {.x = x, .minimize_latency = minimize_latency, .budget = budget, .best_obj = init_obj};
    b.a = calloc(n + 1, sizeof(int));
    b.best = calloc(n + 1, sizeof(int));
    b.order = calloc(n + 1, sizeof(int *));
    b.norder = calloc(n + 1, sizeof(int));
    b.suffix_min = calloc(n + 2, sizeof(double));
    b.tmin = calloc(n + 1, sizeof(double));
    b.fmean = calloc(n + 1, sizeof(double));
    int *pool = calloc(n * K + 1, sizeof(int));
    int found = 0;
    if (!b.a || !b.best || !b.order || !b.norder || !b.suffix_min || !b.tmin || !b.fmean || !pool)
        goto done;
    b.best_cost = INFINITY;
    if (init) {
        memcpy(b.best, init, n * sizeof(int));
        b.found = 1;
        b.best_cost = place_cost(x, init);
    }
    double *minmu = b.fmean; /* reuse as scratch before the search */
    for (size_t v = 0; v < n; v++) {
        b.order[v] = pool + v * K;
        double mc = INFINITY;
        minmu[v] = INFINITY;
        for (size_t k = 0; k < K; k++) {
            if (!loom_cost_fits(x->c, (int)v, (int)k))
                continue;
            b.order[v][b.norder[v]++] = (int)k;
            double mu, var, cu = node_usd(x, (int)v, (int)k);
            node_moments(x, (int)v, (int)k, &mu, &var);
            if (cu < mc)
                mc = cu;
            if (mu < minmu[v])
                minmu[v] = mu;
        }
        sort_ctx = (sort_ctx_t){x, (int)v, minimize_latency};
        qsort(b.order[v], (size_t)b.norder[v], sizeof(int), dev_cmp);
        b.tmin[v] = mc; /* temporarily: min node cost */
    }
    for (size_t d = n; d-- > 0;)
        b.suffix_min[d] = b.suffix_min[d + 1] + b.tmin[x->topo[d]];
    *root_lb = b.suffix_min[0];
    /* tmin[v] = longest path after v with every later node at its fastest. */
    for (size_t t = n; t-- > 0;) {
        int v = x->topo[t];
        size_t no;
        const int *o = loom_graph_out(x->g, v, &no);
        double best = 0;
        for (size_t j = 0; j < no; j++) {
            int w = loom_graph_edge(x->g, o[j])->dst;
            double s = minmu[w] + b.tmin[w];
            if (s > best)
                best = s;
        }
        b.tmin[v] = best;
    }
    memset(b.fmean, 0, (n + 1) * sizeof(double));
    bnb(&b, 0, 0, 0);
    found = b.found;
    if (found)
        memcpy(out, b.best, n * sizeof(int));
done:
    *complete = !b.stopped;
    *searched = b.nodes;
    free(b.a);
    free(b.best);
    free(b.order);
    free(b.norder);
    free(b.suffix_min);
    free(b.tmin);
    free(b.fmean);
    free(pool);
    return found;
}
