/* decompose.c — see decompose.h. */
#include "planner/decompose.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Defaults when a workflow gives no hint (documented in docs/PLANNER.md). */
#define DEF_PROMPT_TOKENS 512
#define DEF_OUTPUT_TOKENS 256
#define DEF_EMBED_TOKENS 128
#define DEF_TOOL_EXEC_MS 100
#define DEF_TOOL_HTTP_MS 200
#define DEF_TOOL_CV 0.5
#define DEF_WHEN_PROB 0.5
#define DEF_INDEX_ROWS 100000
#define DEF_COMPUTE_FLOPS 1e9
#define TEXT_BYTES 4096 /* a step's JSON output crossing an edge */

static void note(loom_decompose_notes_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(loom_decompose_notes_t *n, const char *fmt, ...)
{
    if (!n)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **ni = realloc(n->items, (n->len + 1) * sizeof *ni);
    if (!ni)
        return;
    n->items = ni;
    if ((n->items[n->len] = strdup(buf)))
        n->len++;
}

void loom_decompose_notes_free(loom_decompose_notes_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->len; i++)
        free(n->items[i]);
    free(n->items);
    n->items = NULL;
    n->len = 0;
}

/* Bytes per weight of a ggml block-quantised type (block bytes / block
 * weights, from ggml's block layouts), 0 when dtype is not one. */
static double quant_bytes(const char *dtype)
{
    static const struct { const char *name; double bytes; } q[] = {
        {"q8_0", 34.0 / 32}, {"q4_0", 18.0 / 32}, {"q4_1", 20.0 / 32}, {"q5_0", 22.0 / 32},
        {"q5_1", 24.0 / 32}, {"q4_k", 144.0 / 256}, {"q5_k", 176.0 / 256}, {"q6_k", 210.0 / 256},
    };
    for (size_t i = 0; dtype && i < sizeof q / sizeof q[0]; i++)
        if (strcasecmp(dtype, q[i].name) == 0)
            return q[i].bytes;
    return 0;
}

int loom_decompose_model(const loom_workflow_t *wf, const char *name, loom_model_shape_t *s,
                         loom_decompose_notes_t *notes)
{
    const loom_wf_model_t *m = name ? loom_workflow_model(wf, name) : NULL;
    if (!m)
        return LOOM_ENOTFOUND;
    memset(s, 0, sizeof *s);
    /* Block-quantised GGUF types are checked first: loom_prec_parse also
     * maps q8_0 to int8, but a q8_0 file is not plain int8. They compute at
     * the int8 rate, store their ggml block size per weight and keep an
     * f16 KV cache, as llama.cpp does. */
    double qbytes = quant_bytes(m->dtype);
    int p = qbytes > 0 ? LOOM_PREC_INT8 : m->dtype ? loom_prec_parse(m->dtype) : -1;
    if (p < 0) {
        p = LOOM_PREC_FP16;
        note(notes, "model %s: dtype %s unknown, assumed fp16", name, m->dtype ? m->dtype : "(none)");
    }
    s->prec = (loom_prec_t)p;
    s->dtype_bytes = qbytes > 0 ? qbytes : loom_prec_bytes(s->prec);
    s->kv_bytes = qbytes > 0 ? 2 : loom_prec_bytes(s->prec);
    s->layers = (double)m->layers;
    s->hidden = (double)m->hidden;
    s->heads = (double)m->heads;
    s->kv_heads = (double)(m->kv_heads ? m->kv_heads : m->heads);
    s->head_dim = (double)(m->head_dim ? m->head_dim : (m->heads ? m->hidden / m->heads : 0));
    s->params = (double)m->params;
    if (s->layers <= 0 || s->hidden <= 0 || s->heads <= 0) {
        note(notes, "model %s: no shape (layers/hidden/heads); assumed a Llama-3-8B shape", name);
        s->layers = 32;
        s->hidden = 4096;
        s->heads = 32;
        s->kv_heads = 8;
        s->head_dim = 128;
        if (s->params <= 0)
            s->params = 8.03e9;
    }
    if (s->params <= 0)
        s->params = 12 * s->layers * s->hidden * s->hidden;
    return 0;
}

/* Where node n's model can run: its file (owned devices) and/or its
 * endpoint (endpoint classes). */
static void model_where(const loom_workflow_t *wf, const char *name, loom_gnode_t *n)
{
    const loom_wf_model_t *m = loom_workflow_model(wf, name);
    n->model_local = !m || m->path != NULL;
    n->model_endpoint = m && m->endpoint != NULL;
}

typedef struct {
    const loom_workflow_t *wf;
    loom_graph_t *g;
    loom_decompose_notes_t *notes;
    loom_err_t *err;
    /* per top-level or body step: first and last graph node */
    int *first, *last;
} dctx_t;

static double expect_or(double v, double dflt) { return v >= 0 ? v : dflt; }

static double field_num(const loom_wf_step_t *s, const char *key, double dflt)
{
    const loom_value_t *v = loom_wf_step_field(s, key);
    if (v && (v->kind == LOOM_VALUE_INT || v->kind == LOOM_VALUE_FLOAT))
        return v->f;
    return dflt;
}

/* Node template with branch/loop statistics applied. */
static void base_node(loom_gnode_t *n, loom_gop_t op, const char *name, const loom_wf_step_t *s,
                      double iters_mean, double iters_max, dctx_t *C)
{
    loom_gnode_init(n, op, name);
    n->step = s->id;
    if (s->when) {
        n->prob = s->expect.probability > 0 ? s->expect.probability : DEF_WHEN_PROB;
        if (s->expect.probability < 0)
            note(C->notes, "step %s: when: without expect.probability, assumed %.1f", s->id, DEF_WHEN_PROB);
    }
    n->iters_mean = iters_mean;
    n->iters_max = iters_max;
}

static int add(dctx_t *C, loom_gnode_t *n)
{
    int id = loom_graph_add_node(C->g, n, C->err);
    return id;
}

static void tool_latency(const loom_wf_step_t *s, double dflt, loom_gnode_t *n, dctx_t *C)
{
    double med = s->expect.latency_ms;
    if (med < 0) {
        med = dflt;
        note(C->notes, "step %s: no expect.latency_ms, assumed %.0f ms", s->id, dflt);
    }
    n->fixed_ms = med;
    if (s->expect.p95_ms > med && med > 0) {
        double sig = log(s->expect.p95_ms / med) / 1.6448536;
        n->fixed_cv = sqrt(exp(sig * sig) - 1);
        /* the mean of a lognormal with this median */
        n->fixed_ms = med * exp(sig * sig / 2);
    } else {
        n->fixed_cv = DEF_TOOL_CV;
    }
}

/* Adds the nodes of one step; sets first and last. */
static int add_step(dctx_t *C, const loom_wf_step_t *s, const char *prefix, double im, double ix, int *first,
                    int *last);

static int add_graph(dctx_t *C, const loom_wf_graph_t *G, const char *prefix, double im, double ix,
                     int entry, int *sinks_out, size_t *nsinks)
{
    int *first = calloc(G->n_steps + 1, sizeof(int)), *last = calloc(G->n_steps + 1, sizeof(int));
    char *has_out = calloc(G->n_steps + 1, 1);
    int rc = 0;
    if (!first || !last || !has_out) {
        rc = loom_err_set(C->err, LOOM_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t oi = 0; oi < G->n_steps; oi++) {
        size_t i = G->order[oi];
        const loom_wf_step_t *s = &G->steps[i];
        if ((rc = add_step(C, s, prefix, im, ix, &first[i], &last[i])) < 0)
            goto done;
        if (s->n_deps == 0 && entry >= 0)
            if ((rc = loom_graph_add_edge(C->g, entry, first[i], LOOM_GEDGE_DATA, TEXT_BYTES, C->err)) < 0)
                goto done;
        for (size_t d = 0; d < s->n_deps; d++) {
            size_t src = s->deps[d].step;
            const loom_wf_step_t *ss = &G->steps[src];
            double bytes = TEXT_BYTES;
            if (ss->op == LOOM_OP_LLM_GENERATE)
                bytes = 4 * expect_or(ss->expect.output_tokens, DEF_OUTPUT_TOKENS) + 256;
            if (ss->op == LOOM_OP_EMBED)
                bytes = 4 * 4096;
            has_out[src] = 1;
            if ((rc = loom_graph_add_edge(C->g, last[src], first[i], LOOM_GEDGE_DATA, bytes, C->err)) < 0)
                goto done;
        }
    }
    *nsinks = 0;
    for (size_t i = 0; i < G->n_steps; i++)
        if (!has_out[i])
            sinks_out[(*nsinks)++] = last[i];
    rc = 0;
done:
    free(first);
    free(last);
    free(has_out);
    return rc;
}

static int add_step(dctx_t *C, const loom_wf_step_t *s, const char *prefix, double im, double ix, int *first,
                    int *last)
{
    char name[512];
    loom_gnode_t n;
    const char *id = s->id;
    char full[400];
    snprintf(full, sizeof full, "%s%s", prefix, id);
    double items = s->foreach ? expect_or(s->expect.items, 4) : 1;
    if (s->foreach && s->expect.items < 0)
        note(C->notes, "step %s: foreach without expect.items, assumed 4 items", id);
    switch (s->op) {
    case LOOM_OP_LLM_GENERATE:
    case LOOM_OP_LLM_PREFILL:
    case LOOM_OP_LLM_DECODE: {
        loom_model_shape_t m;
        if (loom_decompose_model(C->wf, s->model, &m, C->notes) < 0)
            return loom_err_set(C->err, LOOM_ENOTFOUND, "step %s: model '%s' is not in resources.models", id,
                                s->model ? s->model : "(none)");
        double tin = expect_or(s->expect.prompt_tokens, DEF_PROMPT_TOKENS);
        double tout = s->expect.output_tokens >= 0 ? s->expect.output_tokens
                                                   : field_num(s, "max_tokens", DEF_OUTPUT_TOKENS);
        if (s->expect.prompt_tokens < 0)
            note(C->notes, "step %s: no expect.prompt_tokens, assumed %d", id, DEF_PROMPT_TOKENS);
        double wbytes = m.params * m.dtype_bytes;
        double kv_tok = loom_kv_bytes((int)m.layers, (int)m.kv_heads, (int)m.head_dim, m.kv_bytes, 1);
        double kv_in = kv_tok * tin, kv_all = kv_tok * (tin + tout);
        /* prefill: 2 x params FLOPs per token + attention (2 x layers x T^2 x hidden) */
        snprintf(name, sizeof name, "%s.prefill", full);
        base_node(&n, LOOM_GOP_PREFILL, name, s, im, ix, C);
        n.model = s->model;
        model_where(C->wf, s->model, &n);
        n.prec = m.prec;
        n.tokens = tin * items;
        n.flops = (2 * m.params * tin + 2 * m.layers * tin * tin * m.hidden) * items;
        n.shared_bytes = wbytes;
        n.bytes = wbytes + kv_in * items;
        n.mem_bytes = wbytes + kv_all * items;
        int pre = add(C, &n);
        if (pre < 0)
            return pre;
        snprintf(name, sizeof name, "%s.decode", full);
        base_node(&n, LOOM_GOP_DECODE, name, s, im, ix, C);
        n.model = s->model;
        model_where(C->wf, s->model, &n);
        n.prec = m.prec;
        n.tokens = tout;
        n.flops = 2 * m.params * tout * items;
        /* each step reads the weights once (shared by the batch) and its own
         * KV cache (average length tin + tout/2) */
        n.shared_bytes = wbytes * tout;
        n.bytes = n.shared_bytes + kv_tok * (tin + tout / 2) * tout * items;
        n.mem_bytes = wbytes + kv_all * items;
        int dec = add(C, &n);
        if (dec < 0)
            return dec;
        int e = loom_graph_add_edge(C->g, pre, dec, LOOM_GEDGE_KV, kv_in * items, C->err);
        if (e < 0)
            return e;
        *first = pre;
        *last = dec;
        return 0;
    }
    case LOOM_OP_EMBED: {
        loom_model_shape_t m;
        if (loom_decompose_model(C->wf, s->model, &m, C->notes) < 0)
            return loom_err_set(C->err, LOOM_ENOTFOUND, "step %s: model '%s' is not in resources.models", id,
                                s->model ? s->model : "(none)");
        double t = expect_or(s->expect.prompt_tokens, DEF_EMBED_TOKENS);
        base_node(&n, LOOM_GOP_EMBED, full, s, im, ix, C);
        n.model = s->model;
        model_where(C->wf, s->model, &n);
        n.prec = m.prec;
        n.tokens = t * items;
        n.flops = 2 * m.params * t * items;
        n.shared_bytes = m.params * m.dtype_bytes;
        n.bytes = n.shared_bytes + 4 * m.hidden * t * items;
        n.mem_bytes = n.bytes;
        break;
    }
    case LOOM_OP_VECTOR_SEARCH: {
        const loom_wf_index_t *ix2 = s->index_name ? loom_workflow_index(C->wf, s->index_name) : NULL;
        double dim = ix2 && ix2->dim > 0 ? (double)ix2->dim : 768;
        double rows = DEF_INDEX_ROWS;
        note(C->notes, "step %s: index size unknown to the planner, assumed %d vectors (brute-force scan)", id,
             DEF_INDEX_ROWS);
        base_node(&n, LOOM_GOP_VSEARCH, full, s, im, ix, C);
        n.prec = LOOM_PREC_FP32;
        n.flops = 2 * dim * rows * items;
        n.shared_bytes = 4 * dim * rows;
        n.bytes = n.shared_bytes + 4 * dim * items;
        n.mem_bytes = n.shared_bytes;
        break;
    }
    case LOOM_OP_TOOL_EXEC:
    case LOOM_OP_TOOL_HTTP:
    case LOOM_OP_TOOL_MCP: /* an external call like tool.http: latency, not FLOPs */
        base_node(&n, s->op == LOOM_OP_TOOL_EXEC ? LOOM_GOP_TOOL_EXEC : LOOM_GOP_TOOL_HTTP, full, s, im, ix, C);
        tool_latency(s, s->op == LOOM_OP_TOOL_EXEC ? DEF_TOOL_EXEC_MS : DEF_TOOL_HTTP_MS, &n, C);
        break;
    case LOOM_OP_COMPUTE:
        base_node(&n, LOOM_GOP_COMPUTE, full, s, im, ix, C);
        n.prec = LOOM_PREC_FP32;
        n.flops = field_num(s, "flops", -1);
        if (n.flops < 0) {
            n.flops = DEF_COMPUTE_FLOPS;
            note(C->notes, "step %s: compute without flops:, assumed %.0g FLOPs", id, DEF_COMPUTE_FLOPS);
        }
        n.flops *= items;
        n.bytes = field_num(s, "bytes", 1e6) * items;
        n.mem_bytes = n.bytes;
        break;
    case LOOM_OP_LOOP: {
        double mx = s->max_iterations > 0 ? s->max_iterations : 1;
        double mean = s->expect.iterations > 0 ? s->expect.iterations : (s->until ? (1 + mx) / 2 : mx);
        if (s->until && s->expect.iterations <= 0)
            note(C->notes, "step %s: loop without expect.iterations, assumed %.1f of %.0f", id, mean, mx);
        snprintf(name, sizeof name, "%s.begin", full);
        base_node(&n, LOOM_GOP_NOOP, name, s, im, ix, C);
        int b = add(C, &n);
        if (b < 0)
            return b;
        size_t nb = s->body ? s->body->n_steps : 0;
        int *sinks = calloc(nb + 1, sizeof(int));
        size_t ns = 0;
        if (!sinks)
            return loom_err_set(C->err, LOOM_ENOMEM, "out of memory");
        char pre[420];
        snprintf(pre, sizeof pre, "%s.", full);
        int rc = s->body ? add_graph(C, s->body, pre, im * mean, ix * mx, b, sinks, &ns) : 0;
        if (rc < 0) {
            free(sinks);
            return rc;
        }
        snprintf(name, sizeof name, "%s.end", full);
        base_node(&n, LOOM_GOP_NOOP, name, s, im, ix, C);
        int e = add(C, &n);
        for (size_t i = 0; e >= 0 && i < ns; i++)
            if (loom_graph_add_edge(C->g, sinks[i], e, LOOM_GEDGE_DATA, TEXT_BYTES, C->err) < 0)
                e = C->err ? C->err->code : LOOM_EINVAL;
        if (e >= 0 && ns == 0)
            e = loom_graph_add_edge(C->g, b, e, LOOM_GEDGE_DATA, 0, C->err) < 0 ? LOOM_EINVAL : e;
        free(sinks);
        if (e < 0)
            return e;
        *first = b;
        *last = e;
        return 0;
    }
    default: /* noop, sleep, echo */
        base_node(&n, LOOM_GOP_NOOP, full, s, im, ix, C);
        n.fixed_ms = s->expect.latency_ms >= 0 ? s->expect.latency_ms
                     : s->op == LOOM_OP_SLEEP   ? field_num(s, "ms", 0)
                                                : 0.1;
        break;
    }
    int id2 = add(C, &n);
    if (id2 < 0)
        return id2;
    *first = *last = id2;
    return 0;
}

int loom_decompose(const loom_workflow_t *wf, loom_graph_t **out, loom_decompose_notes_t *notes, loom_err_t *err)
{
    *out = NULL;
    loom_graph_t *g = loom_graph_new(wf->name);
    if (!g)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    dctx_t C = {.wf = wf, .g = g, .notes = notes, .err = err};
    int *sinks = calloc(wf->graph.n_steps + 1, sizeof(int));
    size_t ns;
    if (!sinks) {
        loom_graph_destroy(&g);
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    }
    int rc = add_graph(&C, &wf->graph, "", 1, 1, -1, sinks, &ns);
    free(sinks);
    if (rc < 0 || !loom_graph_topo(g, err)) {
        loom_graph_destroy(&g);
        return rc < 0 ? rc : LOOM_EINVAL;
    }
    *out = g;
    return 0;
}
