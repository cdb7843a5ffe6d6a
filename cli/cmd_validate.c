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

#include "planner/workflow.h"

static const char usage_text[] =
    "usage: loom validate [--json] FILE...\n"
    "Checks Loom workflow files (YAML, version 1).\n"
    "For a valid file prints 'FILE: ok' and its steps by topological level;\n"
    "otherwise each error as file:line:col: field: message (exit 1).\n"
    "\n"
    "  --json   print one JSON document with the result of every file\n"
    "  --quiet  print only errors\n";

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
    json_t *o = json_pack("{s:s, s:b, s:s, s:i, s:s, s:i}", "file", wf->file, "ok", 1, "name", wf->name, "version",
                          wf->version, "sha256", wf->sha256, "levels", wf->graph.n_levels);
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
    return json_pack("{s:s, s:b, s:o, s:I}", "file", file, "ok", 0, "errors", errs, "more_errors",
                     (json_int_t)d->dropped);
}

int loom_cmd_validate(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    bool json = false, quiet = false, opts = true;
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (opts && !strcmp(argv[i], "--")) {
            opts = false;
        } else if (opts && !strcmp(argv[i], "--json")) {
            json = true;
        } else if (opts && (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q"))) {
            quiet = true;
        } else if (opts && argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "loom validate: unknown option '%s'\n%s", argv[i], usage_text);
            return LOOM_EXIT_USAGE;
        } else {
            nfiles++;
        }
    }
    if (!nfiles) {
        fprintf(stderr, "loom validate: no workflow file given\n%s", usage_text);
        return LOOM_EXIT_USAGE;
    }
    int rc = LOOM_EXIT_OK;
    json_t *results = json ? json_array() : NULL;
    opts = true;
    for (int i = 1; i < argc; i++) {
        if (opts && !strcmp(argv[i], "--")) {
            opts = false;
            continue;
        }
        if (opts && argv[i][0] == '-' && argv[i][1])
            continue;
        loom_diags_t d = LOOM_DIAGS_INIT;
        loom_workflow_t *wf = NULL;
        if (loom_workflow_load(argv[i], &wf, &d) != 0)
            rc = LOOM_EXIT_FAIL;
        if (json)
            json_array_append_new(results, wf ? ok_json(wf) : errors_json(argv[i], &d));
        else if (wf && !quiet)
            print_ok(wf);
        else if (!wf)
            print_errors(&d, argv[i]);
        loom_workflow_destroy(&wf);
        loom_diags_free(&d);
    }
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
