/* fuzz_workflow — libFuzzer target for the workflow YAML loader
 * (planner/workflow.c + value.c) and the template / expression parsers
 * (planner/expr.c). Properties checked on every input:
 *   - a load either succeeds with no diagnostics or fails with at least one,
 *     each carrying the file name;
 *   - an accepted workflow has a topological order that is a permutation in
 *     which every dependency comes first, in every (loop body) graph, and
 *     every step's fields render to JSON with a resolver that returns null;
 *   - the same bytes parsed as a template / an expression never crash, and
 *     a parsed expression evaluates without crashing.
 * Everything is freed (LeakSanitizer is on). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "planner/workflow.h"

static json_t *null_resolver(void *ctx, const loom_ref_t *ref, loom_err_t *err)
{
    (void)ctx;
    (void)ref;
    (void)err;
    return json_null();
}

static void check_graph(const loom_wf_graph_t *g)
{
    if (!g->order)
        abort();
    size_t n = g->n_steps;
    size_t *pos = calloc(n ? n : 1, sizeof *pos);
    unsigned char *seen = calloc(n ? n : 1, 1);
    if (!pos || !seen)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t k = g->order[i];
        if (k >= n || seen[k])
            abort();
        seen[k] = 1;
        pos[k] = i;
    }
    for (size_t i = 0; i < n; i++) {
        const loom_wf_step_t *s = &g->steps[i];
        if (s->index != i)
            abort();
        for (size_t d = 0; d < s->n_deps; d++)
            if (s->deps[d].step >= n || pos[s->deps[d].step] >= pos[i])
                abort();
        json_t *out = NULL;
        loom_err_t err;
        loom_err_clear(&err);
        if (loom_value_render(s->node, null_resolver, NULL, &out, &err) == 0)
            json_decref(out);
        if (s->when) {
            bool t;
            loom_expr_eval_bool(s->when, null_resolver, NULL, &t, &err);
        }
        if (s->op == LOOM_OP_LOOP) {
            if (!s->body || s->max_iterations < 1)
                abort();
            check_graph(s->body);
        }
    }
    free(pos);
    free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_diags_t d = LOOM_DIAGS_INIT;
    loom_workflow_t *wf = NULL;
    int rc = loom_workflow_parse("fuzz.yaml", (const char *)data, size, &wf, &d);
    if (rc == 0) {
        if (!wf || d.len)
            abort();
        check_graph(&wf->graph);
    } else {
        if (wf || (d.len == 0 && d.dropped == 0))
            abort();
        for (size_t i = 0; i < d.len; i++) {
            char buf[1024];
            if (strcmp(d.items[i].file, "fuzz.yaml") != 0)
                abort();
            loom_err_format_long(&d.items[i], buf, sizeof buf);
        }
    }
    loom_workflow_destroy(&wf);
    loom_diags_free(&d);

    /* the same bytes as a template and as a when:/until: expression */
    loom_arena_t *a = loom_arena_new(0);
    if (!a)
        return 0;
    loom_template_t *t = NULL;
    loom_expr_t *e = NULL;
    loom_expr_error_t pe = {0};
    int trc = loom_template_parse(a, (const char *)data, size, &t, &pe);
    if (trc == LOOM_EPARSE && pe.off > size)
        abort(); /* an error must point inside the text */
    if (trc == 0 && t) {
        json_t *out = NULL;
        loom_err_t err;
        loom_err_clear(&err);
        if (loom_template_render(t, null_resolver, NULL, &out, &err) == 0)
            json_decref(out);
    }
    int erc = loom_expr_parse(a, (const char *)data, size, &e, &pe);
    if (erc == LOOM_EPARSE && pe.off > size)
        abort();
    if (erc == 0) {
        json_t *out = NULL;
        loom_err_t err;
        loom_err_clear(&err);
        if (loom_expr_eval(e, null_resolver, NULL, &out, &err) == 0)
            json_decref(out);
    }
    loom_arena_destroy(&a);
    return 0;
}
