/* cmd_tco.c — `loom tco WORKLOAD`: the cheapest fleet (device counts per
 * class, GLPK MIP over candidate placements; planner/tco.h) that serves a
 * workload's request rates within every workflow's SLA, beside every
 * homogeneous fleet. Owned hardware (--owned) is sunk cost. */
#include "cli/cli.h"
#include "cli/plan_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "planner/tco.h"
#include "planner/workload.h"

static const char usage_text[] =
    "usage: loom tco WORKLOAD [--catalog C] [--owned FLEET] [--utilization U] [--no-pairs] [--json]\n"
    "Finds the cheapest fleet (device counts per class) that serves the workload's\n"
    "request rates within every workflow's SLA, and prices every homogeneous fleet.\n"
    "\n"
    "  WORKLOAD        workflows with rates and SLAs (examples/workloads/*.yaml)\n"
    "  --catalog C     device classes to choose from (default: the workload's catalog:,\n"
    "                  else " LOOM_DEFAULT_CATALOG_HELP ")\n"
    "  --owned FLEET   devices already owned: sunk cost, only their energy counts\n"
    "  --utilization U target busy fraction per device (default: workload's, else 0.7)\n"
    "  --no-pairs      consider only single-class and all-class placements (faster)\n"
    "  --json          machine-readable output\n";

int loom_cmd_tco(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *file = NULL, *cat_path = NULL, *owned_path = NULL;
    int json = 0, no_pairs = 0;
    double util = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--no-pairs"))
            no_pairs = 1;
        else if (!strcmp(a, "--catalog") && has)
            cat_path = argv[++i];
        else if (!strcmp(a, "--owned") && has)
            owned_path = argv[++i];
        else if (!strcmp(a, "--utilization") && has)
            util = atof(argv[++i]);
        else if ((a[0] == '-' && a[1]) || file) {
            fprintf(stderr, "loom tco: unexpected argument '%s'\n%s", a, usage_text);
            return LOOM_EXIT_USAGE;
        } else
            file = a;
    }
    if (!file) {
        fprintf(stderr, "loom tco: no workload file given\n%s", usage_text);
        return LOOM_EXIT_USAGE;
    }
    if (util < 0 || util > 1) {
        fprintf(stderr, "loom tco: --utilization must be in (0, 1]\n");
        return LOOM_EXIT_USAGE;
    }
    int rc = LOOM_EXIT_FAIL;
    loom_workload_t *wl = loom_cli_load_workload("tco", file, &rc);
    if (!wl)
        return rc;
    loom_err_t err = {0};
    loom_catalog_t *cat = NULL;
    loom_fleet_t *owned = NULL;
    loom_cli_planned_t *P = NULL;
    loom_tco_workflow_t *tw = NULL;
    loom_tco_result_t *res = NULL;
    cat = loom_catalog_load(cat_path ? cat_path : wl->catalog ? wl->catalog : loom_cli_default_catalog(), &err);
    if (!cat) {
        loom_cli_print_err("tco", &err);
        goto out;
    }
    if (owned_path && !(owned = loom_fleet_load(owned_path, cat, &err))) {
        loom_cli_print_err("tco", &err);
        goto out;
    }
    P = calloc(wl->n, sizeof *P);
    tw = calloc(wl->n, sizeof *tw);
    if (!P || !tw)
        goto out;
    for (size_t i = 0; i < wl->n; i++) {
        loom_diags_t d = LOOM_DIAGS_INIT;
        if (loom_workflow_load(wl->items[i].file, &P[i].wf, &d) < 0) {
            char buf[2048];
            for (size_t k = 0; k < d.len; k++) {
                loom_err_format_long(&d.items[k], buf, sizeof buf);
                fprintf(stderr, "%s\n", buf);
            }
            loom_diags_free(&d);
            fprintf(stderr, "loom tco: %s:%d: workflows[%zu]: %s is not a valid workflow\n", file,
                    wl->items[i].line, i, wl->items[i].file);
            goto out;
        }
        loom_diags_free(&d);
        if (loom_decompose(P[i].wf, &P[i].g, &P[i].notes, &err) < 0) {
            loom_cli_print_err("tco", &err);
            goto out;
        }
        tw[i].name = P[i].wf->name;
        tw[i].g = P[i].g;
        tw[i].rate_per_s = wl->items[i].rate_per_s;
        loom_place_opts_init(&tw[i].opts);
        tw[i].opts.sla_ms = wl->items[i].sla_ms > 0 ? wl->items[i].sla_ms
                            : P[i].wf->sla.set       ? (double)P[i].wf->sla.latency_ms
                                                     : 0;
        tw[i].opts.percentile = wl->items[i].percentile > 0 ? wl->items[i].percentile
                                : P[i].wf->sla.set           ? P[i].wf->sla.percentile / 100
                                                             : 0.5;
        tw[i].opts.method = LOOM_PLACE_AUTO;
    }
    loom_tco_opts_t to = {.utilization = util > 0 ? util : wl->utilization, .no_pairs = no_pairs};
    if (loom_tco_solve(cat, owned, tw, wl->n, &to, &res, &err) < 0) {
        loom_cli_print_err("tco", &err);
        goto out;
    }
    if (json) {
        json_t *cls = json_array(), *wfs = json_array();
        for (size_t j = 0; j < res->nclasses; j++) {
            const loom_tco_class_t *c = &res->classes[j];
            json_array_append_new(cls, json_pack("{s:s, s:i, s:i, s:f, s:f, s:{s:b, s:i, s:o}}", "class", c->name,
                                                 "rented", c->rented, "owned", c->owned, "busy", c->busy,
                                                 "usd_per_hour", c->usd_per_hour, "homogeneous", "meets_sla",
                                                 c->homo_ok, "count", c->homo_count, "usd_per_hour",
                                                 c->homo_ok ? json_real(c->homo_usd_per_hour) : json_null()));
        }
        for (size_t i = 0; i < wl->n; i++)
            json_array_append_new(wfs, json_pack("{s:s, s:s, s:f, s:f, s:s}", "name", tw[i].name, "file",
                                                 wl->items[i].file, "rate_per_s", tw[i].rate_per_s, "sla_ms",
                                                 tw[i].opts.sla_ms, "served_by",
                                                 res->mix && res->mix[i] ? res->mix[i] : ""));
        json_t *j = json_pack("{s:s, s:b, s:s, s:f, s:f, s:f, s:o, s:o, s:I, s:f, s:f}", "workload", file, "feasible",
                              res->feasible, "why", res->infeasible_why, "usd_per_hour", res->usd_per_hour,
                              "usd_per_1k_runs", res->usd_per_1k_runs, "runs_per_s", res->runs_per_s, "classes",
                              cls, "workflows", wfs, "candidates", (json_int_t)res->candidates, "solve_ms",
                              res->solve_ms, "ilp_ms", res->ilp_ms);
        loom_cli_print_json(j);
    } else {
        printf("tco %s: %zu workflows, %.1f runs/s, utilisation target %.0f%%\n", file, wl->n, res->runs_per_s,
               to.utilization * 100);
        for (size_t i = 0; i < wl->n; i++)
            printf("  %-24s %8.2f runs/s  sla %.0f ms  served by: %s\n", tw[i].name, tw[i].rate_per_s,
                   tw[i].opts.sla_ms, res->feasible && res->mix[i] ? res->mix[i] : "-");
        if (!res->feasible)
            printf("\nNO FLEET MEETS EVERY SLA: %s\n", res->infeasible_why);
        else {
            printf("\ncheapest fleet: $%.2f/hour, $%.4f per 1k runs\n", res->usd_per_hour, res->usd_per_1k_runs);
            for (size_t j = 0; j < res->nclasses; j++) {
                const loom_tco_class_t *c = &res->classes[j];
                if (c->rented + c->owned == 0)
                    continue;
                printf("  %-12s %4d rented %4d owned  busy %7.2f devices  $%.2f/hour\n", c->name, c->rented,
                       c->owned, c->busy, c->usd_per_hour);
            }
        }
        printf("\nhomogeneous fleets:\n");
        for (size_t j = 0; j < res->nclasses; j++) {
            const loom_tco_class_t *c = &res->classes[j];
            if (!c->homo_ok)
                printf("  %-12s cannot meet every SLA\n", c->name);
            else
            {
                printf("  %-12s %5d devices  $%10.2f/hour  $%.4f per 1k runs", c->name, c->homo_count,
                       c->homo_usd_per_hour, c->homo_usd_per_hour / (res->runs_per_s * 3.6));
                if (res->feasible && res->usd_per_hour > 0)
                    printf("  (%.2fx the cheapest)", c->homo_usd_per_hour / res->usd_per_hour);
                printf("\n");
            }
        }
        printf("\n%zu candidate placements, GLPK MIP %.1f ms, total %.1f ms\n", res->candidates, res->ilp_ms,
               res->solve_ms);
    }
    rc = res->feasible ? LOOM_EXIT_OK : LOOM_EXIT_SLA;
out:
    loom_tco_result_destroy(&res);
    for (size_t i = 0; P && i < wl->n; i++)
        loom_cli_planned_free(&P[i]);
    free(P);
    free(tw);
    loom_fleet_destroy(&owned);
    loom_catalog_destroy(&cat);
    loom_workload_destroy(&wl);
    return rc;
}
