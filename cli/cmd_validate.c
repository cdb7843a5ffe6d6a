/* cmd_validate.c — `loom validate [--json] FILE...`: parses and validates
 * workflow files (planner/workflow.h). For each valid file prints
 * "FILE: ok" and a compact DAG (steps in topological levels, with their op
 * and the steps they wait on); otherwise every error, one per line, as
 * file:line:col: field: message (plus hint lines) on stderr. Exit 0 when
 * all files are valid, 1 when any is not, 2 on a bad command line. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/mcp_spec.h"
#include "cli/model_files.h"
#include "common/buf.h"
#include "mlir-lowering/codegen.h"
#include "mlir-lowering/ctx.h"
#include "cli/kernel_check.h"
#include "planner/catalog.h"
#include "planner/fleet.h"
#include "planner/profile.h"
#include "planner/workflow.h"
#include "planner/workload.h"

static const char usage_text[] =
    "usage: loom validate [--json] FILE...\n"
    "Checks Loom workflow files (YAML, version 1; - reads standard input).\n"
    "For a valid file prints 'FILE: ok' and its steps by topological level;\n"
    "otherwise each error as file:line:col: field: message (exit 1).\n"
    "\n"
    "  --json   print one JSON document with the result of every file\n"
    "  --quiet  print only errors\n"
    "  --offline  do not contact the MCP servers of tool.mcp steps\n"
    "\n"
    "A compute step's .mlir kernel is compiled for the CPU as well (verified,\n"
    "lowered, JIT-linked), so its errors appear here at the kernel's file:line:col.\n"
    "\n"
    "The planner's own files are recognised by their top-level keys and checked\n"
    "with their loaders: hardware catalogs (devices:, links:), fleets (catalog:,\n"
    "devices:), measured profiles (ops:) and workloads (workflows:).\n"
    "\n"
    "tool.mcp steps are checked against their server when it can be reached\n"
    "(a stdio server in resources.tools is started for the check): the tool\n"
    "must exist and literal arguments must match its input schema. An\n"
    "unreachable server is a warning.\n";

/* ---- compute kernels ------------------------------------------------------- */

/* Every compute step's .mlir kernel is compiled for the CPU (lowered to the
 * LLVM dialect and JIT-linked: codegen.c), so a kernel that would fail in a
 * worker fails here, at its own file:line:col, with the step's field. One
 * MLIR context per process, made on the first kernel. Returns errors added. */
static int check_graph_kernels(const loom_workflow_t *wf, const loom_wf_graph_t *g, loom_mlir_t **m,
                               loom_diags_t *d)
{
    int bad = 0;
    for (size_t i = 0; i < g->n_steps; i++) {
        const loom_wf_step_t *s = &g->steps[i];
        if (s->body)
            bad += check_graph_kernels(wf, s->body, m, d);
        const loom_value_t *k = s->op == LOOM_OP_COMPUTE && s->node ? loom_value_get(s->node, "kernel") : NULL;
        if (!k || k->kind != LOOM_VALUE_STRING || k->tpl)
            continue;
        loom_err_t err;
        loom_err_clear(&err);
        if (loom_cli_check_kernel(m, wf, s->id, k->str, k->line, k->col, &err) != 0) {
            loom_err_t *slot = loom_diags_add(d);
            if (slot)
                *slot = err;
            bad++;
        }
    }
    return bad;
}

/* ---- text output ------------------------------------------------------------ */

static void print_graph(const loom_wf_graph_t *g, int indent)
{
    for (size_t k = 0; k < g->n_steps; k++) {
        const loom_wf_step_t *s = &g->steps[g->order[k]];
        char extra[160] = "";
        if (s->when)
            strcat(extra, " when");
        if (s->foreach)
            strcat(extra, " foreach");
        if (s->retries)
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " retries=%d", s->retries);
        if (s->op == LOOM_OP_LOOP)
            snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " max=%d%s", s->max_iterations,
                     s->until ? " until" : "");
        char line[1024];
        int n = snprintf(line, sizeof line, "%*sL%d  %-20s %-14s%s", indent, "", s->level, s->id,
                         loom_op_kind_name(s->op), extra);
        for (size_t d = 0; d < s->n_deps && n > 0 && (size_t)n < sizeof line; d++)
            n += snprintf(line + n, sizeof line - (size_t)n, "%s%s", d ? ", " : "  <- ", g->steps[s->deps[d].step].id);
        size_t len = strlen(line);
        while (len && line[len - 1] == ' ')
            line[--len] = 0;
        printf("%s\n", line);
        if (s->body)
            print_graph(s->body, indent + 4);
    }
}

static void print_ok(const loom_workflow_t *wf)
{
    printf("%s: ok\n", wf->file);
    printf("  workflow %s: %zu steps in %d levels", wf->name, wf->graph.n_steps, wf->graph.n_levels);
    if (wf->sla.set)
        printf(", sla %lld ms at p%g, objective %s", (long long)wf->sla.latency_ms, wf->sla.percentile,
               wf->sla.objective == LOOM_WF_OBJECTIVE_COST ? "cost" : "latency");
    printf(", sha256 %.12s\n", wf->sha256);
    print_graph(&wf->graph, 2);
}

static void print_errors(const loom_diags_t *d, const char *file)
{
    char buf[2048];
    for (size_t i = 0; i < d->len; i++) {
        loom_err_format_long(&d->items[i], buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
    if (d->dropped)
        fprintf(stderr, "%s: %zu more errors not shown\n", file, d->dropped);
}

/* ---- JSON output ------------------------------------------------------------ */

static json_t *graph_json(const loom_wf_graph_t *g)
{
    json_t *arr = json_array();
    for (size_t k = 0; k < g->n_steps; k++) {
        const loom_wf_step_t *s = &g->steps[g->order[k]];
        json_t *deps = json_array();
        for (size_t d = 0; d < s->n_deps; d++)
            json_array_append_new(deps, json_string(g->steps[s->deps[d].step].id));
        json_t *o = json_pack("{s:s, s:s, s:i, s:o, s:b, s:b, s:i, s:I, s:i, s:i}", "id", s->id, "op",
                              loom_op_kind_name(s->op), "level", s->level, "needs", deps, "when", s->when != NULL,
                              "foreach", s->foreach != NULL, "retries", s->retries, "timeout_ms",
                              (json_int_t)s->timeout_ms, "line", s->line, "col", s->col);
        if (o && s->model)
            json_object_set_new(o, "model", json_string(s->model));
        if (o && s->op == LOOM_OP_LOOP) {
            json_object_set_new(o, "max_iterations", json_integer(s->max_iterations));
            json_object_set_new(o, "body", s->body ? graph_json(s->body) : json_array());
        }
        if (o)
            json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *ok_json(const loom_workflow_t *wf)
{
    json_t *o = json_pack("{s:s, s:b, s:s, s:s, s:i, s:s, s:i}", "file", wf->file, "ok", 1, "kind", "workflow", "name",
                          wf->name, "version", wf->version, "sha256", wf->sha256, "levels", wf->graph.n_levels);
    if (!o)
        return NULL;
    if (wf->sla.set)
        json_object_set_new(o, "sla",
                            json_pack("{s:I, s:f, s:s}", "latency_ms", (json_int_t)wf->sla.latency_ms, "percentile",
                                      wf->sla.percentile, "objective",
                                      wf->sla.objective == LOOM_WF_OBJECTIVE_COST ? "cost" : "latency"));
    json_t *inputs = json_array();
    for (size_t i = 0; i < wf->n_inputs; i++)
        json_array_append_new(inputs, json_pack("{s:s, s:s, s:b}", "name", wf->inputs[i].name, "type",
                                                loom_wf_type_name(wf->inputs[i].type), "required",
                                                wf->inputs[i].required));
    json_object_set_new(o, "inputs", inputs);
    json_object_set_new(o, "steps", graph_json(&wf->graph));
    json_t *outs = json_array();
    for (size_t i = 0; i < wf->n_outputs; i++)
        json_array_append_new(outs, json_string(wf->outputs[i].name));
    json_object_set_new(o, "outputs", outs);
    return o;
}

static json_t *errors_json(const char *file, const loom_diags_t *d)
{
    json_t *errs = json_array();
    for (size_t i = 0; i < d->len; i++) {
        const loom_err_t *e = &d->items[i];
        char text[1024];
        loom_err_format(e, text, sizeof text);
        json_t *o = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:s}", "file", e->file, "line", e->line, "col", e->col,
                              "field", e->field, "message", e->msg, "code", loom_err_name(e->code), "text", text);
        if (o && e->hint[0])
            json_object_set_new(o, "hint", json_string(e->hint));
        if (o && e->detail[0])
            json_object_set_new(o, "detail", json_string(e->detail));
        if (o)
            json_array_append_new(errs, o);
    }
    return json_pack("{s:s, s:b, s:s, s:o, s:I}", "file", file, "ok", 0, "kind", "workflow", "errors", errs,
                     "more_errors", (json_int_t)d->dropped);
}

/* ---- the planner's other files ------------------------------------------- */

typedef enum { KIND_WORKFLOW, KIND_CATALOG, KIND_FLEET, KIND_PROFILE, KIND_WORKLOAD } file_kind_t;

static const char *const kind_names[] = {"workflow", "catalog", "fleet", "profile", "workload"};

static bool has_top_key(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, key, n) == 0 && p[n] == ':')
            return true;
    }
    return false;
}

/* Guesses the kind from top-level keys; anything unrecognised is treated
 * as a workflow so that its errors are the workflow loader's. */
static file_kind_t sniff(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return KIND_WORKFLOW;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (has_top_key(buf, "steps"))
        return KIND_WORKFLOW;
    if (has_top_key(buf, "workflows"))
        return KIND_WORKLOAD;
    if (has_top_key(buf, "ops") || has_top_key(buf, "transfers"))
        return KIND_PROFILE;
    if (has_top_key(buf, "catalog") && has_top_key(buf, "devices"))
        return KIND_FLEET;
    if (has_top_key(buf, "devices") || has_top_key(buf, "links"))
        return KIND_CATALOG;
    return KIND_WORKFLOW;
}

/* Loads a planner file of the given kind; 0 when valid, else err is set. */
static int check_other(file_kind_t kind, const char *path, loom_err_t *err)
{
    void *obj = NULL;
    switch (kind) {
    case KIND_CATALOG: {
        loom_catalog_t *c = loom_catalog_load(path, err);
        obj = c;
        loom_catalog_destroy(&c);
        break;
    }
    case KIND_FLEET: {
        loom_fleet_t *f = loom_fleet_load(path, NULL, err);
        obj = f;
        loom_fleet_destroy(&f);
        break;
    }
    case KIND_PROFILE: {
        loom_profile_t *p = loom_profile_load(path, err);
        obj = p;
        loom_profile_destroy(&p);
        break;
    }
    case KIND_WORKLOAD: {
        loom_workload_t *w = loom_workload_load(path, err);
        obj = w;
        loom_workload_destroy(&w);
        break;
    }
    case KIND_WORKFLOW: break;
    }
    if (!obj && !err->code)
        loom_err_set(err, LOOM_EINVAL, "invalid %s file", kind_names[kind]);
    return obj ? 0 : -1;
}

int loom_cmd_validate(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    bool json = false, quiet = false, opts = true, offline = false;
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (opts && !strcmp(argv[i], "--")) {
            opts = false;
        } else if (opts && !strcmp(argv[i], "--json")) {
            json = true;
        } else if (opts && (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))) {
            quiet = true;
        } else if (opts && !strcmp(argv[i], "--offline")) {
            offline = true;
        } else if (opts && argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "loom validate: unknown option '%s'\n%s", argv[i], usage_text);
            return LOOM_EXIT_USAGE;
        } else {
            nfiles++;
        }
    }
    if (!nfiles) {
        fprintf(stderr, "loom validate: no file given\n%s", usage_text);
        return LOOM_EXIT_USAGE;
    }
    int rc = LOOM_EXIT_OK;
    loom_mlir_t *mlir = NULL;
    json_t *results = json ? json_array() : NULL;
    opts = true;
    for (int i = 1; i < argc; i++) {
        if (opts && !strcmp(argv[i], "--")) {
            opts = false;
            continue;
        }
        if (opts && argv[i][0] == '-' && argv[i][1])
            continue;
        file_kind_t kind = sniff(argv[i]);
        if (kind != KIND_WORKFLOW) {
            loom_err_t err;
            loom_err_clear(&err);
            int bad = check_other(kind, argv[i], &err);
            if (bad)
                rc = LOOM_EXIT_FAIL;
            if (json) {
                loom_diags_t one = {&err, bad ? 1 : 0, 1, 0};
                json_t *o = bad ? errors_json(argv[i], &one) : json_pack("{s:s, s:b}", "file", argv[i], "ok", 1);
                if (o)
                    json_object_set_new(o, "kind", json_string(kind_names[kind]));
                json_array_append_new(results, o);
            } else if (!bad && !quiet) {
                printf("%s: ok (%s)\n", argv[i], kind_names[kind]);
            } else if (bad) {
                char buf[2048];
                loom_err_format_long(&err, buf, sizeof buf);
                fprintf(stderr, "%s\n", buf);
            }
            continue;
        }
        loom_diags_t d = LOOM_DIAGS_INIT;
        loom_workflow_t *wf = NULL;
        if (loom_workflow_load(argv[i], &wf, &d) != 0)
            rc = LOOM_EXIT_FAIL;
        else if (check_graph_kernels(wf, &wf->graph, &mlir, &d) > 0) {
            loom_workflow_destroy(&wf);
            rc = LOOM_EXIT_FAIL;
        }
        if (wf && loom_cli_models_from_files(wf, quiet || json, &d) > 0) {
            loom_workflow_destroy(&wf);
            rc = LOOM_EXIT_FAIL;
        }
        if (wf && !offline && loom_cli_mcp_check(wf, 15000, quiet || json, &d) > 0) {
            loom_workflow_destroy(&wf);
            rc = LOOM_EXIT_FAIL;
        }
        if (json)
            json_array_append_new(results, wf ? ok_json(wf) : errors_json(argv[i], &d));
        else if (wf && !quiet)
            print_ok(wf);
        else if (!wf)
            print_errors(&d, argv[i]);
        loom_workflow_destroy(&wf);
        loom_diags_free(&d);
    }
    loom_mlir_destroy(&mlir);
    if (json) {
        json_t *doc = json_pack("{s:b, s:o}", "ok", rc == LOOM_EXIT_OK, "files", results);
        char *s = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(doc);
    }
    return rc;
}
