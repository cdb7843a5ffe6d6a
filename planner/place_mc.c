/* place_mc.c — Monte Carlo sampling of a plan: lognormal op times,
 * Bernoulli branches, binomial loop counts, transfers between devices. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planner/place_internal.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return ((rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static double rng_normal(uint64_t *s)
{
    return sqrt(-2 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s));
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Samples the plan. tail (may be NULL, n entries) counts, over samples
 * slower than sla_ms, how often each node was on that sample's critical
 * path. */
int place_mc_run(const loom_plan_t *p, int samples, uint64_t seed, double pct, double sla_ms, double *p50_ms,
                 double *pct_ms, double *attain, double *tail)
{
    size_t n = loom_graph_nodes(p->g);
    const int *topo = loom_graph_order(p->g);
    if (samples < 1 || !topo)
        return LOOM_EINVAL;
    double *fin = malloc((n + 1) * sizeof(double)), *lat = malloc((size_t)samples * sizeof(double));
    unsigned char *ran = malloc(n + 1);
    int *pred = malloc((n + 1) * sizeof(int));
    if (!fin || !lat || !ran || !pred) {
        free(fin);
        free(lat);
        free(ran);
        free(pred);
        return LOOM_ENOMEM;
    }
    if (tail)
        memset(tail, 0, n * sizeof(double));
    uint64_t s = seed ? seed : 1;
    size_t ok = 0;
    for (int r = 0; r < samples; r++) {
        double end = 0;
        int last = -1;
        for (size_t t = 0; t < n; t++) {
            int v = topo[t];
            const loom_gnode_t *nd = loom_graph_node(p->g, v);
            int k = p->assign[v];
            size_t ni;
            const int *in = loom_graph_in(p->g, v, &ni);
            double start = 0;
            pred[v] = -1;
            for (size_t j = 0; j < ni; j++) {
                const loom_gedge_t *e = loom_graph_edge(p->g, in[j]);
                double f = fin[e->src] + (ran[e->src] ? loom_cost_xfer_ms(p->c, in[j], p->assign[e->src], k) : 0);
                if (f > start) {
                    start = f;
                    pred[v] = e->src;
                }
            }
            ran[v] = rng_unit(&s) < nd->prob;
            double dur = 0;
            if (ran[v]) {
                int iters = 1;
                if (nd->iters_max > 1 && nd->iters_mean > 1) {
                    double q = (nd->iters_mean - 1) / (nd->iters_max - 1);
                    for (int i = 1; i < (int)nd->iters_max; i++)
                        iters += rng_unit(&s) < q;
                }
                double m = loom_cost_ms(p->c, v, k), sd = loom_cost_sd_ms(p->c, v, k);
                double cv = m > 0 ? sd / m : 0, s2 = log(1 + cv * cv);
                for (int i = 0; i < iters; i++)
                    dur += m > 0 ? m * exp(sqrt(s2) * rng_normal(&s) - s2 / 2) : 0;
            }
            fin[v] = start + dur;
            if (fin[v] > end) {
                end = fin[v];
                last = v;
            }
        }
        lat[r] = end;
        if (tail && sla_ms > 0 && end > sla_ms + EPS)
            for (int v = last; v >= 0; v = pred[v])
                if (ran[v])
                    tail[v] += 1;
        ok += sla_ms <= 0 || end <= sla_ms + EPS;
    }
    qsort(lat, (size_t)samples, sizeof(double), dbl_cmp);
    if (p50_ms)
        *p50_ms = lat[(size_t)(0.5 * (samples - 1))];
    if (pct_ms)
        *pct_ms = lat[(size_t)(pct * (samples - 1) + 0.5)];
    if (attain)
        *attain = (double)ok / samples;
    free(fin);
    free(lat);
    free(ran);
    free(pred);
    return 0;
}

int loom_plan_mc(const loom_plan_t *p, int samples, uint64_t seed, double pct, double sla_ms,
                 double *p50_ms, double *pct_ms, double *attain)
{
    return place_mc_run(p, samples, seed, pct, sla_ms, p50_ms, pct_ms, attain, NULL);
}
