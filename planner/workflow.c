/* workflow.c — see workflow.h; the format is documented in planner/README.md.
 *
 * Loading runs in three passes over the YAML value tree (planner/value.c):
 *   1. structure: top-level sections, inputs, resources, and every step's id
 *      and op (recursing into loop bodies), so references can be checked
 *      against the full set of ids whatever their order in the file;
 *   2. fields: per-op validation, templates and expressions parsed in place,
 *      references resolved into dependency edges (hoisted to the enclosing
 *      loop step when a body step reads an outer step);
 *   3. graph: a topological order and levels per graph; a cycle is named.
 * Errors never stop a pass: every one found is appended to the diagnostics. */
#include "planner/workflow.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/map.h"

#define MAX_FILE_BYTES (4u << 20)
#define MAX_LOOP_NESTING 8
#define MAX_ITERATIONS 100000
#define MAX_RETRIES 100
#define MAX_FRAMES (MAX_LOOP_NESTING + 4)

/* ---- names ------------------------------------------------------------------ */

static const char *const op_names[LOOM_OP__COUNT] = {
    [LOOM_OP_LLM_GENERATE] = "llm.generate", [LOOM_OP_LLM_PREFILL] = "llm.prefill",
    [LOOM_OP_LLM_DECODE] = "llm.decode",     [LOOM_OP_EMBED] = "embed",
    [LOOM_OP_VECTOR_SEARCH] = "vector.search", [LOOM_OP_TOOL_EXEC] = "tool.exec",
    [LOOM_OP_TOOL_HTTP] = "tool.http",       [LOOM_OP_COMPUTE] = "compute",
    [LOOM_OP_NOOP] = "noop",                 [LOOM_OP_SLEEP] = "sleep",
    [LOOM_OP_ECHO] = "echo",                 [LOOM_OP_LOOP] = "loop",
};

const char *loom_op_kind_name(loom_op_kind_t op)
{
    return (unsigned)op < LOOM_OP__COUNT ? op_names[op] : "?";
}

int loom_op_kind_parse(const char *name)
{
    for (int i = 0; name && i < LOOM_OP__COUNT; i++)
        if (strcmp(name, op_names[i]) == 0)
            return i;
    return -1;
}

static const char *const type_names[] = {"any", "string", "int", "number", "bool", "list", "object"};

const char *loom_wf_type_name(loom_wf_type_t t)
{
    return (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "?";
}

int loom_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 64 || m > 64)
        return 255;
    int prev[65], cur[65];
    for (size_t j = 0; j <= m; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int c = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < c)
                c = prev[j] + 1;
            if (cur[j - 1] + 1 < c)
                c = cur[j - 1] + 1;
            cur[j] = c;
        }
        memcpy(prev, cur, sizeof(int) * (m + 1));
    }
    return prev[m] > 255 ? 255 : prev[m];
}

/* The closest candidate within a distance that scales with the word, or NULL. */
static const char *suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    int bestd = 255, limit = ((int)strlen(word) + 2) / 3;
    if (limit < 1)
        limit = 1;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        int d = loom_edit_distance(word, cands[i]);
        if (d < bestd && d <= limit) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}

/* ---- context ------------------------------------------------------------------ */

typedef struct stepinfo {
    loom_wf_step_t *step;
    loom_wf_graph_t *graph;
    bool op_ok;
} stepinfo_t;

typedef struct depvec {
    loom_wf_dep_t *v;
    size_t n, cap;
} depvec_t;

/* A scope being validated: the step whose fields are read (NULL for the
 * workflow's outputs and for a loop's `until:`) in its graph. */
typedef struct frame {
    loom_wf_step_t *step;
    loom_wf_graph_t *graph;
    depvec_t deps;
    bool foreach;      /* the step has foreach: ${item} is defined */
    bool in_foreach;   /* validating the foreach field itself */
} frame_t;

typedef struct ctx {
    loom_workflow_t *wf;
    loom_arena_t *a;
    loom_diags_t *d;
    const char *file;
    int errors;
    bool check_files;
    loom_map_t *ids;         /* step id -> stepinfo_t (borrowed) */
    const char **all_ids;    /* for suggestions */
    size_t n_ids, cap_ids;
    frame_t frames[MAX_FRAMES];
    int nframes;
} ctx_t;

static loom_err_t *report(ctx_t *C, int line, int col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static loom_err_t *report(ctx_t *C, int line, int col, const char *field, const char *fmt, ...)
{
    C->errors++;
    loom_err_t *e = loom_diags_add(C->d);
    if (!e)
        return NULL;
    e->code = LOOM_EPARSE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    loom_err_at(e, C->file, line, col);
    if (field && *field)
        loom_err_field(e, "%s", field);
    return e;
}

static const char *join(ctx_t *C, const char *path, const char *key)
{
    const char *s = *path ? loom_arena_sprintf(C->a, "%s.%s", path, key) : loom_arena_strdup(C->a, key);
    return s ? s : "?";
}

static const char *idx(ctx_t *C, const char *path, size_t i)
{
    const char *s = loom_arena_sprintf(C->a, "%s[%zu]", path, i);
    return s ? s : "?";
}

/* "string 'abc'", "int 5", "a list", ... for type errors. */
static const char *describe(ctx_t *C, const loom_value_t *v)
{
    const char *s = NULL;
    switch (v->kind) {
    case LOOM_VALUE_NULL: return "nothing (null)";
    case LOOM_VALUE_SEQ: return "a list";
    case LOOM_VALUE_MAP: return "a mapping";
    case LOOM_VALUE_STRING:
        s = loom_arena_sprintf(C->a, "string '%.40s%s'", v->str, v->str_len > 40 ? "..." : "");
        break;
    default: s = loom_arena_sprintf(C->a, "%s %.40s", loom_value_kind_name(v->kind), v->str); break;
    }
    return s ? s : "a value";
}

static void bad_type(ctx_t *C, const loom_value_t *v, const char *field, const char *want)
{
    report(C, v->line, v->col, field, "expected %s, got %s", want, describe(C, v));
}

static void unknown_field(ctx_t *C, const loom_value_entry_t *e, const char *path, const char *what,
                          const char *const *known, size_t n)
{
    const char *s = suggest(e->key, known, n);
    loom_err_t *r = report(C, e->line, e->col, path, "unknown field '%s'%s%s%s%s", e->key, what ? " for " : "",
                           what ? what : "", s ? " (did you mean '" : "", s ? s : "");
    if (r && s)
        strncat(r->msg, "'?)", sizeof r->msg - strlen(r->msg) - 1);
}

/* ---- scalar checks -------------------------------------------------------------- */

static bool is_ident(const char *s)
{
    if (!s || !(((*s | 32) >= 'a' && (*s | 32) <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(((*s | 32) >= 'a' && (*s | 32) <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool get_string(ctx_t *C, const loom_value_t *v, const char *field, const char **out)
{
    if (v->kind != LOOM_VALUE_STRING) {
        bad_type(C, v, field, "a string");
        return false;
    }
    *out = v->str;
    return true;
}

/* Integer in [lo, hi]; a float with an integral value is accepted. */
static bool get_int(ctx_t *C, const loom_value_t *v, const char *field, int64_t lo, int64_t hi, int64_t *out)
{
    const char *want = lo == 1 && hi == INT64_MAX ? "a positive integer"
                       : lo == 0 && hi == INT64_MAX ? "a non-negative integer" : "an integer";
    if (v->kind == LOOM_VALUE_INT) {
        if (v->i < lo || v->i > hi) {
            if (hi == INT64_MAX)
                report(C, v->line, v->col, field, "must be %s, got %lld", want, (long long)v->i);
            else
                report(C, v->line, v->col, field, "must be between %lld and %lld, got %lld", (long long)lo,
                       (long long)hi, (long long)v->i);
            return false;
        }
        *out = v->i;
        return true;
    }
    bad_type(C, v, field, want);
    return false;
}

static bool get_number(ctx_t *C, const loom_value_t *v, const char *field, double lo, double hi, double *out)
{
    if (v->kind != LOOM_VALUE_INT && v->kind != LOOM_VALUE_FLOAT) {
        bad_type(C, v, field, "a number");
        return false;
    }
    if (!(v->f >= lo && v->f <= hi)) {
        if (isinf(hi))
            report(C, v->line, v->col, field, "must be a number >= %g, got %s", lo, v->str);
        else
            report(C, v->line, v->col, field, "must be between %g and %g, got %s", lo, hi, v->str);
        return false;
    }
    *out = v->f;
    return true;
}

/* One of words (NULL-terminated); reports with a suggestion. */
static int get_enum(ctx_t *C, const loom_value_t *v, const char *field, const char *const *words, const char *what)
{
    if (v->kind != LOOM_VALUE_STRING) {
        bad_type(C, v, field, what);
        return -1;
    }
    size_t n = 0;
    for (; words[n]; n++)
        if (strcmp(v->str, words[n]) == 0)
            return (int)n;
    const char *s = suggest(v->str, words, n);
    char list[256] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", words[i]);
    loom_err_t *e = s ? report(C, v->line, v->col, field, "unknown %s '%s' (did you mean '%s'?)", what, v->str, s)
                      : report(C, v->line, v->col, field, "unknown %s '%s'", what, v->str);
    if (e && !s)
        loom_err_hint(e, "one of: %s", list);
    return -1;
}

/* ---- references ------------------------------------------------------------------ */

static int ref_col(const loom_value_t *v, size_t off)
{
    return v->text_col ? v->text_col + (int)off : v->col;
}

static void add_dep(ctx_t *C, frame_t *f, size_t target, int line, int col, const char *field)
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
static void link_step(ctx_t *C, const char *name, int line, int col, const char *field, const char *what)
{
    stepinfo_t *si = loom_map_get(C->ids, name);
    if (!si) {
        const char *s = suggest(name, C->all_ids, C->n_ids);
        if (s)
            report(C, line, col, field, "unknown %s '%s' (did you mean '%s'?)", what, name, s);
        else
            report(C, line, col, field, "unknown %s '%s'", what, name);
        return;
    }
    for (int i = C->nframes - 1; i >= 0; i--) {
        if (C->frames[i].graph == si->graph) {
            add_dep(C, &C->frames[i], si->step->index, line, col, field);
            return;
        }
    }
    const loom_wf_step_t *owner = si->graph->owner;
    loom_err_t *e = report(C, line, col, field, "step '%s' is inside loop '%s' and cannot be read from here",
                           name, owner ? owner->id : "?");
    if (e && owner)
        loom_err_hint(e, "read the loop's result instead: ${steps.%s.output.%s}", owner->id, name);
}

static const frame_t *innermost_loop_body(ctx_t *C)
{
    for (int i = C->nframes - 1; i >= 0; i--)
        if (C->frames[i].graph->owner)
            return &C->frames[i];
    return NULL;
}

static void check_ref(ctx_t *C, const loom_ref_t *r, const loom_value_t *v, const char *field)
{
    int line = v->line, col = ref_col(v, r->name_off);
    const frame_t *top = C->nframes ? &C->frames[C->nframes - 1] : NULL;
    switch (r->kind) {
    case LOOM_REF_INPUT:
        if (!loom_workflow_input(C->wf, r->name)) {
            const char *cands[64] = {0};
            size_t n = 0;
            for (size_t i = 0; i < C->wf->n_inputs && n < 64; i++)
                cands[n++] = C->wf->inputs[i].name;
            const char *s = suggest(r->name, cands, n);
            loom_err_t *e = s ? report(C, line, col, field, "unknown input '%s' (did you mean '%s'?)", r->name, s)
                              : report(C, line, col, field, "unknown input '%s'", r->name);
            if (e && !s)
                loom_err_hint(e, "declare it under inputs:");
        }
        return;
    case LOOM_REF_STEP:
        link_step(C, r->name, line, col, field, "step");
        return;
    case LOOM_REF_LOOP_ITERATION:
    case LOOM_REF_LOOP_PREV: {
        const frame_t *lf = innermost_loop_body(C);
        if (!lf) {
            report(C, line, col, field, "'loop.%s' is only defined inside a loop's body or until:",
                   r->kind == LOOM_REF_LOOP_PREV ? "prev" : "iteration");
            return;
        }
        if (r->kind == LOOM_REF_LOOP_PREV && !loom_wf_graph_find(lf->graph, r->name)) {
            const char *cands[256] = {0};
            size_t n = 0;
            for (size_t i = 0; i < lf->graph->n_steps && n < 256; i++)
                cands[n++] = lf->graph->steps[i].id;
            const char *s = suggest(r->name, cands, n);
            if (s)
                report(C, line, col, field, "unknown step '%s' in loop '%s' (did you mean '%s'?)", r->name,
                       lf->graph->owner->id, s);
            else
                report(C, line, col, field, "unknown step '%s' in loop '%s'", r->name, lf->graph->owner->id);
        }
        return;
    }
    case LOOM_REF_ITEM: {
        bool ok = false;
        for (int i = 0; i < C->nframes; i++)
            if (C->frames[i].foreach && !C->frames[i].in_foreach)
                ok = true;
        if (!ok || (top && top->in_foreach))
            report(C, line, col, field, "'item' is only defined in a step with foreach:");
        return;
    }
    }
}

/* Parses every string inside v as a template (storing it in the node) and
 * checks its references. */
static void check_templates(ctx_t *C, const loom_value_t *v, const char *field)
{
    if (v->kind == LOOM_VALUE_STRING) {
        loom_template_t *t = NULL;
        loom_expr_error_t pe = {0};
        int rc = loom_template_parse(C->a, v->str, v->str_len, &t, &pe);
        if (rc == LOOM_EPARSE) {
            report(C, v->line, ref_col(v, pe.off), field, "%s", pe.msg);
            return;
        }
        ((loom_value_t *)v)->tpl = t; /* set once, during load */
        for (size_t i = 0; i < loom_template_n_refs(t); i++)
            check_ref(C, loom_template_ref(t, i), v, field);
    } else if (v->kind == LOOM_VALUE_SEQ) {
        for (size_t i = 0; i < v->len; i++)
            check_templates(C, v->items[i], idx(C, field, i));
    } else if (v->kind == LOOM_VALUE_MAP) {
        for (size_t i = 0; i < v->len; i++)
            check_templates(C, v->entries[i].value, join(C, field, v->entries[i].key));
    }
}

/* when: / until: */
static const loom_expr_t *check_expr(ctx_t *C, const loom_value_t *v, const char *field)
{
    if (v->kind != LOOM_VALUE_STRING && v->kind != LOOM_VALUE_BOOL) {
        bad_type(C, v, field, "an expression (a string)");
        return NULL;
    }
    loom_expr_t *e = NULL;
    loom_expr_error_t pe = {0};
    int rc = loom_expr_parse(C->a, v->str, v->str_len, &e, &pe);
    if (rc) {
        if (rc == LOOM_EPARSE)
            report(C, v->line, ref_col(v, pe.off), field, "%s", pe.msg);
        return NULL;
    }
    for (size_t i = 0; i < loom_expr_n_refs(e); i++)
        check_ref(C, loom_expr_ref(e, i), v, field);
    return e;
}

/* A string whose whole text is one ${...}: accepted where a number is
 * expected; its value is checked when the step runs. */
static bool is_single_ref(ctx_t *C, const loom_value_t *v, const char *field)
{
    if (v->kind != LOOM_VALUE_STRING || v->str_len < 3 || v->str[0] != '$')
        return false;
    check_templates(C, v, field);
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
    {"seed", F_INT, false}, {"format", F_FORMAT, false}, {NULL, 0, false}};
static const fspec_t f_prefill[] = {
    {"model", F_MODEL, true}, {"prompt", F_STR, true}, {"system", F_STR, false}, {NULL, 0, false}};
static const fspec_t f_decode[] = {
    {"model", F_MODEL, true}, {"prefill", F_STEP_ID, true}, {"max_tokens", F_INT_POS, false},
    {"temperature", F_NUM_NONNEG, false}, {"top_p", F_PROB, false}, {"top_k", F_INT_NONNEG, false},
    {"stop", F_STR_LIST, false}, {"seed", F_INT, false}, {NULL, 0, false}};
static const fspec_t f_embed[] = {
    {"model", F_MODEL, true}, {"input", F_STR_OR_LIST, true}, {"normalize", F_BOOL, false}, {NULL, 0, false}};
static const fspec_t f_search[] = {
    {"index", F_INDEX, true}, {"query", F_ANY, true}, {"k", F_INT_POS, false},
    {"min_score", F_NUM_NONNEG, false}, {NULL, 0, false}};
static const fspec_t f_exec[] = {
    {"argv", F_ARGV, true}, {"stdin", F_STR, false}, {"env", F_STR_MAP, false}, {"cwd", F_STR, false},
    {"max_output_bytes", F_INT_POS, false}, {NULL, 0, false}};
static const fspec_t f_http[] = {
    {"method", F_METHOD, false}, {"url", F_STR, true}, {"headers", F_STR_MAP, false},
    {"body", F_ANY, false}, {"max_output_bytes", F_INT_POS, false}, {NULL, 0, false}};
static const fspec_t f_compute[] = {{"kernel", F_KERNEL, true}, {"args", F_ANY, false}, {NULL, 0, false}};
static const fspec_t f_noop[] = {{NULL, 0, false}};
static const fspec_t f_sleep[] = {{"ms", F_INT_NONNEG, true}, {NULL, 0, false}};
static const fspec_t f_echo[] = {{"value", F_ANY, true}, {NULL, 0, false}};
static const fspec_t f_loop[] = {
    {"body", F_BODY, true}, {"until", F_EXPR, false}, {"max_iterations", F_INT_POS, true}, {NULL, 0, false}};

static const fspec_t *const op_fields[LOOM_OP__COUNT] = {
    [LOOM_OP_LLM_GENERATE] = f_generate, [LOOM_OP_LLM_PREFILL] = f_prefill, [LOOM_OP_LLM_DECODE] = f_decode,
    [LOOM_OP_EMBED] = f_embed,           [LOOM_OP_VECTOR_SEARCH] = f_search, [LOOM_OP_TOOL_EXEC] = f_exec,
    [LOOM_OP_TOOL_HTTP] = f_http,        [LOOM_OP_COMPUTE] = f_compute,     [LOOM_OP_NOOP] = f_noop,
    [LOOM_OP_SLEEP] = f_sleep,           [LOOM_OP_ECHO] = f_echo,           [LOOM_OP_LOOP] = f_loop,
};

static const char *const common_fields[] = {"op", "needs", "when", "foreach", "retries", "timeout_ms",
                                            "expect", "description", NULL};
static const char *const expect_fields[] = {"latency_ms", "p95_ms", "prompt_tokens", "output_tokens",
                                            "probability", "iterations", "items", NULL};
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL};
static const char *const formats[] = {"text", "json", NULL};

static bool is_scalar_text(const loom_value_t *v)
{
    return v->kind == LOOM_VALUE_STRING || v->kind == LOOM_VALUE_INT || v->kind == LOOM_VALUE_FLOAT ||
           v->kind == LOOM_VALUE_BOOL;
}

static void check_graph(ctx_t *C, loom_wf_graph_t *g, const char *prefix);

static void check_resource_name(ctx_t *C, const loom_value_t *v, const char *field, bool model,
                                loom_wf_step_t *s)
{
    const char *name;
    if (!get_string(C, v, field, &name))
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
    const char *sg = suggest(name, cands, n);
    const char *what = model ? "model" : "index";
    loom_err_t *e = sg ? report(C, v->line, v->col, field, "unknown %s '%s' (did you mean '%s'?)", what, name, sg)
                       : report(C, v->line, v->col, field, "unknown %s '%s'", what, name);
    if (e && !sg)
        loom_err_hint(e, "declare it under resources.%s", model ? "models" : "indexes");
}

static void check_kernel(ctx_t *C, const loom_value_t *v, const char *field)
{
    const char *k;
    if (!get_string(C, v, field, &k))
        return;
    size_t n = strlen(k);
    bool is_path = strchr(k, '/') || (n > 5 && strcmp(k + n - 5, ".mlir") == 0);
    if (!is_path) {
        for (const char *p = k; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.')) {
                report(C, v->line, v->col, field,
                       "kernel must be a builtin name (lowercase, digits, '_', '.') or a path to a .mlir file");
                return;
            }
        if (!n)
            report(C, v->line, v->col, field, "kernel must not be empty");
        return;
    }
    if (n < 5 || strcmp(k + n - 5, ".mlir") != 0) {
        report(C, v->line, v->col, field, "kernel file '%s' must end in .mlir", k);
        return;
    }
    if (C->check_files) {
        char *p = k[0] == '/' ? loom_arena_strdup(C->a, k) : loom_arena_sprintf(C->a, "%s/%s", C->wf->dir, k);
        struct stat st;
        if (p && stat(p, &st) != 0)
            report(C, v->line, v->col, field, "kernel file '%s' not found (looked at %s)", k, p);
    }
}

static void check_field(ctx_t *C, loom_wf_step_t *s, const fspec_t *f, const loom_value_t *v, const char *field)
{
    int64_t iv;
    double dv;
    switch (f->type) {
    case F_STR:
        if (!is_scalar_text(v))
            bad_type(C, v, field, "a string");
        else
            check_templates(C, v, field);
        break;
    case F_STR_LIST:
    case F_ARGV:
        if (v->kind != LOOM_VALUE_SEQ) {
            if (f->type == F_ARGV && v->kind == LOOM_VALUE_STRING) {
                loom_err_t *e = report(C, v->line, v->col, field,
                                       "argv must be a list of strings, not a shell command line");
                if (e)
                    loom_err_hint(e, "write argv: [program, arg1, arg2]; Loom never runs a shell");
            } else {
                bad_type(C, v, field, "a list of strings");
            }
            break;
        }
        if (f->type == F_ARGV && v->len == 0)
            report(C, v->line, v->col, field, "argv must name at least the program to run");
        for (size_t i = 0; i < v->len; i++) {
            const char *fi = idx(C, field, i);
            if (!is_scalar_text(v->items[i]))
                bad_type(C, v->items[i], fi, "a string");
            else
                check_templates(C, v->items[i], fi);
        }
        break;
    case F_STR_OR_LIST:
        if (v->kind == LOOM_VALUE_SEQ) {
            fspec_t l = {f->name, F_STR_LIST, false};
            check_field(C, s, &l, v, field);
        } else if (!is_scalar_text(v)) {
            bad_type(C, v, field, "a string or a list of strings");
        } else {
            check_templates(C, v, field);
        }
        break;
    case F_STR_MAP:
        if (v->kind != LOOM_VALUE_MAP) {
            bad_type(C, v, field, "a mapping of names to strings");
            break;
        }
        for (size_t i = 0; i < v->len; i++) {
            const char *fi = join(C, field, v->entries[i].key);
            if (!is_scalar_text(v->entries[i].value))
                bad_type(C, v->entries[i].value, fi, "a string");
            else
                check_templates(C, v->entries[i].value, fi);
        }
        break;
    case F_ANY: check_templates(C, v, field); break;
    case F_INT:
    case F_INT_POS:
    case F_INT_NONNEG:
        if (!is_single_ref(C, v, field))
            get_int(C, v, field, f->type == F_INT ? INT64_MIN : f->type == F_INT_POS ? 1 : 0, INT64_MAX, &iv);
        break;
    case F_NUM_NONNEG:
    case F_PROB:
        if (!is_single_ref(C, v, field))
            get_number(C, v, field, 0, f->type == F_PROB ? 1 : INFINITY, &dv);
        break;
    case F_BOOL:
        if (v->kind != LOOM_VALUE_BOOL && !is_single_ref(C, v, field))
            bad_type(C, v, field, "true or false");
        break;
    case F_MODEL: check_resource_name(C, v, field, true, s); break;
    case F_INDEX: check_resource_name(C, v, field, false, s); break;
    case F_METHOD: get_enum(C, v, field, methods, "HTTP method"); break;
    case F_FORMAT: get_enum(C, v, field, formats, "format"); break;
    case F_KERNEL: check_kernel(C, v, field); break;
    case F_MESSAGES:
        if (v->kind != LOOM_VALUE_SEQ || v->len == 0) {
            bad_type(C, v, field, "a non-empty list of {role, content}");
            break;
        }
        for (size_t i = 0; i < v->len; i++) {
            const loom_value_t *m = v->items[i];
            const char *fi = idx(C, field, i);
            static const char *const roles[] = {"system", "user", "assistant", "tool", NULL};
            const loom_value_t *role = loom_value_get(m, "role"), *content = loom_value_get(m, "content");
            if (m->kind != LOOM_VALUE_MAP || !role || !content || m->len != 2) {
                bad_type(C, m, fi, "a mapping with exactly role and content");
                continue;
            }
            get_enum(C, role, join(C, fi, "role"), roles, "role");
            if (!is_scalar_text(content))
                bad_type(C, content, join(C, fi, "content"), "a string");
            else
                check_templates(C, content, join(C, fi, "content"));
        }
        break;
    case F_BODY:
        if (s->body)
            check_graph(C, s->body, field);
        break;
    case F_EXPR: {
        if (C->nframes >= MAX_FRAMES || !s->body)
            break;
        frame_t *f2 = &C->frames[C->nframes++];
        memset(f2, 0, sizeof *f2);
        f2->graph = s->body;
        s->until = check_expr(C, v, field);
        C->nframes--;
        break;
    }
    case F_STEP_ID: {
        const char *id;
        if (get_string(C, v, field, &id))
            link_step(C, id, v->line, v->col, field, "step");
        break;
    }
    }
}

static void check_expect(ctx_t *C, loom_wf_step_t *s, const loom_value_t *v, const char *field)
{
    if (v->kind != LOOM_VALUE_MAP) {
        bad_type(C, v, field, "a mapping of planner hints");
        return;
    }
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const char *fi = join(C, field, e->key);
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
            unknown_field(C, e, field, NULL, expect_fields, sizeof expect_fields / sizeof *expect_fields - 1);
            continue;
        }
        if (get_number(C, e->value, fi, lo, hi, &x))
            *slot = x;
    }
}

static void check_foreach(ctx_t *C, loom_wf_step_t *s, const loom_value_t *v, const char *field)
{
    frame_t *f = &C->frames[C->nframes - 1];
    f->in_foreach = true;
    if (v->kind == LOOM_VALUE_SEQ) {
        check_templates(C, v, field);
        s->foreach = v;
    } else if (v->kind == LOOM_VALUE_STRING && is_single_ref(C, v, field)) {
        const loom_ref_t *r = loom_template_single_ref(v->tpl);
        const loom_wf_input_t *in = r->kind == LOOM_REF_INPUT && r->n_path == 0 ? loom_workflow_input(C->wf, r->name) : NULL;
        if (in && in->type != LOOM_WF_TYPE_LIST && in->type != LOOM_WF_TYPE_ANY)
            report(C, v->line, ref_col(v, r->name_off), field, "foreach needs a list, but input '%s' is a %s",
                   in->name, loom_wf_type_name(in->type));
        else if (r->kind == LOOM_REF_LOOP_ITERATION)
            report(C, v->line, ref_col(v, r->name_off), field, "foreach needs a list, but loop.iteration is a number");
        s->foreach = v;
    } else if (v->kind == LOOM_VALUE_STRING && v->tpl) {
        report(C, v->line, v->col, field, "foreach needs a list or a single ${...} reference to one, got text around a reference");
    } else if (!(v->kind == LOOM_VALUE_STRING && v->tpl)) {
        loom_err_t *e = report(C, v->line, v->col, field, "foreach needs a list, got %s", describe(C, v));
        if (e)
            loom_err_hint(e, "use a YAML list or one reference such as ${steps.plan.output.items}");
    }
    f->in_foreach = false;
}

static void check_step(ctx_t *C, loom_wf_graph_t *g, stepinfo_t *si, const char *prefix)
{
    loom_wf_step_t *s = si->step;
    const char *path = join(C, prefix, s->id);
    if (C->nframes >= MAX_FRAMES)
        return;
    frame_t *f = &C->frames[C->nframes++];
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
    for (size_t i = 0; i < s->node->len; i++) {
        const loom_value_entry_t *e = &s->node->entries[i];
        const loom_value_t *v = e->value;
        const char *fi = join(C, path, e->key);
        int64_t iv;
        if (!strcmp(e->key, "op") || !strcmp(e->key, "description")) {
            if (!strcmp(e->key, "description") && v->kind != LOOM_VALUE_STRING)
                bad_type(C, v, fi, "a string");
        } else if (!strcmp(e->key, "needs")) {
            if (v->kind != LOOM_VALUE_SEQ) {
                loom_err_t *r = report(C, v->line, v->col, fi, "expected a list of step ids, got %s", describe(C, v));
                if (r)
                    loom_err_hint(r, "write needs: [%s]", v->kind == LOOM_VALUE_STRING ? v->str : "step_id");
                continue;
            }
            for (size_t k = 0; k < v->len; k++) {
                const char *id;
                const char *fk = idx(C, fi, k);
                if (get_string(C, v->items[k], fk, &id))
                    link_step(C, id, v->items[k]->line, v->items[k]->col, fk, "step");
            }
        } else if (!strcmp(e->key, "when")) {
            s->when = check_expr(C, v, fi);
        } else if (!strcmp(e->key, "foreach")) {
            check_foreach(C, s, v, fi);
        } else if (!strcmp(e->key, "retries")) {
            if (get_int(C, v, fi, 0, MAX_RETRIES, &iv))
                s->retries = (int)iv;
        } else if (!strcmp(e->key, "timeout_ms")) {
            if (get_int(C, v, fi, 1, INT64_MAX, &iv))
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
            else if (si->op_ok)
                unknown_field(C, e, path, loom_op_kind_name(s->op), known, nk);
        }
    }
    for (size_t k = 0; spec && spec[k].name; k++) {
        if (!spec[k].required || loom_value_get(s->node, spec[k].name))
            continue;
        if (s->op == LOOM_OP_LOOP && !strcmp(spec[k].name, "body"))
            continue; /* reported while collecting */
        loom_err_t *r = report(C, s->line, s->col, path, "missing required field '%s' for op %s", spec[k].name,
                               loom_op_kind_name(s->op));
        if (r && s->op == LOOM_OP_LOOP && !strcmp(spec[k].name, "max_iterations"))
            loom_err_hint(r, "loops must be bounded: add max_iterations: N");
    }
    if (si->op_ok && s->op == LOOM_OP_LLM_GENERATE) {
        bool p = loom_value_get(s->node, "prompt"), m = loom_value_get(s->node, "messages");
        if (p == m)
            report(C, s->line, s->col, path, p ? "give either prompt or messages, not both"
                                               : "missing required field 'prompt' (or 'messages') for op llm.generate");
    }
    if (si->op_ok && s->op == LOOM_OP_LOOP) {
        const loom_value_t *mi = loom_value_get(s->node, "max_iterations");
        if (mi && mi->kind == LOOM_VALUE_INT && mi->i >= 1) {
            if (mi->i > MAX_ITERATIONS)
                report(C, mi->line, mi->col, join(C, path, "max_iterations"), "must be at most %d, got %lld",
                       MAX_ITERATIONS, (long long)mi->i);
            else
                s->max_iterations = (int)mi->i;
            if (s->expect.iterations > 0 && s->expect.iterations > (double)mi->i)
                report(C, mi->line, mi->col, join(C, path, "expect.iterations"),
                       "expected iterations (%g) exceed max_iterations (%lld)", s->expect.iterations, (long long)mi->i);
        }
    }
    if (s->expect.probability >= 0 && !s->when) {
        const loom_value_t *ex = loom_value_get(s->node, "expect");
        const loom_value_t *pv = loom_value_get(ex, "probability");
        if (pv)
            report(C, pv->line, pv->col, join(C, path, "expect.probability"),
                   "a branch probability needs a when: condition on the step");
    }
    s->deps = f->deps.v;
    s->n_deps = f->deps.n;
    C->nframes--;
}

/* ---- pass 1: steps and ids ------------------------------------------------------ */

static void register_id(ctx_t *C, const char *id)
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

static void collect_graph(ctx_t *C, const loom_value_t *map, const char *prefix, loom_wf_graph_t *g,
                          const loom_wf_step_t *owner, int nest)
{
    g->owner = owner;
    if (map->kind != LOOM_VALUE_MAP) {
        loom_err_t *e = report(C, map->line, map->col, prefix, "expected a mapping from step ids to steps, got %s",
                               describe(C, map));
        if (e && map->kind == LOOM_VALUE_SEQ)
            loom_err_hint(e, "steps are keyed by id: write 'steps:' then 'my_step: {op: ...}'");
        return;
    }
    if (map->len == 0) {
        report(C, map->line, map->col, prefix, "needs at least one step");
        return;
    }
    g->steps = loom_arena_calloc(C->a, map->len, sizeof *g->steps);
    if (!g->steps)
        return;
    g->n_steps = map->len;
    for (size_t i = 0; i < map->len; i++) {
        const loom_value_entry_t *e = &map->entries[i];
        loom_wf_step_t *s = &g->steps[i];
        stepinfo_t *si = loom_arena_calloc(C->a, 1, sizeof *si);
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
        const char *path = join(C, prefix, e->key);
        if (!is_ident(e->key))
            report(C, e->line, e->col, path,
                   "invalid step id '%s' (use letters, digits, '_' and '-', starting with a letter)", e->key);
        stepinfo_t *prev = loom_map_get(C->ids, e->key);
        if (prev)
            report(C, e->line, e->col, path, "duplicate step id '%s' (first defined at line %d)", e->key,
                   prev->step->line);
        else if (loom_map_put(C->ids, e->key, si) == 0)
            register_id(C, e->key);
        if (e->value->kind != LOOM_VALUE_MAP) {
            /* replace with an empty map so later passes can read it */
            static const loom_value_t empty = {.kind = LOOM_VALUE_MAP};
            bad_type(C, e->value, path, "a step (a mapping with an 'op' field)");
            s->node = &empty;
            continue;
        }
        const loom_value_t *op = loom_value_get(e->value, "op");
        const char *fop = join(C, path, "op");
        if (!op) {
            report(C, e->line, e->col, path, "missing required field 'op'");
            continue;
        }
        if (op->kind != LOOM_VALUE_STRING) {
            bad_type(C, op, fop, "an op name");
            continue;
        }
        int k = loom_op_kind_parse(op->str);
        if (k < 0) {
            const char *sg = suggest(op->str, op_names, LOOM_OP__COUNT);
            loom_err_t *r = sg ? report(C, op->line, op->col, fop, "unknown op '%s' (did you mean '%s'?)", op->str, sg)
                               : report(C, op->line, op->col, fop, "unknown op '%s'", op->str);
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
            report(C, e->line, e->col, path, "missing required field 'body' for op loop");
        } else if (nest >= MAX_LOOP_NESTING) {
            report(C, body->line, body->col, join(C, path, "body"), "loops nested more than %d deep",
                   MAX_LOOP_NESTING);
        } else {
            s->body = loom_arena_calloc(C->a, 1, sizeof *s->body);
            if (s->body)
                collect_graph(C, body, join(C, path, "body"), s->body, s, nest + 1);
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

static void report_cycle(ctx_t *C, loom_wf_graph_t *g, const int *indeg, const char *prefix)
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
    loom_err_t *e = report(C, d ? d->line : s0->line, d ? d->col : s0->col, d ? d->field : join(C, prefix, s0->id),
                           "dependency cycle: %s", msg);
    if (e)
        loom_err_hint(e, "steps run once; to repeat work use op: loop with max_iterations");
out:
    free(pos);
    free(walk);
}

static void order_graph(ctx_t *C, loom_wf_graph_t *g, const char *prefix)
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

static void check_graph(ctx_t *C, loom_wf_graph_t *g, const char *prefix)
{
    for (size_t i = 0; i < g->n_steps; i++) {
        stepinfo_t *si = loom_map_get(C->ids, g->steps[i].id);
        stepinfo_t local = {&g->steps[i], g, false};
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

/* ---- sections ------------------------------------------------------------------- */

static const char *const top_fields[] = {"version", "name", "description", "sla", "inputs",
                                         "steps", "outputs", "resources", NULL};

static bool want_map(ctx_t *C, const loom_value_t *v, const char *field, const char *what)
{
    if (v->kind == LOOM_VALUE_MAP)
        return true;
    bad_type(C, v, field, what);
    return false;
}

static void check_sla(ctx_t *C, const loom_value_t *v, const loom_value_entry_t *key)
{
    static const char *const known[] = {"latency_ms", "percentile", "objective", NULL};
    static const char *const objectives[] = {"cost", "latency", NULL};
    loom_wf_sla_t *sla = &C->wf->sla;
    sla->percentile = 95;
    sla->objective = LOOM_WF_OBJECTIVE_COST;
    if (!want_map(C, v, "sla", "a mapping (latency_ms, percentile, objective)"))
        return;
    sla->set = true;
    bool have_latency = false;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const char *fi = join(C, "sla", e->key);
        int64_t iv;
        double dv;
        if (!strcmp(e->key, "latency_ms")) {
            have_latency = true;
            if (get_int(C, e->value, fi, 1, INT64_MAX, &iv))
                sla->latency_ms = iv;
        } else if (!strcmp(e->key, "percentile")) {
            if (get_number(C, e->value, fi, 1, 100, &dv))
                sla->percentile = dv;
        } else if (!strcmp(e->key, "objective")) {
            int k = get_enum(C, e->value, fi, objectives, "objective");
            if (k >= 0)
                sla->objective = (loom_wf_objective_t)k;
        } else {
            unknown_field(C, e, "sla", NULL, known, 3);
        }
    }
    if (!have_latency)
        report(C, key->line, key->col, "sla", "missing required field 'latency_ms'");
}

static bool type_matches(loom_wf_type_t t, const loom_value_t *v)
{
    switch (t) {
    case LOOM_WF_TYPE_ANY: return true;
    case LOOM_WF_TYPE_STRING: return v->kind == LOOM_VALUE_STRING;
    case LOOM_WF_TYPE_INT: return v->kind == LOOM_VALUE_INT;
    case LOOM_WF_TYPE_NUMBER: return v->kind == LOOM_VALUE_INT || v->kind == LOOM_VALUE_FLOAT;
    case LOOM_WF_TYPE_BOOL: return v->kind == LOOM_VALUE_BOOL;
    case LOOM_WF_TYPE_LIST: return v->kind == LOOM_VALUE_SEQ;
    case LOOM_WF_TYPE_OBJECT: return v->kind == LOOM_VALUE_MAP;
    }
    return false;
}

static void check_inputs(ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"type", "default", "required", "description", NULL};
    static const char *const types[] = {"any", "string", "int", "number", "bool", "list", "object", NULL};
    if (!want_map(C, v, "inputs", "a mapping from input names to types"))
        return;
    C->wf->inputs = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->inputs);
    if (!C->wf->inputs)
        return;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const loom_value_t *iv = e->value;
        const char *fi = join(C, "inputs", e->key);
        loom_wf_input_t *in = &C->wf->inputs[C->wf->n_inputs++];
        in->name = e->key;
        in->line = e->line;
        in->col = e->col;
        in->required = true;
        if (!is_ident(e->key))
            report(C, e->line, e->col, fi, "invalid input name '%s' (use letters, digits, '_' and '-')", e->key);
        if (iv->kind == LOOM_VALUE_NULL)
            continue;
        if (iv->kind == LOOM_VALUE_STRING) {
            int k = get_enum(C, iv, fi, types, "type");
            in->type = k >= 0 ? (loom_wf_type_t)k : LOOM_WF_TYPE_ANY;
            continue;
        }
        if (iv->kind != LOOM_VALUE_MAP) {
            bad_type(C, iv, fi, "a type name or a mapping (type, default, required, description)");
            continue;
        }
        const loom_value_t *req = NULL;
        for (size_t k = 0; k < iv->len; k++) {
            const loom_value_entry_t *f = &iv->entries[k];
            const char *ff = join(C, fi, f->key);
            if (!strcmp(f->key, "type")) {
                int t = get_enum(C, f->value, ff, types, "type");
                in->type = t >= 0 ? (loom_wf_type_t)t : LOOM_WF_TYPE_ANY;
            } else if (!strcmp(f->key, "default")) {
                in->default_value = f->value;
            } else if (!strcmp(f->key, "required")) {
                req = f->value;
                if (req->kind != LOOM_VALUE_BOOL)
                    bad_type(C, req, ff, "true or false");
            } else if (!strcmp(f->key, "description")) {
                if (f->value->kind != LOOM_VALUE_STRING)
                    bad_type(C, f->value, ff, "a string");
                else
                    in->description = f->value->str;
            } else {
                unknown_field(C, f, fi, NULL, known, 4);
            }
        }
        in->required = req && req->kind == LOOM_VALUE_BOOL ? req->b : !in->default_value;
        if (in->default_value && !type_matches(in->type, in->default_value))
            report(C, in->default_value->line, in->default_value->col, join(C, fi, "default"),
                   "default does not match type %s: got %s", loom_wf_type_name(in->type),
                   describe(C, in->default_value));
    }
}

static const char *req_string(ctx_t *C, const loom_value_t *m, const char *key, const char *fi,
                              const loom_value_entry_t *e)
{
    const loom_value_t *v = loom_value_get(m, key);
    const char *s = NULL;
    if (!v)
        report(C, e->line, e->col, fi, "missing required field '%s'", key);
    else
        get_string(C, v, join(C, fi, key), &s);
    return s;
}

static int64_t shape_int(ctx_t *C, const loom_value_t *m, const char *key, const char *fi,
                         const loom_value_entry_t *e, bool required)
{
    const loom_value_t *v = loom_value_get(m, key);
    int64_t x = 0;
    if (!v) {
        if (required)
            report(C, e->line, e->col, fi, "missing required field '%s'", key);
        return 0;
    }
    get_int(C, v, join(C, fi, key), 1, INT64_MAX, &x);
    return x;
}

static void check_models(ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"path", "arch", "params", "layers", "hidden", "heads", "kv_heads",
                                        "head_dim", "vocab", "context", "dtype", NULL};
    static const char *const dtypes[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                         "q4_k", "q5_k", "q6_k", "int8", NULL};
    if (!want_map(C, v, "resources.models", "a mapping from model names to models"))
        return;
    C->wf->models = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->models);
    if (!C->wf->models)
        return;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const char *fi = join(C, "resources.models", e->key);
        loom_wf_model_t *m = &C->wf->models[C->wf->n_models++];
        m->name = e->key;
        m->line = e->line;
        m->col = e->col;
        if (!want_map(C, e->value, fi, "a model (path, arch, shape, dtype)"))
            continue;
        const loom_value_t *mv = e->value;
        for (size_t k = 0; k < mv->len; k++) {
            bool ok = false;
            for (size_t j = 0; known[j] && !ok; j++)
                ok = !strcmp(known[j], mv->entries[k].key);
            if (!ok)
                unknown_field(C, &mv->entries[k], fi, NULL, known, 11);
        }
        m->path = req_string(C, mv, "path", fi, e);
        m->arch = req_string(C, mv, "arch", fi, e);
        m->layers = shape_int(C, mv, "layers", fi, e, true);
        m->hidden = shape_int(C, mv, "hidden", fi, e, true);
        m->heads = shape_int(C, mv, "heads", fi, e, true);
        m->vocab = shape_int(C, mv, "vocab", fi, e, true);
        m->context = shape_int(C, mv, "context", fi, e, true);
        m->kv_heads = shape_int(C, mv, "kv_heads", fi, e, false);
        m->head_dim = shape_int(C, mv, "head_dim", fi, e, false);
        m->params = shape_int(C, mv, "params", fi, e, false);
        const loom_value_t *dt = loom_value_get(mv, "dtype");
        if (!dt)
            report(C, e->line, e->col, fi, "missing required field 'dtype'");
        else if (get_enum(C, dt, join(C, fi, "dtype"), dtypes, "dtype") >= 0)
            m->dtype = dt->str;
        if (!m->kv_heads)
            m->kv_heads = m->heads;
        if (!m->head_dim && m->heads)
            m->head_dim = m->hidden / m->heads;
        if (m->heads && m->kv_heads && m->heads % m->kv_heads) {
            const loom_value_t *kv = loom_value_get(mv, "kv_heads");
            report(C, kv ? kv->line : e->line, kv ? kv->col : e->col, join(C, fi, "kv_heads"),
                   "heads (%lld) must be a multiple of kv_heads (%lld)", (long long)m->heads, (long long)m->kv_heads);
        }
        if (!m->params && m->layers > 0 && m->hidden > 0 && m->layers < 100000 && m->hidden < 1000000 &&
            m->vocab < 100000000)
            /* attention + MLP (~12 h^2 per layer) plus the embedding table */
            m->params = 12 * m->layers * m->hidden * m->hidden + m->vocab * m->hidden;
    }
}

static void check_indexes(ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"path", "dim", "model", "metric", NULL};
    static const char *const metrics[] = {"cosine", "l2", "dot", NULL};
    if (!want_map(C, v, "resources.indexes", "a mapping from index names to indexes"))
        return;
    C->wf->indexes = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->indexes);
    if (!C->wf->indexes)
        return;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const char *fi = join(C, "resources.indexes", e->key);
        loom_wf_index_t *x = &C->wf->indexes[C->wf->n_indexes++];
        x->name = e->key;
        x->line = e->line;
        x->col = e->col;
        x->metric = "cosine";
        if (!want_map(C, e->value, fi, "an index (path, dim, model)"))
            continue;
        const loom_value_t *iv = e->value;
        for (size_t k = 0; k < iv->len; k++) {
            const char *key = iv->entries[k].key;
            if (strcmp(key, "path") && strcmp(key, "dim") && strcmp(key, "model") && strcmp(key, "metric"))
                unknown_field(C, &iv->entries[k], fi, NULL, known, 4);
        }
        x->path = req_string(C, iv, "path", fi, e);
        x->dim = shape_int(C, iv, "dim", fi, e, true);
        const loom_value_t *mv = loom_value_get(iv, "model");
        if (mv && get_string(C, mv, join(C, fi, "model"), &x->model)) {
            const loom_wf_model_t *m = loom_workflow_model(C->wf, x->model);
            if (!m)
                report(C, mv->line, mv->col, join(C, fi, "model"), "unknown model '%s'", x->model);
            else if (m->hidden && x->dim && m->hidden != x->dim)
                report(C, mv->line, mv->col, join(C, fi, "model"),
                       "index dim %lld does not match model '%s' hidden size %lld", (long long)x->dim, m->name,
                       (long long)m->hidden);
        }
        const loom_value_t *mt = loom_value_get(iv, "metric");
        if (mt) {
            int k = get_enum(C, mt, join(C, fi, "metric"), metrics, "metric");
            if (k >= 0)
                x->metric = metrics[k];
        }
    }
}

static void check_resources(ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"models", "indexes", NULL};
    if (!want_map(C, v, "resources", "a mapping (models, indexes)"))
        return;
    const loom_value_t *m = loom_value_get(v, "models"), *x = loom_value_get(v, "indexes");
    if (m)
        check_models(C, m);
    if (x)
        check_indexes(C, x);
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->entries[i].key, "models") && strcmp(v->entries[i].key, "indexes"))
            unknown_field(C, &v->entries[i], "resources", NULL, known, 2);
}

static void check_outputs(ctx_t *C, const loom_value_t *v)
{
    if (!want_map(C, v, "outputs", "a mapping from output names to values"))
        return;
    C->wf->outputs = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->outputs);
    if (!C->wf->outputs)
        return;
    frame_t *f = &C->frames[C->nframes++];
    memset(f, 0, sizeof *f);
    f->graph = &C->wf->graph;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        loom_wf_output_t *o = &C->wf->outputs[C->wf->n_outputs++];
        o->name = e->key;
        o->value = e->value;
        o->line = e->line;
        o->col = e->col;
        check_templates(C, e->value, join(C, "outputs", e->key));
    }
    C->nframes--;
}

static void check_document(ctx_t *C, const loom_value_t *root)
{
    loom_workflow_t *wf = C->wf;
    if (root->kind != LOOM_VALUE_MAP) {
        report(C, root->line, root->col, NULL, "a workflow must be a mapping (version, name, steps, ...), got %s",
               describe(C, root));
        return;
    }
    for (size_t i = 0; i < root->len; i++) {
        bool ok = false;
        for (size_t k = 0; top_fields[k] && !ok; k++)
            ok = !strcmp(root->entries[i].key, top_fields[k]);
        if (!ok)
            unknown_field(C, &root->entries[i], "", NULL, top_fields, 8);
    }
    const loom_value_t *v = loom_value_get(root, "version");
    if (!v) {
        loom_err_t *e = report(C, root->line, root->col, NULL, "missing required field 'version'");
        if (e)
            loom_err_hint(e, "start the file with 'version: 1'");
    } else if (v->kind != LOOM_VALUE_INT || v->i != 1) {
        loom_err_t *e = report(C, v->line, v->col, "version", "unsupported version %s (this Loom reads version 1)",
                               v->str ? v->str : describe(C, v));
        (void)e;
    } else {
        wf->version = 1;
    }
    v = loom_value_get(root, "name");
    if (!v) {
        report(C, root->line, root->col, NULL, "missing required field 'name'");
    } else if (get_string(C, v, "name", &wf->name)) {
        bool ok = wf->name[0] != 0;
        for (const char *p = wf->name; *p; p++)
            if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9') || strchr("_.-", *p)))
                ok = false;
        if (!ok)
            report(C, v->line, v->col, "name", "invalid workflow name '%s' (use letters, digits, '_', '.' and '-')",
                   wf->name);
    }
    if ((v = loom_value_get(root, "description")) && get_string(C, v, "description", &wf->description))
        (void)0;
    for (size_t i = 0; i < root->len; i++)
        if (!strcmp(root->entries[i].key, "sla"))
            check_sla(C, root->entries[i].value, &root->entries[i]);
    if ((v = loom_value_get(root, "inputs")))
        check_inputs(C, v);
    if ((v = loom_value_get(root, "resources")))
        check_resources(C, v);
    v = loom_value_get(root, "steps");
    if (!v) {
        report(C, root->line, root->col, NULL, "missing required field 'steps'");
        return;
    }
    collect_graph(C, v, "steps", &wf->graph, NULL, 0);
    check_graph(C, &wf->graph, "steps");
    if ((v = loom_value_get(root, "outputs")))
        check_outputs(C, v);
}

/* ---- entry points ------------------------------------------------------------------ */

static void finish_diags(loom_diags_t *d)
{
    if (d)
        loom_diags_sort(d);
}

/* dir: base for relative paths (NULL: "." and no file checks). */
static int parse_at(const char *name, const char *dir, const char *text, size_t len, loom_workflow_t **out,
                    loom_diags_t *diags)
{
    *out = NULL;
    ctx_t C = {.d = diags, .check_files = dir != NULL};
    loom_arena_t *a = loom_arena_new(0);
    loom_workflow_t *wf = a ? loom_arena_calloc(a, 1, sizeof *wf) : NULL;
    C.ids = loom_map_new(NULL);
    int rc = 0;
    if (!wf || !C.ids) {
        rc = LOOM_ENOMEM;
        goto out_oom;
    }
    wf->arena = a;
    wf->file = loom_arena_strdup(a, name ? name : "<input>");
    wf->dir = loom_arena_strdup(a, dir ? dir : ".");
    if (!wf->file || !wf->dir) {
        rc = LOOM_ENOMEM;
        goto out_oom;
    }
    C.wf = wf;
    C.a = a;
    C.file = wf->file;
    wf->sla.percentile = 95;
    loom_sha256_hex(text, len, wf->sha256);
    const loom_value_t *root = NULL;
    rc = loom_value_parse_yaml(a, wf->file, text, len, &root, diags);
    if (rc == LOOM_ENOMEM)
        goto out_oom;
    if (rc)
        C.errors++;
    wf->root = root;
    if (root)
        check_document(&C, root);
    else if (!rc)
        report(&C, 1, 1, NULL, "file is empty (a workflow needs version, name and steps)");
    loom_map_destroy(&C.ids);
    finish_diags(diags);
    if (C.errors) {
        loom_arena_destroy(&a);
        return LOOM_EPARSE;
    }
    *out = wf;
    return 0;
out_oom:
    loom_map_destroy(&C.ids);
    loom_arena_destroy(&a);
    if (diags) {
        loom_err_t *e = loom_diags_add(diags);
        if (e) {
            loom_err_set(e, LOOM_ENOMEM, "out of memory");
            loom_err_at(e, name, 0, 0);
        }
    }
    return rc;
}

int loom_workflow_parse(const char *name, const char *text, size_t len, loom_workflow_t **out, loom_diags_t *diags)
{
    return parse_at(name, NULL, text, len, out, diags);
}

int loom_workflow_load(const char *path, loom_workflow_t **out, loom_diags_t *diags)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    int rc;
    if (!f)
        goto out_errno;
    buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return LOOM_ENOMEM;
    }
    len = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        fclose(f);
        goto out_errno;
    }
    fclose(f);
    if (len > MAX_FILE_BYTES) {
        loom_err_t *e = loom_diags_add(diags);
        if (e) {
            loom_err_set(e, LOOM_ETOOBIG, "file is larger than %u MiB", MAX_FILE_BYTES >> 20);
            loom_err_at(e, path, 0, 0);
        }
        free(buf);
        return LOOM_ETOOBIG;
    }
    char *copy = strdup(path);
    if (!copy) {
        free(buf);
        return LOOM_ENOMEM;
    }
    rc = parse_at(path, dirname(copy), buf, len, out, diags);
    free(copy);
    free(buf);
    return rc;
out_errno: {
    int err = errno;
    free(buf);
    loom_err_t *e = loom_diags_add(diags);
    if (e) {
        loom_err_set(e, LOOM_EIO, "cannot read the file: %s", strerror(err));
        loom_err_at(e, path, 0, 0);
    }
    return LOOM_EIO;
}
}

void loom_workflow_destroy(loom_workflow_t **pwf)
{
    if (!pwf || !*pwf)
        return;
    loom_arena_t *a = (*pwf)->arena;
    loom_arena_destroy(&a);
    *pwf = NULL;
}

/* ---- lookups ------------------------------------------------------------------------ */

const loom_wf_step_t *loom_wf_graph_find(const loom_wf_graph_t *g, const char *id)
{
    for (size_t i = 0; g && id && i < g->n_steps; i++)
        if (strcmp(g->steps[i].id, id) == 0)
            return &g->steps[i];
    return NULL;
}

const loom_wf_step_t *loom_workflow_step(const loom_workflow_t *wf, const char *id)
{
    return wf ? loom_wf_graph_find(&wf->graph, id) : NULL;
}

const loom_wf_input_t *loom_workflow_input(const loom_workflow_t *wf, const char *name)
{
    for (size_t i = 0; wf && name && i < wf->n_inputs; i++)
        if (strcmp(wf->inputs[i].name, name) == 0)
            return &wf->inputs[i];
    return NULL;
}

const loom_wf_model_t *loom_workflow_model(const loom_workflow_t *wf, const char *name)
{
    for (size_t i = 0; wf && name && i < wf->n_models; i++)
        if (strcmp(wf->models[i].name, name) == 0)
            return &wf->models[i];
    return NULL;
}

const loom_wf_index_t *loom_workflow_index(const loom_workflow_t *wf, const char *name)
{
    for (size_t i = 0; wf && name && i < wf->n_indexes; i++)
        if (strcmp(wf->indexes[i].name, name) == 0)
            return &wf->indexes[i];
    return NULL;
}

const loom_value_t *loom_wf_step_field(const loom_wf_step_t *s, const char *key)
{
    return s ? loom_value_get(s->node, key) : NULL;
}
