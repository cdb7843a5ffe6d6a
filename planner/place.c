/* place.c — see place.h. The latency/cost evaluator (moment DP over the
 * topological order), the greedy heuristic (repair towards the SLA, relax
 * towards lower cost), the Monte Carlo calibration and the plan object.
 * The exact search is in place_exact.c, sampling in place_mc.c. */
#include "planner/place.h"
#include "planner/place_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- inverse normal CDF (Acklam's rational approximation) ---------------- */
double loom_place_z(double p)
{
    if (p <= 0.5)
        return 0;
    if (p >= 0.999999)
        p = 0.999999;
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01, -1.328068155288572e+01};
    static const double cc[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    if (p > 0.97575) {
        double q = sqrt(-2 * log(1 - p));
        return -(((((cc[0] * q + cc[1]) * q + cc[2]) * q + cc[3]) * q + cc[4]) * q + cc[5]) /
               ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

void loom_place_opts_init(loom_place_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->percentile = 0.5;
}

/* ---- node and edge moments ---------------------------------------------- */

/* Mean and variance of a node's latency contribution on device k, from its
 * per-execution mean/sd, branch probability and iteration count. */
static void compute_moments(const ctx_t *x, int v, int k, double *mu, double *var)
{
    const loom_gnode_t *nd = loom_graph_node(x->g, v);
    double m = loom_cost_ms(x->c, v, k), s = loom_cost_sd_ms(x->c, v, k);
    double I = nd->iters_mean, Mx = nd->iters_max, p = nd->prob;
    double varK = 0;
    if (Mx > 1 && I > 1) {
        double q = (I - 1) / (Mx - 1);
        varK = (Mx - 1) * q * (1 - q);
    }
    double ex = I * m, ex2 = I * s * s + varK * m * m + I * I * m * m;
    *mu = p * ex;
    *var = p * ex2 - (*mu) * (*mu);
    if (*var < 0)
        *var = 0;
}


/* Forward and backward DP for assignment a. Returns the target latency
 * (max over nodes of through-score) and the mean of that path. */
double place_sweep(ctx_t *x, const int *a, double *mean_out)
{
    x->evals++;
    for (size_t t = 0; t < x->n; t++) {
        int v = x->topo[t];
        node_moments(x, v, a[v], &x->nmu[v], &x->nvar[v]);
        double bm = 0, bv = 0, bs = 0;
        size_t ni;
        const int *in = loom_graph_in(x->g, v, &ni);
        for (size_t j = 0; j < ni; j++) {
            const loom_gedge_t *e = loom_graph_edge(x->g, in[j]);
            double m = x->fmu[e->src] + edge_p(x, e) * xms(x, in[j], a[e->src], a[v]);
            double s = score(x, m, x->fvar[e->src]);
            if (s > bs) {
                bs = s;
                bm = m;
                bv = x->fvar[e->src];
            }
        }
        x->fmu[v] = bm + x->nmu[v];
        x->fvar[v] = bv + x->nvar[v];
    }
    double best = 0, best_mean = 0;
    for (size_t t = x->n; t-- > 0;) {
        int v = x->topo[t];
        double bm = 0, bv = 0, bs = 0;
        size_t no;
        const int *out = loom_graph_out(x->g, v, &no);
        for (size_t j = 0; j < no; j++) {
            const loom_gedge_t *e = loom_graph_edge(x->g, out[j]);
            int w = e->dst;
            double m = edge_p(x, e) * xms(x, out[j], a[v], a[w]) + x->nmu[w] + x->tmu[w];
            double vv = x->nvar[w] + x->tvar[w];
            double s = score(x, m, vv);
            if (s > bs) {
                bs = s;
                bm = m;
                bv = vv;
            }
        }
        x->tmu[v] = bm;
        x->tvar[v] = bv;
        double th = score(x, x->fmu[v] + bm, x->fvar[v] + bv);
        if (th > best) {
            best = th;
            best_mean = x->fmu[v] + bm;
        }
    }
    if (mean_out)
        *mean_out = best_mean;
    return best;
}

static double through(const ctx_t *x, int v)
{
    return score(x, x->fmu[v] + x->tmu[v], x->fvar[v] + x->tvar[v]);
}

double place_cost(const ctx_t *x, const int *a)
{
    double s = 0;
    for (size_t v = 0; v < x->n; v++)
        s += node_usd(x, (int)v, a[v]);
    for (size_t e = 0; e < x->ne; e++) {
        const loom_gedge_t *ed = loom_graph_edge(x->g, (int)e);
        s += edge_p(x, ed) * xusd(x, (int)e, a[ed->src], a[ed->dst]);
    }
    return s;
}

/* Transfer cost of the edges at v under assignment a. */
static double adj_usd(const ctx_t *x, const int *a, int v)
{
    double s = 0;
    size_t ni, no;
    const int *in = loom_graph_in(x->g, v, &ni), *out = loom_graph_out(x->g, v, &no);
    for (size_t j = 0; j < ni; j++) {
        const loom_gedge_t *e = loom_graph_edge(x->g, in[j]);
        s += edge_p(x, e) * xusd(x, in[j], a[e->src], a[v]);
    }
    for (size_t j = 0; j < no; j++) {
        const loom_gedge_t *e = loom_graph_edge(x->g, out[j]);
        s += edge_p(x, e) * xusd(x, out[j], a[v], a[e->dst]);
    }
    return s;
}

/* Cost change of moving v from a[v] to k (node + adjacent edges). */
static double move_dcost(const ctx_t *x, const int *a, int v, int k)
{
    double d = node_usd(x, v, k) - node_usd(x, v, a[v]);
    size_t ni, no;
    const int *in = loom_graph_in(x->g, v, &ni), *out = loom_graph_out(x->g, v, &no);
    for (size_t j = 0; j < ni; j++) {
        const loom_gedge_t *e = loom_graph_edge(x->g, in[j]);
        d += edge_p(x, e) * (xusd(x, in[j], a[e->src], k) -
                             xusd(x, in[j], a[e->src], a[v]));
    }
    for (size_t j = 0; j < no; j++) {
        const loom_gedge_t *e = loom_graph_edge(x->g, out[j]);
        d += edge_p(x, e) * (xusd(x, out[j], k, a[e->dst]) -
                             xusd(x, out[j], a[v], a[e->dst]));
    }
    return d;
}

/* Through-score of v if it moved to k, using the current F/T of its
 * neighbours (valid right after a sweep). */
static double move_through(const ctx_t *x, const int *a, int v, int k)
{
    double mu, var;
    node_moments(x, v, k, &mu, &var);
    double bm = 0, bv = 0, bs = 0;
    size_t ni, no;
    const int *in = loom_graph_in(x->g, v, &ni), *out = loom_graph_out(x->g, v, &no);
    for (size_t j = 0; j < ni; j++) {
        const loom_gedge_t *e = loom_graph_edge(x->g, in[j]);
        double m = x->fmu[e->src] + edge_p(x, e) * xms(x, in[j], a[e->src], k);
        double s = score(x, m, x->fvar[e->src]);
        if (s > bs) {
            bs = s;
            bm = m;
            bv = x->fvar[e->src];
        }
    }
    double om = 0, ov = 0, os = 0;
    for (size_t j = 0; j < no; j++) {
        const loom_gedge_t *e = loom_graph_edge(x->g, out[j]);
        int w = e->dst;
        double m = edge_p(x, e) * xms(x, out[j], k, a[w]) + x->nmu[w] + x->tmu[w];
        double vv = x->nvar[w] + x->tvar[w];
        double s = score(x, m, vv);
        if (s > os) {
            os = s;
            om = m;
            ov = vv;
        }
    }
    return score(x, bm + mu + om, bv + var + ov);
}

static int ctx_init(ctx_t *x, const loom_graph_t *g, const loom_cost_t *c, double z, double sla,
                    loom_err_t *err)
{
    memset(x, 0, sizeof *x);
    x->g = g;
    x->c = c;
    x->topo = loom_graph_order(g);
    if (!x->topo)
        return loom_err_set(err, LOOM_EINVAL, "graph has no topological order (call loom_graph_topo)");
    x->n = loom_graph_nodes(g);
    x->ne = loom_graph_edges(g);
    x->K = loom_cost_devices(c);
    x->z = z;
    x->sla = sla;
    size_t n = x->n + 1;
    x->nmu = calloc(n, sizeof(double));
    x->nvar = calloc(n, sizeof(double));
    x->fmu = calloc(n, sizeof(double));
    x->fvar = calloc(n, sizeof(double));
    x->tmu = calloc(n, sizeof(double));
    x->tvar = calloc(n, sizeof(double));
    size_t nk = x->n * x->K + 1;
    x->mu_vk = malloc(nk * sizeof(double));
    x->var_vk = malloc(nk * sizeof(double));
    x->usd_vk = malloc(nk * sizeof(double));
    x->ep = malloc((x->ne + 1) * sizeof(double));
    if (!x->nmu || !x->nvar || !x->fmu || !x->fvar || !x->tmu || !x->tvar || !x->mu_vk || !x->var_vk ||
        !x->usd_vk || !x->ep)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (size_t v = 0; v < x->n; v++) {
        const loom_gnode_t *nd = loom_graph_node(g, (int)v);
        for (size_t k = 0; k < x->K; k++) {
            size_t i = v * x->K + k;
            compute_moments(x, (int)v, (int)k, &x->mu_vk[i], &x->var_vk[i]);
            x->usd_vk[i] = nd->prob * nd->iters_mean * loom_cost_usd(c, (int)v, (int)k);
        }
    }
    for (size_t e = 0; e < x->ne; e++) {
        const loom_gedge_t *ed = loom_graph_edge(g, (int)e);
        double a = loom_graph_node(g, ed->src)->prob, b = loom_graph_node(g, ed->dst)->prob;
        x->ep[e] = a < b ? a : b;
    }
    return 0;
}

static void ctx_free(ctx_t *x)
{
    free(x->mu_vk);
    free(x->var_vk);
    free(x->usd_vk);
    free(x->ep);
    free(x->nmu);
    free(x->nvar);
    free(x->fmu);
    free(x->fvar);
    free(x->tmu);
    free(x->tvar);
}

void loom_place_eval(const loom_graph_t *g, const loom_cost_t *c, const int *assign, double z,
                     double *cost_usd, double *mean_ms, double *target_ms)
{
    ctx_t x;
    if (ctx_init(&x, g, c, z, 0, NULL) == 0) {
        double mean;
        double t = place_sweep(&x, assign, &mean);
        if (cost_usd)
            *cost_usd = place_cost(&x, assign);
        if (mean_ms)
            *mean_ms = mean;
        if (target_ms)
            *target_ms = t;
    }
    ctx_free(&x);
}

/* ---- heuristic ------------------------------------------------------------ */

/* Moves critical-path nodes to faster devices (best latency gain per dollar)
 * until the target is within `sla` or no move helps. Returns the target. */
static double repair(ctx_t *x, int *a, double sla, size_t max_iter)
{
    double tgt = place_sweep(x, a, NULL);
    for (size_t it = 0; it < max_iter && tgt > sla + EPS; it++) {
        int bv = -1, bk = -1;
        double bratio = -1, bgain = 0;
        for (size_t v = 0; v < x->n; v++) {
            double th = through(x, (int)v);
            if (th < tgt - 1e-6 * (1 + tgt))
                continue;
            for (size_t k = 0; k < x->K; k++) {
                if ((int)k == a[v] || !loom_cost_fits(x->c, (int)v, (int)k))
                    continue;
                double gain = th - move_through(x, a, (int)v, (int)k);
                if (gain <= 1e-9)
                    continue;
                double dc = move_dcost(x, a, (int)v, (int)k);
                double ratio = dc <= 0 ? INFINITY : gain / dc;
                if (ratio > bratio || (ratio == bratio && gain > bgain)) {
                    bratio = ratio;
                    bgain = gain;
                    bv = (int)v;
                    bk = (int)k;
                }
            }
        }
        if (bv < 0)
            break;
        int old = a[bv];
        a[bv] = bk;
        double nt = place_sweep(x, a, NULL);
        if (nt >= tgt - 1e-12) { /* the local estimate lied (path shifted): undo, stop */
            a[bv] = old;
            tgt = place_sweep(x, a, NULL);
            break;
        }
        tgt = nt;
    }
    return tgt;
}

typedef struct {
    int v;
    double best_saving;
} cand_t;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    return a->best_saving < b->best_saving ? 1 : a->best_saving > b->best_saving ? -1 : a->v - b->v;
}

/* Starting from a feasible assignment, moves nodes to cheaper devices while
 * the SLA holds. A batch of moves shares one latency budget (the smallest
 * slack of any moved node), so the batch cannot break the SLA under the
 * mean model; a sweep after each batch refreshes slacks. */
static void relax(ctx_t *x, int *a, cand_t *cand, int passes)
{
    /* Optimistic passes check each move against its own slack only and undo
     * the newest half of the batch until the SLA holds again; when a whole
     * batch has to go, passes turn conservative (one shared budget). */
    int optimistic = 1;
    int *log_v = malloc((x->n + 1) * sizeof(int)), *log_k = malloc((x->n + 1) * sizeof(int));
    if (!log_v || !log_k)
        optimistic = 0;
    for (int pass = 0; pass < passes; pass++) {
        double tgt = place_sweep(x, a, NULL);
        if (x->sla > 0 && tgt > x->sla + EPS)
            break;
        size_t nc = 0;
        for (size_t v = 0; v < x->n; v++) {
            double best = 0, adj = adj_usd(x, a, (int)v), here = node_usd(x, (int)v, a[v]);
            for (size_t k = 0; k < x->K; k++)
                /* a move can save at most the node's cost difference plus the
                 * transfers it has now: skip the ones that cannot save */
                if ((int)k != a[v] && node_usd(x, (int)v, (int)k) < here + adj &&
                    loom_cost_fits(x->c, (int)v, (int)k)) {
                    double d = -move_dcost(x, a, (int)v, (int)k);
                    if (d > best)
                        best = d;
                }
            if (best > 1e-15)
                cand[nc++] = (cand_t){(int)v, best};
        }
        if (!nc)
            break;
        qsort(cand, nc, sizeof *cand, cand_cmp);
        double used = 0, minslack = INFINITY;
        int moved = 0;
        for (size_t i = 0; i < nc; i++) {
            int v = cand[i].v;
            double th = through(x, v);
            double slack = x->sla > 0 ? x->sla - th : INFINITY;
            int bk = -1;
            double bdc = -1e-15, binc = 0, adj = adj_usd(x, a, v), here = node_usd(x, v, a[v]);
            double lim = optimistic ? slack : (slack < minslack ? slack : minslack) - used;
            for (size_t k = 0; k < x->K; k++) {
                if ((int)k == a[v] || node_usd(x, v, (int)k) >= here + adj || !loom_cost_fits(x->c, v, (int)k))
                    continue;
                double dc = move_dcost(x, a, v, (int)k);
                if (dc >= bdc)
                    continue;
                double inc = move_through(x, a, v, (int)k) - th;
                if (inc < 0)
                    inc = 0;
                if (inc <= lim + EPS) {
                    bdc = dc;
                    bk = (int)k;
                    binc = inc;
                }
            }
            if (bk >= 0) {
                if (optimistic) {
                    log_v[moved] = v;
                    log_k[moved] = a[v];
                }
                a[v] = bk;
                used += binc;
                if (binc > 0 && slack < minslack)
                    minslack = slack;
                moved++;
            }
        }
        if (getenv("LOOM_PLACE_DEBUG"))
            fprintf(stderr, "relax pass %d (%s): %d moves, cost %.6g, evals %llu\n", pass,
                    optimistic ? "optimistic" : "conservative", moved, place_cost(x, a),
                    (unsigned long long)x->evals);
        if (!moved)
            break;
        double nt = place_sweep(x, a, NULL);
        if (optimistic && x->sla > 0 && nt > x->sla + EPS) {
            int m = moved;
            while (m > 0 && nt > x->sla + EPS) {
                int h = (m + 1) / 2;
                for (int i = m - 1; i >= m - h; i--)
                    a[log_v[i]] = log_k[i];
                m -= h;
                nt = place_sweep(x, a, NULL);
            }
            if (m == 0)
                optimistic = 0;
        }
        /* The moment model is not additive: verify, repair if needed. */
        if (x->sla > 0 && nt > x->sla + EPS)
            repair(x, a, x->sla, x->n * x->K);
    }
    free(log_v);
    free(log_k);
}

static void fill_best(const ctx_t *x, int *a, int fastest)
{
    for (size_t v = 0; v < x->n; v++) {
        int bk = -1;
        double bc = INFINITY, bt = INFINITY;
        for (size_t k = 0; k < x->K; k++) {
            double c = node_usd(x, (int)v, (int)k), t = loom_cost_ms(x->c, (int)v, (int)k);
            if (!isfinite(t))
                continue;
            double p = fastest ? t : c, s = fastest ? c : t;
            double bp = fastest ? bt : bc, bs = fastest ? bc : bt;
            if (bk < 0 || p < bp - 1e-15 || (p <= bp + 1e-15 && s < bs)) {
                bk = (int)k;
                bc = c;
                bt = t;
            }
        }
        a[v] = bk;
    }
}

/* Among placements as fast as a, moves ops to cheaper devices (relax
 * under an SLA equal to a's own target): the latency objective's and the
 * infeasible fallback's cost tie-break. */
static void cheapest_as_fast(ctx_t *x, int *a, cand_t *cand)
{
    double sla = x->sla;
    x->sla = place_sweep(x, a, NULL);
    if (x->sla > 0)
        relax(x, a, cand, 50);
    x->sla = sla;
}

/* Local search on the target: best single move (op to another device)
 * while one helps. n x K sweeps per round, so only on small instances. */
static double improve_latency(ctx_t *x, int *a, double tgt)
{
    for (int round = 0; round < 64; round++) {
        int bv = -1, bk = -1;
        double bt = tgt - 1e-9 * (1 + tgt);
        for (size_t v = 0; v < x->n; v++) {
            int old = a[v];
            for (size_t k = 0; k < x->K; k++) {
                if ((int)k == old || !loom_cost_fits(x->c, (int)v, (int)k))
                    continue;
                a[v] = (int)k;
                double t = place_sweep(x, a, NULL);
                if (t < bt) {
                    bt = t;
                    bv = (int)v;
                    bk = (int)k;
                }
            }
            a[v] = old;
        }
        if (bv < 0)
            break;
        a[bv] = bk;
        tgt = bt;
    }
    return tgt;
}

/* The fastest placement the heuristic finds, into a: the fastest device
 * per op repaired along the critical path, every single class that can
 * hold all ops (no transfers), then single-move local search from the
 * best (the last two only on small instances: n x K <= 4096). tmp: n ints
 * of scratch. Returns its target. */
static double fastest(ctx_t *x, int *a, int *tmp)
{
    fill_best(x, a, 1);
    double best = repair(x, a, 0, x->n * x->K);
    if (x->n * x->K > 4096) /* large: the greedy repair only */
        return best;
    for (size_t k = 0; k < x->K; k++) {
        size_t v = 0;
        while (v < x->n && loom_cost_fits(x->c, (int)v, (int)k))
            tmp[v++] = (int)k;
        if (v < x->n)
            continue;
        double t = repair(x, tmp, 0, x->n * x->K);
        if (t < best - 1e-12) {
            best = t;
            memcpy(a, tmp, x->n * sizeof(int));
        }
    }
    return improve_latency(x, a, best);
}

/* Returns 1 when a feasible assignment was found (best in `out`), else 0
 * with the fastest found in `out` (the cheapest among equally fast). */
static int heuristic(ctx_t *x, int *out, int minimize_latency)
{
    size_t n = x->n;
    int *A = malloc(n * sizeof(int)), *S = malloc(n * sizeof(int));
    cand_t *cand = malloc((n + 1) * sizeof(cand_t));
    int ok = 0;
    if (!A || !S || !cand)
        goto done;
    if (minimize_latency) { /* fastest, cost as tie-breaker; SLA ignored */
        fastest(x, S, A);
        cheapest_as_fast(x, S, cand);
        memcpy(out, S, n * sizeof(int));
        ok = 1;
        goto done;
    }
    if (x->sla <= 0) { /* no SLA: pure cost */
        fill_best(x, S, 0);
        relax(x, S, cand, 50);
        memcpy(out, S, n * sizeof(int));
        ok = 1;
        goto done;
    }
    fill_best(x, S, 1);
    double ts = repair(x, S, x->sla, n * x->K);
    fill_best(x, A, 0);
    double ta = repair(x, A, x->sla, n * x->K);
    int fa = ta <= x->sla + EPS, fs = ts <= x->sla + EPS;
    if (!fa && !fs) {
        /* Neither greedy start meets the SLA: search harder for a fast
         * placement; if even that misses, it is the fallback. */
        fs = fastest(x, S, A) <= x->sla + EPS;
        if (!fs) {
            cheapest_as_fast(x, S, cand);
            memcpy(out, S, n * sizeof(int));
            goto done;
        }
    }
    if (fa)
        relax(x, A, cand, 50);
    /* On large graphs the cheap start, once repaired, is the better one in
     * practice; relaxing the fast start too doubles the time for nothing. */
    if (fs && !(fa && n > 500))
        relax(x, S, cand, 50);
    else if (fs)
        fs = 0;
    double ca = fa && place_sweep(x, A, NULL) <= x->sla + EPS ? place_cost(x, A) : INFINITY;
    double cs = fs && place_sweep(x, S, NULL) <= x->sla + EPS ? place_cost(x, S) : INFINITY;
    if (isfinite(ca) || isfinite(cs)) {
        memcpy(out, ca <= cs ? A : S, n * sizeof(int));
        ok = 1;
    } else {
        /* relax broke the SLA and repair could not restore it */
        fastest(x, S, A);
        cheapest_as_fast(x, S, cand);
        memcpy(out, S, n * sizeof(int));
    }
done:
    free(A);
    free(S);
    free(cand);
    return ok;
}

/* ---- plans ----------------------------------------------------------------- */

static void plan_finish(loom_plan_t *p, ctx_t *x);

/* One search (heuristic, then exact when asked) into p->assign under x->sla. */
static int search(ctx_t *x, loom_plan_t *p, int use_exact, uint64_t budget, int minlat, uint64_t *searched,
                  double *root_lb, loom_err_t *err)
{
    uint64_t e0 = x->evals;
    /* The heuristic always runs: it is the incumbent for the exact search. */
    int hfound = heuristic(x, p->assign, minlat);
    double hobj;
    {
        double tg = place_sweep(x, p->assign, NULL);
        hobj = minlat ? tg : (hfound ? place_cost(x, p->assign) : INFINITY);
    }
    p->method = "heuristic";
    p->gap = -1;
    if (use_exact) {
        int complete = 0;
        uint64_t bn = 0;
        int *ex = calloc(x->n + 1, sizeof(int));
        if (!ex)
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        int found = place_exact(x, ex, minlat, budget, hobj, hfound || minlat ? p->assign : NULL, &complete, &bn,
                          root_lb);
        *searched += bn;
        if (found)
            memcpy(p->assign, ex, x->n * sizeof(int));
        p->method = complete ? "exact" : "exact-budget";
        if (complete && (found || minlat))
            p->gap = 0;
        if (!found && !minlat && complete) {
            /* Proven infeasible: find the fastest placement exactly. */
            int c2 = 0;
            uint64_t bn2 = 0;
            double lb2;
            place_exact(x, p->assign, 1, budget, place_sweep(x, p->assign, NULL), p->assign, &c2, &bn2, &lb2);
            *searched += bn2;
        }
        free(ex);
    }
    *searched += x->evals - e0;
    return 0;
}

/* Monte Carlo calibration (see place.h). p has been finished under x->sla. */
static int calibrate(ctx_t *x, loom_plan_t *p, int use_exact, uint64_t budget, uint64_t *searched, loom_err_t *err)
{
    int samples = p->opts.mc_samples == 0 ? 2000 : p->opts.mc_samples;
    double sla = p->opts.sla_ms;
    if (samples < 0 || p->opts.minimize_latency || sla <= 0 || !p->feasible || x->n > 5000)
        return 0;
    double mct = 0;
    if (loom_plan_mc(p, samples, 7, p->opts.percentile, 0, NULL, &mct, NULL) < 0)
        return 0;
    p->mc_target = mct;
    if (mct <= sla + EPS)
        return 0;
    int *first = malloc((x->n + 1) * sizeof(int));
    double *tail = malloc((x->n + 1) * sizeof(double));
    if (!first || !tail) {
        free(first);
        free(tail);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    memcpy(first, p->assign, x->n * sizeof(int));
    const char *first_method = p->method;
    double first_gap = p->gap, first_mct = mct, sla_eff = sla;
    int ok = 0, rounds = 0;
    /* 1. Tail repair: move the op most often on the critical path of the
     *    sampled runs that miss the SLA to a faster device (best time saved
     *    per extra dollar, weighted by that count), while the model still
     *    holds the SLA; re-sample; at most 8 moves. */
    for (int mv = 0; mv < 8 && !ok; mv++) {
        place_mc_run(p, samples, 7, p->opts.percentile, sla, NULL, &mct, NULL, tail);
        if (mct <= sla + EPS) {
            ok = 1;
            break;
        }
        int bv = -1, bk = -1;
        double bscore = 0;
        for (size_t v = 0; v < x->n; v++) {
            if (tail[v] <= 0)
                continue;
            double here = loom_cost_ms(x->c, (int)v, p->assign[v]);
            for (size_t k = 0; k < x->K; k++) {
                double t = loom_cost_ms(x->c, (int)v, (int)k);
                if ((int)k == p->assign[v] || !isfinite(t) || t >= here)
                    continue;
                double dc = move_dcost(x, p->assign, (int)v, (int)k);
                double sc = tail[v] * (here - t) / (dc > 1e-12 ? dc : 1e-12);
                if (sc > bscore) {
                    bscore = sc;
                    bv = (int)v;
                    bk = (int)k;
                }
            }
        }
        if (bv < 0)
            break;
        int old = p->assign[bv];
        p->assign[bv] = bk;
        if (place_sweep(x, p->assign, NULL) > sla + EPS) { /* the model disagrees: stop */
            p->assign[bv] = old;
            break;
        }
        rounds++;
    }
    if (ok) {
        plan_finish(p, x);
        p->mc_target = mct;
        p->mc_rounds = rounds;
        p->method = "heuristic+sampled";
        p->gap = -1;
        free(first);
        free(tail);
        return 0;
    }
    memcpy(p->assign, first, x->n * sizeof(int));
    mct = first_mct;
    rounds = 0;
    /* 2. Tightening: search again under a tighter SLA. */
    while (rounds < 4 && !ok) {
        rounds++;
        sla_eff -= (mct - sla) + 0.002 * sla;
        if (sla_eff <= 0)
            break;
        x->sla = sla_eff;
        double lb = 0;
        int rc = search(x, p, use_exact, budget, 0, searched, &lb, err);
        if (rc < 0) {
            free(first);
            x->sla = sla;
            return rc;
        }
        if (place_sweep(x, p->assign, NULL) > sla_eff + EPS)
            break; /* nothing meets the tightened SLA */
        x->sla = sla;
        plan_finish(p, x);
        loom_plan_mc(p, samples, 7, p->opts.percentile, 0, NULL, &mct, NULL);
        ok = mct <= sla + EPS;
    }
    x->sla = sla;
    if (ok) {
        p->mc_target = mct;
        p->mc_rounds = rounds;
    } else { /* keep the first plan; its sampled figure says it misses */
        memcpy(p->assign, first, x->n * sizeof(int));
        p->method = first_method;
        p->gap = first_gap;
        plan_finish(p, x);
        p->mc_target = first_mct;
        p->mc_rounds = rounds;
    }
    free(first);
    free(tail);
    return 0;
}

static loom_plan_t *plan_alloc(const loom_graph_t *g, const loom_cost_t *c, const loom_place_opts_t *o)
{
    loom_plan_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    size_t n = loom_graph_nodes(g) + 1;
    p->assign = calloc(n, sizeof(int));
    p->crit = calloc(n, 1);
    p->start = calloc(n, sizeof(double));
    if (!p->assign || !p->crit || !p->start) {
        loom_plan_destroy(&p);
        return NULL;
    }
    p->g = g;
    p->c = c;
    if (o)
        p->opts = *o;
    else
        loom_place_opts_init(&p->opts);
    if (p->opts.percentile <= 0)
        p->opts.percentile = 0.5;
    p->z = loom_place_z(p->opts.percentile);
    p->gap = -1;
    p->mc_target = -1;
    return p;
}

static void plan_finish(loom_plan_t *p, ctx_t *x)
{
    p->target = place_sweep(x, p->assign, &p->mean);
    p->cost = place_cost(x, p->assign);
    for (size_t v = 0; v < x->n; v++) {
        p->crit[v] = through(x, (int)v) >= p->target - 1e-6 * (1 + p->target);
        p->start[v] = x->fmu[v] - x->nmu[v];
    }
    double sla = p->opts.sla_ms;
    p->feasible = sla <= 0 || p->target <= sla + EPS;
    p->miss = p->feasible ? 0 : p->target - sla;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int loom_place(const loom_graph_t *g, const loom_cost_t *c, const loom_place_opts_t *opts,
               loom_plan_t **out, loom_err_t *err)
{
    double t0 = now_ms();
    *out = NULL;
    loom_plan_t *p = plan_alloc(g, c, opts);
    if (!p)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    ctx_t x;
    int rc = ctx_init(&x, g, c, p->z, p->opts.sla_ms, err);
    if (rc)
        goto fail;
    for (size_t v = 0; v < x.n; v++) {
        int any = 0;
        for (size_t k = 0; k < x.K && !any; k++)
            any = loom_cost_fits(c, (int)v, (int)k);
        if (!any) {
            rc = loom_err_set(err, LOOM_EINFEASIBLE, "op %s fits on no device of the fleet",
                              loom_graph_node(g, (int)v)->name);
            loom_err_hint(err, "add a device class with more memory, or use a smaller model or dtype");
            goto fail;
        }
    }
    int exact_max = p->opts.exact_max_nodes > 0 ? p->opts.exact_max_nodes : 16;
    uint64_t budget = p->opts.node_budget ? p->opts.node_budget : 2000000;
    int use_exact = p->opts.method == LOOM_PLACE_EXACT ||
                    (p->opts.method == LOOM_PLACE_AUTO && x.n <= (size_t)exact_max);
    int minlat = p->opts.minimize_latency;
    uint64_t searched = 0;
    double root_lb = 0;
    if ((rc = search(&x, p, use_exact, budget, minlat, &searched, &root_lb, err)) < 0)
        goto fail;
    plan_finish(p, &x);
    if ((rc = calibrate(&x, p, use_exact, budget, &searched, err)) < 0)
        goto fail;
    if (p->gap < 0 && !minlat && p->feasible) {
        if (!use_exact) {
            /* Lower bound ignoring the SLA and transfers: each op on its cheapest device. */
            root_lb = 0;
            for (size_t v = 0; v < x.n; v++) {
                double mc = INFINITY;
                for (size_t k = 0; k < x.K; k++)
                    if (node_usd(&x, (int)v, (int)k) < mc)
                        mc = node_usd(&x, (int)v, (int)k);
                root_lb += mc;
            }
        }
        p->gap = p->cost > 0 ? (p->cost - root_lb) / p->cost : 0;
        if (p->gap < 0)
            p->gap = 0;
    }
    p->searched = searched;
    p->elapsed_ms = now_ms() - t0;
    ctx_free(&x);
    *out = p;
    return 0;
fail:
    ctx_free(&x);
    loom_plan_destroy(&p);
    return rc;
}

int loom_plan_fixed(const loom_graph_t *g, const loom_cost_t *c, const loom_place_opts_t *opts,
                    const int *assign, loom_plan_t **out, loom_err_t *err)
{
    *out = NULL;
    loom_plan_t *p = plan_alloc(g, c, opts);
    if (!p)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    ctx_t x;
    int rc = ctx_init(&x, g, c, p->z, p->opts.sla_ms, err);
    if (rc) {
        ctx_free(&x);
        loom_plan_destroy(&p);
        return rc;
    }
    for (size_t v = 0; v < x.n; v++) {
        if (assign[v] < 0 || (size_t)assign[v] >= x.K) {
            ctx_free(&x);
            loom_plan_destroy(&p);
            return loom_err_set(err, LOOM_EINVAL, "assignment of node %zu out of range", v);
        }
        p->assign[v] = assign[v];
    }
    plan_finish(p, &x);
    p->method = "fixed";
    ctx_free(&x);
    *out = p;
    return 0;
}

void loom_plan_destroy(loom_plan_t **pp)
{
    if (!pp || !*pp)
        return;
    free((*pp)->assign);
    free((*pp)->crit);
    free((*pp)->start);
    free(*pp);
    *pp = NULL;
}

int loom_plan_device(const loom_plan_t *p, int node) { return p->assign[node]; }
const int *loom_plan_assignment(const loom_plan_t *p) { return p->assign; }
double loom_plan_cost_usd(const loom_plan_t *p) { return p->cost; }
double loom_plan_mean_ms(const loom_plan_t *p) { return p->mean; }
double loom_plan_target_ms(const loom_plan_t *p) { return p->target; }
int loom_plan_feasible(const loom_plan_t *p) { return p->feasible; }
double loom_plan_miss_ms(const loom_plan_t *p) { return p->miss; }
const char *loom_plan_method(const loom_plan_t *p) { return p->method; }
double loom_plan_gap(const loom_plan_t *p) { return p->gap; }
uint64_t loom_plan_searched(const loom_plan_t *p) { return p->searched; }
double loom_plan_elapsed_ms(const loom_plan_t *p) { return p->elapsed_ms; }
int loom_plan_critical(const loom_plan_t *p, int node) { return p->crit[node]; }
double loom_plan_mc_target_ms(const loom_plan_t *p) { return p->mc_target; }
int loom_plan_mc_rounds(const loom_plan_t *p) { return p->mc_rounds; }
double loom_plan_start_ms(const loom_plan_t *p, int node) { return p->start[node]; }

/* Moves node to device k in a, with the ops that share its KV cache (KV
 * edges, transitively, among those on its device) when moving it alone is
 * impossible: an endpoint keeps its KV cache, so a prefill and its decode
 * change device together. */
static void move_with_kv(const loom_plan_t *p, int node, int k, int *a)
{
    size_t n = loom_graph_nodes(p->g), E = loom_graph_edges(p->g);
    int from = p->assign[node];
    a[node] = k;
    for (int grew = 1; grew;) {
        grew = 0;
        for (size_t e = 0; e < E; e++) {
            const loom_gedge_t *ed = loom_graph_edge(p->g, (int)e);
            if (ed->kind != LOOM_GEDGE_KV || (size_t)ed->src >= n || (size_t)ed->dst >= n)
                continue;
            int s = ed->src, d = ed->dst;
            if (a[s] == k && a[d] == from && p->assign[d] == from && loom_cost_fits(p->c, d, k))
                a[d] = k, grew = 1;
            else if (a[d] == k && a[s] == from && p->assign[s] == from && loom_cost_fits(p->c, s, k))
                a[s] = k, grew = 1;
        }
    }
}

int loom_plan_runner_up(const loom_plan_t *p, int node, double *cost_usd, double *target_ms, int *feasible)
{
    size_t n = loom_graph_nodes(p->g), K = loom_cost_devices(p->c);
    int *a = malloc((n + 1) * sizeof(int));
    if (!a)
        return -1;
    int best = -1, bfeas = 0;
    double bc = INFINITY, bt = INFINITY;
    for (size_t k = 0; k < K; k++) {
        if ((int)k == p->assign[node] || !loom_cost_fits(p->c, node, (int)k))
            continue;
        memcpy(a, p->assign, n * sizeof(int));
        a[node] = (int)k;
        double c = INFINITY, t = INFINITY;
        loom_place_eval(p->g, p->c, a, p->z, &c, NULL, &t);
        if (!isfinite(c) || !isfinite(t)) {
            move_with_kv(p, node, (int)k, a);
            loom_place_eval(p->g, p->c, a, p->z, &c, NULL, &t);
        }
        int f = p->opts.sla_ms <= 0 || t <= p->opts.sla_ms + EPS;
        if (best < 0 || (f && !bfeas) || (f == bfeas && (f ? c < bc : t < bt))) {
            best = (int)k;
            bfeas = f;
            bc = c;
            bt = t;
        }
    }
    free(a);
    if (best >= 0) {
        *cost_usd = bc;
        *target_ms = bt;
        *feasible = bfeas;
    }
    return best;
}
