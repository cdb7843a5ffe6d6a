/* plan_common.c — see plan_common.h. */
#include "cli/plan_common.h"
#include "cli/cli.h"
#include "cli/model_files.h"

#include <stdlib.h>
#include <string.h>

#include "common/paths.h"

void loom_cli_print_err(const char *cmd, const loom_err_t *err)
{
    char buf[2048];
    loom_err_format_long(err, buf, sizeof buf);
    fprintf(stderr, "loom %s: %s\n", cmd, buf);
}

loom_workload_t *loom_cli_load_workload(const char *cmd, const char *path, int *exit_code)
{
    loom_err_t err = {0};
    loom_workload_t *wl = loom_workload_load(path, &err);
    if (!wl) {
        loom_cli_print_err(cmd, &err);
        *exit_code = err.code == LOOM_EIO ? LOOM_EXIT_SYSTEM : LOOM_EXIT_FAIL;
    }
    return wl;
}

void loom_cli_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (s)
        puts(s);
    free(s);
    json_decref(j);
}

const char *loom_cli_default_catalog(void)
{
    static char path[4096];
    if (!path[0])
        loom_data_path("catalog.yaml", "examples/catalog.yaml", path, sizeof path);
    return path; /* when missing, the installed path: the loader's error names it */
}

int loom_cli_load_fleet(const char *fleet_path, const char *catalog_path, loom_catalog_t **cat_out,
                        loom_fleet_t **fleet_out, loom_err_t *err)
{
    *cat_out = NULL;
    *fleet_out = NULL;
    loom_catalog_t *cat = NULL;
    if (catalog_path || !fleet_path) {
        cat = loom_catalog_load(catalog_path ? catalog_path : loom_cli_default_catalog(), err);
        if (!cat)
            return err ? err->code : LOOM_EPARSE;
    }
    loom_fleet_t *f = fleet_path ? loom_fleet_load(fleet_path, cat, err) : loom_fleet_all(cat, 1);
    if (!f) {
        loom_catalog_destroy(&cat);
        return err && err->code ? err->code : LOOM_ENOMEM;
    }
    *cat_out = cat;
    *fleet_out = f;
    return 0;
}

void loom_cli_planned_free(loom_cli_planned_t *p)
{
    loom_plan_destroy(&p->plan);
    loom_cost_destroy(&p->cost);
    loom_graph_destroy(&p->g);
    loom_workflow_destroy(&p->wf);
    loom_decompose_notes_free(&p->notes);
}

int loom_cli_plan_file(const char *path, const loom_fleet_t *fleet, const loom_profile_t *prof,
                       double sla_ms, double percentile, loom_place_method_t method,
                       loom_cli_planned_t *out, FILE *errf, loom_err_t *err)
{
    memset(out, 0, sizeof *out);
    loom_diags_t diags = LOOM_DIAGS_INIT;
    int rc = loom_workflow_load(path, &out->wf, &diags);
    /* Shapes from the model files where this machine can read them. */
    if (rc >= 0 && loom_cli_models_from_files(out->wf, errf == NULL, &diags) > 0)
        rc = LOOM_EINVAL;
    if (rc < 0) {
        char buf[2048];
        for (size_t i = 0; errf && i < diags.len; i++) {
            loom_err_format_long(&diags.items[i], buf, sizeof buf);
            fprintf(errf, "%s\n", buf);
        }
        loom_err_set(err, rc, "%s is not a valid workflow (%zu errors)", path, diags.len + diags.dropped);
        loom_diags_free(&diags);
        return rc;
    }
    loom_diags_free(&diags);
    if ((rc = loom_decompose(out->wf, &out->g, &out->notes, err)) < 0)
        goto fail;
    out->cost = loom_cost_new(out->g, fleet, prof, err);
    if (!out->cost) {
        rc = err && err->code ? err->code : LOOM_ENOMEM;
        goto fail;
    }
    loom_place_opts_init(&out->opts);
    out->opts.method = method;
    out->opts.sla_ms = sla_ms > 0 ? sla_ms : out->wf->sla.set ? (double)out->wf->sla.latency_ms : 0;
    out->opts.percentile = percentile > 0 ? percentile
                           : out->wf->sla.set ? out->wf->sla.percentile / 100.0
                                              : 0.5;
    out->opts.minimize_latency = out->wf->sla.set && out->wf->sla.objective == LOOM_WF_OBJECTIVE_LATENCY;
    if ((rc = loom_place(out->g, out->cost, &out->opts, &out->plan, err)) < 0)
        goto fail;
    return 0;
fail:
    loom_cli_planned_free(out);
    return rc;
}
