/* stitch.c — the engine's data plumbing: resolving `${...}` references
 * against inputs and upstream outputs, rendering task inputs and workflow
 * outputs, validating run inputs, and turning state changes into run
 * events and store records. */
#include "orchestrator/engine_internal.h"
#include "orchestrator/plan_codec.h"
#include "orchestrator/secret_inputs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sha.h"
#include "common/utf8.h"

#define COMP "loomd"

/* ---- references ------------------------------------------------------------ */

/* The innermost loop iteration sc belongs to (NULL at the top level). */
static scope_t *loop_scope(scope_t *sc)
{
    return sc && sc->parent ? sc : NULL;
}

/* What a whole-value reference to the predecessor of a successor sent
 * ahead renders as (engine_render_chained); control characters, so no
 * workflow value is mistaken for it. */
#define CHAIN_PLACEHOLDER "\x01loom:predecessor-output\x01"
#define CHAIN_PLACEHOLDER_CORE "loom:predecessor-output"

json_t *engine_resolve(void *ctx, const loom_ref_t *ref, loom_err_t *err)
{
    rctx_t *rc = ctx;
    loom_run_t *r = rc->run;
    switch (ref->kind) {
    case LOOM_REF_INPUT: {
        json_t *v = json_object_get(r->inputs, ref->name);
        return v ? json_incref(v) : json_null();
    }
    case LOOM_REF_STEP:
        for (scope_t *s = rc->sc; s; s = s->parent) {
            const loom_wf_step_t *st = loom_wf_graph_find(s->g, ref->name);
            if (!st)
                continue;
            step_rt_t *rt = &s->st[st->index];
            if (s == rc->pred_sc && st->index == rc->pred) { /* engine_render_chained */
                if (ref->n_path == 0)
                    return json_string(CHAIN_PLACEHOLDER);
                loom_err_set(err, LOOM_EINVAL, "reads a part of step '%s''s output", ref->name);
                return NULL;
            }
            if (rt->state == LOOM_TASK_SKIPPED)
                return json_null();
            if (rt->state != LOOM_TASK_SUCCEEDED || !rt->output) {
                loom_err_set(err, LOOM_EINTERNAL, "output of step '%s' is not available (%s)",
                             ref->name,
                             rt->freed ? "already freed" : loom_store_task_state_name(rt->state));
                return NULL;
            }
            return json_incref(rt->output);
        }
        loom_err_set(err, LOOM_ENOTFOUND, "unknown step '%s'", ref->name);
        return NULL;
    case LOOM_REF_LOOP_ITERATION: {
        scope_t *ls = loop_scope(rc->sc);
        return json_integer(ls ? ls->iteration : 0);
    }
    case LOOM_REF_LOOP_PREV: {
        scope_t *ls = loop_scope(rc->sc);
        if (!ls)
            return json_null();
        json_t *prev = ls->parent->st[ls->owner].prev;
        json_t *v = prev ? json_object_get(prev, ref->name) : NULL;
        return v ? json_incref(v) : json_null();
    }
    case LOOM_REF_ITEM:
        if (!rc->has_item) {
            loom_err_set(err, LOOM_EINVAL, "${item} used outside a foreach step");
            return NULL;
        }
        return json_incref(rc->item);
    case LOOM_REF_SECRET: /* stays a reference: only the worker has the value */
        if (rc->secret_tag[0])
            return json_sprintf("${secrets.%s#%s}", ref->name, rc->secret_tag);
        return json_sprintf("${secrets.%s}", ref->name);
    }
    loom_err_set(err, LOOM_EINTERNAL, "unknown reference kind %d", (int)ref->kind);
    return NULL;
}

/* Step fields that steer the engine rather than the op. A loop's body,
 * until and max_iterations steer the engine too, but only on a loop: on
 * other ops those names are the op's own (tool.http's `body`). */
static int control_key(loom_op_kind_t op, const char *k)
{
    static const char *const keys[] = {"op", "needs", "when", "foreach", "retries", "timeout_ms",
                                       "expect", "description", "id"};
    static const char *const loop_keys[] = {"steps", "body", "until", "max_iterations"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    for (size_t i = 0; op == LOOM_OP_LOOP && i < sizeof loop_keys / sizeof *loop_keys; i++)
        if (strcmp(k, loop_keys[i]) == 0)
            return 1;
    return 0;
}

static json_t *model_json(const loom_wf_model_t *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(m->name));
    if (m->path)
        json_object_set_new(o, "path", json_string(m->path));
    if (m->arch)
        json_object_set_new(o, "arch", json_string(m->arch));
    if (m->dtype)
        json_object_set_new(o, "dtype", json_string(m->dtype));
    if (m->endpoint) {
        json_object_set_new(o, "endpoint", json_string(m->endpoint));
        if (m->remote_model)
            json_object_set_new(o, "model", json_string(m->remote_model));
        if (m->api_key_secret)
            json_object_set_new(o, "api_key_secret", json_string(m->api_key_secret));
        if (m->max_concurrency > 0)
            json_object_set_new(o, "max_concurrency", json_integer(m->max_concurrency));
        if (m->timeout_ms > 0)
            json_object_set_new(o, "timeout_ms", json_integer(m->timeout_ms));
        if (m->retries >= 0)
            json_object_set_new(o, "retries", json_integer(m->retries));
    }
    return o;
}

/* Marks read[k] for the top-level step k that ref names (a step's output,
 * or loop.prev of it). */
static void mark_ref(const loom_wf_graph_t *top, const loom_ref_t *ref, unsigned char *read)
{
    if ((ref->kind == LOOM_REF_STEP || ref->kind == LOOM_REF_LOOP_PREV) && ref->name) {
        const loom_wf_step_t *s = loom_wf_graph_find(top, ref->name);
        if (s)
            read[s - top->steps] = 1;
    }
}

static void mark_value(const loom_wf_graph_t *top, const loom_value_t *v, unsigned char *read)
{
    if (!v)
        return;
    for (size_t i = 0; v->tpl && i < loom_template_n_refs(v->tpl); i++)
        mark_ref(top, loom_template_ref(v->tpl, i), read);
    for (size_t i = 0; v->kind == LOOM_VALUE_SEQ && i < v->len; i++)
        mark_value(top, v->items[i], read);
    for (size_t i = 0; v->kind == LOOM_VALUE_MAP && i < v->len; i++)
        mark_value(top, v->entries[i].value, read);
}

static void mark_control(const loom_wf_graph_t *top, const loom_wf_graph_t *g, unsigned char *read)
{
    for (size_t k = 0; g && k < g->n_steps; k++) {
        const loom_wf_step_t *s = &g->steps[k];
        for (size_t i = 0; i < loom_expr_n_refs(s->when); i++)
            mark_ref(top, loom_expr_ref(s->when, i), read);
        for (size_t i = 0; i < loom_expr_n_refs(s->until); i++)
            mark_ref(top, loom_expr_ref(s->until, i), read);
        mark_value(top, s->foreach, read);
        mark_control(top, s->body, read);
    }
}

void engine_mark_control_reads(scope_t *top)
{
    unsigned char *read = calloc(top->g->n_steps ? top->g->n_steps : 1, 1);
    if (!read) { /* out of memory: no output goes by reference */
        for (size_t k = 0; k < top->g->n_steps; k++)
            top->st[k].control_read = 1;
        return;
    }
    mark_control(top->g, top->g, read); /* one pass over the workflow, not one per step */
    for (size_t k = 0; k < top->g->n_steps; k++)
        top->st[k].control_read = read[k];
    free(read);
}

/* The output of step s may travel by reference (workers/common/outref.h)
 * only when nothing loomd evaluates itself reads it: not the run's outputs
 * (materialised for the client), not a when/foreach/until, not a model-
 * output check (format: json / schema), not a loop body's step (until,
 * loop.prev), and not in a run with secret inputs (loomd redacts those from
 * what it stores; it could not redact a worker's object). */
static int output_by_reference(const loom_run_t *r, const scope_t *sc, const loom_wf_step_t *s)
{
    if (r->n_secrets || sc->g->owner || engine_output_refs_step(r->wf, s->id) ||
        sc->st[s - sc->g->steps].control_read)
        return 0;
    return !engine_output_checked(s);
}

int engine_render_input(const loom_engine_t *e, loom_run_t *r, scope_t *sc, size_t i, rctx_t *rc, char **out,
                        size_t *len, loom_err_t *err)
{
    const loom_wf_step_t *s = &sc->g->steps[i];
    rc->secret_tag[0] = '\0';
    if (r->wf->n_secrets) {
        unsigned char tag[16];
        if (loom_random_bytes(tag, sizeof tag) != 0)
            return loom_err_set(err, LOOM_EINTERNAL, "no randomness for the secret tag");
        loom_hex(tag, sizeof tag, rc->secret_tag);
    }
    json_t *in = json_object();
    if (!in)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    const loom_value_t *node = s->node;
    for (size_t k = 0; node && node->kind == LOOM_VALUE_MAP && k < node->len; k++) {
        const loom_value_entry_t *en = &node->entries[k];
        if (control_key(s->op, en->key))
            continue;
        json_t *v = NULL;
        int rc_ = loom_value_render(en->value, engine_resolve, rc, &v, err);
        if (rc_ != 0) {
            json_decref(in);
            if (!err->field[0])
                loom_err_field(err, "steps.%s.%s", s->id, en->key);
            return rc_;
        }
        json_object_set_new(in, en->key, v);
    }
    /* llm.decode names its prefill step (the validator made that step a
     * dependency): hand the worker that step's output, the KV cache. */
    if (s->op == LOOM_OP_LLM_DECODE && json_is_string(json_object_get(in, "prefill"))) {
        char *name = strdup(json_string_value(json_object_get(in, "prefill")));
        loom_ref_t ref = {.kind = LOOM_REF_STEP, .name = name};
        json_t *kv = name ? engine_resolve(rc, &ref, err) : NULL;
        int oom = !name;
        free(name);
        if (!kv || !json_is_object(kv)) {
            if (kv)
                loom_err_set(err, LOOM_EINVAL, "prefill step of '%s' produced no KV cache object", s->id);
            else if (oom)
                loom_err_set(err, LOOM_ENOMEM, "out of memory");
            json_decref(kv);
            json_decref(in);
            if (!err->field[0])
                loom_err_field(err, "steps.%s.prefill", s->id);
            return err->code ? err->code : LOOM_EINTERNAL;
        }
        json_object_set_new(in, "prefill", kv);
    }
    if (s->op == LOOM_OP_TOOL_EXEC && r->client_cwd && !json_object_get(in, "cwd"))
        json_object_set_new(in, "cwd", json_string(r->client_cwd));
    if ((s->op == LOOM_OP_COMPUTE || s->op == LOOM_OP_VECTOR_SEARCH || s->model) && r->workflow_dir &&
        !json_object_get(in, "cwd"))
        json_object_set_new(in, "workflow_dir", json_string(r->workflow_dir));
    if (s->model) {
        const loom_wf_model_t *m = loom_workflow_model(r->wf, s->model);
        if (m)
            json_object_set_new(in, "model_resource", model_json(m));
    }
    if (s->op == LOOM_OP_TOOL_MCP) {
        /* A server the workflow declares travels with the task; relative
         * paths of a stdio server resolve against the workflow's directory
         * (or the client's, like tool.exec). Names a worker configured
         * itself travel bare. */
        const loom_wf_tool_t *t = loom_workflow_tool(r->wf, json_string_value(json_object_get(in, "server")));
        json_t *spec = NULL;
        if (t && loom_value_render(t->node, engine_resolve, rc, &spec, err) != 0) {
            json_decref(in);
            loom_err_field(err, "resources.tools.%s", t->name);
            return err->code;
        }
        const char *dir = r->workflow_dir ? r->workflow_dir : r->client_cwd;
        if (spec && json_object_get(spec, "command") && dir) {
            const char *cwd = json_string_value(json_object_get(spec, "cwd"));
            if (!cwd)
                json_object_set_new(spec, "cwd", json_string(dir));
            else if (cwd[0] != '/') {
                char *full = NULL;
                if (asprintf(&full, "%s/%s", dir, cwd) > 0)
                    json_object_set_new(spec, "cwd", json_string(full));
                free(full);
            }
        }
        if (spec)
            json_object_set_new(in, "server_spec", spec);
    }
    if (s->index_name) {
        const loom_wf_index_t *ix = loom_workflow_index(r->wf, s->index_name);
        if (ix) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(ix->name));
            if (ix->path)
                json_object_set_new(o, "path", json_string(ix->path));
            json_object_set_new(o, "dim", json_integer(ix->dim));
            if (ix->metric)
                json_object_set_new(o, "metric", json_string(ix->metric));
            json_object_set_new(in, "index_resource", o);
        }
    }
    if (e->cfg.output_ref_bytes >= 0 && output_by_reference(r, sc, s))
        json_object_set_new(in, "$by_reference_over",
                            json_integer(e->cfg.output_ref_bytes ? e->cfg.output_ref_bytes : 65536));
    else
        json_object_del(in, "$by_reference_over"); /* only loomd says so, not a step's fields */
    if (rc->secret_tag[0]) /* the tag the worker substitutes at (workers/common/secrets.h) */
        json_object_set_new(in, "$secret_tag", json_string(rc->secret_tag));
    else
        json_object_del(in, "$secret_tag");
    *out = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    if (!*out)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    *len = strlen(*out);
    return 0;
}

/* 1 when c is the placeholder (its pointer, path, is appended to at), 0
 * when not, -1 when out of memory. */
static int placeholder_at(const json_t *c, const loom_buf_t *path, char ***at, size_t *n_at)
{
    if (!json_is_string(c) || strcmp(json_string_value(c), CHAIN_PLACEHOLDER) != 0)
        return 0;
    char **nat = realloc(*at, (*n_at + 1) * sizeof *nat);
    if (!nat)
        return -1;
    *at = nat;
    if (!(nat[*n_at] = strndup(path->data, path->len)))
        return -1;
    (*n_at)++;
    return 1;
}

/* Replaces each placeholder value under v (path: its JSON Pointer so far)
 * with null and appends its pointer to at. Returns how many, or -1 (out of
 * memory). */
static int take_placeholders(json_t *v, loom_buf_t *path, char ***at, size_t *n_at)
{
    int n = 0;
    size_t mark = path->len, i;
    const char *k;
    json_t *c;
    if (json_is_object(v)) {
        json_object_foreach(v, k, c) {
            loom_buf_putc(path, '/');
            for (const char *p = k; *p; p++) /* RFC 6901: ~ is ~0, / is ~1 */
                *p == '~' ? loom_buf_puts(path, "~0") : *p == '/' ? loom_buf_puts(path, "~1") : loom_buf_putc(path, *p);
            int m = placeholder_at(c, path, at, n_at);
            if (m > 0)
                json_object_set_new(v, k, json_null());
            else if (m == 0)
                m = take_placeholders(c, path, at, n_at);
            if (m < 0)
                return -1;
            n += m;
            path->len = mark;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, c) {
            loom_buf_printf(path, "/%zu", i);
            int m = placeholder_at(c, path, at, n_at);
            if (m > 0)
                json_array_set_new(v, i, json_null());
            else if (m == 0)
                m = take_placeholders(c, path, at, n_at);
            if (m < 0)
                return -1;
            n += m;
            path->len = mark;
        }
    }
    return n;
}

int engine_render_chained(const loom_engine_t *e, loom_run_t *r, scope_t *sc, size_t i, size_t pred,
                          char **out, size_t *len, char ***at, size_t *n_at)
{
    loom_err_t err;
    loom_err_clear(&err);
    rctx_t rc = {.run = r, .sc = sc, .pred_sc = sc, .pred = pred};
    *at = NULL;
    *n_at = 0;
    if (engine_render_input(e, r, sc, i, &rc, out, len, &err) != 0)
        return -1;
    /* the placeholder's text in the dumped JSON (\u0001 escaped around it) */
    size_t seen = 0;
    for (const char *p = *out; (p = strstr(p, CHAIN_PLACEHOLDER_CORE)); p += sizeof CHAIN_PLACEHOLDER_CORE - 1)
        seen++;
    if (!seen)
        return 0;
    json_t *in = json_loadb(*out, *len, 0, NULL);
    loom_buf_t path = LOOM_BUF_INIT;
    int taken = in ? take_placeholders(in, &path, at, n_at) : -1;
    loom_buf_free(&path);
    free(*out);
    *out = NULL;
    /* every placeholder a whole value (none inside a string or a key) */
    if (taken >= 0 && (size_t)taken == seen && (*out = json_dumps(in, JSON_COMPACT)))
        *len = strlen(*out);
    json_decref(in);
    if (*out)
        return 0;
    for (size_t k = 0; k < *n_at; k++)
        free((*at)[k]);
    free(*at);
    *at = NULL;
    *n_at = 0;
    return -1;
}

int engine_output_checked(const loom_wf_step_t *s)
{
    if (s->op != LOOM_OP_LLM_GENERATE && s->op != LOOM_OP_LLM_DECODE)
        return 0;
    const loom_value_t *f = loom_wf_step_field(s, "format");
    return (f && f->str && strcmp(f->str, "json") == 0) || loom_wf_step_field(s, "schema") != NULL;
}

int engine_render_outputs(loom_run_t *r, char **out, loom_err_t *err)
{
    json_t *o = json_object();
    rctx_t rc = {.run = r, .sc = r->top};
    for (size_t k = 0; k < r->wf->n_outputs; k++) {
        json_t *v = NULL;
        int rc_ = loom_value_render(r->wf->outputs[k].value, engine_resolve, &rc, &v, err);
        if (rc_ != 0) {
            json_decref(o);
            loom_err_field(err, "outputs.%s", r->wf->outputs[k].name);
            return rc_;
        }
        json_object_set_new(o, r->wf->outputs[k].name, v);
    }
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return *out ? 0 : loom_err_set(err, LOOM_ENOMEM, "out of memory");
}

static int value_refs_step(const loom_value_t *v, const char *id)
{
    if (!v)
        return 0;
    if (v->tpl) {
        for (size_t i = 0; i < loom_template_n_refs(v->tpl); i++) {
            const loom_ref_t *ref = loom_template_ref(v->tpl, i);
            if (ref->kind == LOOM_REF_STEP && strcmp(ref->name, id) == 0)
                return 1;
        }
    }
    if (v->kind == LOOM_VALUE_SEQ)
        for (size_t i = 0; i < v->len; i++)
            if (value_refs_step(v->items[i], id))
                return 1;
    if (v->kind == LOOM_VALUE_MAP)
        for (size_t i = 0; i < v->len; i++)
            if (value_refs_step(v->entries[i].value, id))
                return 1;
    return 0;
}

int engine_output_refs_step(const loom_workflow_t *wf, const char *step_id)
{
    for (size_t k = 0; k < wf->n_outputs; k++)
        if (value_refs_step(wf->outputs[k].value, step_id))
            return 1;
    return 0;
}

/* ---- run preparation ------------------------------------------------------ */

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Checks v against the declared type; converts scalars given for string
 * inputs (the CLI sends `--input n=42` as a number). Returns the value to
 * keep (new reference) or NULL when it does not fit. */
static json_t *coerce(loom_wf_type_t t, json_t *v)
{
    switch (t) {
    case LOOM_WF_TYPE_ANY: return json_incref(v);
    case LOOM_WF_TYPE_STRING:
        if (json_is_string(v))
            return json_incref(v);
        if (json_is_number(v) || json_is_boolean(v)) {
            char *s = json_dumps(v, JSON_ENCODE_ANY);
            json_t *str = s ? json_string(s) : NULL;
            free(s);
            return str;
        }
        return NULL;
    case LOOM_WF_TYPE_INT: return json_is_integer(v) ? json_incref(v) : NULL;
    case LOOM_WF_TYPE_NUMBER: return json_is_number(v) ? json_incref(v) : NULL;
    case LOOM_WF_TYPE_BOOL: return json_is_boolean(v) ? json_incref(v) : NULL;
    case LOOM_WF_TYPE_LIST: return json_is_array(v) ? json_incref(v) : NULL;
    case LOOM_WF_TYPE_OBJECT: return json_is_object(v) ? json_incref(v) : NULL;
    }
    return NULL;
}

int64_t engine_estimate_ms(const loom_wf_step_t *s)
{
    if (s->expect.latency_ms >= 0)
        return (int64_t)s->expect.latency_ms;
    switch (s->op) {
    case LOOM_OP_LLM_GENERATE: return 2000;
    case LOOM_OP_LLM_PREFILL: return 300;
    case LOOM_OP_LLM_DECODE: return 1500;
    case LOOM_OP_EMBED: return 50;
    case LOOM_OP_VECTOR_SEARCH: return 20;
    case LOOM_OP_TOOL_EXEC: return 50;
    case LOOM_OP_TOOL_HTTP:
    case LOOM_OP_TOOL_MCP: return 200;
    case LOOM_OP_COMPUTE: return 20;
    case LOOM_OP_SLEEP: return 10;
    case LOOM_OP_LOOP: {
        int64_t body = 0;
        for (size_t i = 0; s->body && i < s->body->n_steps; i++)
            body += engine_estimate_ms(&s->body->steps[i]);
        double it = s->expect.iterations >= 0 ? s->expect.iterations
                                               : (s->max_iterations > 0 ? s->max_iterations : 1);
        return (int64_t)(body * it);
    }
    default: return 0;
    }
}

/* ---- parsed workflows, shared by the runs of one document ---------------------- */

/* Runs submitted with the same document (byte for byte, same file name)
 * share one parsed, read-only workflow: a client that submits the same
 * workflow again and again (an agent's loop, bench-dispatch) pays the YAML
 * parse once. The map holds one reference and each run another; the map
 * forgets the oldest document beyond WF_CACHE_MAX (its runs keep theirs). */
struct wf_shared {
    loom_workflow_t *wf;
    unsigned refs;
    uint64_t seq; /* when it was parsed: the oldest goes first */
};

#define WF_CACHE_MAX 64
#define WF_CACHE_MAX_TEXT (1 << 20) /* larger documents are parsed for their run alone */

static void wf_unref(void *p)
{
    struct wf_shared *w = p;
    if (w && --w->refs == 0) {
        loom_workflow_destroy(&w->wf);
        free(w);
    }
}

loom_map_t *engine_workflows_new(void)
{
    return loom_map_new(wf_unref);
}

void engine_workflow_release(loom_run_t *r)
{
    if (r->wf_shared) {
        wf_unref(r->wf_shared);
        r->wf_shared = NULL;
        r->wf = NULL;
    } else {
        loom_workflow_destroy(&r->wf);
    }
}

/* The map's key for a document: "<file>\x1f<text>" (NULL: not shared). */
static char *wf_key(const char *name, const char *yaml, size_t len)
{
    if (len > WF_CACHE_MAX_TEXT || memchr(yaml, 0, len) || strchr(name, '\x1f'))
        return NULL;
    size_t nl = strlen(name);
    char *k = malloc(nl + 1 + len + 1);
    if (k) {
        memcpy(k, name, nl);
        k[nl] = '\x1f';
        memcpy(k + nl + 1, yaml, len);
        k[nl + 1 + len] = 0;
    }
    return k;
}

/* r->wf from the shared parse of (name, yaml), parsing it when new;
 * otherwise as loom_workflow_parse. */
static int workflow_for(loom_engine_t *e, loom_run_t *r, const char *name, const char *yaml, size_t len,
                        loom_diags_t *d)
{
    static uint64_t seq;
    char *key = e->workflows ? wf_key(name, yaml, len) : NULL;
    struct wf_shared *w = key ? loom_map_get(e->workflows, key) : NULL;
    if (!w) {
        int rc = loom_workflow_parse(name, yaml, len, &r->wf, d);
        if (rc != 0 || !key || !(w = calloc(1, sizeof *w))) {
            free(key);
            return rc;
        }
        if (loom_map_len(e->workflows) >= WF_CACHE_MAX) { /* forget the oldest */
            size_t it = 0;
            const char *k, *oldest = NULL;
            void *v;
            uint64_t t = UINT64_MAX;
            while (loom_map_next(e->workflows, &it, &k, &v))
                if (((struct wf_shared *)v)->seq < t) {
                    t = ((struct wf_shared *)v)->seq;
                    oldest = k;
                }
            char *ok = oldest ? strdup(oldest) : NULL;
            if (ok)
                loom_map_del(e->workflows, ok);
            free(ok);
        }
        w->wf = r->wf;
        w->refs = 1;
        w->seq = ++seq;
        if (loom_map_put(e->workflows, key, w) != 0) { /* the run keeps it alone */
            free(w);
            free(key);
            return 0;
        }
        r->wf = NULL;
    }
    free(key);
    w->refs++;
    r->wf_shared = w;
    r->wf = w->wf;
    return 0;
}

int engine_prepare_run(loom_engine_t *e, loom_run_t *r, const loom_submit_t *s, loom_err_t *err)
{
    const char *name = s->name && *s->name ? s->name : "workflow.yaml";
    if (!s->yaml || !s->yaml_len)
        return loom_err_set(err, LOOM_EINVAL, "empty workflow document");
    loom_diags_t d = LOOM_DIAGS_INIT;
    int rc = workflow_for(e, r, name, s->yaml, s->yaml_len, &d);
    if (rc != 0) {
        if (d.len) {
            *err = d.items[0];
            if (d.len + d.dropped > 1 && !err->detail[0])
                loom_err_detail(err, "%zu more error(s); run 'loom validate %s' to see all",
                                d.len + d.dropped - 1, name);
        } else {
            loom_err_set(err, rc, "workflow %s could not be parsed", name);
        }
        loom_diags_free(&d);
        return rc ? rc : LOOM_EPARSE;
    }
    loom_diags_free(&d);
    r->yaml = strndup(s->yaml, s->yaml_len);
    r->name = strdup(name);
    if (s->cwd && s->cwd[0] == '/')
        r->client_cwd = strdup(s->cwd);
    r->tenant = strdup(s->tenant && *s->tenant ? s->tenant : "default");
    if (s->labels_json)
        r->labels_json = strdup(s->labels_json);
    if (name[0] == '/') { /* compute/vector.search resolve artifacts from here */
        const char *slash = strrchr(name, '/');
        r->workflow_dir = strndup(name, slash > name ? (size_t)(slash - name) : 1);
    }
    /* inputs */
    json_t *given = NULL;
    if (s->inputs_json && *s->inputs_json) {
        json_error_t je;
        given = json_loads(s->inputs_json, 0, &je);
        if (!given || !json_is_object(given)) {
            json_decref(given);
            loom_err_set(err, LOOM_EINVAL, "inputs must be a JSON object%s%s",
                         given ? "" : ": ", given ? "" : je.text);
            loom_err_field(err, "inputs");
            return LOOM_EINVAL;
        }
    } else {
        given = json_object();
    }
    r->inputs = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(given, k, v) {
        if (!loom_workflow_input(r->wf, k)) {
            loom_err_set(err, LOOM_EINVAL, "unknown input '%s'", k);
            loom_err_at(err, name, 0, 0);
            loom_err_field(err, "inputs.%s", k);
            char hint[200] = "";
            size_t n = 0;
            for (size_t i = 0; i < r->wf->n_inputs && n < sizeof hint - 40; i++)
                n += (size_t)snprintf(hint + n, sizeof hint - n, "%s%s", i ? ", " : "",
                                      r->wf->inputs[i].name);
            loom_err_hint(err, "the workflow's inputs are: %s", n ? hint : "(none)");
            json_decref(given);
            return LOOM_EINVAL;
        }
    }
    for (size_t i = 0; i < r->wf->n_inputs; i++) {
        const loom_wf_input_t *in = &r->wf->inputs[i];
        json_t *val = json_object_get(given, in->name), *kept = NULL;
        if (val) {
            if (!(kept = coerce(in->type, val))) {
                loom_err_set(err, LOOM_EINVAL, "input '%s' must be %s, got %s", in->name,
                             loom_wf_type_name(in->type), json_type_name(val));
                loom_err_at(err, name, in->line, in->col);
                loom_err_field(err, "inputs.%s", in->name);
                json_decref(given);
                return LOOM_EINVAL;
            }
        } else if (in->default_value) {
            kept = loom_value_to_json(in->default_value);
        } else if (in->required) {
            loom_err_set(err, LOOM_EINVAL, "missing required input '%s'", in->name);
            loom_err_at(err, name, in->line, in->col);
            loom_err_field(err, "inputs.%s", in->name);
            loom_err_hint(err, "pass it with --input %s=VALUE", in->name);
            json_decref(given);
            return LOOM_EINVAL;
        } else {
            kept = json_null();
        }
        json_object_set_new(r->inputs, in->name, kept);
    }
    json_decref(given);
    r->secrets = loom_redact_collect(r->wf, r->inputs, &r->n_secrets);
    /* SLA and the remaining critical path of each top-level step */
    r->sla_ms = s->sla_latency_ms > 0 ? s->sla_latency_ms
                : r->wf->sla.set      ? (double)r->wf->sla.latency_ms
                                      : 0;
    r->created_ms = r->started_ms = loom_wall_ms();
    r->start_mono = loom_clock_ms();
    if (r->sla_ms > 0) {
        r->deadline_mono = r->start_mono + (uint64_t)r->sla_ms;
        r->deadline_ms = r->created_ms + (int64_t)r->sla_ms;
    }
    r->state = LOOM_RUN_RUNNING;
    const loom_wf_graph_t *g = &r->wf->graph;
    r->cp = calloc(g->n_steps ? g->n_steps : 1, sizeof *r->cp);
    if (!r->cp || !r->yaml || !r->name)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    /* reverse topological order: cp = own estimate + the longest dependent.
     * Walking each step's deps pushes its cp down to them (O(edges)). */
    int64_t *longest = calloc(g->n_steps ? g->n_steps : 1, sizeof *longest);
    if (!longest)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    for (size_t k = g->n_steps; k-- > 0;) {
        size_t j = g->order[k];
        r->cp[j] = engine_estimate_ms(&g->steps[j]) + longest[j];
        for (size_t q = 0; q < g->steps[j].n_deps; q++) {
            size_t d = g->steps[j].deps[q].step;
            if (r->cp[j] > longest[d])
                longest[d] = r->cp[j];
        }
    }
    free(longest);
    return 0;
}

/* ---- events and store records ------------------------------------------------- */


static const char *const kind_names[] = {
    "unspecified", "run.queued", "run.planned", "run.replanned", "step.started",
    "step.progress", "step.finished", "step.failed", "step.retried", "step.skipped",
    "sla.at_risk", "sla.missed", "worker.lost", "run.finished", "run.failed", "run.cancelled"};

const char *loom_event_kind_name(int kind)
{
    return kind >= 0 && kind < (int)(sizeof kind_names / sizeof *kind_names) ? kind_names[kind]
                                                                             : "unknown";
}

int loom_event_kind_parse(const char *name)
{
    for (size_t i = 0; name && i < sizeof kind_names / sizeof *kind_names; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return (int)i;
    return -1;
}

/* *s as valid UTF-8 (a repaired copy in *own when it was not): messages
 * carry tool stderr and model text, RunEvent's fields are proto3 strings. */
static void emit(loom_engine_t *e, loom_run_t *r, const engine_ev_t *ev);

static void utf8_field(const char **s, char **own)
{
    *own = NULL;
    if (*s && !loom_utf8_valid(*s, strlen(*s)) && (*own = loom_utf8_repair(*s, strlen(*s), NULL)))
        *s = *own;
}

void engine_emit(loom_engine_t *e, loom_run_t *r, const engine_ev_t *ev_in)
{
    engine_ev_t evc = *ev_in, *ev = &evc;
    char *own[3];
    utf8_field(&evc.message, &own[0]);
    utf8_field(&evc.error, &own[1]);
    utf8_field(&evc.text, &own[2]);
    emit(e, r, ev);
    for (int i = 0; i < 3; i++)
        free(own[i]);
}

/* ,"key":"value" into an event's stored detail; skipped when v is NULL or
 * not UTF-8 (as a JSON tree would refuse it). */
static void detail_str(loom_buf_t *b, const char *key, const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (!v || !loom_utf8_valid(v, n))
        return;
    loom_buf_puts(b, ",\"");
    loom_buf_puts(b, key);
    loom_buf_puts(b, "\":");
    loom_buf_json_str(b, v, n);
}

/* ,"key":number: whole numbers (elapsed ms, SLAs) without a float format */
static void detail_num(loom_buf_t *b, const char *key, double v)
{
    if (v == (double)(long long)v)
        loom_buf_printf(b, ",\"%s\":%lld", key, (long long)v);
    else
        loom_buf_printf(b, ",\"%s\":%.9g", key, v);
}

static void emit(loom_engine_t *e, loom_run_t *r, const engine_ev_t *ev)
{
    Loom__V1__RunEvent pe = LOOM__V1__RUN_EVENT__INIT;
    Loom__V1__Error perr = LOOM__V1__ERROR__INIT;
    pe.seq = ++r->seq;
    pe.run_id = r->id;
    pe.time_unix_ms = loom_wall_ms();
    pe.kind = ev->kind;
    pe.step_id = (char *)(ev->step_id ? ev->step_id : "");
    pe.task_id = (char *)(ev->task_id ? ev->task_id : "");
    pe.worker_id = (char *)(ev->worker_id ? ev->worker_id : "");
    pe.attempt = (uint32_t)ev->attempt;
    pe.run_state = loom_store_run_state_pb(r->state);
    pe.step_state = ev->step_state;
    pe.message = (char *)(ev->message ? ev->message : "");
    pe.output_json = (char *)(ev->output ? ev->output : "");
    pe.elapsed_ms = (double)(pe.time_unix_ms - r->created_ms);
    pe.sla_latency_ms = r->sla_ms;
    pe.text = (char *)(ev->text ? ev->text : "");
    pe.step_ms = ev->step_ms;
    pe.plan = (Loom__V1__Plan *)ev->plan;
    if (ev->error) {
        perr.code = ev->error_code > 0 ? ev->error_code : LOOM__V1__STATUS_CODE__UNKNOWN;
        perr.message = (char *)ev->error;
        pe.error = &perr;
    }
    if (ev->device)
        pe.device_kind = strcmp(ev->device, "gpu") == 0   ? LOOM__V1__DEVICE_KIND__DEVICE_KIND_GPU
                         : strcmp(ev->device, "npu") == 0 ? LOOM__V1__DEVICE_KIND__DEVICE_KIND_NPU
                                                          : LOOM__V1__DEVICE_KIND__DEVICE_KIND_CPU;
    /* Progress is streamed to watchers only; everything else is stored. */
    if (ev->kind != LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS || !ev->text) {
        /* the stored detail, written directly (no JSON tree per event: two
         * events per task, so this is on the dispatch hot path) */
        loom_buf_t d = LOOM_BUF_INIT;
        loom_buf_printf(&d, "{\"run_state\":%d", (int)pe.run_state);
        detail_str(&d, "message", ev->message);
        detail_str(&d, "worker", ev->worker_id);
        detail_str(&d, "task", ev->task_id);
        detail_str(&d, "output_json", ev->output);
        if (ev->error) {
            detail_str(&d, "error", ev->error);
            loom_buf_printf(&d, ",\"error_code\":%d", (int)perr.code);
        }
        detail_str(&d, "device", ev->device);
        if (ev->plan) { /* the Plan (plan_codec.h), so replays can send it again */
            char *own = ev->plan_hex ? NULL : loom_plan_codec_hex(ev->plan);
            const char *hex = ev->plan_hex ? ev->plan_hex : own;
            if (hex) { /* hex digits need no escape (client_api.c's replay finds the key so) */
                loom_buf_puts(&d, ",\"" LOOM_PLAN_KEY_Z "\":\"");
                loom_buf_puts(&d, hex);
                loom_buf_putc(&d, '"');
            }
            free(own);
        }
        if (ev->step_state)
            loom_buf_printf(&d, ",\"step_state\":%d", ev->step_state);
        detail_num(&d, "elapsed_ms", pe.elapsed_ms);
        if (ev->step_ms > 0)
            detail_num(&d, "step_ms", ev->step_ms);
        if (r->sla_ms > 0)
            detail_num(&d, "sla_ms", r->sla_ms);
        loom_buf_putc(&d, '}');
        char *dj = loom_buf_detach(&d, NULL);
        loom_store_event_t se = {.run_id = r->id, .seq = (int64_t)pe.seq,
                                 .ts_ms = pe.time_unix_ms, .kind = loom_event_kind_name(ev->kind),
                                 .step_id = ev->step_id, .attempt = ev->attempt,
                                 .detail_json = dj};
        loom_err_t err;
        if (loom_store_event_append(e->cfg.store, &se, &err) != 0)
            LOOM_WARN(COMP, "msg=\"store: event append failed\" run=%s err=\"%s\"", r->id, err.msg);
        free(dj);
    }
    if (e->cfg.on_event)
        e->cfg.on_event(e->cfg.ud, r, &pe, ev->final);
}

static int task_index(const scope_t *sc, const loom_task_t *t)
{
    return sc->parent ? sc->iteration : (t && t->index >= 0 ? 0 : 0);
}

/* The step ids step i of sc waits for, as a JSON array (caller frees;
 * NULL on OOM), for the store's DAG edges. */
static char *needs_json(scope_t *sc, size_t i)
{
    const loom_wf_step_t *s = &sc->g->steps[i];
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_putc(&b, '[');
    for (size_t k = 0; k < s->n_deps; k++) {
        char did[256];
        engine_step_path(sc, s->deps[k].step, did, sizeof did);
        if (k)
            loom_buf_putc(&b, ',');
        loom_buf_json_str(&b, did, strlen(did));
    }
    loom_buf_putc(&b, ']');
    return loom_buf_detach(&b, NULL);
}

/* Records step i of sc: attempt t of a plain step, the step as a whole
 * (t NULL: foreach and loop steps, skips, failures before any task), or,
 * with item set, the foreach item t as its own record "step[<item>]" (its
 * worker, timings, cost, output or error). */
static void store_task(loom_engine_t *e, scope_t *sc, size_t i, const loom_task_t *t, int item,
                       loom_task_state_t state, const char *output, const char *error)
{
    char sid[256];
    engine_step_path(sc, i, sid, sizeof sid);
    step_rt_t *st = &sc->st[i];
    if (item && t && t->index >= 0) {
        size_t n = strlen(sid);
        snprintf(sid + n, sizeof sid - n, "[%d]", t->index);
    }
    if (t && t->kv_part == 1) { /* a split llm.generate's prefill: a record of its own, named as its node */
        size_t n = strlen(sid);
        snprintf(sid + n, sizeof sid - n, ".prefill");
    }
    int one_task = t && (item || !st->is_foreach); /* a record of one dispatched task */
    const char *op = t && t->kv_part ? t->op : loom_op_kind_name(sc->g->steps[i].op);
    int64_t finished = loom_store_task_state_final(state) ? loom_wall_ms() : 0;
    /* Why it ran where it ran: the policy's reason, else least-loaded's. */
    char dflt[200];
    const char *reason = NULL;
    if (t && t->ran_inline)
        reason = "run inline in loomd (loomd --inline-ops): a cheap op needs no worker round trip";
    else if (t && t->worker) {
        reason = t->reason;
        if (!reason) {
            snprintf(dflt, sizeof dflt, "least-loaded worker of a kind that runs %s (%s worker %s)",
                     op, t->worker->kind, t->worker->id);
            reason = dflt;
        }
    }
    /* From when the worker started it (Started), else from when it was
     * sent: time queued on the worker is neither the task's time nor cost. */
    int64_t began = t ? (t->running_ms ? t->running_ms : t->started_ms) : st->started_ms;
    /* Actual cost: execution time on the worker x its registered price. */
    double cost = 0;
    if (finished && t && t->worker && began > 0 && finished >= began &&
        t->worker->price_per_hour > 0)
        cost = (double)(finished - began) / 3600000.0 * t->worker->price_per_hour;
    if (one_task)
        sc->run->cost += cost;
    char *needs = needs_json(sc, i);
    loom_store_task_t rec = {
        .run_id = sc->run->id, .step_id = sid, .index = task_index(sc, t),
        .attempt = one_task ? t->attempt : 1,
        .op = op,
        .worker_id = t && t->worker ? t->worker->id : t && t->ran_inline ? "loomd" : NULL,
        .device = t && t->worker ? t->worker->kind : t && t->ran_inline ? "inline" : NULL, .state = state,
        .ready_ms = t ? t->ready_ms : st->started_ms,
        .started_ms = began,
        .finished_ms = finished,
        .output_json = output, .error = error,
        .error_code = error ? (st->error_code ? st->error_code : engine_error_code(state, 0)) : 0,
        .predicted_ms = one_task ? t->predicted_ms : 0,
        .predicted_cost = one_task ? t->predicted_cost : 0,
        .cost = one_task ? cost : 0, .reason = reason, .needs_json = needs};
    loom_err_t err;
    if (loom_store_task_put(e->cfg.store, &rec, &err) != 0)
        LOOM_WARN(COMP, "msg=\"store: task put failed\" run=%s step=%s err=\"%s\"", sc->run->id,
                  sid, err.msg);
    free(needs);
}

void engine_step_event(loom_engine_t *e, scope_t *sc, size_t i, const loom_task_t *t, int kind,
                       const char *message, const char *error)
{
    char sid[256];
    engine_step_path(sc, i, sid, sizeof sid);
    engine_ev_t ev = {.kind = kind, .step_id = sid, .message = message, .error = error,
                      .step_state = kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_STARTED
                                        ? LOOM__V1__STEP_STATE__STEP_RUNNING
                                        : loom_store_task_state_pb(sc->st[i].state)};
    if (t) {
        ev.task_id = t->id;
        ev.attempt = t->attempt;
        if (t->worker) {
            ev.worker_id = t->worker->id;
            ev.device = t->worker->kind;
        } else if (t->ran_inline) {
            ev.worker_id = "loomd";
            ev.device = "inline";
        }
    }
    engine_emit(e, sc->run, &ev);
}

void engine_step_finished(loom_engine_t *e, scope_t *sc, size_t i, loom_task_state_t state,
                          const char *error)
{
    step_rt_t *st = &sc->st[i];
    char sid[256];
    engine_step_path(sc, i, sid, sizeof sid);
    char *out = state == LOOM_TASK_SUCCEEDED && st->output
                    ? json_dumps(st->output, JSON_COMPACT | JSON_ENCODE_ANY)
                    : NULL;
    int kind = state == LOOM_TASK_SUCCEEDED ? LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FINISHED
               : state == LOOM_TASK_SKIPPED ? LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_SKIPPED
                                            : LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FAILED;
    /* Foreach steps and loops have no single task: record the step. Plain
     * steps were recorded per attempt as they ran. */
    if (state != LOOM_TASK_SUCCEEDED && state != LOOM_TASK_SKIPPED && !st->error_code)
        st->error_code = state == LOOM_TASK_FAILED ? LOOM__V1__STATUS_CODE__INVALID_ARGUMENT /* when:, foreach:, input, until: */
                                                   : engine_error_code(state, 0);
    if (st->is_foreach || sc->g->steps[i].op == LOOM_OP_LOOP || state == LOOM_TASK_SKIPPED ||
        !st->started_event)
        store_task(e, sc, i, NULL, 0, state, out, error);
    char msg[160] = "";
    if (st->is_foreach)
        snprintf(msg, sizeof msg, "%zu item(s)", st->n_items);
    else if (sc->g->steps[i].op == LOOM_OP_LOOP)
        snprintf(msg, sizeof msg, "%d iteration(s)", st->iteration);
    else if (state == LOOM_TASK_SKIPPED)
        snprintf(msg, sizeof msg, "when: was false");
    engine_ev_t ev = {.kind = kind, .step_id = sid, .message = msg[0] ? msg : NULL,
                      .output = out, .error = error, .step_state = loom_store_task_state_pb(state),
                      .step_ms = (double)(st->finished_ms - st->started_ms),
                      .error_code = st->error_code,
                      /* the attempt that ended a plain step (none for foreach/loop/skip) */
                      .task_id = st->last_task[0] ? st->last_task : NULL,
                      .worker_id = st->last_worker[0] ? st->last_worker : NULL,
                      .attempt = st->last_attempt};
    engine_emit(e, sc->run, &ev);
    free(out);
}

void engine_task_assigned(loom_engine_t *e, loom_task_t *t)
{
    scope_t *sc = t->scope;
    step_rt_t *st = &sc->st[t->step];
    engine_objects_note_worker(t->run, t, t->worker);
    store_task(e, sc, t->step, t, st->is_foreach, LOOM_TASK_RUNNING, NULL, NULL);
    if (!st->started_event || (!st->is_foreach && t->attempt > 1)) {
        if (!st->started_event && st->is_foreach) /* the step as a whole (no one worker) */
            store_task(e, sc, t->step, NULL, 0, LOOM_TASK_RUNNING, NULL, NULL);
        st->started_event = 1;
        char msg[200] = "";
        /* time spent ready in loomd before a worker took it, reported apart
         * from execution (timeout_ms counts from the worker's Started) */
        long queued = (long)(t->started_ms - t->ready_ms);
        if (st->is_foreach)
            snprintf(msg, sizeof msg, "fan-out of %zu", st->n_items);
        else if (t->ran_chained) /* engine.c, chain_ahead */
            snprintf(msg, sizeof msg, "chained: sent ahead behind its predecessor on %s",
                     t->worker ? t->worker->id : "its worker");
        else if (queued > 0)
            snprintf(msg, sizeof msg, "queued %ld ms before it started", queued);
        engine_step_event(e, sc, t->step, t, LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_STARTED,
                          msg[0] ? msg : NULL, NULL);
    }
}

void engine_task_running(loom_engine_t *e, loom_task_t *t)
{
    scope_t *sc = t->scope;
    store_task(e, sc, t->step, t, sc->st[t->step].is_foreach, LOOM_TASK_RUNNING, NULL, NULL);
}

void engine_task_attempt_failed(loom_engine_t *e, loom_task_t *t, loom_task_state_t how,
                                const char *error)
{
    scope_t *sc = t->scope;
    store_task(e, sc, t->step, t, sc->st[t->step].is_foreach, how, NULL, error);
}

void engine_task_retried(loom_engine_t *e, loom_task_t *t, const char *why, int code)
{
    char msg[700], sid[256];
    snprintf(msg, sizeof msg, "attempt %d%s%s", t->attempt, why ? " after: " : "", why ? why : "");
    engine_step_path(t->scope, t->step, sid, sizeof sid);
    /* the error of the attempt that failed (or was lost), with its code */
    engine_ev_t ev = {.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_RETRIED, .step_id = sid,
                      .message = msg, .error = why, .error_code = code, .task_id = t->id,
                      .attempt = t->attempt,
                      .step_state = loom_store_task_state_pb(t->scope->st[t->step].state)};
    engine_emit(e, t->scope->run, &ev);
}

void engine_task_succeeded(loom_engine_t *e, loom_task_t *t, const char *output, size_t len,
                           double step_ms)
{
    (void)step_ms;
    scope_t *sc = t->scope;
    char *copy = NULL;
    if (output && len) {
        copy = strndup(output, len);
    }
    store_task(e, sc, t->step, t, sc->st[t->step].is_foreach, LOOM_TASK_SUCCEEDED,
               copy ? copy : "null", NULL);
    free(copy);
}

static void progress_event(loom_engine_t *e, loom_task_t *t, const char *text);

void engine_task_progress(loom_engine_t *e, loom_task_t *t, const char *text)
{
    /* Tokens may end inside a multi-byte character: hold the cut-off bytes
     * back for the next chunk, so every event's text is valid UTF-8. */
    size_t n = text ? strlen(text) : 0;
    char *joined = malloc((size_t)t->n_utf8_tail + n + 1);
    if (!joined)
        return;
    memcpy(joined, t->utf8_tail, (size_t)t->n_utf8_tail);
    memcpy(joined + t->n_utf8_tail, text ? text : "", n + 1);
    size_t cut = 0, len = (size_t)t->n_utf8_tail + n;
    char *clean = loom_utf8_repair(joined, len, &cut);
    t->n_utf8_tail = (int)cut;
    memcpy(t->utf8_tail, joined + len - cut, cut);
    free(joined);
    if (!clean)
        return;
    if (clean[0])
        progress_event(e, t, clean);
    free(clean);
}

static void progress_event(loom_engine_t *e, loom_task_t *t, const char *text)
{
    char sid[256];
    engine_step_path(t->scope, t->step, sid, sizeof sid);
    engine_ev_t ev = {.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS, .step_id = sid,
                      .task_id = t->id, .attempt = t->attempt, .text = text,
                      .worker_id = t->worker ? t->worker->id : NULL,
                      .step_state = LOOM__V1__STEP_STATE__STEP_RUNNING};
    engine_emit(e, t->run, &ev);
}

void engine_worker_lost_event(loom_engine_t *e, loom_task_t *t, loom_worker_rec_t *w)
{
    char sid[256], msg[300];
    engine_step_path(t->scope, t->step, sid, sizeof sid);
    snprintf(msg, sizeof msg, "worker %s stopped heartbeating while running task %s", w->id,
             t->id);
    engine_ev_t ev = {.kind = LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_WORKER_LOST, .step_id = sid,
                      .task_id = t->id, .attempt = t->attempt, .worker_id = w->id,
                      .message = msg};
    engine_emit(e, t->run, &ev);
}

void engine_task_cancelled(loom_engine_t *e, loom_task_t *t, const char *why)
{
    scope_t *sc = t->scope;
    step_rt_t *st = &sc->st[t->step];
    /* the step as a whole is cancelled only if it has not ended already
     * (a failed item fails the step, then the run cancels its siblings) */
    if (st->is_foreach && !st->cancel_recorded && !loom_store_task_state_final(st->state)) {
        store_task(e, sc, t->step, NULL, 0, LOOM_TASK_CANCELLED, NULL, why);
        st->cancel_recorded = 1;
    }
    if (!st->is_foreach || t->worker) /* items never dispatched have no record */
        store_task(e, sc, t->step, t, st->is_foreach, LOOM_TASK_CANCELLED, NULL, why);
}
