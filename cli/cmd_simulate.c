/* cmd_simulate.c — `loom simulate WORKLOAD --fleet F`: plans every
 * workflow of the workload on the fleet (or puts it all on one class with
 * --plan homogeneous:CLASS) and runs the discrete-event simulation of
 * planner/sim.h: SLA attainment, latency percentiles, utilisation per
 * device class, cost. */
#include "cli/cli.h"
#include "cli/plan_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "planner/sim.h"
#include "planner/workload.h"

static const char usage_text[] =
    "usage: loom simulate WORKLOAD --fleet F [--plan auto|homogeneous:CLASS] [--seconds N]\n"
    "                     [--runs N] [--seed S] [--profile P] [--json]\n"
    "Simulates the fleet serving the workload's request rates (Poisson arrivals,\n"
    "queueing per device class, batching, KV transfers, tool latency spread).\n"
    "\n"
    "  --fleet F       devices present (required)\n"
    "  --plan P        auto: each workflow placed by the planner on F (default);\n"
    "                  homogeneous:CLASS: every op on that class of F\n"
    "  --seconds N     simulated time during which runs arrive (default 60)\n"
    "  --runs N        stop arrivals after N runs\n"
    "  --seed S        random seed (default 1)\n"
    "  --profile P     measured calibration for the cost model\n"
    "  --json          machine-readable output\n"
    "Exit 0 when every workflow's SLA attainment reaches its percentile, 4 otherwise.\n";

int loom_cmd_simulate(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *file = NULL, *fleet_path = NULL, *plan_mode = "auto", *prof_path = NULL;
    int json = 0;
    loom_sim_opts_t so = {.seconds = 60, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--fleet") && has)
            fleet_path = argv[++i];
        else if (!strcmp(a, "--plan") && has)
            plan_mode = argv[++i];
        else if (!strcmp(a, "--profile") && has)
            prof_path = argv[++i];
        else if (!strcmp(a, "--seconds") && has)
            so.seconds = atof(argv[++i]);
        else if (!strcmp(a, "--runs") && has)
            so.max_runs = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seed") && has)
            so.seed = strtoull(argv[++i], NULL, 10);
        else if ((a[0] == '-' && a[1]) || file) {
            fprintf(stderr, "loom simulate: unexpected argument '%s'\n%s", a, usage_text);
            return LOOM_EXIT_USAGE;
        } else
            file = a;
    }
    if (!file || !fleet_path) {
        fprintf(stderr, "loom simulate: a WORKLOAD and --fleet are required\n%s", usage_text);
        return LOOM_EXIT_USAGE;
    }
    if (!(so.seconds > 0) || so.seconds > 1e7) {
        fprintf(stderr, "loom simulate: --seconds must be in (0, 1e7]\n");
        return LOOM_EXIT_USAGE;
    }
    int homo = -1;
    if (strcmp(plan_mode, "auto") != 0 && strncmp(plan_mode, "homogeneous:", 12) != 0) {
        fprintf(stderr, "loom simulate: --plan must be auto or homogeneous:CLASS\n");
        return LOOM_EXIT_USAGE;
    }
    int rc = LOOM_EXIT_FAIL;
    loom_workload_t *wl = loom_cli_load_workload("simulate", file, &rc);
    if (!wl)
        return rc;
    loom_err_t err = {0};
    loom_catalog_t *cat = NULL;
    loom_fleet_t *fleet = NULL;
    loom_profile_t *prof = NULL;
    loom_cli_planned_t *P = NULL;
    loom_sim_workflow_t *sw = NULL;
    int **assign = NULL;
    loom_sim_result_t *res = NULL;
    if (loom_cli_load_fleet(fleet_path, NULL, &cat, &fleet, &err) < 0) {
        loom_cli_print_err("simulate", &err);
        goto out;
    }
    if (prof_path && !(prof = loom_profile_load(prof_path, &err))) {
        loom_cli_print_err("simulate", &err);
        goto out;
    }
    if (!strncmp(plan_mode, "homogeneous:", 12) && (homo = loom_fleet_find(fleet, plan_mode + 12)) < 0) {
        fprintf(stderr, "loom simulate: --plan: no class '%s' in the fleet\n", plan_mode + 12);
        rc = LOOM_EXIT_USAGE;
        goto out;
    }
    P = calloc(wl->n, sizeof *P);
    sw = calloc(wl->n, sizeof *sw);
    assign = calloc(wl->n, sizeof *assign);
    if (!P || !sw || !assign)
        goto out;
    for (size_t i = 0; i < wl->n; i++) {
        if (loom_cli_plan_file(wl->items[i].file, fleet, prof, wl->items[i].sla_ms, wl->items[i].percentile,
                               LOOM_PLACE_AUTO, &P[i], stderr, &err) < 0) {
            loom_cli_print_err("simulate", &err);
            goto out;
        }
        size_t n = loom_graph_nodes(P[i].g);
        assign[i] = malloc((n + 1) * sizeof(int));
        if (!assign[i])
            goto out;
        for (size_t v = 0; v < n; v++) {
            assign[i][v] = homo >= 0 ? homo : loom_plan_device(P[i].plan, (int)v);
            if (!loom_cost_fits(P[i].cost, (int)v, assign[i][v])) {
                fprintf(stderr, "loom simulate: %s: op %s does not fit on %s\n", P[i].wf->name,
                        loom_graph_node(P[i].g, (int)v)->name, plan_mode + 12);
                goto out;
            }
        }
        sw[i] = (loom_sim_workflow_t){.name = P[i].wf->name, .g = P[i].g, .cost = P[i].cost, .assign = assign[i],
                                      .rate_per_s = wl->items[i].rate_per_s, .sla_ms = P[i].opts.sla_ms};
    }
    if (prof) {
        const loom_graph_t **gs = calloc(wl->n, sizeof *gs);
        for (size_t i = 0; gs && i < wl->n; i++)
            gs[i] = P[i].g;
        int bad = !gs ? loom_err_set(&err, LOOM_ENOMEM, "out of memory") < 0
                      : loom_profile_check(prof, loom_fleet_catalog(fleet), gs, wl->n, &err) < 0;
        free(gs);
        if (bad) {
            loom_cli_print_err("simulate", &err);
            goto out;
        }
    }
    if (loom_sim_run(fleet, sw, wl->n, &so, &res, &err) < 0) {
        loom_cli_print_err("simulate", &err);
        goto out;
    }
    int all_ok = 1;
    for (size_t i = 0; i < wl->n; i++)
        all_ok &= res->wf[i].attain + 1e-12 >= P[i].opts.percentile || sw[i].sla_ms <= 0;
    if (json) {
        json_t *wfs = json_array(), *devs = json_array();
        for (size_t i = 0; i < wl->n; i++) {
            const loom_sim_stats_t *s = &res->wf[i];
            json_array_append_new(wfs, json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "name", sw[i].name,
                                                 "runs", (json_int_t)s->runs, "sla_ms", sw[i].sla_ms, "attainment",
                                                 s->attain, "mean_ms", s->mean_ms, "p50_ms", s->p50_ms, "p95_ms",
                                                 s->p95_ms, "p99_ms", s->p99_ms, "target_percentile",
                                                 P[i].opts.percentile * 100));
        }
        for (size_t k = 0; k < res->ndev; k++)
            json_array_append_new(devs, json_pack("{s:s, s:i, s:b, s:f, s:f, s:I}", "class", res->dev[k].name, "count",
                                                  res->dev[k].count, "owned", res->dev[k].owned, "utilisation",
                                                  res->dev[k].utilisation, "queue_wait_ms", res->dev[k].wait_ms,
                                                  "ops", (json_int_t)res->dev[k].ops));
        json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:f, s:o, s:o, s:b}",
                              "workload", file, "fleet", fleet_path, "plan", plan_mode, "runs",
                              (json_int_t)res->all.runs, "attainment", res->all.attain, "p50_ms", res->all.p50_ms,
                              "p95_ms", res->all.p95_ms, "p99_ms", res->all.p99_ms, "usd", res->usd,
                              "usd_per_1k_runs", res->usd_per_1k_runs, "sim_seconds", res->sim_seconds, "events",
                              (json_int_t)res->events, "wall_ms", res->wall_ms, "workflows", wfs, "devices", devs,
                              "meets_slas", all_ok);
        loom_cli_print_json(j);
    } else {
        printf("simulate %s on %s (%zu devices), plan %s: %.0f s of arrivals\n", file, fleet_path,
               loom_fleet_devices(fleet), plan_mode, so.seconds);
        printf("\n  %-24s %9s %8s %10s %10s %10s %10s\n", "workflow", "runs", "sla ms", "in SLA", "p50 ms", "p95 ms",
               "p99 ms");
        for (size_t i = 0; i < wl->n; i++) {
            const loom_sim_stats_t *s = &res->wf[i];
            printf("  %-24s %9llu %8.0f %9.2f%% %10.1f %10.1f %10.1f\n", sw[i].name, (unsigned long long)s->runs,
                   sw[i].sla_ms, s->attain * 100, s->p50_ms, s->p95_ms, s->p99_ms);
        }
        printf("  %-24s %9llu %8s %9.2f%% %10.1f %10.1f %10.1f\n", "all", (unsigned long long)res->all.runs, "",
               res->all.attain * 100, res->all.p50_ms, res->all.p95_ms, res->all.p99_ms);
        printf("\n  %-12s %6s %7s %12s %14s %10s\n", "device", "count", "owned", "utilisation", "queue wait ms", "ops");
        for (size_t k = 0; k < res->ndev; k++)
            printf("  %-12s %6d %7s %11.1f%% %14.2f %10llu\n", res->dev[k].name, res->dev[k].count,
                   res->dev[k].owned ? "yes" : "no", res->dev[k].utilisation * 100, res->dev[k].wait_ms,
                   (unsigned long long)res->dev[k].ops);
        printf("\ncost: $%.2f over %.1f s ($%.4f per 1k runs)\n", res->usd, res->sim_seconds, res->usd_per_1k_runs);
        printf("simulation: %llu events in %.0f ms (%.2f M events/s, %.0f runs/s)\n",
               (unsigned long long)res->events, res->wall_ms, res->events / res->wall_ms / 1000.0,
               res->all.runs / (res->wall_ms / 1000.0));
    }
    rc = all_ok ? LOOM_EXIT_OK : LOOM_EXIT_SLA;
out:
    loom_sim_result_destroy(&res);
    for (size_t i = 0; wl && P && i < wl->n; i++)
        loom_cli_planned_free(&P[i]);
    for (size_t i = 0; wl && assign && i < wl->n; i++)
        free(assign[i]);
    free(assign);
    free(P);
    free(sw);
    loom_profile_destroy(&prof);
    loom_fleet_destroy(&fleet);
    loom_catalog_destroy(&cat);
    loom_workload_destroy(&wl);
    return rc;
}
