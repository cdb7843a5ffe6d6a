/* workflow.c — see workflow.h; the format is documented in docs/WORKFLOWS.md.
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

#include "common/buf.h"
#include "common/map.h"
#include "planner/wf_check.h"

#define MAX_FILE_BYTES (4u << 20)

/* ---- names ------------------------------------------------------------------ */

const char *const wf_op_names[LOOM_OP__COUNT] = {
    [LOOM_OP_LLM_GENERATE] = "llm.generate", [LOOM_OP_LLM_PREFILL] = "llm.prefill",
    [LOOM_OP_LLM_DECODE] = "llm.decode",     [LOOM_OP_EMBED] = "embed",
    [LOOM_OP_VECTOR_SEARCH] = "vector.search", [LOOM_OP_TOOL_EXEC] = "tool.exec",
    [LOOM_OP_TOOL_HTTP] = "tool.http",       [LOOM_OP_COMPUTE] = "compute",
    [LOOM_OP_NOOP] = "noop",                 [LOOM_OP_SLEEP] = "sleep",
    [LOOM_OP_ECHO] = "echo",                 [LOOM_OP_LOOP] = "loop",
    [LOOM_OP_TOOL_MCP] = "tool.mcp",
};

const char *loom_op_kind_name(loom_op_kind_t op)
{
    return (unsigned)op < LOOM_OP__COUNT ? wf_op_names[op] : "?";
}

int loom_op_kind_parse(const char *name)
{
    for (int i = 0; name && i < LOOM_OP__COUNT; i++)
        if (strcmp(name, wf_op_names[i]) == 0)
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
const char *wf_suggest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    int bestd = 255, limit = ((int)strlen(word) + 2) / 3;
    if (limit < 1)
        limit = 1;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        int d = loom_edit_distance(word, cands[i]);
        if (d < bestd && d <= limit && d < (int)strlen(word)) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}
loom_err_t *wf_report(wf_ctx_t *C, int line, int col, const char *field, const char *fmt, ...)
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

const char *wf_join(wf_ctx_t *C, const char *path, const char *key)
{
    const char *s = *path ? loom_arena_sprintf(C->a, "%s.%s", path, key) : loom_arena_strdup(C->a, key);
    return s ? s : "?";
}

const char *wf_idx(wf_ctx_t *C, const char *path, size_t i)
{
    const char *s = loom_arena_sprintf(C->a, "%s[%zu]", path, i);
    return s ? s : "?";
}

/* "string 'abc'", "int 5", "a list", ... for type errors. */
const char *wf_describe(wf_ctx_t *C, const loom_value_t *v)
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

void wf_bad_type(wf_ctx_t *C, const loom_value_t *v, const char *field, const char *want)
{
    wf_report(C, v->line, v->col, field, "expected %s, got %s", want, wf_describe(C, v));
}

const char *wf_unknown_field(wf_ctx_t *C, const loom_value_entry_t *e, const char *path, const char *what,
                             const char *const *known, size_t n)
{
    const char *s = wf_suggest(e->key, known, n);
    loom_err_t *r = wf_report(C, e->line, e->col, path, "unknown field '%s'%s%s%s%s", e->key, what ? " for " : "",
                           what ? what : "", s ? " (did you mean '" : "", s ? s : "");
    if (r && s)
        strncat(r->msg, "'?)", sizeof r->msg - strlen(r->msg) - 1);
    return s;
}

/* ---- scalar checks -------------------------------------------------------------- */

bool wf_is_ident(const char *s)
{
    if (!s || !(((*s | 32) >= 'a' && (*s | 32) <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(((*s | 32) >= 'a' && (*s | 32) <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

bool wf_get_string(wf_ctx_t *C, const loom_value_t *v, const char *field, const char **out)
{
    if (v->kind != LOOM_VALUE_STRING) {
        wf_bad_type(C, v, field, "a string");
        return false;
    }
    *out = v->str;
    return true;
}

/* Integer in [lo, hi]; a float with an integral value is accepted. */
bool wf_get_int(wf_ctx_t *C, const loom_value_t *v, const char *field, int64_t lo, int64_t hi, int64_t *out)
{
    const char *want = lo == 1 && hi == INT64_MAX ? "a positive integer"
                       : lo == 0 && hi == INT64_MAX ? "a non-negative integer" : "an integer";
    if (v->kind == LOOM_VALUE_INT) {
        if (v->i < lo || v->i > hi) {
            if (hi == INT64_MAX)
                wf_report(C, v->line, v->col, field, "must be %s, got %lld", want, (long long)v->i);
            else
                wf_report(C, v->line, v->col, field, "must be between %lld and %lld, got %lld", (long long)lo,
                       (long long)hi, (long long)v->i);
            return false;
        }
        *out = v->i;
        return true;
    }
    wf_bad_type(C, v, field, want);
    return false;
}

bool wf_get_number(wf_ctx_t *C, const loom_value_t *v, const char *field, double lo, double hi, double *out)
{
    if (v->kind != LOOM_VALUE_INT && v->kind != LOOM_VALUE_FLOAT) {
        wf_bad_type(C, v, field, "a number");
        return false;
    }
    if (!(v->f >= lo && v->f <= hi)) {
        if (isinf(hi))
            wf_report(C, v->line, v->col, field, "must be a number >= %g, got %s", lo, v->str);
        else
            wf_report(C, v->line, v->col, field, "must be between %g and %g, got %s", lo, hi, v->str);
        return false;
    }
    *out = v->f;
    return true;
}

/* One of words (NULL-terminated); reports with a suggestion. */
int wf_get_enum(wf_ctx_t *C, const loom_value_t *v, const char *field, const char *const *words, const char *what)
{
    if (v->kind != LOOM_VALUE_STRING) {
        wf_bad_type(C, v, field, what);
        return -1;
    }
    size_t n = 0;
    for (; words[n]; n++)
        if (strcmp(v->str, words[n]) == 0)
            return (int)n;
    const char *s = wf_suggest(v->str, words, n);
    char list[256] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", words[i]);
    loom_err_t *e = s ? wf_report(C, v->line, v->col, field, "unknown %s '%s' (did you mean '%s'?)", what, v->str, s)
                      : wf_report(C, v->line, v->col, field, "unknown %s '%s'", what, v->str);
    if (e && !s)
        loom_err_hint(e, "one of: %s", list);
    return -1;
}
/* ---- sections ------------------------------------------------------------------- */

static const char *const top_fields[] = {"version", "name", "description", "sla", "inputs",
                                         "steps", "outputs", "resources", "secrets", NULL};

static bool want_map(wf_ctx_t *C, const loom_value_t *v, const char *field, const char *what)
{
    if (v->kind == LOOM_VALUE_MAP)
        return true;
    wf_bad_type(C, v, field, what);
    return false;
}

static void check_sla(wf_ctx_t *C, const loom_value_t *v, const loom_value_entry_t *key)
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
        const char *fi = wf_join(C, "sla", e->key);
        int64_t iv;
        double dv;
        if (!strcmp(e->key, "latency_ms")) {
            have_latency = true;
            if (wf_get_int(C, e->value, fi, 1, INT64_MAX, &iv))
                sla->latency_ms = iv;
        } else if (!strcmp(e->key, "percentile")) {
            if (wf_get_number(C, e->value, fi, 1, 100, &dv))
                sla->percentile = dv;
        } else if (!strcmp(e->key, "objective")) {
            int k = wf_get_enum(C, e->value, fi, objectives, "objective");
            if (k >= 0)
                sla->objective = (loom_wf_objective_t)k;
        } else {
            wf_unknown_field(C, e, "sla", NULL, known, 3);
        }
    }
    if (!have_latency)
        wf_report(C, key->line, key->col, "sla", "missing required field 'latency_ms'");
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

static void check_inputs(wf_ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"type", "default", "required", "description", "secret", NULL};
    static const char *const types[] = {"any", "string", "int", "number", "bool", "list", "object", NULL};
    if (!want_map(C, v, "inputs", "a mapping from input names to types"))
        return;
    C->wf->inputs = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->inputs);
    if (!C->wf->inputs)
        return;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const loom_value_t *iv = e->value;
        const char *fi = wf_join(C, "inputs", e->key);
        loom_wf_input_t *in = &C->wf->inputs[C->wf->n_inputs++];
        in->name = e->key;
        in->line = e->line;
        in->col = e->col;
        in->required = true;
        if (!wf_is_ident(e->key))
            wf_report(C, e->line, e->col, fi, "invalid input name '%s' (use letters, digits, '_' and '-')", e->key);
        if (iv->kind == LOOM_VALUE_NULL)
            continue;
        if (iv->kind == LOOM_VALUE_STRING) {
            int k = wf_get_enum(C, iv, fi, types, "type");
            in->type = k >= 0 ? (loom_wf_type_t)k : LOOM_WF_TYPE_ANY;
            continue;
        }
        if (iv->kind != LOOM_VALUE_MAP) {
            wf_bad_type(C, iv, fi, "a type name or a mapping (type, default, required, description, secret)");
            continue;
        }
        const loom_value_t *req = NULL;
        for (size_t k = 0; k < iv->len; k++) {
            const loom_value_entry_t *f = &iv->entries[k];
            const char *ff = wf_join(C, fi, f->key);
            if (!strcmp(f->key, "type")) {
                int t = wf_get_enum(C, f->value, ff, types, "type");
                in->type = t >= 0 ? (loom_wf_type_t)t : LOOM_WF_TYPE_ANY;
            } else if (!strcmp(f->key, "default")) {
                in->default_value = f->value;
            } else if (!strcmp(f->key, "required")) {
                req = f->value;
                if (req->kind != LOOM_VALUE_BOOL)
                    wf_bad_type(C, req, ff, "true or false");
            } else if (!strcmp(f->key, "description")) {
                if (f->value->kind != LOOM_VALUE_STRING)
                    wf_bad_type(C, f->value, ff, "a string");
                else
                    in->description = f->value->str;
            } else if (!strcmp(f->key, "secret")) {
                if (f->value->kind != LOOM_VALUE_BOOL)
                    wf_bad_type(C, f->value, ff, "true or false");
                else
                    in->secret = f->value->b;
            } else {
                wf_unknown_field(C, f, fi, NULL, known, 5);
            }
        }
        in->required = req && req->kind == LOOM_VALUE_BOOL ? req->b : !in->default_value;
        if (in->default_value && !type_matches(in->type, in->default_value))
            wf_report(C, in->default_value->line, in->default_value->col, wf_join(C, fi, "default"),
                   "default does not match type %s: got %s", loom_wf_type_name(in->type),
                   wf_describe(C, in->default_value));
    }
}

/* secrets: [NAME, ...] — values the worker supplies (${secrets.NAME}). */
static void check_secrets(wf_ctx_t *C, const loom_value_t *v)
{
    if (v->kind != LOOM_VALUE_SEQ) {
        wf_bad_type(C, v, "secrets", "a list of secret names");
        return;
    }
    C->wf->secrets = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->secrets);
    if (!C->wf->secrets)
        return;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_t *it = v->items[i];
        const char *fi = loom_arena_sprintf(C->a, "secrets[%zu]", i);
        if (it->kind != LOOM_VALUE_STRING || !wf_is_ident(it->str))
            wf_report(C, it->line, it->col, fi, "a secret name is letters, digits, '_' and '-'");
        else
            C->wf->secrets[C->wf->n_secrets++] = it->str;
    }
}

static const char *req_string(wf_ctx_t *C, const loom_value_t *m, const char *key, const char *fi,
                              const loom_value_entry_t *e)
{
    const loom_value_t *v = loom_value_get(m, key);
    const char *s = NULL;
    if (!v)
        wf_report(C, e->line, e->col, fi, "missing required field '%s'", key);
    else
        wf_get_string(C, v, wf_join(C, fi, key), &s);
    return s;
}

static int64_t shape_int(wf_ctx_t *C, const loom_value_t *m, const char *key, const char *fi,
                         const loom_value_entry_t *e, bool required)
{
    const loom_value_t *v = loom_value_get(m, key);
    int64_t x = 0;
    if (!v) {
        if (required)
            wf_report(C, e->line, e->col, fi, "missing required field '%s'", key);
        return 0;
    }
    wf_get_int(C, v, wf_join(C, fi, key), 1, INT64_MAX, &x);
    return x;
}

static void check_models(wf_ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"path", "arch", "params", "layers", "hidden", "heads", "kv_heads",
                                        "head_dim", "vocab", "context", "dtype", "endpoint", "model",
                                        "api_key_secret", "max_concurrency", "retries", "timeout_ms", NULL};
    static const char *const dtypes[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                         "q4_k", "q5_k", "q6_k", "int8", NULL};
    if (!want_map(C, v, "resources.models", "a mapping from model names to models"))
        return;
    C->wf->models = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->models);
    if (!C->wf->models)
        return;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const char *fi = wf_join(C, "resources.models", e->key);
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
                wf_unknown_field(C, &mv->entries[k], fi, NULL, known, 17);
        }
        /* A model is a GGUF file (path) or an OpenAI-compatible endpoint;
         * the shape is optional (the file's header holds it; an endpoint's
         * cost is per token). */
        const loom_value_t *ep = loom_value_get(mv, "endpoint"), *pv = loom_value_get(mv, "path");
        if (ep) {
            if (wf_get_string(C, ep, wf_join(C, fi, "endpoint"), &m->endpoint) && strncmp(m->endpoint, "http://", 7) &&
                strncmp(m->endpoint, "https://", 8))
                wf_report(C, ep->line, ep->col, wf_join(C, fi, "endpoint"),
                          "endpoint must be an http:// or https:// URL (e.g. http://host:8000/v1)");
            const loom_value_t *x;
            if ((x = loom_value_get(mv, "model")))
                wf_get_string(C, x, wf_join(C, fi, "model"), &m->remote_model);
            if ((x = loom_value_get(mv, "api_key_secret")))
                wf_get_string(C, x, wf_join(C, fi, "api_key_secret"), &m->api_key_secret);
            m->max_concurrency = shape_int(C, mv, "max_concurrency", fi, e, false);
            m->timeout_ms = shape_int(C, mv, "timeout_ms", fi, e, false);
            if ((x = loom_value_get(mv, "retries")))
                wf_get_int(C, x, wf_join(C, fi, "retries"), 0, 100, &m->retries);
            else
                m->retries = -1;
        } else {
            static const char *const ep_only[] = {"model", "api_key_secret", "max_concurrency", "retries",
                                                  "timeout_ms", NULL};
            for (size_t j = 0; ep_only[j]; j++) {
                const loom_value_t *x = loom_value_get(mv, ep_only[j]);
                if (x)
                    wf_report(C, x->line, x->col, wf_join(C, fi, ep_only[j]), "%s is for endpoint models", ep_only[j]);
            }
        }
        if (!ep && !pv)
            wf_report(C, e->line, e->col, fi, "a model needs path (a GGUF file) or endpoint (an OpenAI-compatible server)");
        if (pv)
            wf_get_string(C, pv, wf_join(C, fi, "path"), &m->path);
        const loom_value_t *av = loom_value_get(mv, "arch");
        if (av)
            wf_get_string(C, av, wf_join(C, fi, "arch"), &m->arch);
        m->layers = shape_int(C, mv, "layers", fi, e, false);
        m->hidden = shape_int(C, mv, "hidden", fi, e, false);
        m->heads = shape_int(C, mv, "heads", fi, e, false);
        m->vocab = shape_int(C, mv, "vocab", fi, e, false);
        m->context = shape_int(C, mv, "context", fi, e, false);
        m->kv_heads = shape_int(C, mv, "kv_heads", fi, e, false);
        m->head_dim = shape_int(C, mv, "head_dim", fi, e, false);
        m->params = shape_int(C, mv, "params", fi, e, false);
        const loom_value_t *dt = loom_value_get(mv, "dtype");
        if (dt && wf_get_enum(C, dt, wf_join(C, fi, "dtype"), dtypes, "dtype") >= 0)
            m->dtype = dt->str;
        if (!m->kv_heads)
            m->kv_heads = m->heads;
        if (!m->head_dim && m->heads)
            m->head_dim = m->hidden / m->heads;
        if (m->heads && m->kv_heads && m->heads % m->kv_heads) {
            const loom_value_t *kv = loom_value_get(mv, "kv_heads");
            wf_report(C, kv ? kv->line : e->line, kv ? kv->col : e->col, wf_join(C, fi, "kv_heads"),
                   "heads (%lld) must be a multiple of kv_heads (%lld)", (long long)m->heads, (long long)m->kv_heads);
        }
        if (!m->params && m->layers > 0 && m->hidden > 0 && m->layers < 100000 && m->hidden < 1000000 &&
            m->vocab < 100000000)
            /* attention + MLP (~12 h^2 per layer) plus the embedding table */
            m->params = 12 * m->layers * m->hidden * m->hidden + m->vocab * m->hidden;
    }
}

static void check_indexes(wf_ctx_t *C, const loom_value_t *v)
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
        const char *fi = wf_join(C, "resources.indexes", e->key);
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
                wf_unknown_field(C, &iv->entries[k], fi, NULL, known, 4);
        }
        x->path = req_string(C, iv, "path", fi, e);
        x->dim = shape_int(C, iv, "dim", fi, e, true);
        const loom_value_t *mv = loom_value_get(iv, "model");
        if (mv && wf_get_string(C, mv, wf_join(C, fi, "model"), &x->model)) {
            const loom_wf_model_t *m = loom_workflow_model(C->wf, x->model);
            if (!m)
                wf_report(C, mv->line, mv->col, wf_join(C, fi, "model"), "unknown model '%s'", x->model);
            else if (m->hidden && x->dim && m->hidden != x->dim)
                wf_report(C, mv->line, mv->col, wf_join(C, fi, "model"),
                       "index dim %lld does not match model '%s' hidden size %lld", (long long)x->dim, m->name,
                       (long long)m->hidden);
        }
        const loom_value_t *mt = loom_value_get(iv, "metric");
        if (mt) {
            int k = wf_get_enum(C, mt, wf_join(C, fi, "metric"), metrics, "metric");
            if (k >= 0)
                x->metric = metrics[k];
        }
    }
}

static void check_str_list(wf_ctx_t *C, const loom_value_t *v, const char *field)
{
    if (v->kind != LOOM_VALUE_SEQ) {
        wf_bad_type(C, v, field, "a list of strings");
        return;
    }
    for (size_t i = 0; i < v->len; i++)
        if (v->items[i]->kind != LOOM_VALUE_STRING && v->items[i]->kind != LOOM_VALUE_INT &&
            v->items[i]->kind != LOOM_VALUE_FLOAT)
            wf_bad_type(C, v->items[i], wf_idx(C, field, i), "a string");
}

static void check_str_map(wf_ctx_t *C, const loom_value_t *v, const char *field)
{
    if (!want_map(C, v, field, "a mapping of names to strings"))
        return;
    for (size_t i = 0; i < v->len; i++)
        if (v->entries[i].value->kind == LOOM_VALUE_MAP || v->entries[i].value->kind == LOOM_VALUE_SEQ ||
            v->entries[i].value->kind == LOOM_VALUE_NULL)
            wf_bad_type(C, v->entries[i].value, wf_join(C, field, v->entries[i].key), "a string");
}

/* resources.tools: MCP servers, {command, args, env, cwd} or {url, headers}. */
static void check_tools(wf_ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"command", "args", "env", "cwd", "url", "headers", NULL};
    if (!want_map(C, v, "resources.tools", "a mapping from tool server names to MCP servers"))
        return;
    C->wf->tools = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->tools);
    if (!C->wf->tools)
        return;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        const char *fi = wf_join(C, "resources.tools", e->key);
        loom_wf_tool_t *t = &C->wf->tools[C->wf->n_tools++];
        t->name = e->key;
        t->node = e->value;
        t->line = e->line;
        t->col = e->col;
        if (!want_map(C, e->value, fi, "an MCP server ({command, args} or {url})"))
            continue;
        const loom_value_t *tv = e->value;
        for (size_t k = 0; k < tv->len; k++) {
            bool ok = false;
            for (size_t j = 0; known[j] && !ok; j++)
                ok = !strcmp(known[j], tv->entries[k].key);
            if (!ok)
                wf_unknown_field(C, &tv->entries[k], fi, NULL, known, 6);
        }
        const loom_value_t *cmd = loom_value_get(tv, "command"), *url = loom_value_get(tv, "url");
        const char *s;
        if (!cmd == !url) {
            wf_report(C, e->line, e->col, fi, "an MCP server needs exactly one of command (stdio) or url (HTTP)");
            continue;
        }
        if (cmd)
            wf_get_string(C, cmd, wf_join(C, fi, "command"), &s);
        if (url && wf_get_string(C, url, wf_join(C, fi, "url"), &s) && strncmp(s, "http://", 7) &&
            strncmp(s, "https://", 8))
            wf_report(C, url->line, url->col, wf_join(C, fi, "url"), "url must start with http:// or https://");
        const loom_value_t *x;
        if ((x = loom_value_get(tv, "args")))
            check_str_list(C, x, wf_join(C, fi, "args"));
        if ((x = loom_value_get(tv, "env")))
            check_str_map(C, x, wf_join(C, fi, "env"));
        if ((x = loom_value_get(tv, "headers")))
            check_str_map(C, x, wf_join(C, fi, "headers"));
        if ((x = loom_value_get(tv, "cwd")))
            wf_get_string(C, x, wf_join(C, fi, "cwd"), &s);
        if (url && (loom_value_get(tv, "args") || loom_value_get(tv, "env") || loom_value_get(tv, "cwd")))
            wf_report(C, e->line, e->col, fi, "args, env and cwd are for stdio servers (command), not url");
        if (cmd && loom_value_get(tv, "headers"))
            wf_report(C, e->line, e->col, fi, "headers are for HTTP servers (url), not command");
    }
}

static void check_resources(wf_ctx_t *C, const loom_value_t *v)
{
    static const char *const known[] = {"models", "indexes", "tools", NULL};
    if (!want_map(C, v, "resources", "a mapping (models, indexes, tools)"))
        return;
    const loom_value_t *m = loom_value_get(v, "models"), *x = loom_value_get(v, "indexes");
    const loom_value_t *t = loom_value_get(v, "tools");
    if (m)
        check_models(C, m);
    if (x)
        check_indexes(C, x);
    if (t)
        check_tools(C, t);
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->entries[i].key, "models") && strcmp(v->entries[i].key, "indexes") &&
            strcmp(v->entries[i].key, "tools"))
            wf_unknown_field(C, &v->entries[i], "resources", NULL, known, 3);
}

static void check_outputs(wf_ctx_t *C, const loom_value_t *v)
{
    if (!want_map(C, v, "outputs", "a mapping from output names to values"))
        return;
    C->wf->outputs = loom_arena_calloc(C->a, v->len ? v->len : 1, sizeof *C->wf->outputs);
    if (!C->wf->outputs)
        return;
    wf_frame_t *f = &C->frames[C->nframes++];
    memset(f, 0, sizeof *f);
    f->graph = &C->wf->graph;
    for (size_t i = 0; i < v->len; i++) {
        const loom_value_entry_t *e = &v->entries[i];
        loom_wf_output_t *o = &C->wf->outputs[C->wf->n_outputs++];
        o->name = e->key;
        o->value = e->value;
        o->line = e->line;
        o->col = e->col;
        wf_check_templates(C, e->value, wf_join(C, "outputs", e->key));
    }
    C->nframes--;
}

static void check_document(wf_ctx_t *C, const loom_value_t *root)
{
    loom_workflow_t *wf = C->wf;
    if (root->kind != LOOM_VALUE_MAP) {
        wf_report(C, root->line, root->col, NULL, "a workflow must be a mapping (version, name, steps, ...), got %s",
               wf_describe(C, root));
        return;
    }
    for (size_t i = 0; i < root->len; i++) {
        bool ok = false;
        for (size_t k = 0; top_fields[k] && !ok; k++)
            ok = !strcmp(root->entries[i].key, top_fields[k]);
        if (!ok)
            wf_unknown_field(C, &root->entries[i], "", NULL, top_fields, 9);
    }
    const loom_value_t *v = loom_value_get(root, "version");
    if (!v) {
        loom_err_t *e = wf_report(C, root->line, root->col, NULL, "missing required field 'version'");
        if (e)
            loom_err_hint(e, "start the file with 'version: 1'");
    } else if (v->kind != LOOM_VALUE_INT || v->i != 1) {
        loom_err_t *e = wf_report(C, v->line, v->col, "version", "unsupported version %s (this Loom reads version 1)",
                               v->str ? v->str : wf_describe(C, v));
        (void)e;
    } else {
        wf->version = 1;
    }
    v = loom_value_get(root, "name");
    if (!v) {
        wf_report(C, root->line, root->col, NULL, "missing required field 'name'");
    } else if (wf_get_string(C, v, "name", &wf->name)) {
        bool ok = wf->name[0] != 0;
        for (const char *p = wf->name; *p; p++)
            if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9') || strchr("_.-", *p)))
                ok = false;
        if (!ok)
            wf_report(C, v->line, v->col, "name", "invalid workflow name '%s' (use letters, digits, '_', '.' and '-')",
                   wf->name);
    }
    if ((v = loom_value_get(root, "description")) && wf_get_string(C, v, "description", &wf->description))
        (void)0;
    for (size_t i = 0; i < root->len; i++)
        if (!strcmp(root->entries[i].key, "sla"))
            check_sla(C, root->entries[i].value, &root->entries[i]);
    if ((v = loom_value_get(root, "inputs")))
        check_inputs(C, v);
    if ((v = loom_value_get(root, "resources")))
        check_resources(C, v);
    if ((v = loom_value_get(root, "secrets")))
        check_secrets(C, v);
    v = loom_value_get(root, "steps");
    if (!v) {
        wf_report(C, root->line, root->col, NULL, "missing required field 'steps'");
        return;
    }
    wf_collect_graph(C, v, "steps", &wf->graph, NULL, 0);
    wf_check_graph(C, &wf->graph, "steps");
    if ((v = loom_value_get(root, "outputs")))
        check_outputs(C, v);
}

/* ---- entry points ------------------------------------------------------------------ */

static void finish_diags(loom_diags_t *d)
{
    if (d)
        loom_diags_sort(d);
}

static int index_graph(loom_map_t *m, loom_wf_graph_t *g);

/* dir: base for relative paths (NULL: "." and no file checks). */
static int parse_at(const char *name, const char *dir, const char *text, size_t len, loom_workflow_t **out,
                    loom_diags_t *diags)
{
    *out = NULL;
    wf_ctx_t C = {.d = diags, .check_files = dir != NULL};
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
        wf_report(&C, 1, 1, NULL, "file is empty (a workflow needs version, name and steps)");
    loom_map_destroy(&C.ids);
    finish_diags(diags);
    if (C.errors) {
        loom_arena_destroy(&a);
        return LOOM_EPARSE;
    }
    if (!(wf->step_index = loom_map_new(NULL)) || index_graph(wf->step_index, &wf->graph) != 0) {
        loom_map_destroy(&wf->step_index);
        rc = LOOM_ENOMEM;
        goto out_oom;
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
    loom_buf_t b;
    loom_buf_init(&b, MAX_FILE_BYTES);
    if (loom_buf_read_file(&b, path) != 0) {
        int e = errno;
        loom_buf_free(&b);
        if (e == ENOMEM)
            return LOOM_ENOMEM;
        loom_err_t *d = loom_diags_add(diags);
        if (d) {
            if (e == EFBIG)
                loom_err_set(d, LOOM_ETOOBIG, "file is larger than %u MiB", MAX_FILE_BYTES >> 20);
            else
                loom_err_set(d, LOOM_EIO, "cannot read the file: %s", strerror(e));
            loom_err_at(d, path, 0, 0);
        }
        return e == EFBIG ? LOOM_ETOOBIG : LOOM_EIO;
    }
    char *copy = strdup(path);
    if (!copy) {
        loom_buf_free(&b);
        return LOOM_ENOMEM;
    }
    int rc = parse_at(path, dirname(copy), b.data, b.len, out, diags);
    free(copy);
    loom_buf_free(&b);
    return rc;
}

void loom_workflow_destroy(loom_workflow_t **pwf)
{
    if (!pwf || !*pwf)
        return;
    loom_map_destroy(&(*pwf)->step_index);
    loom_arena_t *a = (*pwf)->arena;
    loom_arena_destroy(&a);
    *pwf = NULL;
}

/* ---- lookups ------------------------------------------------------------------------ */

const loom_wf_step_t *loom_wf_graph_find(const loom_wf_graph_t *g, const char *id)
{
    if (g && id && g->by_id) {
        const loom_wf_step_t *s = loom_map_get(g->by_id, id);
        return s && s >= g->steps && s < g->steps + g->n_steps ? s : NULL;
    }
    for (size_t i = 0; g && id && i < g->n_steps; i++)
        if (strcmp(g->steps[i].id, id) == 0)
            return &g->steps[i];
    return NULL;
}

const loom_wf_step_t *loom_workflow_step(const loom_workflow_t *wf, const char *id)
{
    return wf ? loom_wf_graph_find(&wf->graph, id) : NULL;
}

/* Depth-first search of g and its loop bodies (workflows without an index). */
static const loom_wf_step_t *find_anywhere(const loom_wf_graph_t *g, const char *id)
{
    const loom_wf_step_t *s = loom_wf_graph_find(g, id);
    for (size_t i = 0; !s && g && i < g->n_steps; i++)
        if (g->steps[i].body)
            s = find_anywhere(g->steps[i].body, id);
    return s;
}

const loom_wf_step_t *loom_workflow_find_step(const loom_workflow_t *wf, const char *id)
{
    if (!wf || !id)
        return NULL;
    return wf->step_index ? loom_map_get(wf->step_index, id) : find_anywhere(&wf->graph, id);
}

/* Adds g's steps (and its bodies') to the index and points g at it. */
static int index_graph(loom_map_t *m, loom_wf_graph_t *g)
{
    g->by_id = m;
    for (size_t i = 0; i < g->n_steps; i++) {
        if (!loom_map_get(m, g->steps[i].id) && loom_map_put(m, g->steps[i].id, &g->steps[i]) != 0)
            return LOOM_ENOMEM;
        if (g->steps[i].body && index_graph(m, g->steps[i].body) != 0)
            return LOOM_ENOMEM;
    }
    return 0;
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

const loom_wf_tool_t *loom_workflow_tool(const loom_workflow_t *wf, const char *name)
{
    for (size_t i = 0; wf && name && i < wf->n_tools; i++)
        if (strcmp(wf->tools[i].name, name) == 0)
            return &wf->tools[i];
    return NULL;
}

const loom_value_t *loom_wf_step_field(const loom_wf_step_t *s, const char *key)
{
    return s ? loom_value_get(s->node, key) : NULL;
}
