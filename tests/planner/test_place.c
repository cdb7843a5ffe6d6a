/* Unit tests for the planner's cost model and placement: the worked
 * example of Asgar et al. (2025) from examples/paper/, exact vs heuristic on
 * random instances, the KV-size formula, and garbage input to the loaders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "planner/catalog.h"
#include "planner/cost.h"
#include "planner/decompose.h"
#include "planner/fleet.h"
#include "planner/graph.h"
#include "planner/place.h"
#include "planner/profile.h"
#include "planner/workflow.h"

/* ---- the paper's worked example ----------------------------------------- */

typedef struct {
    loom_catalog_t *cat;
    loom_fleet_t *fleet;
    loom_profile_t *prof;
    loom_graph_t *g;
    loom_cost_t *cost;
    int hp, co, prefill, decode;
} paper_t;

static void paper_setup(paper_t *p)
{
    loom_err_t err = {0};
    char buf[1024];
    p->cat = loom_catalog_load("examples/paper/catalog.yaml", &err);
    loom_err_format(&err, buf, sizeof buf);
    if (!p->cat)
        fail_msg("%s", buf);
    p->fleet = loom_fleet_load("examples/paper/fleet.yaml", p->cat, &err);
    assert_non_null(p->fleet);
    p->prof = loom_profile_load("examples/paper/profile.yaml", &err);
    assert_non_null(p->prof);
    p->g = loom_graph_new("paper");
    loom_gnode_t n;
    loom_gnode_init(&n, LOOM_GOP_PREFILL, "answer.prefill");
    n.step = "answer";
    n.tokens = 1000;
    p->prefill = loom_graph_add_node(p->g, &n, &err);
    loom_gnode_init(&n, LOOM_GOP_DECODE, "answer.decode");
    n.step = "answer";
    n.tokens = 500;
    p->decode = loom_graph_add_node(p->g, &n, &err);
    /* Llama-3-8B-like KV for 1000 tokens; the profile prices it anyway. */
    assert_true(loom_graph_add_edge(p->g, p->prefill, p->decode, LOOM_GEDGE_KV,
                                    loom_kv_bytes(32, 8, 128, 2, 1000), &err) >= 0);
    assert_non_null(loom_graph_topo(p->g, &err));
    p->cost = loom_cost_new(p->g, p->fleet, p->prof, &err);
    assert_non_null(p->cost);
    p->hp = loom_fleet_find(p->fleet, "HP");
    p->co = loom_fleet_find(p->fleet, "CO");
    assert_true(p->hp >= 0 && p->co >= 0);
}

static void paper_teardown(paper_t *p)
{
    loom_cost_destroy(&p->cost);
    loom_graph_destroy(&p->g);
    loom_profile_destroy(&p->prof);
    loom_fleet_destroy(&p->fleet);
    loom_catalog_destroy(&p->cat);
}

static void paper_three_options(void **state)
{
    (void)state;
    paper_t p;
    paper_setup(&p);
    struct { int pre, dec; double ms, usd; } opt[] = {
        {p.hp, p.hp, 105, 0.110}, /* A */
        {p.hp, p.co, 120, 0.095}, /* B */
        {p.co, p.co, 160, 0.060}, /* C */
    };
    loom_place_opts_t o;
    loom_place_opts_init(&o);
    o.sla_ms = 120;
    for (int i = 0; i < 3; i++) {
        int a[2];
        a[p.prefill] = opt[i].pre;
        a[p.decode] = opt[i].dec;
        loom_plan_t *plan = NULL;
        assert_int_equal(loom_plan_fixed(p.g, p.cost, &o, a, &plan, NULL), 0);
        assert_float_equal(loom_plan_target_ms(plan), opt[i].ms, 1e-9);
        assert_float_equal(loom_plan_cost_usd(plan), opt[i].usd, 1e-12);
        assert_int_equal(loom_plan_feasible(plan), opt[i].ms <= 120);
        loom_plan_destroy(&plan);
    }
    paper_teardown(&p);
}

static void paper_place(double sla, loom_place_method_t m, int want_pre, int want_dec, int feasible,
                        double ms, double usd, double miss)
{
    paper_t p;
    paper_setup(&p);
    loom_place_opts_t o;
    loom_place_opts_init(&o);
    o.sla_ms = sla;
    o.percentile = 0.95; /* zero spread in the profile: p95 == mean */
    o.method = m;
    loom_plan_t *plan = NULL;
    loom_err_t err = {0};
    assert_int_equal(loom_place(p.g, p.cost, &o, &plan, &err), 0);
    int pre = want_pre ? p.co : p.hp, dec = want_dec ? p.co : p.hp;
    assert_int_equal(loom_plan_device(plan, p.prefill), pre);
    assert_int_equal(loom_plan_device(plan, p.decode), dec);
    assert_int_equal(loom_plan_feasible(plan), feasible);
    assert_float_equal(loom_plan_target_ms(plan), ms, 1e-9);
    assert_float_equal(loom_plan_cost_usd(plan), usd, 1e-12);
    assert_float_equal(loom_plan_miss_ms(plan), miss, 1e-9);
    if (m == LOOM_PLACE_EXACT)
        assert_string_equal(loom_plan_method(plan), "exact");
    loom_plan_destroy(&plan);
    paper_teardown(&p);
}

static void paper_sla120_picks_b(void **state)
{
    (void)state;
    paper_place(120, LOOM_PLACE_EXACT, 0, 1, 1, 120, 0.095, 0);
    paper_place(120, LOOM_PLACE_HEURISTIC, 0, 1, 1, 120, 0.095, 0);
}

static void paper_sla100_infeasible_fastest(void **state)
{
    (void)state;
    /* Nothing meets 100 ms; the fastest is A (105 ms), missing by 5 ms. */
    paper_place(100, LOOM_PLACE_EXACT, 0, 0, 0, 105, 0.110, 5);
    paper_place(100, LOOM_PLACE_HEURISTIC, 0, 0, 0, 105, 0.110, 5);
}

static void paper_sla200_picks_c(void **state)
{
    (void)state;
    paper_place(200, LOOM_PLACE_EXACT, 1, 1, 1, 160, 0.060, 0);
    paper_place(200, LOOM_PLACE_HEURISTIC, 1, 1, 1, 160, 0.060, 0);
}

/* ---- KV-cache size ---------------------------------------------------- */

static void kv_bytes_real_models(void **state)
{
    (void)state;
    /* Llama-3-8B: 32 layers, 8 KV heads (GQA), head_dim 128, bf16:
     * 2 x 32 x 8 x 128 x 2 = 131,072 B/token; 4096 tokens = 512 MiB. */
    assert_float_equal(loom_kv_bytes(32, 8, 128, 2, 1), 131072.0, 0);
    assert_float_equal(loom_kv_bytes(32, 8, 128, 2, 4096), 536870912.0, 0);
    /* Mistral-7B-v0.1: 32 layers, 8 KV heads, head_dim 128 -> same per token;
     * fp32 cache doubles it: 1000 tokens = 262,144,000 B. */
    assert_float_equal(loom_kv_bytes(32, 8, 128, 4, 1000), 262144000.0, 0);
    /* Llama-2-7B (no GQA): 32 layers, 32 KV heads, head_dim 128, fp16:
     * 524,288 B/token. Llama-3-70B: 80 layers, 8 KV heads: 327,680 B/token. */
    assert_float_equal(loom_kv_bytes(32, 32, 128, 2, 1), 524288.0, 0);
    assert_float_equal(loom_kv_bytes(80, 8, 128, 2, 1), 327680.0, 0);
    assert_float_equal(loom_prec_bytes((loom_prec_t)loom_prec_parse("bf16")), 2, 0);
}


/* ---- decomposition of real example workflows ------------------------------ */

static loom_graph_t *decompose_file(const char *path, loom_workflow_t **wf)
{
    loom_diags_t d = LOOM_DIAGS_INIT;
    assert_int_equal(loom_workflow_load(path, wf, &d), 0);
    loom_diags_free(&d);
    loom_graph_t *g = NULL;
    loom_err_t err = {0};
    assert_int_equal(loom_decompose(*wf, &g, NULL, &err), 0);
    assert_non_null(loom_graph_order(g));
    return g;
}

static const loom_gedge_t *kv_edge(const loom_graph_t *g, const char *from)
{
    int src = loom_graph_find(g, from);
    assert_true(src >= 0);
    for (size_t e = 0; e < loom_graph_edges(g); e++) {
        const loom_gedge_t *ed = loom_graph_edge(g, (int)e);
        if (ed->src == src && ed->kind == LOOM_GEDGE_KV)
            return ed;
    }
    fail_msg("no KV edge from %s", from);
    return NULL;
}

static void decompose_examples(void **state)
{
    (void)state;
    loom_workflow_t *wf = NULL;
    /* The paper's call: Llama-3-8B bf16, 1000 prompt tokens -> KV edge of
     * 2 x 32 x 8 x 128 x 2 B x 1000 = 131,072,000 B. */
    loom_graph_t *g = decompose_file("examples/paper/workflow.yaml", &wf);
    assert_int_equal(loom_graph_nodes(g), 2);
    const loom_gedge_t *kv = kv_edge(g, "answer.prefill");
    assert_float_equal(kv->bytes, 131072000.0, 0);
    assert_int_equal(kv->dst, loom_graph_find(g, "answer.decode"));
    const loom_gnode_t *pre = loom_graph_node(g, kv->src), *dec = loom_graph_node(g, kv->dst);
    assert_float_equal(pre->tokens, 1000, 0);
    assert_float_equal(dec->tokens, 500, 0);
    /* prefill: 2 x params x T + 2 x layers x T^2 x hidden */
    assert_float_equal(pre->flops, 2 * 8.03e9 * 1000 + 2 * 32 * 1000.0 * 1000 * 4096, 1e3);
    assert_int_equal(pre->prec, LOOM_PREC_FP16);
    loom_graph_destroy(&g);
    loom_workflow_destroy(&wf);

    /* ReAct loop: a q4 Qwen-7B (28 layers, 4 KV heads, head_dim 128, f16 cache),
     * 600 prompt tokens -> 2 x 28 x 4 x 128 x 2 x 600 = 34,406,400 B; the body
     * runs 3 of at most 6 iterations; act runs with probability 0.7. */
    g = decompose_file("examples/react-agent.yaml", &wf);
    kv = kv_edge(g, "react.think.prefill");
    assert_float_equal(kv->bytes, 34406400.0, 0);
    const loom_gnode_t *act = loom_graph_node(g, loom_graph_find(g, "react.act"));
    assert_non_null(act);
    assert_int_equal(act->op, LOOM_GOP_TOOL_EXEC);
    assert_float_equal(act->prob, 0.7, 1e-12);
    assert_float_equal(act->iters_mean, 3, 1e-12);
    assert_float_equal(act->iters_max, 6, 1e-12);
    assert_float_equal(act->fixed_ms, 40, 1e-9);
    assert_true(loom_graph_find(g, "react.begin") >= 0 && loom_graph_find(g, "react.end") >= 0);
    const loom_gnode_t *think = loom_graph_node(g, loom_graph_find(g, "react.think.prefill"));
    assert_int_equal(think->prec, LOOM_PREC_INT8);
    assert_float_equal(think->shared_bytes, 7.62e9 * 0.5625, 1);
    loom_graph_destroy(&g);
    loom_workflow_destroy(&wf);

    /* q8_0 is a block format (34 bytes per 32 weights) with an f16 KV
     * cache, not plain int8; int8 stays 1 byte with an int8 cache. */
    static const char q8[] =
        "version: 1\nname: q8\nresources:\n  models:\n"
        "    m: {path: m.gguf, arch: llama, layers: 22, hidden: 2048, heads: 32, kv_heads: 4, vocab: 32000,"
        " context: 2048, dtype: q8_0, params: 1100000000}\n"
        "    i: {path: i.gguf, arch: llama, layers: 22, hidden: 2048, heads: 32, kv_heads: 4, vocab: 32000,"
        " context: 2048, dtype: int8, params: 1100000000}\n"
        "steps:\n  a: {op: llm.generate, model: m, prompt: hi, expect: {prompt_tokens: 100}}\n";
    loom_diags_t d = LOOM_DIAGS_INIT;
    assert_int_equal(loom_workflow_parse("q8.yaml", q8, sizeof q8 - 1, &wf, &d), 0);
    loom_diags_free(&d);
    loom_model_shape_t ms;
    assert_int_equal(loom_decompose_model(wf, "m", &ms, NULL), 0);
    assert_float_equal(ms.dtype_bytes, 1.0625, 0);
    assert_float_equal(ms.kv_bytes, 2, 0);
    assert_int_equal(ms.prec, LOOM_PREC_INT8);
    assert_int_equal(loom_decompose_model(wf, "i", &ms, NULL), 0);
    assert_float_equal(ms.dtype_bytes, 1, 0);
    assert_float_equal(ms.kv_bytes, 1, 0);
    g = NULL;
    assert_int_equal(loom_decompose(wf, &g, NULL, NULL), 0);
    kv = kv_edge(g, "a.prefill");
    assert_float_equal(kv->bytes, 2.0 * 22 * 4 * 64 * 2 * 100, 0); /* f16 cache: 2 bytes per value */
    assert_float_equal(loom_graph_node(g, kv->src)->shared_bytes, 1.1e9 * 1.0625, 1);
    loom_graph_destroy(&g);
    loom_workflow_destroy(&wf);
}


/* Prefix reuse priced three ways (loom_cost_prefix): an 8B model, a
 * 2000-token prompt whose first 1900 tokens' KV sits on one device. */
static void prefix_three_choices(void **state)
{
    (void)state;
    loom_err_t err = {0};
    loom_catalog_t *cat = loom_catalog_load("examples/catalog.yaml", &err);
    assert_non_null(cat);
    loom_fleet_t *f = loom_fleet_new(cat);
    loom_fleet_add(f, loom_catalog_find(cat, "H100-SXM"), 1, 0, -1, NULL);
    loom_fleet_add(f, loom_catalog_find(cat, "A100-40G"), 1, 0, -1, NULL);
    loom_fleet_add(f, loom_catalog_find(cat, "V100-16G"), 1, 0, -1, NULL);
    int h100 = loom_fleet_find(f, "H100-SXM"), a100 = loom_fleet_find(f, "A100-40G");
    int v100 = loom_fleet_find(f, "V100-16G");
    loom_graph_t *g = loom_graph_new("turn");
    loom_gnode_t n;
    double w = 8.03e9 * 2, kv = 131072, prompt = 2000;
    loom_gnode_init(&n, LOOM_GOP_PREFILL, "t.prefill");
    n.tokens = prompt;
    n.flops = 2 * 8.03e9 * prompt;
    n.bytes = n.shared_bytes = w;
    n.mem_bytes = w + kv * 2100;
    int pre = loom_graph_add_node(g, &n, NULL);
    loom_gnode_init(&n, LOOM_GOP_DECODE, "t.decode");
    n.tokens = 40;
    n.flops = 2 * 8.03e9 * 40;
    n.shared_bytes = w * 40;
    n.bytes = n.shared_bytes + kv * 2020 * 40;
    n.mem_bytes = w + kv * 2100;
    int dec = loom_graph_add_node(g, &n, NULL);
    loom_graph_add_edge(g, pre, dec, LOOM_GEDGE_KV, kv * prompt, NULL);
    assert_non_null(loom_graph_topo(g, NULL));
    loom_cost_t *c = loom_cost_new(g, f, NULL, &err);
    assert_non_null(c);
    loom_prefix_price_t p;

    /* Idle holder: running where the prefix lives beats recomputing it. */
    loom_cost_prefix(c, pre, dec, prompt, 1900, h100, h100, 0, 0, &p);
    printf("H100 holds it, runs it: there %.1f ms, recompute %.1f ms\n", p.there_ms, p.recompute_ms);
    assert_int_equal(p.best, LOOM_PREFIX_THERE);
    assert_true(p.there_ms < p.recompute_ms);

    /* The holder (H100) is busy for a second; the A100 is idle and 100 Gb/s
     * away: moving the 1900 tokens' KV (~250 MB) is cheaper than both
     * waiting for the holder and recomputing 2000 tokens on the A100. */
    loom_cost_prefix(c, pre, dec, prompt, 1900, h100, a100, 1000, 0, &p);
    printf("H100 busy 1 s, A100 idle: there %.1f ms, move %.1f ms, recompute %.1f ms\n", p.there_ms, p.move_ms,
           p.recompute_ms);
    assert_int_equal(p.best, LOOM_PREFIX_MOVE);
    assert_true(p.move_ms < p.there_ms && p.move_ms < p.recompute_ms);

    /* The holder is a V100 behind 10 Gb/s: moving its KV to the H100 costs
     * more than the H100 recomputing the prefill. */
    loom_cost_prefix(c, pre, dec, prompt, 1900, v100, h100, 1000, 0, &p);
    printf("V100 holds it (10 Gb/s), H100 idle: move %.1f ms, recompute %.1f ms\n", p.move_ms, p.recompute_ms);
    assert_int_equal(p.best, LOOM_PREFIX_RECOMPUTE);
    assert_true(p.recompute_ms < p.move_ms);

    /* Nothing reusable: moving nothing is recomputing. */
    loom_cost_prefix(c, pre, dec, prompt, 0, h100, a100, 0, 0, &p);
    assert_int_equal(p.best, LOOM_PREFIX_RECOMPUTE);
    assert_true(fabs(p.move_ms - p.recompute_ms) < 1e-9);
    loom_cost_destroy(&c);
    loom_graph_destroy(&g);
    loom_fleet_destroy(&f);
    loom_catalog_destroy(&cat);
}

/* ---- Monte Carlo calibration --------------------------------------------- */

/* A rare slow branch (p = 0.1, 0.9 s on the cheap device) beside an LLM
 * call: the moment model
 * spreads the branch into a normal tail and underestimates the p95, so the
 * cheapest plan that "meets" the SLA by the model misses it by sampling.
 * The calibration must then find a plan that meets it by sampling too. */
static void calibration_tightens_when_sampling_misses(void **state)
{
    (void)state;
    loom_err_t err = {0};
    loom_catalog_t *cat = loom_catalog_load("examples/catalog.yaml", &err);
    assert_non_null(cat);
    loom_fleet_t *f = loom_fleet_new(cat);
    loom_fleet_add(f, loom_catalog_find(cat, "H100-SXM"), 1, 0, -1, NULL);
    loom_fleet_add(f, loom_catalog_find(cat, "A100-40G"), 1, 1, -1, NULL);
    loom_graph_t *g = loom_graph_new("branchy");
    loom_gnode_t n;
    double w = 8.03e9 * 2, kv = 131072;
    loom_gnode_init(&n, LOOM_GOP_PREFILL, "llm.prefill");
    n.flops = 2 * 8.03e9 * 1000;
    n.bytes = n.shared_bytes = w;
    n.mem_bytes = w + kv * 1200;
    int pre = loom_graph_add_node(g, &n, NULL);
    loom_gnode_init(&n, LOOM_GOP_DECODE, "llm.decode");
    n.tokens = 40;
    n.flops = 2 * 8.03e9 * 40;
    n.shared_bytes = w * 40;
    n.bytes = n.shared_bytes + kv * 1020 * 40;
    n.mem_bytes = w + kv * 1200;
    int dec = loom_graph_add_node(g, &n, NULL);
    loom_gnode_init(&n, LOOM_GOP_COMPUTE, "rare");
    n.prec = LOOM_PREC_FP32;
    n.flops = 1.05e13; /* ~0.9 s on an A100, ~0.26 s on an H100 */
    n.bytes = 1e8;
    n.mem_bytes = 1e8;
    n.prob = 0.1;
    int rare = loom_graph_add_node(g, &n, NULL);
    loom_gnode_init(&n, LOOM_GOP_NOOP, "join");
    int join = loom_graph_add_node(g, &n, NULL);
    loom_graph_add_edge(g, pre, dec, LOOM_GEDGE_KV, kv * 1000, NULL);
    loom_graph_add_edge(g, dec, join, LOOM_GEDGE_DATA, 4096, NULL);
    loom_graph_add_edge(g, rare, join, LOOM_GEDGE_DATA, 4096, NULL);
    assert_non_null(loom_graph_topo(g, NULL));
    loom_cost_t *c = loom_cost_new(g, f, NULL, &err);
    assert_non_null(c);

    loom_place_opts_t o;
    loom_place_opts_init(&o);
    o.percentile = 0.95;
    o.mc_samples = -1;
    loom_plan_t *cheap = NULL, *cal = NULL;
    assert_int_equal(loom_place(g, c, &o, &cheap, NULL), 0); /* no SLA: the cheapest */
    double model = loom_plan_target_ms(cheap), sampled = 0;
    assert_int_equal(loom_plan_mc(cheap, 2000, 7, 0.95, 0, NULL, &sampled, NULL), 0);
    printf("cheapest plan: model p95 %.1f ms, sampled p95 %.1f ms, $%.3g\n", model, sampled,
           loom_plan_cost_usd(cheap));
    assert_true(sampled > model + 5); /* the moment model underestimates this tail */

    o.sla_ms = (model + sampled) / 2; /* met by the model, missed by sampling */
    o.mc_samples = 0;
    assert_int_equal(loom_place(g, c, &o, &cal, NULL), 0);
    printf("calibrated (SLA %.1f ms): model p95 %.1f ms, sampled p95 %.1f ms, %d round(s), $%.3g\n", o.sla_ms,
           loom_plan_target_ms(cal), loom_plan_mc_target_ms(cal), loom_plan_mc_rounds(cal), loom_plan_cost_usd(cal));
    assert_true(loom_plan_mc_rounds(cal) >= 1);
    assert_true(loom_plan_mc_target_ms(cal) >= 0);
    /* Sampling shows the rare op is what makes runs slow: it alone moves to
     * the fast device; the LLM ops stay on the cheap one. */
    assert_true(loom_plan_mc_target_ms(cal) <= o.sla_ms);
    assert_true(loom_plan_feasible(cal));
    assert_true(loom_plan_cost_usd(cal) > loom_plan_cost_usd(cheap)); /* paid for the tail */
    int h100 = loom_fleet_find(f, "H100-SXM"), a100 = loom_fleet_find(f, "A100-40G");
    assert_int_equal(loom_plan_device(cal, rare), h100);
    assert_int_equal(loom_plan_device(cal, pre), a100);
    assert_int_equal(loom_plan_device(cal, dec), a100);
    loom_plan_destroy(&cheap);
    loom_plan_destroy(&cal);
    loom_cost_destroy(&c);
    loom_graph_destroy(&g);
    loom_fleet_destroy(&f);
    loom_catalog_destroy(&cat);
}

/* ---- exact vs heuristic ------------------------------------------------ */

static uint64_t rs = 0x1234567;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (rs >> 11) * (1.0 / 9007199254740992.0);
}

static loom_graph_t *random_graph(int n)
{
    loom_graph_t *g = loom_graph_new("random");
    for (int i = 0; i < n; i++) {
        loom_gnode_t nd;
        char name[16];
        snprintf(name, sizeof name, "n%d", i);
        int r = (int)(urand() * 6);
        loom_gop_t op = r == 0 ? LOOM_GOP_PREFILL : r == 1 ? LOOM_GOP_DECODE : r == 2 ? LOOM_GOP_EMBED
                        : r == 3 ? LOOM_GOP_TOOL_HTTP : r == 4 ? LOOM_GOP_COMPUTE : LOOM_GOP_VSEARCH;
        loom_gnode_init(&nd, op, name);
        double params = 1e9 * (0.5 + urand() * 30);
        nd.tokens = 100 + urand() * 2000;
        nd.flops = 2 * params * nd.tokens * (op == LOOM_GOP_COMPUTE ? 0.01 : 1);
        nd.shared_bytes = params * 2;
        nd.bytes = nd.shared_bytes * (op == LOOM_GOP_DECODE ? nd.tokens / 10 : 1) + 1e6;
        nd.mem_bytes = params * 2 * (urand() < 0.2 ? 3 : 1);
        nd.fixed_ms = op == LOOM_GOP_TOOL_HTTP ? 50 + urand() * 300 : 0;
        nd.fixed_cv = op == LOOM_GOP_TOOL_HTTP ? urand() * 0.5 : 0;
        if (urand() < 0.2)
            nd.prob = 0.3 + urand() * 0.7;
        if (urand() < 0.15) {
            nd.iters_mean = 1 + urand() * 3;
            nd.iters_max = nd.iters_mean + urand() * 3;
        }
        assert_true(loom_graph_add_node(g, &nd, NULL) >= 0);
        /* edges from up to two earlier nodes */
        for (int e = 0; e < 2 && i > 0; e++)
            if (urand() < 0.7) {
                int src = (int)(urand() * i);
                loom_graph_add_edge(g, src, i, urand() < 0.3 ? LOOM_GEDGE_KV : LOOM_GEDGE_DATA,
                                    urand() < 0.3 ? urand() * 2e9 : urand() * 1e5, NULL);
            }
    }
    assert_non_null(loom_graph_topo(g, NULL));
    return g;
}

/* Brute force over every assignment (small instances only): the fastest
 * target and, among placements within 1e-6 ms of it, the lowest cost. */
static void brute_fastest(const loom_graph_t *g, const loom_cost_t *c, double z, double *best_t, double *best_c)
{
    size_t n = loom_graph_nodes(g), K = loom_cost_devices(c);
    int a[16] = {0};
    *best_t = INFINITY;
    *best_c = INFINITY;
    for (;;) {
        int fits = 1;
        for (size_t v = 0; v < n && fits; v++)
            fits = loom_cost_fits(c, (int)v, a[v]);
        if (fits) {
            double usd, t;
            loom_place_eval(g, c, a, z, &usd, NULL, &t);
            if (t < *best_t - 1e-6 || (t <= *best_t + 1e-6 && usd < *best_c)) {
                *best_c = t < *best_t - 1e-6 || usd < *best_c ? usd : *best_c;
                *best_t = t < *best_t ? t : *best_t;
            }
        }
        size_t v = 0;
        while (v < n && ++a[v] == (int)K)
            a[v++] = 0;
        if (v == n)
            break;
    }
}

/* Heuristic quality on random small instances (3-10 ops, 2-5 device
 * classes, branches, loops, SLAs between the fastest and the cheapest
 * plan's latency), measured against the exact search over three seeds:
 * wherever the exact search finds a plan that meets the SLA the heuristic
 * must find one too, and its cost must be within 5% of the optimum on at
 * least 95% of those instances. The latency objective is checked against
 * brute force on the instances of up to 6 ops: fastest, then cheapest. */
static void exact_vs_heuristic_random(void **state)
{
    (void)state;
    loom_err_t err = {0};
    loom_catalog_t *cat = loom_catalog_load("examples/catalog.yaml", &err);
    assert_non_null(cat);
    static const uint64_t seeds[] = {0x1234567, 0x9e3779b97f4a7c15ull, 42};
    int per_seed = 200, instances = 0, feasible = 0, within = 0, missed = 0, infeasible_agree = 0;
    int brute_checked = 0;
    double worst = 0;
    for (size_t si = 0; si < sizeof seeds / sizeof seeds[0]; si++) {
        rs = seeds[si];
        for (int t = 0; t < per_seed; t++) {
            loom_fleet_t *f = loom_fleet_new(cat);
            int K = 2 + (int)(urand() * 4);
            for (int k = 0; k < K; k++) {
                int cls = (int)(urand() * loom_catalog_classes(cat));
                if (loom_fleet_find(f, loom_catalog_class(cat, cls)->name) < 0)
                    loom_fleet_add(f, cls, 1, urand() < 0.3, -1, NULL);
            }
            loom_graph_t *g = random_graph(3 + (int)(urand() * 8));
            loom_cost_t *c = loom_cost_new(g, f, NULL, &err);
            assert_non_null(c);
            loom_place_opts_t o;
            loom_place_opts_init(&o);
            o.percentile = urand() < 0.5 ? 0.5 : 0.95;
            o.mc_samples = -1; /* compare the searches, not the calibration */
            o.minimize_latency = 1;
            loom_plan_t *fast = NULL, *cheap = NULL, *ex = NULL, *he = NULL;
            int rc = loom_place(g, c, &o, &fast, &err);
            if (rc == LOOM_EINFEASIBLE) { /* an op fits nowhere in this fleet */
                loom_cost_destroy(&c);
                loom_graph_destroy(&g);
                loom_fleet_destroy(&f);
                t--;
                continue;
            }
            assert_int_equal(rc, 0);
            instances++;
            if (loom_graph_nodes(g) <= 6) { /* latency objective: fastest, then cheapest */
                double bt, bc;
                brute_fastest(g, c, loom_place_z(o.percentile), &bt, &bc);
                assert_float_equal(loom_plan_target_ms(fast), bt, 1e-6 * (1 + bt));
                assert_true(loom_plan_cost_usd(fast) <= bc * (1 + 1e-9) + 1e-15);
                brute_checked++;
            }
            o.minimize_latency = 0;
            assert_int_equal(loom_place(g, c, &o, &cheap, &err), 0);
            double lo = loom_plan_target_ms(fast), hi = loom_plan_target_ms(cheap);
            o.sla_ms = lo + (hi - lo) * urand() * 1.1 - (urand() < 0.05 ? lo * 0.1 : 0);
            o.method = LOOM_PLACE_EXACT;
            assert_int_equal(loom_place(g, c, &o, &ex, &err), 0);
            assert_string_equal(loom_plan_method(ex), "exact");
            o.method = LOOM_PLACE_HEURISTIC;
            assert_int_equal(loom_place(g, c, &o, &he, &err), 0);
            if (loom_plan_feasible(he))
                assert_true(loom_plan_feasible(ex)); /* exact never misses what the heuristic finds */
            if (loom_plan_feasible(ex)) {
                feasible++;
                if (!loom_plan_feasible(he)) {
                    missed++;
                    printf("seed %zu instance %d: heuristic missed a feasible plan (SLA %.3f, exact %.3f, "
                           "heuristic %.3f ms)\n", si, t, o.sla_ms, loom_plan_target_ms(ex),
                           loom_plan_target_ms(he));
                } else {
                    double r = loom_plan_cost_usd(he) / loom_plan_cost_usd(ex);
                    assert_true(r >= 1 - 1e-9); /* exact is optimal */
                    within += r <= 1.05;
                    if (r > worst)
                        worst = r;
                }
            } else {
                infeasible_agree++;
                /* both fall back to the fastest placement found */
                assert_float_equal(loom_plan_target_ms(ex), lo, 1e-6 * (1 + lo));
            }
            loom_plan_destroy(&fast);
            loom_plan_destroy(&cheap);
            loom_plan_destroy(&ex);
            loom_plan_destroy(&he);
            loom_cost_destroy(&c);
            loom_graph_destroy(&g);
            loom_fleet_destroy(&f);
        }
    }
    printf("exact vs heuristic: %d instances, %d with a feasible plan: heuristic within 5%% on %d (%.1f%%), "
           "missed %d, worst ratio %.3f; %d infeasible for both; latency objective = brute force on %d\n",
           instances, feasible, within, 100.0 * within / (feasible ? feasible : 1), missed, worst,
           infeasible_agree, brute_checked);
    assert_int_equal(missed, 0);
    assert_true(within >= 0.95 * feasible);
    loom_catalog_destroy(&cat);
}

/* ---- loaders on bad input ---------------------------------------------- */

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/loom-planner-test-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void loaders_reject_garbage(void **state)
{
    (void)state;
    loom_err_t err;
    char buf[1024];
    static const struct { const char *text, *want; int line; } cases[] = {
        {"devices: [", "YAML syntax error", 0},
        {"- 1\n- 2\n", "mapping", 1},
        {"devices:\n  - name: X\n    vendor: v\n    kind: gpu\n    mem_gb: lots\n", "expected a number", 5},
        {"devices:\n  - name: X\n    vendor: v\n    kind: tpu\n", "missing required field", 2},
        {"links: [{name: l, gbps: 1}]\ndevices:\n  - {name: X, vendor: v, kind: quantum, mem_gb: 1, mem_bw_gbs: 1, "
         "power_w: 1, purchase_usd: 1, hourly_usd: 1, link: l, tflops: {fp16: 1}}\n", "kind must be", 3},
        {"links: [{name: l, gbps: 1}]\ndevices:\n  - {name: X, vendor: v, kind: gpu, mem_gb: 1, mem_bw_gbs: 1, "
         "power_w: 1, purchase_usd: 1, hourly_usd: 1, link: l, tflops: {fp4: 1}}\n", "unknown precision", 3},
        {"links: [{name: l, gbps: 1}]\ndevices:\n  - {name: X, vendor: v, kind: gpu, mem_gb: 1, mem_bw_gbs: 1, "
         "power_w: 1, purchase_usd: 1, hourly_usd: 1, link: l, tflops: {fp16: 1}, source: {mem_gb: a}}\n",
         "no source for figure", 3},
        {"\x01\x02\xff garbage", "", 0},
        {"", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        const char *path = write_tmp(cases[i].text);
        loom_catalog_t *c = loom_catalog_load(path, &err);
        assert_null(c);
        assert_true(err.code < 0);
        loom_err_format(&err, buf, sizeof buf);
        printf("catalog case %zu: %s\n", i, buf);
        assert_non_null(strstr(buf, cases[i].want));
        assert_non_null(strstr(buf, path));
        if (cases[i].line)
            assert_int_equal(err.line, cases[i].line);
    }
    /* Fleet and profile errors name the field. */
    loom_catalog_t *cat = loom_catalog_load("examples/catalog.yaml", &err);
    assert_non_null(cat);
    memset(&err, 0, sizeof err);
    assert_null(loom_fleet_load(write_tmp("devices:\n  - {class: H100-SXM, count: 2}\n  - {class: H101, count: 1}\n"),
                                cat, &err));
    loom_err_format(&err, buf, sizeof buf);
    assert_non_null(strstr(buf, "devices[1]"));
    assert_non_null(strstr(buf, "unknown device class 'H101'"));
    assert_int_equal(err.line, 3);
    assert_null(loom_fleet_load(write_tmp("devices:\n  - {class: L4, count: 0.5}\n"), cat, &err));
    assert_null(loom_fleet_load(write_tmp("devices:\n  - {class: L4, count: 1, ownership: borrowed}\n"), cat, &err));
    assert_non_null(strstr(err.msg, "ownership"));
    assert_null(loom_profile_load(write_tmp("ops:\n  - {op: llm.think, device: HP, latency_ms: 1}\n"), &err));
    assert_non_null(strstr(err.msg, "unknown granular op"));
    assert_null(loom_profile_load(write_tmp("ops:\n  - {op: embed, device: HP}\n"), &err));
    assert_non_null(strstr(err.msg, "latency_ms"));
    assert_null(loom_profile_load(write_tmp("transfers: 3\n"), &err));
    assert_null(loom_catalog_load("/nonexistent/catalog.yaml", &err));
    assert_int_equal(err.code, LOOM_EIO);
    unlink(write_tmp(""));
    loom_catalog_destroy(&cat);
}

static void catalog_example_is_complete(void **state)
{
    (void)state;
    loom_err_t err = {0};
    loom_catalog_t *cat = loom_catalog_load("examples/catalog.yaml", &err);
    char buf[1024];
    loom_err_format(&err, buf, sizeof buf);
    if (!cat)
        fail_msg("%s", buf);
    assert_true(loom_catalog_classes(cat) >= 12);
    int kinds[4] = {0};
    for (size_t i = 0; i < loom_catalog_classes(cat); i++) {
        const loom_devclass_t *d = loom_catalog_class(cat, (int)i);
        assert_true(d->tflops[LOOM_PREC_FP16] > 0);
        assert_non_null(loom_catalog_source(cat, (int)i, "tflops"));
        kinds[0] += strcmp(d->kind, "gpu") == 0;
        kinds[1] += strcmp(d->kind, "cpu") == 0;
        kinds[2] += strcmp(d->kind, "npu") == 0;
        kinds[3] += strcmp(d->kind, "accel") == 0;
    }
    assert_true(kinds[0] >= 8 && kinds[1] >= 2 && kinds[2] >= 1);
    /* Every example fleet loads against it. */
    const char *fleets[] = {"examples/fleets/mixed.yaml", "examples/fleets/cloud-gpus.yaml",
                            "examples/fleets/owned-cpus.yaml"};
    for (size_t i = 0; i < 3; i++) {
        loom_fleet_t *f = loom_fleet_load(fleets[i], NULL, &err);
        loom_err_format(&err, buf, sizeof buf);
        if (!f)
            fail_msg("%s", buf);
        assert_true(loom_fleet_devices(f) > 0);
        loom_fleet_destroy(&f);
    }
    loom_catalog_destroy(&cat);
}

int main(void)
{
    /* Tests read examples/ relative to the repository root. */
    const char *b = getenv("LOOM_SRC");
    if (b && chdir(b) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(paper_three_options),
        cmocka_unit_test(prefix_three_choices),
        cmocka_unit_test(paper_sla120_picks_b),
        cmocka_unit_test(paper_sla100_infeasible_fastest),
        cmocka_unit_test(paper_sla200_picks_c),
        cmocka_unit_test(kv_bytes_real_models),
        cmocka_unit_test(decompose_examples),
        cmocka_unit_test(calibration_tightens_when_sampling_misses),
        cmocka_unit_test(exact_vs_heuristic_random),
        cmocka_unit_test(loaders_reject_garbage),
        cmocka_unit_test(catalog_example_is_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
