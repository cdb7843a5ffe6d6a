/* mcp_spec.c — see mcp_spec.h. */
#include "cli/mcp_spec.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/common/json_schema.h"
#include "workers/common/mcp.h"

static json_t *config_spec(const char *name)
{
    const char *path = getenv("LOOM_MCP_CONFIG");
    if (!path || !*path)
        return NULL;
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    json_t *inner = json_object_get(c, "mcpServers");
    json_t *s = json_object_get(inner ? inner : c, name);
    if (s)
        json_incref(s);
    json_decref(c);
    return s;
}

json_t *loom_cli_mcp_spec_in(const loom_workflow_t *wf, const char *name)
{
    const loom_wf_tool_t *t = loom_workflow_tool(wf, name);
    if (!t)
        return config_spec(name);
    json_t *spec = loom_value_to_json(t->node);
    if (spec && json_object_get(spec, "command") && wf->dir) {
        const char *cwd = json_string_value(json_object_get(spec, "cwd"));
        char *full = NULL;
        if (!cwd)
            full = strdup(wf->dir);
        else if (cwd[0] != '/' && asprintf(&full, "%s/%s", wf->dir, cwd) < 0)
            full = NULL;
        if (full)
            json_object_set_new(spec, "cwd", json_string(full));
        free(full);
    }
    return spec;
}

int loom_cli_mcp_spec(const char *server, const char *wf_path, json_t **spec, loom_err_t *err)
{
    *spec = NULL;
    if (!strncmp(server, "http://", 7) || !strncmp(server, "https://", 8)) {
        *spec = json_pack("{ss}", "url", server);
        return *spec ? 0 : loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    if (wf_path) {
        loom_diags_t d = LOOM_DIAGS_INIT;
        loom_workflow_t *wf = NULL;
        if (loom_workflow_load(wf_path, &wf, &d) != 0) {
            loom_err_set(err, LOOM_EPARSE, "%s: %s", wf_path, d.len ? d.items[0].msg : "invalid workflow");
            loom_diags_free(&d);
            return LOOM_EPARSE;
        }
        loom_diags_free(&d);
        *spec = loom_cli_mcp_spec_in(wf, server);
        loom_workflow_destroy(&wf);
    } else {
        *spec = config_spec(server);
    }
    if (!*spec)
        return loom_err_set(err, LOOM_ENOTFOUND, "unknown MCP server '%s' (not a URL%s%s, nor in $LOOM_MCP_CONFIG)",
                            server, wf_path ? ", not in the resources.tools of " : "", wf_path ? wf_path : "");
    return 0;
}

/* One server's tools, fetched once per validate. */
typedef struct {
    const char *name;
    json_t *tools; /* NULL: unreachable */
} known_t;

static void report(loom_diags_t *diags, const loom_workflow_t *wf, const loom_value_t *at, const char *field,
                   const char *msg, const char *hint)
{
    loom_err_t *e = loom_diags_add(diags);
    if (!e)
        return;
    loom_err_set(e, LOOM_EINVAL, "%s", msg);
    loom_err_at(e, wf->file, at->line, at->col);
    loom_err_field(e, "%s", field);
    if (hint)
        loom_err_hint(e, "%s", hint);
}

/* The literal part of a step's arguments: values holding ${...} are left
 * out (and their properties treated as present). */
static json_t *literal_args(const loom_value_t *v, json_t *templated)
{
    json_t *o = json_object();
    for (size_t i = 0; v && v->kind == LOOM_VALUE_MAP && i < v->len; i++) {
        const loom_value_t *x = v->entries[i].value;
        int has_tpl = x->tpl != NULL;
        if (x->kind == LOOM_VALUE_MAP || x->kind == LOOM_VALUE_SEQ) {
            char *s = NULL; /* any template inside makes the whole value unknown */
            json_t *j = loom_value_to_json(x);
            s = j ? json_dumps(j, JSON_COMPACT) : NULL;
            has_tpl = s && strstr(s, "${");
            free(s);
            json_decref(j);
        }
        if (has_tpl)
            json_object_set_new(templated, v->entries[i].key, json_true());
        else
            json_object_set_new(o, v->entries[i].key, loom_value_to_json(x));
    }
    return o;
}

static int check_step(const loom_workflow_t *wf, const loom_wf_step_t *s, known_t *known, size_t *n_known,
                      long timeout_ms, int quiet, loom_diags_t *diags)
{
    const loom_value_t *sv = loom_wf_step_field(s, "server"), *tv = loom_wf_step_field(s, "tool");
    const loom_value_t *av = loom_wf_step_field(s, "arguments");
    if (!sv || !tv || sv->kind != LOOM_VALUE_STRING || tv->kind != LOOM_VALUE_STRING || sv->tpl || tv->tpl)
        return 0;
    known_t *k = NULL;
    for (size_t i = 0; i < *n_known; i++)
        if (!strcmp(known[i].name, sv->str))
            k = &known[i];
    if (!k) {
        if (*n_known >= 64)
            return 0;
        k = &known[(*n_known)++];
        k->name = sv->str;
        k->tools = NULL;
        json_t *spec = loom_cli_mcp_spec_in(wf, sv->str);
        loom_mcp_t *m = NULL;
        loom_err_t err = {0};
        if (!spec)
            loom_err_set(&err, LOOM_ENOTFOUND, "not in resources.tools nor in $LOOM_MCP_CONFIG (a worker may "
                                               "configure it)");
        else if (loom_mcp_open(spec, timeout_ms, &m, &err) == 0)
            loom_mcp_list_tools(m, timeout_ms, &k->tools, &err);
        loom_mcp_destroy(&m);
        json_decref(spec);
        if (!k->tools && !quiet)
            fprintf(stderr, "%s:%d:%d: warning: steps.%s.server: MCP server '%s' not checked: %s\n", wf->file,
                    sv->line, sv->col, s->id, sv->str, err.msg);
    }
    if (!k->tools)
        return 0;
    const json_t *tool = NULL;
    size_t i;
    json_t *t;
    char names[512] = "";
    json_array_foreach(k->tools, i, t) {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (n && !strcmp(n, tv->str))
            tool = t;
        if (n && strlen(names) + strlen(n) + 3 < sizeof names)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", names[0] ? ", " : "", n);
    }
    char field[300], msg[400], hint[600];
    if (!tool) {
        snprintf(field, sizeof field, "steps.%s.tool", s->id);
        snprintf(msg, sizeof msg, "MCP server '%s' has no tool '%s'", sv->str, tv->str);
        snprintf(hint, sizeof hint, "its tools: %s", names);
        report(diags, wf, tv, field, msg, hint);
        return 1;
    }
    json_t *schema = json_object_get(tool, "inputSchema");
    json_t *templated = json_object();
    json_t *args = literal_args(av, templated);
    /* Properties given by templates count as present for `required`. */
    json_t *relaxed = json_deep_copy(schema);
    json_t *req = json_object_get(relaxed, "required");
    for (size_t r = json_array_size(req); r-- > 0;)
        if (json_object_get(templated, json_string_value(json_array_get(req, r))))
            json_array_remove(req, r);
    loom_err_t err = {0};
    int bad = 0;
    if (av && av->kind != LOOM_VALUE_MAP) {
        snprintf(field, sizeof field, "steps.%s.arguments", s->id);
        report(diags, wf, av, field, "arguments must be a mapping", NULL);
        bad = 1;
    } else if (loom_json_schema_check(relaxed, args, &err) != 0) {
        snprintf(field, sizeof field, "steps.%s.arguments", s->id);
        snprintf(msg, sizeof msg, "arguments do not match the input schema of %s/%s: %s", sv->str, tv->str,
                 err.msg);
        report(diags, wf, av ? av : tv, field, msg, NULL);
        bad = 1;
    }
    json_decref(relaxed);
    json_decref(args);
    json_decref(templated);
    return bad;
}

static int check_graph(const loom_workflow_t *wf, const loom_wf_graph_t *g, known_t *known, size_t *n_known,
                       long timeout_ms, int quiet, loom_diags_t *diags)
{
    int bad = 0;
    for (size_t i = 0; i < g->n_steps; i++) {
        const loom_wf_step_t *s = &g->steps[i];
        if (s->op == LOOM_OP_TOOL_MCP)
            bad += check_step(wf, s, known, n_known, timeout_ms, quiet, diags);
        if (s->body)
            bad += check_graph(wf, s->body, known, n_known, timeout_ms, quiet, diags);
    }
    return bad;
}

int loom_cli_mcp_check(const loom_workflow_t *wf, long timeout_ms, int quiet, loom_diags_t *diags)
{
    known_t known[64];
    size_t n = 0;
    signal(SIGPIPE, SIG_IGN); /* a stdio server that dies must not kill us */
    int bad = check_graph(wf, &wf->graph, known, &n, timeout_ms, quiet, diags);
    for (size_t i = 0; i < n; i++)
        json_decref(known[i].tools);
    return bad;
}
