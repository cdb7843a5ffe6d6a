/* llm_cpu.c — llama and bert forwards on the CPU kernels. */
#include "llm/cpu/llm_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm_mem.h"

struct loom_llm_cpu {
    const loom_llm_model_t *m;
    loom_llm_pool_t *pool;
    int n_ctx, kvw;
    float *kcache, *vcache;     /* layers x KV heads x n_ctx x head_dim: each
                                   head's rows contiguous, so attention
                                   streams them */
    loom_llm_mem_t kvmem;       /* both, in huge pages faulted in up front */
    /* scratch for a batch of up to cap tokens */
    int cap;
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *lg;
    float *rope_cs;             /* cap x n_rot/2 (cos, sin) of this batch */
    void *mmq;
    size_t mmq_size;
    float *inv_freq;            /* n_rot / 2 */
    loom_llm_layer_fn layer_fn; /* streaming: each layer's rows as computed */
    void *layer_ud;
};

static void free_scratch(loom_llm_cpu_t *c) {
    float **p[] = {&c->x, &c->xb, &c->q, &c->k, &c->v, &c->att, &c->hb, &c->hb2, &c->lg, &c->rope_cs};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) { free(*p[i]); *p[i] = NULL; }
    free(c->mmq);
    c->mmq = NULL;
    c->cap = 0;
}

static int ensure(loom_llm_cpu_t *c, int T, int want_logits, loom_err_t *e) {
    const loom_llm_model_t *m = c->m;
    if (T <= c->cap && (!want_logits || c->lg)) return 0;
    free_scratch(c);
    size_t t = (size_t)T, qd = (size_t)m->n_heads * m->head_dim;
    size_t big = (size_t)(m->ffn > m->dim ? m->ffn : m->dim);
    c->x = malloc(t * m->dim * 4); c->xb = malloc(t * m->dim * 4);
    c->q = malloc(t * qd * 4); c->k = malloc(t * c->kvw * 4); c->v = malloc(t * c->kvw * 4);
    c->att = malloc(t * qd * 4); c->hb = malloc(t * m->ffn * 4); c->hb2 = malloc(t * m->ffn * 4);
    c->mmq_size = loom_llm_matmul_scratch((int)big, T);
    c->mmq = malloc(c->mmq_size);
    c->lg = malloc(t * (size_t)m->n_vocab * 4);
    c->rope_cs = malloc(t * (size_t)(m->n_rot / 2 + 1) * 8);
    if (!c->x || !c->xb || !c->q || !c->k || !c->v || !c->att || !c->hb || !c->hb2 || !c->mmq || !c->lg ||
        !c->rope_cs) {
        free_scratch(c);
        return loom_err_set(e, LOOM_ENOMEM, "out of memory for a batch of %d tokens", T);
    }
    c->cap = T;
    return 0;
}

int loom_llm_cpu_new(const loom_llm_model_t *m, loom_llm_pool_t *pool, int n_ctx, loom_llm_cpu_t **out,
                     loom_err_t *e) {
    *out = NULL;
    loom_llm_cpu_t *c = calloc(1, sizeof *c);
    if (!c) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    c->m = m;
    c->pool = pool;
    c->n_ctx = n_ctx > 0 && n_ctx < m->n_ctx ? n_ctx : m->n_ctx;
    c->kvw = m->n_kv_heads * m->head_dim;
    if (m->arch == LOOM_LLM_ARCH_LLAMA) {
        size_t n = (size_t)m->n_layers * c->n_ctx * c->kvw;
        c->kcache = loom_llm_mem_map(2 * n * 4, &c->kvmem);
        c->vcache = c->kcache ? c->kcache + n : NULL;
        c->inv_freq = malloc((size_t)(m->n_rot / 2 + 1) * 4);
        if (!c->kcache || !c->vcache || !c->inv_freq) {
            loom_llm_cpu_destroy(&c);
            return loom_err_set(e, LOOM_ENOMEM, "out of memory for a KV cache of %d positions", n_ctx);
        }
        for (int i = 0; i < m->n_rot / 2; i++) {
            double f = pow((double)m->rope_base, -2.0 * i / m->n_rot);
            if (m->rope_freqs) f /= m->rope_freqs[i];
            c->inv_freq[i] = (float)f;
        }
    }
    *out = c;
    return 0;
}

void loom_llm_cpu_destroy(loom_llm_cpu_t **pc) {
    if (!pc || !*pc) return;
    loom_llm_cpu_t *c = *pc;
    free_scratch(c);
    loom_llm_mem_unmap(&c->kvmem);
    free(c->inv_freq);
    free(c);
    *pc = NULL;
}

int loom_llm_cpu_n_ctx(const loom_llm_cpu_t *c) { return c->n_ctx; }
void loom_llm_cpu_set_layer_fn(loom_llm_cpu_t *c, loom_llm_layer_fn fn, void *ud) {
    c->layer_fn = fn;
    c->layer_ud = ud;
}
static float *layer_k(loom_llm_cpu_t *c, int l) { return c->kcache + (size_t)l * c->n_ctx * c->kvw; }
static float *layer_v(loom_llm_cpu_t *c, int l) { return c->vcache + (size_t)l * c->n_ctx * c->kvw; }

int loom_llm_cpu_kv_copy(loom_llm_cpu_t *c, int layer, int n, float *k, float *v, int to_cache, loom_err_t *e) {
    if (!c->kcache || layer < 0 || layer >= c->m->n_layers) return loom_err_set(e, LOOM_EINVAL, "no KV cache layer %d", layer);
    if (n < 0 || n > c->n_ctx) return loom_err_set(e, LOOM_ETOOBIG, "KV cache of %d tokens exceeds the context of %d", n, c->n_ctx);
    /* the caller's rows are positions x KV width; the cache's are per head */
    int hd = c->m->head_dim;
    size_t row = (size_t)hd * 4;
    float *K = layer_k(c, layer), *V = layer_v(c, layer);
    for (int h = 0; h < c->m->n_kv_heads; h++)
        for (int p = 0; p < n; p++) {
            size_t at = ((size_t)h * c->n_ctx + p) * hd, io = (size_t)p * c->kvw + (size_t)h * hd;
            if (to_cache) { memcpy(K + at, k + io, row); memcpy(V + at, v + io, row); }
            else { memcpy(k + io, K + at, row); memcpy(v + io, V + at, row); }
        }
    return 0;
}

static void mm(loom_llm_cpu_t *c, const loom_llm_weight_t *W, const float *X, int T, float *Y, const float *bias) {
    loom_llm_matmul(c->pool, W, X, T, Y, c->mmq);
    if (bias)
        for (int t = 0; t < T; t++) loom_llm_axpy(Y + (size_t)t * W->rows, 1.0f, bias, W->rows);
}

/* Q, K and V of one layer in one pass over the pool. */
static void mm3(loom_llm_cpu_t *c, const loom_llm_layer_t *L, const float *X, int T) {
    const loom_llm_weight_t *ws[3] = {&L->wq, &L->wk, &L->wv};
    float *ys[3] = {c->q, c->k, c->v};
    const float *bs[3] = {L->bq, L->bk, L->bv};
    loom_llm_matmul_n(c->pool, ws, 3, X, T, ys, c->mmq);
    for (int i = 0; i < 3; i++)
        if (bs[i])
            for (int t = 0; t < T; t++) loom_llm_axpy(ys[i] + (size_t)t * ws[i]->rows, 1.0f, bs[i], ws[i]->rows);
}

/* cos and sin of every rotation angle of the batch's positions: computed
 * once per batch, shared by every head and layer. */
static void rope_table(loom_llm_cpu_t *c, int T, int pos0) {
    const loom_llm_model_t *m = c->m;
    int half = m->n_rot / 2;
    for (int t = 0; t < T; t++) {
        float p = (float)(pos0 + t) * m->rope_freq_scale, *cs = c->rope_cs + (size_t)t * half * 2;
        for (int i = 0; i < half; i++) {
            float th = p * c->inv_freq[i];
            cs[2 * i] = cosf(th);
            cs[2 * i + 1] = sinf(th);
        }
    }
}

static void rope(const loom_llm_cpu_t *c, float *v, int t) {
    const loom_llm_model_t *m = c->m;
    int half = m->n_rot / 2;
    const float *cs = c->rope_cs + (size_t)t * half * 2;
    for (int i = 0; i < half; i++) {
        int a = m->rope_neox ? i : 2 * i, b = m->rope_neox ? i + half : 2 * i + 1;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
        v[b] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
    }
}

/* The per-token steps between the matrix products, one pool item per token
 * of a batch (run inline for one token: decode pays no hand-off). */
typedef struct tok_job {
    loom_llm_cpu_t *c;
    const loom_llm_layer_t *L;
    const float *norm;  /* rmsnorm weights, or NULL */
    float *Kc, *Vc;     /* this layer's cache, for the rope step */
    int pos0;
} tok_job_t;

static void norm_task(void *ctx, int t) { /* xb = rmsnorm(x) */
    const tok_job_t *j = ctx;
    int dim = j->c->m->dim;
    loom_llm_rmsnorm(j->c->xb + (size_t)t * dim, j->c->x + (size_t)t * dim, j->norm, dim, j->c->m->eps);
}
static void resid_norm_task(void *ctx, int t) { /* x += xb, then xb = rmsnorm(x) if asked */
    const tok_job_t *j = ctx;
    int dim = j->c->m->dim;
    float *x = j->c->x + (size_t)t * dim, *o = j->c->xb + (size_t)t * dim;
    for (int i = 0; i < dim; i++) x[i] += o[i];
    if (j->norm) loom_llm_rmsnorm(o, x, j->norm, dim, j->c->m->eps);
}
static void rope_task(void *ctx, int t) { /* rotate q and k, append k and v to the cache */
    const tok_job_t *j = ctx;
    loom_llm_cpu_t *c = j->c;
    const loom_llm_model_t *m = c->m;
    int qd = m->n_heads * m->head_dim, kvw = c->kvw;
    for (int h = 0; h < m->n_heads; h++) rope(c, c->q + (size_t)t * qd + (size_t)h * m->head_dim, t);
    for (int h = 0; h < m->n_kv_heads; h++) rope(c, c->k + (size_t)t * kvw + (size_t)h * m->head_dim, t);
    for (int h = 0; h < m->n_kv_heads; h++) {
        size_t at = ((size_t)h * c->n_ctx + j->pos0 + t) * m->head_dim, from = (size_t)t * kvw + (size_t)h * m->head_dim;
        memcpy(j->Kc + at, c->k + from, (size_t)m->head_dim * 4);
        memcpy(j->Vc + at, c->v + from, (size_t)m->head_dim * 4);
    }
}
static void swiglu_task(void *ctx, int t) { /* hb = silu(hb) * hb2 */
    const tok_job_t *j = ctx;
    size_t f = (size_t)j->c->m->ffn;
    loom_llm_swiglu(j->c->hb + t * f, j->c->hb2 + t * f, (int)f);
}
/* One token's SwiGLU in SWIGLU_PARTS slices over the pool: ffn exp()s are
 * the one per-token step long enough (~25 us) to keep the other threads
 * waiting. */
#define SWIGLU_PARTS 8
static void swiglu_part_task(void *ctx, int i) {
    const tok_job_t *j = ctx;
    size_t f = (size_t)j->c->m->ffn, a = f * i / SWIGLU_PARTS, b = f * (i + 1) / SWIGLU_PARTS;
    loom_llm_swiglu(j->c->hb + a, j->c->hb2 + a, (int)(b - a));
}
static void per_token(loom_llm_cpu_t *c, int T, loom_llm_task_fn fn, tok_job_t *j) {
    if (T == 1) fn(j, 0);
    else loom_llm_pool_run(c->pool, T, fn, j);
}

typedef struct att_job {
    loom_llm_cpu_t *c;
    int T, pos0, layer, causal;
    const float *K, *V; /* head h's row of position p at (h * hstride + p * pstride) */
    size_t hstride, pstride;
    int nkv;            /* rows available when not causal */
} att_job_t;

static void att_task(void *ctx, int i) {
    const att_job_t *j = ctx;
    const loom_llm_model_t *m = j->c->m;
    int hd = m->head_dim, H = m->n_heads, t = i / H, h = i % H;
    int kvh = h / (H / m->n_kv_heads);
    int n = j->causal ? j->pos0 + t + 1 : j->nkv;
    const float *q = j->c->q + (size_t)t * H * hd + (size_t)h * hd;
    float *o = j->c->att + (size_t)t * H * hd + (size_t)h * hd;
    float *s = loom_llm_thread_scratch((size_t)n * sizeof *s);
    if (!s) { memset(o, 0, (size_t)hd * 4); return; }
    float scale = 1.0f / sqrtf((float)hd);
    const float *K = j->K + (size_t)kvh * j->hstride, *V = j->V + (size_t)kvh * j->hstride;
    for (int p = 0; p < n; p++) s[p] = loom_llm_dot_f32(q, K + (size_t)p * j->pstride, hd) * scale;
    loom_llm_softmax(s, n);
    memset(o, 0, (size_t)hd * 4);
    for (int p = 0; p < n; p++) loom_llm_axpy(o, s[p], V + (size_t)p * j->pstride, hd);
}

static int eval_batch(loom_llm_cpu_t *c, const int32_t *tok, int T, int pos0, float *all_logits, loom_err_t *e) {
    const loom_llm_model_t *m = c->m;
    int dim = m->dim;
    int rc = ensure(c, T, all_logits != NULL, e);
    if (rc) return rc;
    for (int t = 0; t < T; t++) loom_llm_weight_row(&m->tok_embd, tok[t], c->x + (size_t)t * dim);
    rope_table(c, T, pos0);
    for (int l = 0; l < m->n_layers; l++) {
        const loom_llm_layer_t *L = &m->layers[l];
        tok_job_t j = {c, L, L->attn_norm, layer_k(c, l), layer_v(c, l), pos0};
        if (l == 0) per_token(c, T, norm_task, &j); /* later layers: fused with the last residual */
        mm3(c, L, c->xb, T);
        per_token(c, T, rope_task, &j);
        /* c->k, c->v now hold this layer's rows as positions x KV width */
        if (c->layer_fn) c->layer_fn(c->layer_ud, l, pos0, T, c->k, c->v);
        att_job_t a = {c, T, pos0, l, 1, j.Kc, j.Vc, (size_t)c->n_ctx * m->head_dim, (size_t)m->head_dim, 0};
        loom_llm_pool_run(c->pool, T * m->n_heads, att_task, &a);
        mm(c, &L->wo, c->att, T, c->xb, L->bo);
        j.norm = L->ffn_norm;
        per_token(c, T, resid_norm_task, &j);
        {
            const loom_llm_weight_t *ws[2] = {&L->w_gate, &L->w_up};
            float *ys[2] = {c->hb, c->hb2};
            loom_llm_matmul_n(c->pool, ws, 2, c->xb, T, ys, c->mmq);
        }
        if (T == 1) loom_llm_pool_run(c->pool, SWIGLU_PARTS, swiglu_part_task, &j);
        else per_token(c, T, swiglu_task, &j);
        mm(c, &L->w_down, c->hb, T, c->xb, NULL);
        /* residual, then the next layer's attention norm */
        j.norm = l + 1 < m->n_layers ? m->layers[l + 1].attn_norm : NULL;
        per_token(c, T, resid_norm_task, &j);
    }
    return 0;
}

int loom_llm_cpu_eval(loom_llm_cpu_t *c, const int32_t *tok, int n, int pos0, float *logits, float *all_logits,
                      loom_err_t *e) {
    const loom_llm_model_t *m = c->m;
    if (m->arch != LOOM_LLM_ARCH_LLAMA) return loom_err_set(e, LOOM_EINVAL, "model %s is an encoder: use embed", m->name);
    if (n <= 0) return loom_err_set(e, LOOM_EINVAL, "nothing to evaluate (0 tokens)");
    if (pos0 < 0 || n > c->n_ctx - pos0) {
        loom_err_set(e, LOOM_ETOOBIG, "sequence of %d tokens exceeds the context of %d", pos0 + n, c->n_ctx);
        loom_err_hint(e, "shorten the prompt or lower max_tokens");
        return LOOM_ETOOBIG;
    }
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= m->n_vocab) return loom_err_set(e, LOOM_EINVAL, "token id %d is outside the vocabulary", tok[i]);
    int dim = m->dim, V = m->n_vocab;
    for (int b = 0; b < n; b += LOOM_LLM_CPU_BATCH) {
        int T = n - b < LOOM_LLM_CPU_BATCH ? n - b : LOOM_LLM_CPU_BATCH;
        int rc = eval_batch(c, tok + b, T, pos0 + b, all_logits, e);
        if (rc) return rc;
        /* output head: every row when asked for all logits, else the last */
        int first = all_logits ? 0 : (b + T == n ? T - 1 : T);
        int rows = T - first;
        if (rows <= 0) continue;
        for (int t = first; t < T; t++)
            loom_llm_rmsnorm(c->xb + (size_t)(t - first) * dim, c->x + (size_t)t * dim, m->output_norm, dim, m->eps);
        mm(c, &m->output, c->xb, rows, c->lg, NULL);
        if (all_logits) memcpy(all_logits + (size_t)b * V, c->lg, (size_t)rows * V * 4);
        if (logits && b + T == n) memcpy(logits, c->lg + (size_t)(rows - 1) * V, (size_t)V * 4);
    }
    return 0;
}

static float gelu(float x) { return 0.5f * x * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x))); }

int loom_llm_cpu_embed(loom_llm_cpu_t *c, const int32_t *tok, int n, float *out, loom_err_t *e) {
    const loom_llm_model_t *m = c->m;
    if (m->arch != LOOM_LLM_ARCH_BERT) return loom_err_set(e, LOOM_EINVAL, "model %s is not an embedding model", m->name);
    if (n <= 0) return loom_err_set(e, LOOM_EINVAL, "nothing to embed (0 tokens)");
    if (n > c->n_ctx) {
        loom_err_set(e, LOOM_ETOOBIG, "text of %d tokens exceeds the context of %d", n, c->n_ctx);
        loom_err_hint(e, "split the document into shorter chunks");
        return LOOM_ETOOBIG;
    }
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= m->n_vocab) return loom_err_set(e, LOOM_EINVAL, "token id %d is outside the vocabulary", tok[i]);
    int rc = ensure(c, n, 0, e);
    if (rc) return rc;
    int d = m->dim, T = n;
    float *row = malloc((size_t)d * 4 * 2);
    if (!row) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    for (int t = 0; t < T; t++) {
        float *x = c->x + (size_t)t * d;
        loom_llm_weight_row(&m->tok_embd, tok[t], x);
        loom_llm_weight_row(&m->type_embd, 0, row);
        loom_llm_weight_row(&m->pos_embd, t, row + d);
        for (int i = 0; i < d; i++) x[i] += row[i] + row[d + i];
        loom_llm_layernorm(x, x, m->embd_norm_w, m->embd_norm_b, d, m->eps);
    }
    free(row);
    for (int l = 0; l < m->n_layers; l++) {
        const loom_llm_layer_t *L = &m->layers[l];
        mm(c, &L->wq, c->x, T, c->q, L->bq);
        mm(c, &L->wk, c->x, T, c->k, L->bk);
        mm(c, &L->wv, c->x, T, c->v, L->bv);
        att_job_t j = {c, T, 0, l, 0, c->k, c->v, (size_t)m->head_dim, (size_t)c->kvw, T};
        loom_llm_pool_run(c->pool, T * m->n_heads, att_task, &j);
        mm(c, &L->wo, c->att, T, c->xb, L->bo);
        for (int t = 0; t < T; t++) {
            float *x = c->x + (size_t)t * d, *o = c->xb + (size_t)t * d;
            for (int i = 0; i < d; i++) x[i] += o[i];
            loom_llm_layernorm(x, x, L->ln1_w, L->ln1_b, d, m->eps);
        }
        mm(c, &L->w_up, c->x, T, c->hb, L->b_up);
        for (size_t i = 0; i < (size_t)T * m->ffn; i++) c->hb[i] = gelu(c->hb[i]);
        mm(c, &L->w_down, c->hb, T, c->xb, L->b_down);
        for (int t = 0; t < T; t++) {
            float *x = c->x + (size_t)t * d, *o = c->xb + (size_t)t * d;
            for (int i = 0; i < d; i++) x[i] += o[i];
            loom_llm_layernorm(x, x, L->ln2_w, L->ln2_b, d, m->eps);
        }
    }
    if (m->pooling == LOOM_LLM_POOL_CLS) {
        memcpy(out, c->x, (size_t)d * 4);
    } else {
        for (int i = 0; i < d; i++) {
            double s = 0;
            for (int t = 0; t < T; t++) s += c->x[(size_t)t * d + i];
            out[i] = (float)(s / T);
        }
    }
    double nn = 0;
    for (int i = 0; i < d; i++) nn += (double)out[i] * out[i];
    float inv = nn > 0 ? (float)(1.0 / sqrt(nn)) : 0;
    for (int i = 0; i < d; i++) out[i] *= inv;
    return 0;
}
