/* planner_bench.c — `make bench-planner`: planner figures with a peer
 * measured in the same run.
 *   1. plan a 10,000-op DAG on a 1,000-device fleet (target < 1 s); peer:
 *      one full evaluation sweep of the same graph (no planner can do less)
 *   2. TCO over 12 device classes x 20 workflows (target < 5 s); peer: the
 *      same without two-class candidates
 *   3. simulation throughput on 1,000 devices and 1,000,000 runs (target
 *      < 60 s); peer: bare binary-heap push+pop of the same event count */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planner/catalog.h"
#include "planner/cost.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/sim.h"
#include "planner/tco.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t rs = 88172645463325252ULL;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (rs >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct {
    double params, layers, kvh, hd, bytes;
    loom_prec_t prec;
} model_t;

static const model_t models[] = {
    {1.54e9, 28, 2, 128, 1, LOOM_PREC_INT8},  /* Qwen2.5-1.5B q8 */
    {8.03e9, 32, 8, 128, 2, LOOM_PREC_FP16},  /* Llama-3-8B bf16 */
    {70.6e9, 80, 8, 128, 1, LOOM_PREC_FP8},   /* Llama-3-70B fp8 */
};

/* Adds an llm.generate pair (prefill -> kv -> decode); returns decode id via *last. */
static int add_llm(loom_graph_t *g, const char *name, const model_t *m, double tin, double tout, int *last)
{
    char nm[64];
    loom_gnode_t n;
    double w = m->params * m->bytes, kv = 2 * m->layers * m->kvh * m->hd * m->bytes;
    snprintf(nm, sizeof nm, "%s.prefill", name);
    loom_gnode_init(&n, LOOM_GOP_PREFILL, nm);
    n.prec = m->prec;
    n.tokens = tin;
    n.flops = 2 * m->params * tin;
    n.shared_bytes = w;
    n.bytes = w + kv * tin;
    n.mem_bytes = w + kv * (tin + tout);
    int p = loom_graph_add_node(g, &n, NULL);
    snprintf(nm, sizeof nm, "%s.decode", name);
    loom_gnode_init(&n, LOOM_GOP_DECODE, nm);
    n.prec = m->prec;
    n.tokens = tout;
    n.flops = 2 * m->params * tout;
    n.shared_bytes = w * tout;
    n.bytes = n.shared_bytes + kv * (tin + tout / 2) * tout;
    n.mem_bytes = w + kv * (tin + tout);
    int d = loom_graph_add_node(g, &n, NULL);
    loom_graph_add_edge(g, p, d, LOOM_GEDGE_KV, kv * tin, NULL);
    *last = d;
    return p;
}

static int add_simple(loom_graph_t *g, const char *name, int kind)
{
    loom_gnode_t n;
    if (kind == 0) {
        loom_gnode_init(&n, LOOM_GOP_EMBED, name);
        n.flops = 2 * 22e6 * 128;
        n.shared_bytes = 44e6;
        n.bytes = 45e6;
        n.mem_bytes = 45e6;
    } else if (kind == 1) {
        loom_gnode_init(&n, LOOM_GOP_VSEARCH, name);
        n.prec = LOOM_PREC_FP32;
        n.flops = 2 * 384 * 1e5;
        n.shared_bytes = 4 * 384 * 1e5;
        n.bytes = n.shared_bytes;
        n.mem_bytes = n.bytes;
    } else {
        loom_gnode_init(&n, kind == 2 ? LOOM_GOP_TOOL_HTTP : LOOM_GOP_TOOL_EXEC, name);
        n.fixed_ms = 20 + urand() * 200;
        n.fixed_cv = 0.3;
        if (urand() < 0.2)
            n.prob = 0.3;
    }
    return loom_graph_add_node(g, &n, NULL);
}

/* A layered DAG of about n ops. */
static loom_graph_t *big_graph(int n, int width)
{
    loom_graph_t *g = loom_graph_new("big");
    int *prev = calloc((size_t)width * 2, sizeof(int)), *cur = calloc((size_t)width * 2, sizeof(int));
    int np = 0, count = 0, layer = 0;
    while (count < n) {
        int nc = 0;
        for (int i = 0; i < width && count < n; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "op%d", count);
            int first, last;
            double r = urand();
            if (r < 0.3) {
                first = add_llm(g, nm, &models[urand() < 0.7 ? 0 : 1], 200 + urand() * 1000, 20 + urand() * 200, &last);
                count += 2;
            } else {
                first = last = add_simple(g, nm, (int)(urand() * 4));
                count++;
            }
            for (int e = 0; e < 2 && np > 0; e++)
                loom_graph_add_edge(g, prev[(int)(urand() * np)], first, LOOM_GEDGE_DATA, 4096, NULL);
            cur[nc++] = last;
        }
        memcpy(prev, cur, (size_t)nc * sizeof(int));
        np = nc;
        layer++;
    }
    free(prev);
    free(cur);
    loom_graph_topo(g, NULL);
    return g;
}

/* A small agent workflow: embed -> search -> (tool) -> llm, sometimes 2 llm calls. */
static loom_graph_t *agent_graph(int seed)
{
    char name[32];
    snprintf(name, sizeof name, "agent%d", seed);
    loom_graph_t *g = loom_graph_new(name);
    int e = add_simple(g, "embed", 0), s = add_simple(g, "search", 1), t = add_simple(g, "tool", 2 + seed % 2);
    loom_graph_add_edge(g, e, s, LOOM_GEDGE_DATA, 1536, NULL);
    int last, p = add_llm(g, "answer", &models[seed % 3 == 2 ? 1 : seed % 3], 500 + 100 * (seed % 7),
                          50 + 20 * (seed % 5), &last);
    loom_graph_add_edge(g, s, p, LOOM_GEDGE_DATA, 4096, NULL);
    loom_graph_add_edge(g, t, p, LOOM_GEDGE_DATA, 4096, NULL);
    if (seed % 4 == 0) {
        int l2, p2 = add_llm(g, "review", &models[0], 300, 30, &l2);
        loom_graph_add_edge(g, last, p2, LOOM_GEDGE_DATA, 4096, NULL);
    }
    loom_graph_topo(g, NULL);
    return g;
}

static loom_fleet_t *fleet_1000(const loom_catalog_t *cat)
{
    loom_fleet_t *f = loom_fleet_new(cat);
    size_t C = loom_catalog_classes(cat);
    int left = 1000;
    for (size_t j = 0; j < C; j++) {
        int n = j + 1 == C ? left : 1000 / (int)C;
        loom_fleet_add(f, (int)j, n, j % 4 == 3, -1, NULL);
        left -= n;
    }
    return f;
}

static void bench_plan(const loom_catalog_t *cat)
{
    loom_fleet_t *f = fleet_1000(cat);
    loom_graph_t *g = big_graph(10000, 50);
    double t0 = now_ms();
    loom_cost_t *c = loom_cost_new(g, f, NULL, NULL);
    double tcost = now_ms() - t0;
    loom_place_opts_t o;
    loom_place_opts_init(&o);
    o.percentile = 0.95;
    o.method = LOOM_PLACE_HEURISTIC;
    loom_plan_t *fast = NULL, *cheap = NULL, *p = NULL;
    o.minimize_latency = 1;
    loom_place(g, c, &o, &fast, NULL);
    o.minimize_latency = 0;
    loom_place(g, c, &o, &cheap, NULL);
    double lo = loom_plan_target_ms(fast), hi = loom_plan_target_ms(cheap);
    o.sla_ms = lo + 0.3 * (hi - lo);
    t0 = now_ms();
    loom_place(g, c, &o, &p, NULL);
    double tplan = now_ms() - t0;
    /* peer: one evaluation of a complete assignment */
    int reps = 20;
    t0 = now_ms();
    double dummy = 0;
    for (int i = 0; i < reps; i++) {
        double cu, m, t;
        loom_place_eval(g, c, loom_plan_assignment(p), loom_place_z(0.95), &cu, &m, &t);
        dummy += t;
    }
    double teval = (now_ms() - t0) / reps;
    double cpu = loom_plan_elapsed_ms(p);
    printf("plan: %zu ops, %zu edges on %zu devices (%zu classes): cost table %.1f ms, placement %.1f ms wall, "
           "%.1f ms CPU (target < 1000 ms) [%s]\n",
           loom_graph_nodes(g), loom_graph_edges(g), loom_fleet_devices(f), loom_fleet_entries(f), tcost, tplan, cpu,
           tcost + cpu < 1000 ? "ok" : "SLOW");
    printf("plan:   SLA p95 %.0f ms (fastest %.0f, cheapest %.0f): predicted %.0f ms, %s, $%.4f/run vs $%.4f "
           "unconstrained cheapest (%.2fx), gap bound %.1f%%\n",
           o.sla_ms, lo, hi, loom_plan_target_ms(p), loom_plan_feasible(p) ? "meets" : "MISSES",
           loom_plan_cost_usd(p), loom_plan_cost_usd(cheap), loom_plan_cost_usd(p) / loom_plan_cost_usd(cheap),
           loom_plan_gap(p) * 100);
    printf("plan:   peer: one full evaluation sweep %.2f ms -> placement = %.0f sweeps (%llu evaluations)%s\n",
           teval, tplan / teval, (unsigned long long)loom_plan_searched(p), dummy < 0 ? "!" : "");
    loom_plan_destroy(&fast);
    loom_plan_destroy(&cheap);
    loom_plan_destroy(&p);
    loom_cost_destroy(&c);
    loom_graph_destroy(&g);
    loom_fleet_destroy(&f);
}

static void bench_tco(const loom_catalog_t *full)
{
    /* the first 12 classes */
    loom_catalog_t *cat = loom_catalog_new();
    for (size_t l = 0; l < loom_catalog_links(full); l++)
        loom_catalog_add_link(cat, loom_catalog_link(full, (int)l), NULL);
    for (int j = 0; j < 12; j++)
        loom_catalog_add_class(cat, loom_catalog_class(full, j), NULL);
    loom_tco_workflow_t w[20];
    loom_graph_t *g[20];
    loom_fleet_t *all = loom_fleet_all(cat, 1);
    for (int i = 0; i < 20; i++) {
        g[i] = agent_graph(i);
        /* SLA: 2x the fastest possible on the whole catalog */
        loom_cost_t *c = loom_cost_new(g[i], all, NULL, NULL);
        loom_place_opts_t o;
        loom_place_opts_init(&o);
        o.minimize_latency = 1;
        o.percentile = 0.95;
        loom_plan_t *p = NULL;
        loom_place(g[i], c, &o, &p, NULL);
        w[i] = (loom_tco_workflow_t){.name = loom_graph_name(g[i]), .g = g[i], .rate_per_s = 1 + (i % 5) * 3};
        loom_place_opts_init(&w[i].opts);
        w[i].opts.percentile = 0.95;
        w[i].opts.sla_ms = 2 * loom_plan_target_ms(p);
        loom_plan_destroy(&p);
        loom_cost_destroy(&c);
    }
    loom_tco_result_t *r = NULL, *r2 = NULL;
    loom_tco_opts_t to = {0};
    double t0 = now_ms();
    loom_tco_solve(cat, NULL, w, 20, &to, &r, NULL);
    double t = now_ms() - t0;
    to.no_pairs = 1;
    t0 = now_ms();
    loom_tco_solve(cat, NULL, w, 20, &to, &r2, NULL);
    double t2 = now_ms() - t0;
    double best_homo = INFINITY;
    for (size_t j = 0; j < r->nclasses; j++)
        if (r->classes[j].homo_ok && r->classes[j].homo_usd_per_hour < best_homo)
            best_homo = r->classes[j].homo_usd_per_hour;
    printf("tco: 12 classes x 20 workflows: %.1f ms (target < 5000 ms) [%s], %zu candidate placements, GLPK MIP "
           "%.1f ms; fleet $%.2f/h (%s) vs best homogeneous $%.2f/h (%.2fx)\n",
           t, t < 5000 ? "ok" : "SLOW", r->candidates, r->ilp_ms, r->usd_per_hour, r->feasible ? "feasible" : "INFEASIBLE",
           best_homo, best_homo / r->usd_per_hour);
    printf("tco:   peer: without two-class candidates %.1f ms, %zu candidates, $%.2f/h (pairs save %.1f%%)\n", t2,
           r2->candidates, r2->usd_per_hour, 100 * (1 - r->usd_per_hour / r2->usd_per_hour));
    loom_tco_result_destroy(&r);
    loom_tco_result_destroy(&r2);
    for (int i = 0; i < 20; i++)
        loom_graph_destroy(&g[i]);
    loom_fleet_destroy(&all);
    loom_catalog_destroy(&cat);
}

static void bench_sim(const loom_catalog_t *cat, uint64_t runs)
{
    loom_fleet_t *f = fleet_1000(cat);
    enum { NW = 4 };
    loom_graph_t *g[NW];
    loom_cost_t *c[NW];
    loom_plan_t *p[NW];
    loom_sim_workflow_t sw[NW];
    size_t K = loom_fleet_entries(f);
    double *busy = calloc(K, sizeof(double));
    for (int i = 0; i < NW; i++) {
        g[i] = agent_graph(i);
        c[i] = loom_cost_new(g[i], f, NULL, NULL);
        loom_place_opts_t o;
        loom_place_opts_init(&o);
        o.percentile = 0.95;
        o.minimize_latency = 1;
        loom_place(g[i], c[i], &o, &p[i], NULL);
        double fast = loom_plan_target_ms(p[i]);
        loom_plan_destroy(&p[i]);
        o.minimize_latency = 0;
        o.sla_ms = 3 * fast;
        loom_place(g[i], c[i], &o, &p[i], NULL);
        for (size_t v = 0; v < loom_graph_nodes(g[i]); v++) {
            const loom_gnode_t *nd = loom_graph_node(g[i], (int)v);
            int k = loom_plan_device(p[i], (int)v);
            if (!loom_gop_is_external(nd->op))
                busy[k] += nd->prob * nd->iters_mean * loom_cost_busy_s(c[i], (int)v, k) / NW;
        }
        sw[i] = (loom_sim_workflow_t){.name = loom_graph_name(g[i]), .g = g[i], .cost = c[i],
                                      .assign = loom_plan_assignment(p[i]), .sla_ms = o.sla_ms};
    }
    /* total rate so that the busiest class runs at 60% */
    double rate = INFINITY;
    for (size_t k = 0; k < K; k++)
        if (busy[k] > 0 && 0.6 * loom_fleet_entry(f, (int)k)->count / busy[k] < rate)
            rate = 0.6 * loom_fleet_entry(f, (int)k)->count / busy[k];
    for (int i = 0; i < NW; i++)
        sw[i].rate_per_s = rate / NW;
    loom_sim_opts_t so = {.seconds = runs / rate * 1.05, .max_runs = runs, .seed = 7};
    loom_sim_result_t *r = NULL;
    double t0 = now_ms();
    int rc = loom_sim_run(f, sw, NW, &so, &r, NULL);
    double t = now_ms() - t0;
    if (rc == 0) {
        double umax = 0;
        for (size_t k = 0; k < r->ndev; k++)
            if (r->dev[k].utilisation > umax)
                umax = r->dev[k].utilisation;
        printf("simulate: %llu runs on %zu devices, %.0f runs/s offered: %.1f s wall (target < 60 s) [%s], "
               "%.2f M events/s, %.0f k runs/s; attainment %.2f%%, p50 %.0f p99 %.0f ms, busiest class %.0f%%\n",
               (unsigned long long)r->all.runs, loom_fleet_devices(f), rate, t / 1000, t < 60000 ? "ok" : "SLOW",
               r->events / t / 1000, r->all.runs / t, r->all.attain * 100, r->all.p50_ms, r->all.p99_ms, umax * 100);
        /* peer: bare heap of doubles, same number of push+pop pairs, same depth */
        uint64_t n = r->events;
        size_t depth = 4096, cap = depth + 1;
        double *h = malloc(cap * sizeof(double));
        size_t hn = 0;
        uint64_t s = 1;
        t0 = now_ms();
        for (size_t i = 0; i < depth; i++) {
            double v = (double)(s = s * 6364136223846793005ULL + 1) / 1.8446744073709552e19;
            size_t j = hn++;
            while (j && h[(j - 1) / 2] > v) {
                h[j] = h[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            h[j] = v;
        }
        double acc = 0;
        for (uint64_t i = 0; i < n; i++) {
            double top = h[0], last = h[--hn];
            size_t j = 0;
            for (;;) {
                size_t l = 2 * j + 1, m = j;
                double mv = last;
                if (l < hn && h[l] < mv) { m = l; mv = h[l]; }
                if (l + 1 < hn && h[l + 1] < mv) m = l + 1;
                if (m == j) break;
                h[j] = h[m];
                j = m;
            }
            if (hn) h[j] = last;
            acc += top;
            double v = top + (double)((s = s * 6364136223846793005ULL + 1) >> 11) / 9.007199254740992e15;
            j = hn++;
            while (j && h[(j - 1) / 2] > v) {
                h[j] = h[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            h[j] = v;
        }
        double tp = now_ms() - t0;
        printf("simulate:   peer: bare heap push+pop of %llu events %.0f ms -> the simulator costs %.1fx a bare "
               "event queue%s\n", (unsigned long long)n, tp, t / tp, acc < 0 ? "!" : "");
        free(h);
    } else
        printf("simulate: failed (rc %d)\n", rc);
    loom_sim_result_destroy(&r);
    for (int i = 0; i < NW; i++) {
        loom_plan_destroy(&p[i]);
        loom_cost_destroy(&c[i]);
        loom_graph_destroy(&g[i]);
    }
    free(busy);
    loom_fleet_destroy(&f);
}

int main(int argc, char **argv)
{
    const char *catpath = argc > 1 ? argv[1] : "examples/catalog.yaml";
    uint64_t runs = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    loom_err_t err = {0};
    loom_catalog_t *cat = loom_catalog_load(catpath, &err);
    if (!cat) {
        fprintf(stderr, "bench-planner: %s: %s\n", catpath, err.msg);
        return 1;
    }
    bench_plan(cat);
    bench_tco(cat);
    bench_sim(cat, runs);
    loom_catalog_destroy(&cat);
    return 0;
}
