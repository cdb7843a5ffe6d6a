/* wf_steps.c — the step half of the workflow loader (see workflow.c for
 * the passes): step ids and ops, per-op field validation, templates and
 * expressions, references turned into dependency edges, and the
 * topological order with cycle naming. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "planner/wf_check.h"

/* ---- references ------------------------------------------------------------------ */

static int ref_col(const loom_value_t *v, size_t off)
{
    return v->text_col ? v->text_col + (int)off : v->col;
}

static void add_dep(wf_ctx_t *C, wf_frame_t *f, size_t target, int line, int col, const char *field)
{
    if (!f->step)
        return;
    for (size_t i = 0; i < f->deps.n; i++)
        if (f->deps.v[i].step == target)
            return;
    if (f->deps.n == f->deps.cap) {
        size_t cap = f->deps.cap ? f->deps.cap * 2 : 4;
        loom_wf_dep_t *nv = loom_arena_alloc(C->a, cap * sizeof *nv);
        if (!nv)
            return;
        if (f->deps.n)
            memcpy(nv, f->deps.v, f->deps.n * sizeof *nv);
        f->deps.v = nv;
        f->deps.cap = cap;
    }
    f->deps.v[f->deps.n++] = (loom_wf_dep_t){target, line, col, field};
}

/* Links the current scope to step `name` (from needs: or a reference):
 * a dependency of the innermost frame whose graph holds the step. */
static void link_step(wf_ctx_t *C, const char *name, int line, int col, const char *field, const char *what)
{
    wf_stepinfo_t *si = loom_map_get(C->ids, name);
    if (!si) {
        const char *s = wf_suggest(name, C->all_ids, C->n_ids);
        if (s)
            wf_report(C, line, col, field, "unknown %s '%s' (did you mean '%s'?)", what, name, s);
        else
            wf_report(C, line, col, field, "unknown %s '%s'", what, name);
        return;
    }
    for (int i = C->nframes - 1; i >= 0; i--) {
        if (C->frames[i].graph == si->graph) {
            add_dep(C, &C->frames[i], si->step->index, line, col, field);
            return;
        }
    }
    const loom_wf_step_t *owner = si->graph->owner;
    loom_err_t *e = wf_report(C, line, col, field, "step '%s' is inside loop '%s' and cannot be read from here",
                           name, owner ? owner->id : "?");
    if (e && owner)
        loom_err_hint(e, "read the loop's result instead: ${steps.%s.output.%s}", owner->id, name);
}

static const wf_frame_t *innermost_loop_body(wf_ctx_t *C)
{
    for (int i = C->nframes - 1; i >= 0; i--)
        if (C->frames[i].graph->owner)
            return &C->frames[i];
    return NULL;
}

static void check_ref(wf_ctx_t *C, const loom_ref_t *r, const loom_value_t *v, const char *field)
{
    int line = v->line, col = ref_col(v, r->name_off);
    const wf_frame_t *top = C->nframes ? &C->frames[C->nframes - 1] : NULL;
    switch (r->kind) {
    case LOOM_REF_INPUT:
        if (!loom_workflow_input(C->wf, r->name)) {
            const char *cands[64] = {0};
            size_t n = 0;
            for (size_t i = 0; i < C->wf->n_inputs && n < 64; i++)
                cands[n++] = C->wf->inputs[i].name;
            const char *s = wf_suggest(r->name, cands, n);
            loom_err_t *e = s ? wf_report(C, line, col, field, "unknown input '%s' (did you mean '%s'?)", r->name, s)
                              : wf_report(C, line, col, field, "unknown input '%s'", r->name);
            if (e && !s)
                loom_err_hint(e, "declare it under inputs:");
        }
        return;
    case LOOM_REF_STEP:
        link_step(C, r->name, line, col, field, "step");
        return;
    case LOOM_REF_LOOP_ITERATION:
    case LOOM_REF_LOOP_PREV: {
        const wf_frame_t *lf = innermost_loop_body(C);
        if (!lf) {
            wf_report(C, line, col, field, "'loop.%s' is only defined inside a loop's body or until:",
                   r->kind == LOOM_REF_LOOP_PREV ? "prev" : "iteration");
            return;
        }
        if (r->kind == LOOM_REF_LOOP_PREV && !loom_wf_graph_find(lf->graph, r->name)) {
            const char *cands[256] = {0};
            size_t n = 0;
            for (size_t i = 0; i < lf->graph->n_steps && n < 256; i++)
                cands[n++] = lf->graph->steps[i].id;
            const char *s = wf_suggest(r->name, cands, n);
            if (s)
                wf_report(C, line, col, field, "unknown step '%s' in loop '%s' (did you mean '%s'?)", r->name,
                       lf->graph->owner->id, s);
            else
                wf_report(C, line, col, field, "unknown step '%s' in loop '%s'", r->name, lf->graph->owner->id);
        }
        return;
    }
    case LOOM_REF_ITEM: {
        bool ok = false;
        for (int i = 0; i < C->nframes; i++)
            if (C->frames[i].foreach && !C->frames[i].in_foreach)
                ok = true;
        if (!ok || (top && top->in_foreach))
            wf_report(C, line, col, field, "'item' is only defined in a step with foreach:");
        return;
    }
    }
}

/* Parses every string inside v as a template (storing it in the node) and
 * checks its references. */
void wf_check_templates(wf_ctx_t *C, const loom_value_t *v, const char *field)
{
    if (v->kind == LOOM_VALUE_STRING) {
        loom_template_t *t = NULL;
        loom_expr_error_t pe = {0};
        int rc = loom_template_parse(C->a, v->str, v->str_len, &t, &pe);
        if (rc == LOOM_EPARSE) {
            wf_report(C, v->line, ref_col(v, pe.off), field, "%s", pe.msg);
            return;
        }
        ((loom_value_t *)v)->tpl = t; /* set once, during load */
        for (size_t i = 0; i < loom_template_n_refs(t); i++)
            check_ref(C, loom_template_ref(t, i), v, field);
    } else if (v->kind == LOOM_VALUE_SEQ) {
        for (size_t i = 0; i < v->len; i++)
            wf_check_templates(C, v->items[i], wf_idx(C, field, i));
    } else if (v->kind == LOOM_VALUE_MAP) {
        for (size_t i = 0; i < v->len; i++)
            wf_check_templates(C, v->entries[i].value, wf_join(C, field, v->entries[i].key));
    }
}

/* when: / until: */
static const loom_expr_t *check_expr(wf_ctx_t *C, const loom_value_t *v, const char *field)
{
    if (v->kind != LOOM_VALUE_STRING && v->kind != LOOM_VALUE_BOOL) {
        wf_bad_type(C, v, field, "an expression (a string)");
        return NULL;
    }
    loom_expr_t *e = NULL;
    loom_expr_error_t pe = {0};
    int rc = loom_expr_parse(C->a, v->str, v->str_len, &e, &pe);
    if (rc) {
        if (rc == LOOM_EPARSE)
            wf_report(C, v->line, ref_col(v, pe.off), field, "%s", pe.msg);
        return NULL;
    }
    for (size_t i = 0; i < loom_expr_n_refs(e); i++)
        check_ref(C, loom_expr_ref(e, i), v, field);
    return e;
}

/* A string whose whole text is one ${...}: accepted where a number is
 * expected; its value is checked when the step runs. */
static bool is_single_ref(wf_ctx_t *C, const loom_value_t *v, const char *field)
{
    if (v->kind != LOOM_VALUE_STRING || v->str_len < 3 || v->str[0] != '$')
        return false;
    wf_check_templates(C, v, field);
    return loom_template_single_ref(v->tpl) != NULL;
}

/* ---- op fields ------------------------------------------------------------------- */

typedef enum {
    F_STR,        /* scalar text (template) */
    F_STR_LIST,   /* list of scalars (templates) */
    F_STR_OR_LIST,
    F_ARGV,       /* non-empty list of scalars: never a shell string */
    F_STR_MAP,    /* mapping of scalars */
    F_ANY,        /* any value; strings inside are templates */
    F_INT,        /* any integer */
    F_INT_POS,    /* >= 1 */
    F_INT_NONNEG, /* >= 0 */
    F_NUM_NONNEG,
    F_PROB,       /* [0, 1] */
    F_BOOL,
    F_MODEL,
    F_INDEX,
    F_METHOD,
    F_FORMAT,
    F_KERNEL,
    F_MESSAGES,
    F_BODY,
    F_EXPR,
    F_STEP_ID,
    F_BOUND,      /* a literal integer >= 1 (loop bounds must be static) */
    F_PARSE,      /* tool.exec: auto | json | text */
    F_FAIL_ON,    /* tool.http: 4xx5xx | 5xx | never */
    F_STATUS,     /* tool.http: a status code, a class like "2xx", or a list of them */
    F_SCHEMA,     /* llm.generate: a JSON Schema (a mapping, no templates) */
} ftype_t;

typedef struct fspec {
    const char *name;
    ftype_t type;
    bool required;
} fspec_t;

static const fspec_t f_generate[] = {
    {"model", F_MODEL, true}, {"prompt", F_STR, false}, {"system", F_STR, false},
    {"messages", F_MESSAGES, false}, {"max_tokens", F_INT_POS, false}, {"temperature", F_NUM_NONNEG, false},
    {"top_p", F_PROB, false}, {"top_k", F_INT_NONNEG, false}, {"stop", F_STR_LIST, false},
    {"seed", F_INT, false}, {"format", F_FORMAT, false}, {"schema", F_SCHEMA, false}, {"raw", F_BOOL, false},
    {NULL, 0, false}};
static const fspec_t f_prefill[] = {
    {"model", F_MODEL, true}, {"prompt", F_STR, true}, {"system", F_STR, false}, {"raw", F_BOOL, false},
    {"kv_transfer", F_STR, false}, /* reference (default) | inline: how the KV cache travels */
    {"kv_dtype", F_STR, false},    /* f32 (default) | f16: its dtype on the wire */
    {NULL, 0, false}};
static const fspec_t f_decode[] = {
    {"model", F_MODEL, true}, {"prefill", F_STEP_ID, true}, {"max_tokens", F_INT_POS, false},
    {"temperature", F_NUM_NONNEG, false}, {"top_p", F_PROB, false}, {"top_k", F_INT_NONNEG, false},
    {"stop", F_STR_LIST, false}, {"seed", F_INT, false}, {NULL, 0, false}};
static const fspec_t f_embed[] = {
    {"model", F_MODEL, true}, {"input", F_STR_OR_LIST, true}, {"normalize", F_BOOL, false},
    {"truncate", F_BOOL, false}, {NULL, 0, false}};
static const fspec_t f_search[] = {
    {"index", F_INDEX, true}, {"query", F_ANY, true}, {"k", F_INT_POS, false},
    {"min_score", F_NUM_NONNEG, false}, {NULL, 0, false}};
static const fspec_t f_exec[] = {
    {"argv", F_ARGV, true}, {"stdin", F_ANY, false}, {"env", F_STR_MAP, false}, {"env_allow", F_STR_LIST, false},
    {"cwd", F_STR, false}, {"max_output_bytes", F_INT_POS, false}, {"parse", F_PARSE, false}, {NULL, 0, false}};
static const fspec_t f_http[] = {
    {"method", F_METHOD, false}, {"url", F_STR, true}, {"headers", F_STR_MAP, false},
    {"body", F_ANY, false}, {"max_output_bytes", F_INT_POS, false}, {"fail_on", F_FAIL_ON, false},
    {"expect_status", F_STATUS, false}, {"parse", F_PARSE, false}, {NULL, 0, false}};
static const fspec_t f_mcp[] = {
    {"server", F_STR, true}, {"tool", F_STR, true}, {"arguments", F_ANY, false}, {NULL, 0, false}};
static const fspec_t f_compute[] = {{"kernel", F_KERNEL, true}, {"args", F_ANY, false}, {NULL, 0, false}};
static const fspec_t f_noop[] = {{NULL, 0, false}};
static const fspec_t f_sleep[] = {{"ms", F_INT_NONNEG, true}, {"fail", F_STR, false}, {NULL, 0, false}};
static const fspec_t f_echo[] = {{"value", F_ANY, true}, {NULL, 0, false}};
static const fspec_t f_loop[] = {
    {"body", F_BODY, true}, {"until", F_EXPR, false}, {"max_iterations", F_BOUND, true}, {NULL, 0, false}};

static const fspec_t *const op_fields[LOOM_OP__COUNT] = {
    [LOOM_OP_LLM_GENERATE] = f_generate, [LOOM_OP_LLM_PREFILL] = f_prefill, [LOOM_OP_LLM_DECODE] = f_decode,
    [LOOM_OP_EMBED] = f_embed,           [LOOM_OP_VECTOR_SEARCH] = f_search, [LOOM_OP_TOOL_EXEC] = f_exec,
    [LOOM_OP_TOOL_HTTP] = f_http,        [LOOM_OP_COMPUTE] = f_compute,     [LOOM_OP_NOOP] = f_noop,
    [LOOM_OP_SLEEP] = f_sleep,           [LOOM_OP_ECHO] = f_echo,           [LOOM_OP_LOOP] = f_loop,
    [LOOM_OP_TOOL_MCP] = f_mcp,
};

static const char *const common_fields[] = {"op", "needs", "when", "foreach", "retries", "timeout_ms",
                                            "expect", "description", NULL};
static const char *const expect_fields[] = {"latency_ms", "p95_ms", "prompt_tokens", "output_tokens",
                                            "probability", "iterations", "items", NULL};
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL};
static const char *const formats[] = {"text", "json", NULL};
static const char *const parses[] = {"auto", "json", "text", NULL};
static const char *const fail_ons[] = {"4xx5xx", "5xx", "never", NULL};
/* The builtin compute kernels (mirrors mlir-lowering/kernels.h, which the
 * planner cannot depend on). */
static const char *const builtin_kernels[] = {"matmul", "softmax", "rmsnorm", "vector.search", "qmatmul", NULL};

/* tool.http's expect_status: 200, "2xx", or a non-empty list of those. */
static void check_statuses(wf_ctx_t *C, const loom_value_t *v, const char *field)
{
    const loom_value_t *one = v;
    size_t n = 1;
    if (v->kind == LOOM_VALUE_SEQ) {
        n = v->len;
        if (n == 0)
            wf_bad_type(C, v, field, "a status code, a class like \"2xx\", or a list of them");
    }
    for (size_t i = 0; i < n; i++) {
        if (v->kind == LOOM_VALUE_SEQ)
            one = v->items[i];
        const char *s = one->kind == LOOM_VALUE_STRING ? one->str : NULL;
        bool ok = (one->kind == LOOM_VALUE_INT && one->i >= 100 && one->i <= 599) ||
                  (s && strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
                   (s[2] == 'x' || s[2] == 'X'));
        if (!ok)
            wf_bad_type(C, one, v->kind == LOOM_VALUE_SEQ ? wf_idx(C, field, i) : field,
                        "a status code (100-599) or a class like \"2xx\"");
    }
}

static bool is_scalar_text(const loom_value_t *v)
{
    return v->kind == LOOM_VALUE_STRING || v->kind == LOOM_VALUE_INT || v->kind == LOOM_VALUE_FLOAT ||
           v->kind == LOOM_VALUE_BOOL;
}


static void check_resource_name(wf_ctx_t *C, const loom_value_t *v, const char *field, bool model,
                                loom_wf_step_t *s)
{
    const char *name;
    if (!wf_get_string(C, v, field, &name))
        return;
    const char *cands[256] = {0};
    size_t n = 0;
    if (model) {
        for (size_t i = 0; i < C->wf->n_models && n < 256; i++)
            cands[n++] = C->wf->models[i].name;
    } else {
        for (size_t i = 0; i < C->wf->n_indexes && n < 256; i++)
            cands[n++] = C->wf->indexes[i].name;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(cands[i], name) == 0) {
            if (model)
                s->model = name;
            else
                s->index_name = name;
            return;
        }
    const char *sg = wf_suggest(name, cands, n);
    const char *what = model ? "model" : "index";
    loom_err_t *e = sg ? wf_report(C, v->line, v->col, field, "unknown %s '%s' (did you mean '%s'?)", what, name, sg)
                       : wf_report(C, v->line, v->col, field, "unknown %s '%s'", what, name);
    if (e && !sg)
        loom_err_hint(e, "declare it under resources.%s", model ? "models" : "indexes");
}

static void check_kernel(wf_ctx_t *C, const loom_value_t *v, const char *field)
{
    const char *k;
    if (!wf_get_string(C, v, field, &k))
        return;
    size_t n = strlen(k);
    bool is_path = strchr(k, '/') || (n > 5 && strcmp(k + n - 5, ".mlir") == 0);
    if (!is_path) {
        for (size_t i = 0; builtin_kernels[i]; i++)
            if (!strcmp(k, builtin_kernels[i]))
                return;
        const char *sg = wf_suggest(k, builtin_kernels, sizeof builtin_kernels / sizeof *builtin_kernels - 1);
        loom_err_t *e = sg ? wf_report(C, v->line, v->col, field, "unknown kernel '%s' (did you mean '%s'?)", k, sg)
                           : wf_report(C, v->line, v->col, field, "unknown kernel '%s'", k);
        if (e && !sg)
            loom_err_hint(e, "builtin kernels: matmul, softmax, rmsnorm, vector.search, qmatmul; "
                             "or a path to a .mlir file");
        return;
    }
    if (n < 5 || strcmp(k + n - 5, ".mlir") != 0) {
        wf_report(C, v->line, v->col, field, "kernel file '%s' must end in .mlir", k);
        return;
    }
    if (C->check_files) {
        char *p = k[0] == '/' ? loom_arena_strdup(C->a, k) : loom_arena_sprintf(C->a, "%s/%s", C->wf->dir, k);
        struct stat st;
        if (p && stat(p, &st) != 0)
            wf_report(C, v->line, v->col, field, "kernel file '%s' not found (looked at %s)", k, p);
    }
}

static void check_field(wf_ctx_t *C, loom_wf_step_t *s, const fspec_t *f, const loom_value_t *v, const char *field)
{
    int64_t iv;
    double dv;
    switch (f->type) {
    case F_STR:
        if (!is_scalar_text(v))
            wf_bad_type(C, v, field, "a string");
        else
            wf_check_templates(C, v, field);
        break;
    case F_STR_LIST:
    case F_ARGV:
        if (v->kind != LOOM_VALUE_SEQ) {
            if (f->type == F_ARGV && v->kind == LOOM_VALUE_STRING) {
                loom_err_t *e = wf_report(C, v->line, v->col, field,
                                       "argv must be a list of strings, not a shell command line");
                if (e)
                    loom_err_hint(e, "write argv: [program, arg1, arg2]; Loom never runs a shell");
            } else {
                wf_bad_type(C, v, field, "a list of strings");
            }
            break;
        }
        if (f->type == F_ARGV && v->len == 0)
            wf_report(C, v->line, v->col, field, "argv must name at least the program to run");
        for (size_t i = 0; i < v->len; i++) {
            const char *fi = wf_idx(C, field, i);
            if (!is_scalar_text(v->items[i]))
                wf_bad_type(C, v->items[i], fi, "a string");
            else
                wf_check_templates(C, v->items[i], fi);
        }
        break;
    case F_STR_OR_LIST:
        if (v->kind == LOOM_VALUE_SEQ) {
            fspec_t l = {f->name, F_STR_LIST, false};
            check_field(C, s, &l, v, field);
        } else if (!is_scalar_text(v)) {
            wf_bad_type(C, v, field, "a string or a list of strings");
        } else {
            wf_check_templates(C, v, field);
        }
        break;
    case F_STR_MAP:
        if (v->kind != LOOM_VALUE_MAP) {
            wf_bad_type(C, v, field, "a mapping of names to strings");
            break;
        }
        for (size_t i = 0; i < v->len; i++) {
            const char *fi = wf_join(C, field, v->entries[i].key);
            if (!is_scalar_text(v->entries[i].value))
                wf_bad_type(C, v->entries[i].value, fi, "a string");
            else
                wf_check_templates(C, v->entries[i].value, fi);
        }
        break;
    case F_ANY: wf_check_templates(C, v, field); break;
    case F_INT:
    case F_INT_POS:
    case F_INT_NONNEG:
        if (!is_single_ref(C, v, field))
            wf_get_int(C, v, field, f->type == F_INT ? INT64_MIN : f->type == F_INT_POS ? 1 : 0, INT64_MAX, &iv);
        break;
    case F_BOUND: /* no references: the planner needs the bound before the run */
        wf_get_int(C, v, field, 1, INT64_MAX, &iv);
        break;
    case F_NUM_NONNEG:
    case F_PROB:
        if (!is_single_ref(C, v, field))
            wf_get_number(C, v, field, 0, f->type == F_PROB ? 1 : INFINITY, &dv);
        break;
    case F_BOOL:
        if (v->kind != LOOM_VALUE_BOOL && !is_single_ref(C, v, field))
            wf_bad_type(C, v, field, "true or false");
        break;
    case F_MODEL: check_resource_name(C, v, field, true, s); break;
    case F_INDEX: check_resource_name(C, v, field, false, s); break;
    case F_METHOD: wf_get_enum(C, v, field, methods, "HTTP method"); break;
    case F_FORMAT: wf_get_enum(C, v, field, formats, "format"); break;
    case F_PARSE: wf_get_enum(C, v, field, parses, "parse mode"); break;
    case F_FAIL_ON: wf_get_enum(C, v, field, fail_ons, "fail_on value"); break;
    case F_STATUS: check_statuses(C, v, field); break;
    case F_SCHEMA:
        if (v->kind != LOOM_VALUE_MAP)
            wf_bad_type(C, v, field, "a JSON Schema mapping (type, properties, required, items, enum)");
        break;
    case F_KERNEL: check_kernel(C, v, field); break;
    case F_MESSAGES:
        if (v->kind != LOOM_VALUE_SEQ || v->len == 0) {
            wf_bad_type(C, v, field, "a non-empty list of {role, content}");
            break;
        }
        for (size_t i = 0; i < v->len; i++) {
            const loom_value_t *m = v->items[i];
            const char *fi = wf_idx(C, field, i);
            static const char *const roles[] = {"system", "user", "assistant", "tool", NULL};
            const loom_value_t *role = loom_value_get(m, "role"), *content = loom_value_get(m, "content");
            if (m->kind != LOOM_VALUE_MAP || !role || !content || m->len != 2) {
                wf_bad_type(C, m, fi, "a mapping with exactly role and content");
                continue;
            }
            wf_get_enum(C, role, wf_join(C, fi, "role"), roles, "role");
            if (!is_scalar_text(content))
                wf_bad_type(C, content, wf_join(C, fi, "content"), "a string");
            else
                wf_check_templates(C, content, wf_join(C, fi, "content"));
        }
        break;
    case F_BODY:
        if (s->body)
            wf_check_graph(C, s->body, field);
        break;
    case F_EXPR: {
        if (C->nframes >= MAX_FRAMES || !s->body)
            break;
        wf_frame_t *f2 = &C->frames[C->nframes++];
        memset(f2, 0, sizeof *f2);
        f2->graph = s->body;
        s->until = check_expr(C, v, field);
        C->nframes--;
        break;
    }
    case F_STEP_ID: {
        const char *id;
        if (wf_get_string(C, v, field, &id))
            link_step(C, id, v->line, v->col, field, "step");
        break;
    }
    }
}

static void check_expect(wf_ctx_t *C, loom_wf_step_t *s, const loom_value_t *v, const char *field)
{
    if (v->kind != LOOM_VALUE_MAP) {
        wf_bad_type(C, v, field, "a mapping of planner hints");
        return;
    }
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const char *fi = wf_join(C, field, e->key);
        double x = -1;
        double *slot = NULL;
        double lo = 0, hi = INFINITY;
        if (!strcmp(e->key, "latency_ms")) slot = &s->expect.latency_ms;
        else if (!strcmp(e->key, "p95_ms")) slot = &s->expect.p95_ms;
        else if (!strcmp(e->key, "prompt_tokens")) slot = &s->expect.prompt_tokens;
        else if (!strcmp(e->key, "output_tokens")) slot = &s->expect.output_tokens;
        else if (!strcmp(e->key, "probability")) slot = &s->expect.probability, hi = 1;
        else if (!strcmp(e->key, "iterations")) slot = &s->expect.iterations, lo = 1;
        else if (!strcmp(e->key, "items")) slot = &s->expect.items;
        if (!slot) {
            wf_unknown_field(C, e, field, NULL, expect_fields, sizeof expect_fields / sizeof *expect_fields - 1);
            continue;
        }
        if (wf_get_number(C, e->value, fi, lo, hi, &x))
            *slot = x;
    }
}

static void check_foreach(wf_ctx_t *C, loom_wf_step_t *s, const loom_value_t *v, const char *field)
{
    wf_frame_t *f = &C->frames[C->nframes - 1];
    f->in_foreach = true;
    if (v->kind == LOOM_VALUE_SEQ) {
        wf_check_templates(C, v, field);
        s->foreach = v;
    } else if (v->kind == LOOM_VALUE_STRING && (wf_check_templates(C, v, field), loom_template_single_ref(v->tpl))) {
        const loom_ref_t *r = loom_template_single_ref(v->tpl);
        const loom_wf_input_t *in = r->kind == LOOM_REF_INPUT && r->n_path == 0 ? loom_workflow_input(C->wf, r->name) : NULL;
        if (in && in->type != LOOM_WF_TYPE_LIST && in->type != LOOM_WF_TYPE_ANY)
            wf_report(C, v->line, ref_col(v, r->name_off), field, "foreach needs a list, but input '%s' is a %s",
                   in->name, loom_wf_type_name(in->type));
        else if (r->kind == LOOM_REF_LOOP_ITERATION)
            wf_report(C, v->line, ref_col(v, r->name_off), field, "foreach needs a list, but loop.iteration is a number");
        s->foreach = v;
    } else if (v->kind == LOOM_VALUE_STRING && v->tpl) {
        wf_report(C, v->line, v->col, field, "foreach needs a list or a single ${...} reference to one, got text around a reference");
    } else {
        loom_err_t *e = wf_report(C, v->line, v->col, field, "foreach needs a list, got %s", wf_describe(C, v));
        if (e)
            loom_err_hint(e, "use a YAML list or one reference such as ${steps.plan.output.items}");
    }
    f->in_foreach = false;
}

static void check_step(wf_ctx_t *C, loom_wf_graph_t *g, wf_stepinfo_t *si, const char *prefix)
{
    loom_wf_step_t *s = si->step;
    const char *path = wf_join(C, prefix, s->id);
    if (C->nframes >= MAX_FRAMES)
        return;
    wf_frame_t *f = &C->frames[C->nframes++];
    memset(f, 0, sizeof *f);
    f->step = s;
    f->graph = g;
    f->foreach = loom_value_get(s->node, "foreach") != NULL;
    const fspec_t *spec = si->op_ok ? op_fields[s->op] : NULL;
    const char *known[32];
    size_t nk = 0;
    for (size_t i = 0; common_fields[i]; i++)
        known[nk++] = common_fields[i];
    for (size_t i = 0; spec && spec[i].name && nk < 32; i++)
        known[nk++] = spec[i].name;
    const char *suggested[8], *sg; /* fields proposed for misspelt keys */
    size_t nsugg = 0;
    for (size_t i = 0; i < s->node->len; i++) {
        const loom_value_entry_t *e = &s->node->entries[i];
        const loom_value_t *v = e->value;
        const char *fi = wf_join(C, path, e->key);
        int64_t iv;
        if (!strcmp(e->key, "op") || !strcmp(e->key, "description")) {
            if (!strcmp(e->key, "description") && v->kind != LOOM_VALUE_STRING)
                wf_bad_type(C, v, fi, "a string");
        } else if (!strcmp(e->key, "needs")) {
            if (v->kind != LOOM_VALUE_SEQ) {
                loom_err_t *r = wf_report(C, v->line, v->col, fi, "expected a list of step ids, got %s", wf_describe(C, v));
                if (r)
                    loom_err_hint(r, "write needs: [%s]", v->kind == LOOM_VALUE_STRING ? v->str : "step_id");
                continue;
            }
            for (size_t k = 0; k < v->len; k++) {
                const char *id;
                const char *fk = wf_idx(C, fi, k);
                if (wf_get_string(C, v->items[k], fk, &id))
                    link_step(C, id, v->items[k]->line, v->items[k]->col, fk, "step");
            }
        } else if (!strcmp(e->key, "when")) {
            s->when = check_expr(C, v, fi);
        } else if (!strcmp(e->key, "foreach")) {
            check_foreach(C, s, v, fi);
        } else if (!strcmp(e->key, "retries")) {
            if (wf_get_int(C, v, fi, 0, MAX_RETRIES, &iv))
                s->retries = (int)iv;
        } else if (!strcmp(e->key, "timeout_ms")) {
            if (wf_get_int(C, v, fi, 1, INT64_MAX, &iv))
                s->timeout_ms = iv;
        } else if (!strcmp(e->key, "expect")) {
            check_expect(C, s, v, fi);
        } else {
            const fspec_t *fs = NULL;
            for (size_t k = 0; spec && spec[k].name && !fs; k++)
                if (!strcmp(spec[k].name, e->key))
                    fs = &spec[k];
            if (fs)
                check_field(C, s, fs, v, fi);
            else if (si->op_ok && (sg = wf_unknown_field(C, e, path, loom_op_kind_name(s->op), known, nk)) &&
                     nsugg < 8)
                suggested[nsugg++] = sg;
        }
    }
    for (size_t k = 0; spec && spec[k].name; k++) {
        if (!spec[k].required || loom_value_get(s->node, spec[k].name))
            continue;
        bool misspelt = false; /* already reported as "did you mean" */
        for (size_t j = 0; j < nsugg; j++)
            misspelt |= !strcmp(suggested[j], spec[k].name);
        if (misspelt)
            continue;
        if (s->op == LOOM_OP_LOOP && !strcmp(spec[k].name, "body"))
            continue; /* reported while collecting */
        loom_err_t *r = wf_report(C, s->line, s->col, path, "missing required field '%s' for op %s", spec[k].name,
                               loom_op_kind_name(s->op));
        if (r && s->op == LOOM_OP_LOOP && !strcmp(spec[k].name, "max_iterations"))
            loom_err_hint(r, "loops must be bounded: add max_iterations: N");
    }
    if (si->op_ok && s->op == LOOM_OP_LLM_GENERATE) {
        bool p = loom_value_get(s->node, "prompt"), m = loom_value_get(s->node, "messages");
        bool misspelt = false;
        for (size_t j = 0; j < nsugg; j++)
            misspelt |= !strcmp(suggested[j], "prompt") || !strcmp(suggested[j], "messages");
        if (p == m && !(misspelt && !p))
            wf_report(C, s->line, s->col, path, p ? "give either prompt or messages, not both"
                                               : "missing required field 'prompt' (or 'messages') for op llm.generate");
    }
    if (si->op_ok && s->op == LOOM_OP_LOOP) {
        const loom_value_t *mi = loom_value_get(s->node, "max_iterations");
        if (mi && mi->kind == LOOM_VALUE_INT && mi->i >= 1) {
            if (mi->i > MAX_ITERATIONS)
                wf_report(C, mi->line, mi->col, wf_join(C, path, "max_iterations"), "must be at most %d, got %lld",
                       MAX_ITERATIONS, (long long)mi->i);
            else
                s->max_iterations = (int)mi->i;
            if (s->expect.iterations > 0 && s->expect.iterations > (double)mi->i)
                wf_report(C, mi->line, mi->col, wf_join(C, path, "expect.iterations"),
                       "expected iterations (%g) exceed max_iterations (%lld)", s->expect.iterations, (long long)mi->i);
        }
    }
    if (s->expect.probability >= 0 && !s->when) {
        const loom_value_t *ex = loom_value_get(s->node, "expect");
        const loom_value_t *pv = loom_value_get(ex, "probability");
        if (pv)
            wf_report(C, pv->line, pv->col, wf_join(C, path, "expect.probability"),
                   "a branch probability needs a when: condition on the step");
    }
    s->deps = f->deps.v;
    s->n_deps = f->deps.n;
    C->nframes--;
}

/* ---- pass 1: steps and ids ------------------------------------------------------ */

static void register_id(wf_ctx_t *C, const char *id)
{
    if (C->n_ids == C->cap_ids) {
        size_t cap = C->cap_ids ? C->cap_ids * 2 : 16;
        const char **n = loom_arena_alloc(C->a, cap * sizeof *n);
        if (!n)
            return;
        if (C->n_ids)
            memcpy(n, C->all_ids, C->n_ids * sizeof *n);
        C->all_ids = n;
        C->cap_ids = cap;
    }
    C->all_ids[C->n_ids++] = id;
}

void wf_collect_graph(wf_ctx_t *C, const loom_value_t *map, const char *prefix, loom_wf_graph_t *g,
                          const loom_wf_step_t *owner, int nest)
{
    g->owner = owner;
    if (map->kind != LOOM_VALUE_MAP) {
        loom_err_t *e = wf_report(C, map->line, map->col, prefix, "expected a mapping from step ids to steps, got %s",
                               wf_describe(C, map));
        if (e && map->kind == LOOM_VALUE_SEQ)
            loom_err_hint(e, "steps are keyed by id: write 'steps:' then 'my_step: {op: ...}'");
        return;
    }
    if (map->len == 0) {
        wf_report(C, map->line, map->col, prefix, "needs at least one step");
        return;
    }
    g->steps = loom_arena_calloc(C->a, map->len, sizeof *g->steps);
    if (!g->steps)
        return;
    g->n_steps = map->len;
    for (size_t i = 0; i < map->len; i++) {
        const loom_value_entry_t *e = &map->entries[i];
        loom_wf_step_t *s = &g->steps[i];
        wf_stepinfo_t *si = loom_arena_calloc(C->a, 1, sizeof *si);
        if (!si)
            return;
        s->id = e->key;
        s->index = i;
        s->line = e->line;
        s->col = e->col;
        s->node = e->value;
        s->expect = (loom_wf_expect_t){-1, -1, -1, -1, -1, -1, -1};
        s->op = LOOM_OP_NOOP;
        si->step = s;
        si->graph = g;
        const char *path = wf_join(C, prefix, e->key);
        if (!wf_is_ident(e->key))
            wf_report(C, e->line, e->col, path,
                   "invalid step id '%s' (use letters, digits, '_' and '-', starting with a letter)", e->key);
        wf_stepinfo_t *prev = loom_map_get(C->ids, e->key);
        if (prev)
            wf_report(C, e->line, e->col, path, "duplicate step id '%s' (first defined at line %d)", e->key,
                   prev->step->line);
        else if (loom_map_put(C->ids, e->key, si) == 0)
            register_id(C, e->key);
        if (e->value->kind != LOOM_VALUE_MAP) {
            /* replace with an empty map so later passes can read it */
            static const loom_value_t empty = {.kind = LOOM_VALUE_MAP};
            wf_bad_type(C, e->value, path, "a step (a mapping with an 'op' field)");
            s->node = &empty;
            continue;
        }
        const loom_value_t *op = loom_value_get(e->value, "op");
        const char *fop = wf_join(C, path, "op");
        if (!op) {
            wf_report(C, e->line, e->col, path, "missing required field 'op'");
            continue;
        }
        if (op->kind != LOOM_VALUE_STRING) {
            wf_bad_type(C, op, fop, "an op name");
            continue;
        }
        int k = loom_op_kind_parse(op->str);
        if (k < 0) {
            const char *sg = wf_suggest(op->str, wf_op_names, LOOM_OP__COUNT);
            loom_err_t *r = sg ? wf_report(C, op->line, op->col, fop, "unknown op '%s' (did you mean '%s'?)", op->str, sg)
                               : wf_report(C, op->line, op->col, fop, "unknown op '%s'", op->str);
            if (r && !sg)
                loom_err_hint(r, "ops: llm.generate, embed, vector.search, tool.exec, tool.http, compute, "
                                 "loop, echo, sleep, noop, llm.prefill, llm.decode");
            continue;
        }
        s->op = (loom_op_kind_t)k;
        si->op_ok = true;
        if (s->op != LOOM_OP_LOOP)
            continue;
        const loom_value_t *body = loom_value_get(e->value, "body");
        if (!body) {
            wf_report(C, e->line, e->col, path, "missing required field 'body' for op loop");
        } else if (nest >= MAX_LOOP_NESTING) {
            wf_report(C, body->line, body->col, wf_join(C, path, "body"), "loops nested more than %d deep",
                   MAX_LOOP_NESTING);
        } else {
            s->body = loom_arena_calloc(C->a, 1, sizeof *s->body);
            if (s->body)
                wf_collect_graph(C, body, wf_join(C, path, "body"), s->body, s, nest + 1);
            if (s->body && !s->body->steps)
                s->body = NULL;
        }
    }
}

/* ---- pass 3: topological order ---------------------------------------------------- */

static int cmp_level(const void *a, const void *b, void *arg)
{
    const loom_wf_step_t *st = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (st[x].level != st[y].level)
        return st[x].level < st[y].level ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void report_cycle(wf_ctx_t *C, loom_wf_graph_t *g, const int *indeg, const char *prefix)
{
    size_t n = g->n_steps, start = 0;
    while (start < n && indeg[start] == 0)
        start++;
    size_t *pos = calloc(n, sizeof *pos), *walk = calloc(n + 1, sizeof *walk);
    if (!pos || !walk)
        goto out;
    size_t len = 0, cur = start;
    /* Every remaining step waits on another remaining step: walk until a repeat. */
    while (!pos[cur]) {
        walk[len++] = cur;
        pos[cur] = len;
        const loom_wf_step_t *s = &g->steps[cur];
        size_t next = n;
        for (size_t i = 0; i < s->n_deps && next == n; i++)
            if (indeg[s->deps[i].step] > 0)
                next = s->deps[i].step;
        if (next == n)
            goto out; /* cannot happen */
        cur = next;
    }
    size_t first = pos[cur] - 1, clen = len - first, lo = first;
    for (size_t i = first; i < len; i++)
        if (walk[i] < walk[lo])
            lo = i;
    /* cycle in "needs" order, starting from its first step in the file */
    char msg[200] = "";
    for (size_t k = 0; k < clen; k++) {
        size_t a = walk[first + (lo - first + k) % clen], b = walk[first + (lo - first + k + 1) % clen];
        snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s%s needs %s", k ? ", " : "", g->steps[a].id,
                 g->steps[b].id);
    }
    const loom_wf_step_t *s0 = &g->steps[walk[lo]];
    size_t s1 = walk[first + (lo - first + 1) % clen];
    const loom_wf_dep_t *d = NULL;
    for (size_t i = 0; i < s0->n_deps && !d; i++)
        if (s0->deps[i].step == s1)
            d = &s0->deps[i];
    loom_err_t *e = wf_report(C, d ? d->line : s0->line, d ? d->col : s0->col, d ? d->field : wf_join(C, prefix, s0->id),
                           "dependency cycle: %s", msg);
    if (e)
        loom_err_hint(e, "steps run once; to repeat work use op: loop with max_iterations");
out:
    free(pos);
    free(walk);
}

static void order_graph(wf_ctx_t *C, loom_wf_graph_t *g, const char *prefix)
{
    size_t n = g->n_steps;
    if (!n)
        return;
    int *indeg = calloc(n, sizeof *indeg);
    size_t *nsucc = calloc(n + 1, sizeof *nsucc), *succ = NULL, *queue = calloc(n, sizeof *queue);
    size_t *order = loom_arena_alloc(C->a, n * sizeof *order);
    size_t total = 0, head = 0, tail = 0;
    if (!indeg || !nsucc || !queue || !order)
        goto out;
    for (size_t i = 0; i < n; i++) {
        indeg[i] = (int)g->steps[i].n_deps;
        total += g->steps[i].n_deps;
        for (size_t k = 0; k < g->steps[i].n_deps; k++)
            nsucc[g->steps[i].deps[k].step + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        nsucc[i + 1] += nsucc[i]; /* prefix sums: successors of i at [nsucc[i], nsucc[i+1]) */
    succ = calloc(total + 1, sizeof *succ);
    size_t *fill = calloc(n, sizeof *fill);
    if (!succ || !fill) {
        free(fill);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g->steps[i].n_deps; k++) {
            size_t d = g->steps[i].deps[k].step;
            succ[nsucc[d] + fill[d]++] = i;
        }
    free(fill);
    for (size_t i = 0; i < n; i++) {
        g->steps[i].level = 0;
        if (indeg[i] == 0)
            queue[tail++] = i;
    }
    while (head < tail) {
        size_t u = queue[head++];
        for (size_t k = nsucc[u]; k < nsucc[u + 1]; k++) {
            size_t v = succ[k];
            if (g->steps[v].level < g->steps[u].level + 1)
                g->steps[v].level = g->steps[u].level + 1;
            if (--indeg[v] == 0)
                queue[tail++] = v;
        }
    }
    if (tail < n) {
        report_cycle(C, g, indeg, prefix);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        if (g->steps[i].level + 1 > g->n_levels)
            g->n_levels = g->steps[i].level + 1;
    }
    qsort_r(order, n, sizeof *order, cmp_level, g->steps);
    g->order = order;
out:
    free(indeg);
    free(nsucc);
    free(succ);
    free(queue);
}

void wf_check_graph(wf_ctx_t *C, loom_wf_graph_t *g, const char *prefix)
{
    for (size_t i = 0; i < g->n_steps; i++) {
        wf_stepinfo_t *si = loom_map_get(C->ids, g->steps[i].id);
        wf_stepinfo_t local = {&g->steps[i], g, false};
        if (!si || si->step != &g->steps[i]) {
            /* a duplicate id: validate its fields anyway */
            const loom_value_t *op = loom_value_get(g->steps[i].node, "op");
            local.op_ok = op && op->kind == LOOM_VALUE_STRING && loom_op_kind_parse(op->str) >= 0;
            si = &local;
        }
        check_step(C, g, si, prefix);
    }
    order_graph(C, g, prefix);
}
