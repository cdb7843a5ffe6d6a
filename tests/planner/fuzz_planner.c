/* fuzz_planner — libFuzzer target for the planner's own input files. The
 * first byte picks the loader (catalog, fleet, profile, workload); the rest
 * is the document. A catalog or profile that loads is then used to cost and
 * place a small fixed graph, so odd figures (huge, tiny, zero) reach the
 * cost model and the placement search. Properties: no crash, no leak, and a
 * placement that succeeds has a non-negative, non-NaN cost and latency. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "planner/catalog.h"
#include "planner/cost.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/profile.h"
#include "planner/workload.h"

static const char base_catalog[] =
    "links: [{name: l, gbps: 100, latency_us: 10}]\n"
    "devices:\n"
    "  - {name: HP, vendor: v, kind: gpu, mem_gb: 80, mem_bw_gbs: 3350, power_w: 700, purchase_usd: 1,"
    " hourly_usd: 3, link: l, tflops: {fp16: 989}, source: {mem_gb: s, mem_bw_gbs: s, tflops: s, power_w: s,"
    " purchase_usd: s, hourly_usd: s, link: s}}\n"
    "  - {name: CO, vendor: v, kind: cpu, mem_gb: 48, mem_bw_gbs: 864, power_w: 350, purchase_usd: 1,"
    " hourly_usd: 1, link: l, tflops: {fp32: 91, fp16: 362}, source: {mem_gb: s, mem_bw_gbs: s, tflops: s,"
    " power_w: s, purchase_usd: s, hourly_usd: s, link: s}}\n";

static loom_graph_t *small_graph(void)
{
    loom_graph_t *g = loom_graph_new("fuzz");
    loom_gnode_t n;
    loom_gnode_init(&n, LOOM_GOP_PREFILL, "a.prefill");
    n.step = "a";
    n.flops = 1.6e13;
    n.bytes = n.shared_bytes = 1.6e10;
    n.mem_bytes = 1.7e10;
    int p = loom_graph_add_node(g, &n, NULL);
    loom_gnode_init(&n, LOOM_GOP_DECODE, "a.decode");
    n.step = "a";
    n.tokens = 100;
    n.flops = 1.6e12;
    n.bytes = n.shared_bytes = 1.6e12;
    n.mem_bytes = 1.7e10;
    int d = loom_graph_add_node(g, &n, NULL);
    loom_gnode_init(&n, LOOM_GOP_TOOL_HTTP, "t");
    n.fixed_ms = 100;
    n.fixed_cv = 0.5;
    n.prob = 0.5;
    int t = loom_graph_add_node(g, &n, NULL);
    loom_graph_add_edge(g, p, d, LOOM_GEDGE_KV, 1.3e8, NULL);
    loom_graph_add_edge(g, d, t, LOOM_GEDGE_DATA, 4096, NULL);
    loom_graph_topo(g, NULL);
    return g;
}

static void place_on(const loom_fleet_t *f, const loom_profile_t *prof)
{
    loom_graph_t *g = small_graph();
    loom_cost_t *c = loom_cost_new(g, f, prof, NULL);
    if (c) {
        loom_place_opts_t o;
        loom_place_opts_init(&o);
        o.sla_ms = 500;
        o.percentile = 0.95;
        loom_plan_t *p = NULL;
        if (loom_place(g, c, &o, &p, NULL) == 0) {
            double cost = loom_plan_cost_usd(p), t = loom_plan_target_ms(p);
            if (isnan(cost) || cost < 0 || isnan(t) || t < 0)
                abort();
            loom_plan_destroy(&p);
        }
        loom_cost_destroy(&c);
    }
    loom_graph_destroy(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    loom_err_t err;
    memset(&err, 0, sizeof err);
    loom_catalog_t *base = loom_catalog_parse("base.yaml", base_catalog, sizeof base_catalog - 1, NULL);
    if (!base)
        abort();
    switch (data[0] % 4) {
    case 0: {
        loom_catalog_t *c = loom_catalog_parse("fuzz.yaml", text, len, &err);
        if (c) {
            loom_fleet_t *f = loom_fleet_all(c, 1);
            if (f)
                place_on(f, NULL);
            loom_fleet_destroy(&f);
        } else if (err.code >= 0) {
            abort(); /* a failed load must say why */
        }
        loom_catalog_destroy(&c);
        break;
    }
    case 1: {
        loom_fleet_t *f = loom_fleet_parse("fuzz.yaml", text, len, base, &err);
        if (f)
            place_on(f, NULL);
        loom_fleet_destroy(&f);
        break;
    }
    case 2: {
        loom_profile_t *p = loom_profile_parse("fuzz.yaml", text, len, &err);
        if (p) {
            loom_fleet_t *f = loom_fleet_all(base, 1);
            if (f)
                place_on(f, p);
            loom_fleet_destroy(&f);
        }
        loom_profile_destroy(&p);
        break;
    }
    default: {
        loom_workload_t *w = loom_workload_parse("fuzz.yaml", text, len, &err);
        loom_workload_destroy(&w);
        break;
    }
    }
    loom_catalog_destroy(&base);
    return 0;
}
