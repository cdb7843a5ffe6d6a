/* from_plan.c — planner output -> lowering input (see from_plan.h). */
#include "mlir-lowering/from_plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Figures are rounded (1 us, 1e-9 USD) so the printed IR stays stable
 * under last-digit changes of the cost model. */
static double round_to(double v, double unit) { return round(v / unit) * unit; }

/* Does an output value refer to step id (${steps.<id>.output...})? */
static int refers_to(const loom_value_t *v, const char *id)
{
    if (!v)
        return 0;
    if (v->kind == LOOM_VALUE_STRING && v->str) {
        char pat[300];
        snprintf(pat, sizeof pat, "steps.%s.", id);
        if (strstr(v->str, pat))
            return 1;
        snprintf(pat, sizeof pat, "steps.%s}", id);
        return strstr(v->str, pat) != NULL;
    }
    for (size_t i = 0; v->kind == LOOM_VALUE_SEQ && i < v->len; i++)
        if (refers_to(v->items[i], id))
            return 1;
    for (size_t i = 0; v->kind == LOOM_VALUE_MAP && i < v->len; i++)
        if (refers_to(v->entries[i].value, id))
            return 1;
    return 0;
}

static const char *str_field(const loom_wf_step_t *s, const char *key)
{
    const loom_value_t *v = s && s->node ? loom_value_get(s->node, key) : NULL;
    return v && v->kind == LOOM_VALUE_STRING && !v->tpl ? v->str : NULL;
}

/* A control field as written (`when:`, `until:`, `foreach:`): the string,
 * or "[N items]" for a literal list; NULL when absent. */
static const char *control_text(const loom_wf_step_t *s, const char *key, loom_arena_t *arena)
{
    const loom_value_t *v = s && s->node ? loom_value_get(s->node, key) : NULL;
    if (!v)
        return NULL;
    if (v->kind == LOOM_VALUE_STRING)
        return v->str;
    char buf[48];
    snprintf(buf, sizeof buf, "[%zu items]", v->kind == LOOM_VALUE_SEQ ? v->len : (size_t)0);
    return loom_arena_strdup(arena, buf);
}

/* 1 / 2 when name is "<x>.begin" / "<x>.end", else 0. */
static int marker_kind(const char *name)
{
    size_t l = strlen(name);
    return l > 6 && !strcmp(name + l - 6, ".begin") ? 1 : l > 4 && !strcmp(name + l - 4, ".end") ? 2 : 0;
}

int loom_lower_from_plan(const loom_workflow_t *wf, const loom_graph_t *g, const loom_cost_t *c,
                         const loom_plan_t *plan, loom_arena_t *arena, loom_lower_wf_t *out,
                         loom_err_t *err)
{
    size_t nn = loom_graph_nodes(g), ne = loom_graph_edges(g);
    loom_lower_node_t *nodes = loom_arena_calloc(arena, nn + 1, sizeof *nodes);
    loom_lower_edge_t *edges = loom_arena_calloc(arena, ne + 1, sizeof *edges);
    if (!nodes || !edges)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    memset(out, 0, sizeof *out);
    out->name = wf->name;
    out->file = wf->file;
    out->sla_ms = wf->sla.set ? (double)wf->sla.latency_ms : 0;
    double mean = plan ? loom_plan_mean_ms(plan) : 0;
    double scale = out->sla_ms > 0 && mean > 0 ? out->sla_ms / mean : 0;
    for (size_t i = 0; i < nn; i++) {
        const loom_gnode_t *gn = loom_graph_node(g, (int)i);
        loom_lower_node_t *n = &nodes[i];
        const loom_wf_step_t *s = gn->step ? loom_workflow_find_step(wf, gn->step) : NULL;
        n->name = gn->name;
        n->op = loom_gop_name(gn->op);
        n->step = gn->step;
        n->model = gn->model;
        if (s) {
            n->line = s->line, n->col = s->col;
            if (s->op == LOOM_OP_LOOP) {
                n->loop_marker = marker_kind(gn->name);
                if (n->loop_marker == 1) {
                    n->until = control_text(s, "until", arena);
                    n->max_iterations = s->max_iterations;
                }
            } else {
                n->when = control_text(s, "when", arena);
                n->foreach = control_text(s, "foreach", arena);
            }
            if (gn->op == LOOM_GOP_COMPUTE)
                n->kernel = str_field(s, "kernel");
            if (gn->op == LOOM_GOP_VSEARCH) {
                const loom_value_t *k = s->node ? loom_value_get(s->node, "k") : NULL;
                n->index = s->index_name;
                n->topk = k && k->kind == LOOM_VALUE_INT ? (int)k->i : 0; /* 0: given at run time */
            }
        }
        if (plan && c) {
            int d = loom_plan_device(plan, (int)i);
            if (d >= 0) {
                n->device = loom_cost_device_name(c, d);
                double ms = loom_cost_ms(c, (int)i, d) * gn->iters_mean;
                n->pred_ms = round_to(ms, 1e-3);
                n->pred_cost = round_to(loom_cost_usd(c, (int)i, d) * gn->iters_mean, 1e-9);
                n->budget_ms = round_to(ms * scale, 1e-3);
            }
        }
    }
    for (size_t e = 0; e < ne; e++) {
        const loom_gedge_t *ge = loom_graph_edge(g, (int)e);
        edges[e].src = ge->src;
        edges[e].dst = ge->dst;
        edges[e].kv = ge->kind == LOOM_GEDGE_KV;
        if (plan && c) {
            int a = loom_plan_device(plan, ge->src), b = loom_plan_device(plan, ge->dst);
            if (a >= 0 && b >= 0) {
                edges[e].pred_ms = round_to(loom_cost_xfer_ms(c, (int)e, a, b), 1e-3);
                edges[e].pred_cost = round_to(loom_cost_xfer_usd(c, (int)e, a, b), 1e-9);
            }
        }
    }
    /* The last node of a step named by `outputs:` is a workflow output. */
    for (size_t o = 0; o < wf->n_outputs; o++)
        for (size_t i = nn; i-- > 0;)
            if (nodes[i].step && refers_to(wf->outputs[o].value, nodes[i].step)) {
                nodes[i].output = 1;
                break;
            }
    out->nodes = nodes, out->nnodes = nn;
    out->edges = edges, out->nedges = ne;
    return 0;
}
