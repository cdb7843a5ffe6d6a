/* cmd_plan.c — `loom plan FILE`: decomposes a workflow into granular ops,
 * places them on a fleet at the lowest cost that meets the SLA (planner/
 * place.h), and prints the placement, predicted latency, cost and verdict.
 * Exit 0 when the plan meets the SLA, 4 when no placement does (the
 * fastest is shown), 1 on invalid input, 2 on a bad command line. */
#include "cli/cli.h"
#include "cli/plan_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static const char usage_text[] =
    "usage: loom plan FILE [--fleet F | --catalog C] [--profile P] [--json] [--explain]\n"
    "                 [--baseline homogeneous:DEVICE|homogeneous:all] [--sla MS]\n"
    "                 [--percentile P] [--method auto|exact|heuristic] [--mc N]\n"
    "                 [--emit mlir [--after PASS]] [--live [--endpoint URL]]\n"
    "Places each granular op of workflow FILE on a device class so that the run\n"
    "meets its end-to-end SLA (at its percentile) at the lowest cost. FILE, F, C and\n"
    "P may be - for standard input (one of them).\n"
    "\n"
    "  --fleet F       devices present (examples/fleets/*.yaml); owned = energy cost only\n"
    "  --catalog C     without --fleet: one rented device of every class in C\n"
    "                  (default " LOOM_DEFAULT_CATALOG_HELP ")\n"
    "  --profile P     measured latency/cost per op and device (overrides the roofline)\n"
    "  --explain       per op: why this device, the runner-up and what it would cost\n"
    "  --baseline B    also price the workflow on one device class (homogeneous:all = each)\n"
    "  --sla MS        override the workflow's sla.latency_ms\n"
    "  --percentile P  override the SLA percentile (e.g. 95 or 0.95)\n"
    "  --method M      placement search: auto (default), exact (branch and bound), heuristic\n"
    "  --mc N          Monte Carlo samples to check the verdict (default 4000, 0 = off)\n"
    "  --emit mlir     print the plan lowered to the loom MLIR dialect instead\n"
    "  --after PASS    ... as it is after PASS: emit, decompose-llm, annotate-targets,\n"
    "                  partition-devices, control-regions, verify (default)\n"
    "  --live          ask loomd (--endpoint URL, $LOOM_ENDPOINT) to plan on its live\n"
    "                  workers (or on --fleet F, sent along) without running the workflow\n"
    "  --json          machine-readable output\n"
    "The planner samples its plan (Monte Carlo) and, when the sampled percentile misses\n"
    "the SLA, searches again with a tighter SLA; the verdict reports both figures.\n"
    "Exit: 0 meets the SLA, 4 no placement meets it (fastest shown, or the sampled\n"
    "percentile misses), 1 bad input, 2 usage.\n";

typedef struct {
    const char *name;
    int feasible;
    double cost, target, mean;
} baseline_t;

/* Prices the workflow with every op on fleet entry k (ops that do not fit
 * there make the baseline impossible: cost = inf). */
static baseline_t homogeneous(const loom_cli_planned_t *P, int k)
{
    size_t n = loom_graph_nodes(P->g);
    baseline_t b = {.name = loom_cost_device_name(P->cost, k), .cost = INFINITY, .target = INFINITY};
    int *a = malloc((n + 1) * sizeof(int));
    if (!a)
        return b;
    int fits = 1;
    for (size_t v = 0; v < n; v++) {
        a[v] = k;
        fits &= loom_cost_fits(P->cost, (int)v, k);
    }
    loom_plan_t *pl = NULL;
    if (fits && loom_plan_fixed(P->g, P->cost, &P->opts, a, &pl, NULL) == 0) {
        b.cost = loom_plan_cost_usd(pl);
        b.target = loom_plan_target_ms(pl);
        b.mean = loom_plan_mean_ms(pl);
        b.feasible = loom_plan_feasible(pl);
        loom_plan_destroy(&pl);
    }
    free(a);
    return b;
}

static const char *why(const loom_cli_planned_t *P, int v, int k, int ru, int ru_feasible)
{
    static char buf[320];
    const loom_plan_t *pl = P->plan;
    if (ru < 0)
        return "the only device it fits on";
    if (!loom_plan_feasible(pl))
        return "fastest placement (nothing meets the SLA)";
    if (P->opts.minimize_latency)
        return "objective is latency";
    double uk = loom_cost_usd(P->cost, v, k), ur = loom_cost_usd(P->cost, v, ru);
    /* Name both sides and their prices: an endpoint is priced per token,
     * an owned or rented device by the time it is held. */
    char here[96], there[96];
    snprintf(here, sizeof here, "$%.3g on %s%s, %.0f ms", uk, loom_cost_device_name(P->cost, k),
             !strcmp(loom_cost_bound(P->cost, v, k), "per-token") ? " (per token)" : "", loom_cost_ms(P->cost, v, k));
    snprintf(there, sizeof there, "$%.3g on %s%s, %.0f ms", ur, loom_cost_device_name(P->cost, ru),
             !strcmp(loom_cost_bound(P->cost, v, ru), "per-token") ? " (per token)" : "",
             loom_cost_ms(P->cost, v, ru));
    if (!ru_feasible)
        snprintf(buf, sizeof buf, "every other device misses the SLA (%s; runner-up %s)", here, there);
    else if (uk <= ur)
        snprintf(buf, sizeof buf, "cheapest that keeps the SLA (%s; runner-up %s)", here, there);
    else
        snprintf(buf, sizeof buf, "op costs more here but saves transfers or time elsewhere (%s; runner-up %s)",
                 here, there);
    return buf;
}

static json_t *plan_json(const loom_cli_planned_t *P, int explain, double mc50, double mcp, double attain,
                         int mc, const baseline_t *bl, size_t nbl)
{
    const loom_plan_t *pl = P->plan;
    json_t *ops = json_array(), *edges = json_array();
    for (size_t v = 0; v < loom_graph_nodes(P->g); v++) {
        const loom_gnode_t *nd = loom_graph_node(P->g, (int)v);
        int k = loom_plan_device(pl, (int)v);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:s, s:b, s:s}", "name", nd->name,
                              "step", nd->step, "op", loom_gop_name(nd->op), "device",
                              loom_cost_device_name(P->cost, k), "ms", loom_cost_ms(P->cost, (int)v, k), "usd",
                              loom_cost_usd(P->cost, (int)v, k), "flops", nd->flops, "bytes", nd->bytes,
                              "mem_bytes", nd->mem_bytes, "bound", loom_cost_bound(P->cost, (int)v, k),
                              "critical", loom_plan_critical(pl, (int)v), "source",
                              loom_cost_source(P->cost, (int)v, k) == LOOM_COST_ROOFLINE ? "roofline" : "profile");
        if (nd->prob < 1)
            json_object_set_new(o, "probability", json_real(nd->prob));
        if (nd->iters_mean > 1)
            json_object_set_new(o, "iterations", json_real(nd->iters_mean));
        if (explain) {
            double rc, rt;
            int rf = 0;
            int ru = loom_plan_runner_up(pl, (int)v, &rc, &rt, &rf);
            json_object_set_new(o, "why", json_string(why(P, (int)v, k, ru, rf)));
            if (ru >= 0)
                json_object_set_new(o, "runner_up",
                                    json_pack("{s:s, s:f, s:f, s:b}", "device", loom_cost_device_name(P->cost, ru),
                                              "run_usd", rc, "target_ms", rt, "meets_sla", rf));
        }
        json_array_append_new(ops, o);
    }
    for (size_t e = 0; e < loom_graph_edges(P->g); e++) {
        const loom_gedge_t *ed = loom_graph_edge(P->g, (int)e);
        int ka = loom_plan_device(pl, ed->src), kb = loom_plan_device(pl, ed->dst);
        json_array_append_new(edges, json_pack("{s:s, s:s, s:s, s:f, s:b, s:f, s:f}", "from",
                                               loom_graph_node(P->g, ed->src)->name, "to",
                                               loom_graph_node(P->g, ed->dst)->name, "kind",
                                               ed->kind == LOOM_GEDGE_KV ? "kv" : "data", "bytes", ed->bytes,
                                               "crosses", ka != kb, "ms", loom_cost_xfer_ms(P->cost, (int)e, ka, kb),
                                               "usd", loom_cost_xfer_usd(P->cost, (int)e, ka, kb)));
    }
    json_t *notes = json_array();
    for (size_t i = 0; i < P->notes.len; i++)
        json_array_append_new(notes, json_string(P->notes.items[i]));
    json_t *root = json_pack(
        "{s:s, s:s, s:{s:f, s:f, s:s}, s:o, s:o, s:f, s:f, s:f, s:b, s:f, s:s, s:f, s:I, s:f, s:o}", "workflow",
        P->wf->name, "file", P->wf->file, "sla", "latency_ms", P->opts.sla_ms, "percentile",
        P->opts.percentile * 100, "objective", P->opts.minimize_latency ? "latency" : "cost", "ops", ops, "edges",
        edges, "cost_usd", loom_plan_cost_usd(pl), "mean_ms", loom_plan_mean_ms(pl), "target_ms",
        loom_plan_target_ms(pl), "meets_sla", loom_plan_feasible(pl), "miss_ms", loom_plan_miss_ms(pl), "method",
        loom_plan_method(pl), "gap", loom_plan_gap(pl), "searched", (json_int_t)loom_plan_searched(pl),
        "planner_ms", loom_plan_elapsed_ms(pl), "notes", notes);
    if (loom_plan_mc_target_ms(pl) >= 0)
        json_object_set_new(root, "calibration",
                            json_pack("{s:f, s:i, s:b}", "target_ms", loom_plan_mc_target_ms(pl), "rounds",
                                      loom_plan_mc_rounds(pl), "meets_sla",
                                      P->opts.sla_ms <= 0 || loom_plan_mc_target_ms(pl) <= P->opts.sla_ms + 1e-9));
    if (mc > 0)
        json_object_set_new(root, "monte_carlo", json_pack("{s:i, s:f, s:f, s:f}", "samples", mc, "p50_ms", mc50,
                                                           "target_ms", mcp, "attainment", attain));
    if (nbl) {
        json_t *b = json_array();
        for (size_t i = 0; i < nbl; i++)
            json_array_append_new(b, json_pack("{s:s, s:o, s:o, s:b}", "device", bl[i].name, "cost_usd",
                                               isfinite(bl[i].cost) ? json_real(bl[i].cost) : json_null(),
                                               "target_ms",
                                               isfinite(bl[i].target) ? json_real(bl[i].target) : json_null(),
                                               "meets_sla", bl[i].feasible));
        json_object_set_new(root, "baselines", b);
    }
    return root;
}

static void plan_text(const loom_cli_planned_t *P, int explain, double mc50, double mcp, double attain, int mc,
                      const baseline_t *bl, size_t nbl, const char *fleet_name)
{
    const loom_plan_t *pl = P->plan;
    printf("plan %s (%s) on %s: %zu granular ops, %zu edges\n", P->wf->name, P->wf->file, fleet_name,
           loom_graph_nodes(P->g), loom_graph_edges(P->g));
    if (P->opts.sla_ms > 0)
        printf("sla: p%g <= %.0f ms, objective %s\n", P->opts.percentile * 100, P->opts.sla_ms,
               P->opts.minimize_latency ? "latency" : "cost");
    printf("\n  %-28s %-14s %-12s %10s %12s  %-8s %s\n", "op", "kind", "device", "ms", "$/exec", "bound", "");
    for (size_t t = 0; t < loom_graph_nodes(P->g); t++) {
        int v = loom_graph_order(P->g)[t];
        const loom_gnode_t *nd = loom_graph_node(P->g, v);
        int k = loom_plan_device(pl, v);
        char extra[64] = "";
        if (nd->prob < 1)
            snprintf(extra, sizeof extra, " p=%.2f", nd->prob);
        if (nd->iters_mean > 1)
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " x%.1f", nd->iters_mean);
        printf("  %-28s %-14s %-12s %10.2f %12.4g  %-8s %s%s\n", nd->name, loom_gop_name(nd->op),
               loom_cost_device_name(P->cost, k), loom_cost_ms(P->cost, v, k), loom_cost_usd(P->cost, v, k),
               loom_cost_bound(P->cost, v, k), loom_plan_critical(pl, v) ? "critical" : "", extra);
        if (explain) {
            double rc, rt;
            int rf = 0;
            int ru = loom_plan_runner_up(pl, v, &rc, &rt, &rf);
            printf("      why: %s", why(P, v, k, ru, rf));
            if (ru >= 0)
                printf("; runner-up %s: run $%.4g (%+.3g), p%g %.1f ms%s", loom_cost_device_name(P->cost, ru), rc,
                       rc - loom_plan_cost_usd(pl), P->opts.percentile * 100, rt, rf ? "" : " (misses SLA)");
            printf("\n");
        }
    }
    int crossing = 0;
    for (size_t e = 0; e < loom_graph_edges(P->g); e++) {
        const loom_gedge_t *ed = loom_graph_edge(P->g, (int)e);
        int ka = loom_plan_device(pl, ed->src), kb = loom_plan_device(pl, ed->dst);
        if (ka == kb)
            continue;
        if (!crossing++)
            printf("\n  transfers between devices:\n");
        printf("  %-28s -> %-28s %-4s %10.3f MB %8.2f ms $%.4g\n", loom_graph_node(P->g, ed->src)->name,
               loom_graph_node(P->g, ed->dst)->name, ed->kind == LOOM_GEDGE_KV ? "kv" : "data", ed->bytes / 1e6,
               loom_cost_xfer_ms(P->cost, (int)e, ka, kb), loom_cost_xfer_usd(P->cost, (int)e, ka, kb));
    }
    printf("\npredicted latency: mean %.1f ms, p%g %.1f ms (moment model)", loom_plan_mean_ms(pl),
           P->opts.percentile * 100, loom_plan_target_ms(pl));
    if (mc > 0)
        printf("; Monte Carlo (%d runs): p50 %.1f ms, p%g %.1f ms, %.1f%% within SLA", mc, mc50,
               P->opts.percentile * 100, mcp, attain * 100);
    printf("\ncost per run: $%.4g ($%.4g per 1k runs)\n", loom_plan_cost_usd(pl), 1000 * loom_plan_cost_usd(pl));
    if (P->opts.sla_ms <= 0)
        printf("verdict: no SLA given (cheapest placement)\n");
    else if (loom_plan_feasible(pl) && loom_plan_mc_target_ms(pl) > P->opts.sla_ms + 1e-9)
        printf("verdict: meets the SLA by the moment model (%.1f ms slack) but NOT by sampling: p%g %.1f ms "
               "(no placement found that does)\n", P->opts.sla_ms - loom_plan_target_ms(pl),
               P->opts.percentile * 100, loom_plan_mc_target_ms(pl));
    else if (loom_plan_feasible(pl) && loom_plan_mc_target_ms(pl) >= 0)
        printf("verdict: MEETS SLA (%.1f ms slack; sampled p%g %.1f ms%s)\n", P->opts.sla_ms - loom_plan_target_ms(pl),
               P->opts.percentile * 100, loom_plan_mc_target_ms(pl),
               loom_plan_mc_rounds(pl) ? ", after calibrating the plan to what sampling showed" : "");
    else if (loom_plan_feasible(pl))
        printf("verdict: MEETS SLA (%.1f ms slack)\n", P->opts.sla_ms - loom_plan_target_ms(pl));
    else
        printf("verdict: NO PLACEMENT MEETS THE SLA: the fastest placement (above) misses it by %.1f ms\n",
               loom_plan_miss_ms(pl));
    printf("method: %s", loom_plan_method(pl));
    if (loom_plan_gap(pl) >= 0)
        printf(strcmp(loom_plan_method(pl), "exact") == 0 ? ", optimal (gap 0)" : ", gap <= %.1f%%",
               loom_plan_gap(pl) * 100);
    printf(", %llu evaluations, %.2f ms\n", (unsigned long long)loom_plan_searched(pl), loom_plan_elapsed_ms(pl));
    if (nbl) {
        printf("\nhomogeneous baselines (every op on one class):\n");
        for (size_t i = 0; i < nbl; i++) {
            if (!isfinite(bl[i].cost))
                printf("  %-12s does not fit\n", bl[i].name);
            else
                printf("  %-12s $%.4g/run  p%g %.1f ms  %s  (%.2fx the plan's cost)\n", bl[i].name, bl[i].cost,
                       P->opts.percentile * 100, bl[i].target, bl[i].feasible ? "meets SLA" : "misses SLA",
                       bl[i].cost / loom_plan_cost_usd(pl));
        }
    }
    for (size_t i = 0; i < P->notes.len; i++)
        printf("%snote: %s\n", i ? "" : "\n", P->notes.items[i]);
}

int loom_cli_plan_emit_mlir(const loom_cli_planned_t *P, const char *after, int json); /* plan_mlir.c */
int loom_cli_plan_live(const char *file, const char *fleet_path, const char *endpoint, double sla_ms,
                       int json); /* plan_live.c */

int loom_cmd_plan(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *file = NULL, *fleet_path = NULL, *cat_path = NULL, *prof_path = NULL, *baseline = NULL;
    int json = 0, explain = 0, mc = 4000;
    const char *emit = NULL, *after = NULL; /* --emit mlir [--after PASS] (mlir-lowering) */
    const char *endpoint = NULL;
    int live = 0;
    double sla = 0, pct = 0;
    loom_place_method_t method = LOOM_PLACE_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--emit") && has)
            emit = argv[++i];
        else if (!strcmp(a, "--after") && has)
            after = argv[++i];
        else if (!strcmp(a, "--explain"))
            explain = 1;
        else if (!strcmp(a, "--live"))
            live = 1;
        else if (!strcmp(a, "--endpoint") && has)
            endpoint = argv[++i];
        else if (!strcmp(a, "--fleet") && has)
            fleet_path = argv[++i];
        else if (!strcmp(a, "--catalog") && has)
            cat_path = argv[++i];
        else if (!strcmp(a, "--profile") && has)
            prof_path = argv[++i];
        else if (!strcmp(a, "--baseline") && has)
            baseline = argv[++i];
        else if (!strcmp(a, "--sla") && has) {
            if (loom_cli_parse_sla_ms("plan", "--sla", argv[++i], &sla) < 0)
                return LOOM_EXIT_USAGE;
        }
        else if (!strcmp(a, "--percentile") && has) {
            pct = atof(argv[++i]);
            if (pct > 1)
                pct /= 100;
        } else if (!strcmp(a, "--mc") && has)
            mc = atoi(argv[++i]);
        else if (!strcmp(a, "--method") && has) {
            const char *m = argv[++i];
            method = !strcmp(m, "exact") ? LOOM_PLACE_EXACT : !strcmp(m, "heuristic") ? LOOM_PLACE_HEURISTIC
                     : !strcmp(m, "auto")                   ? LOOM_PLACE_AUTO
                                                            : (loom_place_method_t)-1;
            if ((int)method < 0) {
                fprintf(stderr, "loom plan: --method must be auto, exact or heuristic\n");
                return LOOM_EXIT_USAGE;
            }
        } else if ((a[0] == '-' && a[1]) || file) {
            fprintf(stderr, "loom plan: unexpected argument '%s'\n%s", a, usage_text);
            return LOOM_EXIT_USAGE;
        } else
            file = a;
    }
    if (!file) {
        fprintf(stderr, "loom plan: no workflow file given\n%s", usage_text);
        return LOOM_EXIT_USAGE;
    }
    if (live) {
        if (emit || cat_path || prof_path || baseline) {
            fprintf(stderr, "loom plan: --live takes only --fleet, --sla, --json and --endpoint\n");
            return LOOM_EXIT_USAGE;
        }
        return loom_cli_plan_live(file, fleet_path, endpoint, sla, json);
    }
    if ((emit && strcmp(emit, "mlir") != 0) || (after && !emit)) {
        fprintf(stderr, "loom plan: --emit takes 'mlir'; --after needs --emit mlir\n");
        return LOOM_EXIT_USAGE;
    }
    if (baseline && strncmp(baseline, "homogeneous:", 12) != 0) {
        fprintf(stderr, "loom plan: --baseline must be homogeneous:DEVICE or homogeneous:all\n");
        return LOOM_EXIT_USAGE;
    }
    if (sla < 0 || pct < 0 || pct >= 1 || mc < 0 || mc > 10000000) {
        fprintf(stderr, "loom plan: --sla, --percentile or --mc out of range\n");
        return LOOM_EXIT_USAGE;
    }
    loom_err_t err = {0};
    loom_catalog_t *cat = NULL;
    loom_fleet_t *fleet = NULL;
    loom_profile_t *prof = NULL;
    loom_cli_planned_t P;
    int rc = LOOM_EXIT_FAIL;
    memset(&P, 0, sizeof P);
    if (loom_cli_load_fleet(fleet_path, cat_path, &cat, &fleet, &err) < 0) {
        loom_cli_print_err("plan", &err);
        return err.code == LOOM_EIO ? LOOM_EXIT_SYSTEM : LOOM_EXIT_FAIL;
    }
    if (prof_path && !(prof = loom_profile_load(prof_path, &err))) {
        loom_cli_print_err("plan", &err);
        goto out;
    }
    if (loom_cli_plan_file(file, fleet, prof, sla, pct, method, &P, stderr, &err) < 0) {
        loom_cli_print_err("plan", &err);
        rc = err.code == LOOM_EIO ? LOOM_EXIT_SYSTEM : LOOM_EXIT_FAIL;
        goto out;
    }
    if (loom_profile_check(prof, loom_fleet_catalog(fleet), (const loom_graph_t *const[]){P.g}, 1, &err) < 0) {
        loom_cli_print_err("plan", &err);
        goto out;
    }
    if (emit) {
        rc = loom_cli_plan_emit_mlir(&P, after, json);
        goto out;
    }
    /* Baselines: the requested class, or every class of the fleet. */
    size_t K = loom_cost_devices(P.cost), nbl = 0;
    baseline_t *bl = calloc(K + 1, sizeof *bl);
    if (baseline && bl) {
        const char *want = baseline + 12;
        for (size_t k = 0; k < K; k++)
            if (!strcmp(want, "all") || !strcmp(want, loom_cost_device_name(P.cost, (int)k)))
                bl[nbl++] = homogeneous(&P, (int)k);
        if (!nbl) {
            fprintf(stderr, "loom plan: --baseline: no device class '%s' in the fleet\n", want);
            free(bl);
            rc = LOOM_EXIT_USAGE;
            goto out;
        }
    }
    double mc50 = 0, mcp = 0, attain = 0;
    if (mc > 0)
        loom_plan_mc(P.plan, mc, 42, P.opts.percentile, P.opts.sla_ms, &mc50, &mcp, &attain);
    if (json) {
        json_t *j = plan_json(&P, explain, mc50, mcp, attain, mc, bl, nbl);
        json_object_set_new(j, "fleet", json_string(fleet_path ? fleet_path : cat_path ? cat_path : loom_cli_default_catalog()));
        loom_cli_print_json(j);
    } else {
        char fname[512];
        snprintf(fname, sizeof fname, "%s", fleet_path ? fleet_path : cat_path ? cat_path : loom_cli_default_catalog());
        plan_text(&P, explain, mc50, mcp, attain, mc, bl, nbl, fname);
    }
    free(bl);
    rc = loom_plan_feasible(P.plan) && !(P.opts.sla_ms > 0 && loom_plan_mc_target_ms(P.plan) > P.opts.sla_ms + 1e-9)
             ? LOOM_EXIT_OK
             : LOOM_EXIT_SLA;
out:
    loom_cli_planned_free(&P);
    loom_profile_destroy(&prof);
    loom_fleet_destroy(&fleet);
    loom_catalog_destroy(&cat);
    return rc;
}
