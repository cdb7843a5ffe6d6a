/* llm_model.c — GGUF -> loom_llm_model_t with shape checks that name the
 * offending tensor, so a wrong or damaged file fails at load, not mid-run. */
#include "llm/llm_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int merr(const loom_llm_model_t *m, loom_err_t *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int merr(const loom_llm_model_t *m, loom_err_t *e, const char *field, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    loom_err_set(e, LOOM_EPARSE, "%s", msg);
    loom_err_at(e, m->path, 0, 0);
    if (field) loom_err_field(e, "%s", field);
    return LOOM_EPARSE;
}

static int hp_u32(loom_llm_model_t *m, const char *arch, const char *k, int required, int dflt, int *out,
                  loom_err_t *e) {
    char key[160];
    uint32_t v;
    snprintf(key, sizeof key, "%s.%s", arch, k);
    int rc = loom_gguf_get_u32(m->gguf, key, &v, e);
    if (rc == LOOM_ENOTFOUND) {
        if (required) return merr(m, e, key, "model metadata lacks %s", key);
        *out = dflt;
        return 0;
    }
    if (rc) return rc;
    if (v == 0 || v > (1u << 24)) return merr(m, e, key, "metadata %s = %u is out of range", key, v);
    *out = (int)v;
    return 0;
}

static int hp_f32(loom_llm_model_t *m, const char *arch, const char *k, float dflt, float *out, loom_err_t *e) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, k);
    int rc = loom_gguf_get_f32(m->gguf, key, out, e);
    if (rc == LOOM_ENOTFOUND) { *out = dflt; return 0; }
    return rc;
}

/* Matrix rows x cols (ne = [cols, rows]); required unless opt. */
static int mat(loom_llm_model_t *m, const char *name, int rows, int cols, int opt, loom_llm_weight_t *w,
               loom_err_t *e) {
    const loom_gguf_tensor_t *t = loom_gguf_find_tensor(m->gguf, name);
    memset(w, 0, sizeof *w);
    if (!t) return opt ? 0 : merr(m, e, name, "model lacks tensor %s", name);
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows)
        return merr(m, e, name, "tensor %s has shape [%llu, %llu], expected [%d, %d]", name,
                    (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], cols, rows);
    w->type = t->type;
    w->rows = rows;
    w->cols = cols;
    w->row_bytes = loom_ggml_row_size(t->type, (uint64_t)cols);
    w->data = t->data;
    m->weight_bytes += t->nbytes;
    return 0;
}

/* 1-D tensor of n elements, decoded to an owned float array. */
static int vec(loom_llm_model_t *m, const char *name, int n, int opt, float **out, loom_err_t *e) {
    const loom_gguf_tensor_t *t = loom_gguf_find_tensor(m->gguf, name);
    *out = NULL;
    if (!t) return opt ? 0 : merr(m, e, name, "model lacks tensor %s", name);
    if (t->n_elements != (uint64_t)n || t->ne[0] != (uint64_t)n)
        return merr(m, e, name, "tensor %s has %llu elements, expected %d", name,
                    (unsigned long long)t->n_elements, n);
    if (!(*out = malloc((size_t)n * sizeof **out))) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    loom_ggml_dequant_row(t->type, t->data, *out, (size_t)n);
    m->weight_bytes += t->nbytes;
    return 0;
}

static int load_llama(loom_llm_model_t *m, const char *arch, loom_err_t *e) {
    int rc;
    if ((rc = hp_u32(m, arch, "embedding_length", 1, 0, &m->dim, e)) ||
        (rc = hp_u32(m, arch, "block_count", 1, 0, &m->n_layers, e)) ||
        (rc = hp_u32(m, arch, "feed_forward_length", 1, 0, &m->ffn, e)) ||
        (rc = hp_u32(m, arch, "attention.head_count", 1, 0, &m->n_heads, e)) ||
        (rc = hp_u32(m, arch, "context_length", 0, 2048, &m->n_ctx, e)))
        return rc;
    if ((rc = hp_u32(m, arch, "attention.head_count_kv", 0, m->n_heads, &m->n_kv_heads, e))) return rc;
    if (m->dim % m->n_heads || m->n_heads % m->n_kv_heads)
        return merr(m, e, "attention.head_count", "head counts do not divide the embedding length");
    m->head_dim = m->dim / m->n_heads;
    if ((rc = hp_u32(m, arch, "rope.dimension_count", 0, m->head_dim, &m->n_rot, e))) return rc;
    if (m->n_rot > m->head_dim || m->n_rot % 2) return merr(m, e, "rope.dimension_count", "invalid rope.dimension_count %d", m->n_rot);
    if ((rc = hp_f32(m, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &m->eps, e)) ||
        (rc = hp_f32(m, arch, "rope.freq_base", 10000.0f, &m->rope_base, e)))
        return rc;
    m->rope_freq_scale = 1.0f;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *st; size_t sl;
    if (loom_gguf_get_str(m->gguf, key, &st, &sl, NULL) == 0 && !(sl == 4 && !memcmp(st, "none", 4))) {
        if (!(sl == 6 && !memcmp(st, "linear", 6))) {
            loom_err_set(e, LOOM_EPARSE, "unsupported RoPE scaling \"%.*s\"", (int)(sl > 32 ? 32 : sl), st);
            loom_err_at(e, m->path, 0, 0);
            loom_err_field(e, "%s", key);
            loom_err_hint(e, "supported: none, linear (and rope_freqs factors)");
            return LOOM_EPARSE;
        }
        float f = 1.0f;
        if ((rc = hp_f32(m, arch, "rope.scaling.factor", 1.0f, &f, e))) return rc;
        if (!(f > 0)) return merr(m, e, "rope.scaling.factor", "rope.scaling.factor must be positive");
        m->rope_freq_scale = 1.0f / f;
    }
    if ((rc = vec(m, "rope_freqs.weight", m->n_rot / 2, 1, &m->rope_freqs, e))) return rc;
    m->rope_neox = !strcmp(arch, "qwen2");
    int qd = m->n_heads * m->head_dim, kd = m->n_kv_heads * m->head_dim;
    const loom_gguf_tensor_t *te = loom_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te || te->n_dims != 2) return merr(m, e, "token_embd.weight", "model lacks a 2-D token_embd.weight");
    m->n_vocab = (int)te->ne[1];
    if (te->ne[1] > (1u << 22)) return merr(m, e, "token_embd.weight", "vocabulary is implausibly large");
    if ((rc = mat(m, "token_embd.weight", m->n_vocab, m->dim, 0, &m->tok_embd, e))) return rc;
    m->weight_bytes -= te->nbytes; /* looked up one row per token, not streamed */
    if ((rc = mat(m, "output.weight", m->n_vocab, m->dim, 1, &m->output, e))) return rc;
    if (!m->output.data) { m->output = m->tok_embd; m->tied = 1; m->weight_bytes += te->nbytes; }
    if ((rc = vec(m, "output_norm.weight", m->dim, 0, &m->output_norm, e))) return rc;
    if (!(m->layers = calloc((size_t)m->n_layers, sizeof *m->layers))) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    for (int l = 0; l < m->n_layers; l++) {
        loom_llm_layer_t *L = &m->layers[l];
        char n[9][64];
        const char *names[9] = {"attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
                                "attn_output.weight", "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
                                "ffn_down.weight"};
        for (int i = 0; i < 9; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s", l, names[i]);
        char bq[64], bk[64], bv[64], bo[64];
        snprintf(bq, sizeof bq, "blk.%d.attn_q.bias", l);
        snprintf(bk, sizeof bk, "blk.%d.attn_k.bias", l);
        snprintf(bv, sizeof bv, "blk.%d.attn_v.bias", l);
        snprintf(bo, sizeof bo, "blk.%d.attn_output.bias", l);
        if ((rc = vec(m, n[0], m->dim, 0, &L->attn_norm, e)) || (rc = mat(m, n[1], qd, m->dim, 0, &L->wq, e)) ||
            (rc = mat(m, n[2], kd, m->dim, 0, &L->wk, e)) || (rc = mat(m, n[3], kd, m->dim, 0, &L->wv, e)) ||
            (rc = mat(m, n[4], m->dim, qd, 0, &L->wo, e)) || (rc = vec(m, n[5], m->dim, 0, &L->ffn_norm, e)) ||
            (rc = mat(m, n[6], m->ffn, m->dim, 0, &L->w_gate, e)) || (rc = mat(m, n[7], m->ffn, m->dim, 0, &L->w_up, e)) ||
            (rc = mat(m, n[8], m->dim, m->ffn, 0, &L->w_down, e)) || (rc = vec(m, bq, qd, 1, &L->bq, e)) ||
            (rc = vec(m, bk, kd, 1, &L->bk, e)) || (rc = vec(m, bv, kd, 1, &L->bv, e)) ||
            (rc = vec(m, bo, m->dim, 1, &L->bo, e)))
            return rc;
    }
    m->wtype = m->layers[0].wq.type;
    return 0;
}

static int load_bert(loom_llm_model_t *m, loom_err_t *e) {
    int rc;
    const char *a = "bert";
    if ((rc = hp_u32(m, a, "embedding_length", 1, 0, &m->dim, e)) ||
        (rc = hp_u32(m, a, "block_count", 1, 0, &m->n_layers, e)) ||
        (rc = hp_u32(m, a, "feed_forward_length", 1, 0, &m->ffn, e)) ||
        (rc = hp_u32(m, a, "attention.head_count", 1, 0, &m->n_heads, e)) ||
        (rc = hp_u32(m, a, "context_length", 0, 512, &m->n_ctx, e)) ||
        (rc = hp_u32(m, a, "pooling_type", 0, LOOM_LLM_POOL_MEAN, &m->pooling, e)))
        return rc;
    if (m->pooling != LOOM_LLM_POOL_MEAN && m->pooling != LOOM_LLM_POOL_CLS)
        return merr(m, e, "bert.pooling_type", "unsupported pooling type %d (want 1 mean or 2 cls)", m->pooling);
    if ((rc = hp_f32(m, a, "attention.layer_norm_epsilon", 1e-12f, &m->eps, e))) return rc;
    if (m->dim % m->n_heads) return merr(m, e, "bert.attention.head_count", "head count does not divide the embedding length");
    m->n_kv_heads = m->n_heads;
    m->head_dim = m->dim / m->n_heads;
    const loom_gguf_tensor_t *te = loom_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te || te->n_dims != 2 || te->ne[1] > (1u << 22)) return merr(m, e, "token_embd.weight", "model lacks a valid token_embd.weight");
    m->n_vocab = (int)te->ne[1];
    const loom_gguf_tensor_t *tt = loom_gguf_find_tensor(m->gguf, "token_types.weight");
    int ntypes = tt && tt->n_dims == 2 ? (int)(tt->ne[1] > 16 ? 16 : tt->ne[1]) : 0;
    if ((rc = mat(m, "token_embd.weight", m->n_vocab, m->dim, 0, &m->tok_embd, e)) ||
        (rc = mat(m, "token_types.weight", ntypes ? ntypes : 1, m->dim, 0, &m->type_embd, e)) ||
        (rc = mat(m, "position_embd.weight", m->n_ctx, m->dim, 0, &m->pos_embd, e)) ||
        (rc = vec(m, "token_embd_norm.weight", m->dim, 0, &m->embd_norm_w, e)) ||
        (rc = vec(m, "token_embd_norm.bias", m->dim, 0, &m->embd_norm_b, e)))
        return rc;
    if (!(m->layers = calloc((size_t)m->n_layers, sizeof *m->layers))) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    for (int l = 0; l < m->n_layers; l++) {
        loom_llm_layer_t *L = &m->layers[l];
        char n[16][64];
        const char *nm[16] = {"attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight",
                              "attn_v.bias", "attn_output.weight", "attn_output.bias", "attn_output_norm.weight",
                              "attn_output_norm.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight",
                              "ffn_down.bias", "layer_output_norm.weight", "layer_output_norm.bias"};
        for (int i = 0; i < 16; i++) snprintf(n[i], sizeof n[i], "blk.%d.%s", l, nm[i]);
        int d = m->dim;
        if ((rc = mat(m, n[0], d, d, 0, &L->wq, e)) || (rc = vec(m, n[1], d, 0, &L->bq, e)) ||
            (rc = mat(m, n[2], d, d, 0, &L->wk, e)) || (rc = vec(m, n[3], d, 0, &L->bk, e)) ||
            (rc = mat(m, n[4], d, d, 0, &L->wv, e)) || (rc = vec(m, n[5], d, 0, &L->bv, e)) ||
            (rc = mat(m, n[6], d, d, 0, &L->wo, e)) || (rc = vec(m, n[7], d, 0, &L->bo, e)) ||
            (rc = vec(m, n[8], d, 0, &L->ln1_w, e)) || (rc = vec(m, n[9], d, 0, &L->ln1_b, e)) ||
            (rc = mat(m, n[10], m->ffn, d, 0, &L->w_up, e)) || (rc = vec(m, n[11], m->ffn, 0, &L->b_up, e)) ||
            (rc = mat(m, n[12], d, m->ffn, 0, &L->w_down, e)) || (rc = vec(m, n[13], d, 0, &L->b_down, e)) ||
            (rc = vec(m, n[14], d, 0, &L->ln2_w, e)) || (rc = vec(m, n[15], d, 0, &L->ln2_b, e)))
            return rc;
    }
    m->wtype = m->layers[0].wq.type;
    return 0;
}

static int load(const char *path, int resident, loom_llm_model_t **out, loom_err_t *e) {
    *out = NULL;
    loom_llm_model_t *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) { free(m); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    int rc = resident ? loom_gguf_open_resident(path, &m->gguf, e) : loom_gguf_open(path, &m->gguf, e);
    if (rc) goto fail;
    loom_gguf_model_hash(m->gguf, m->hash);
    const char *arch; size_t al;
    if (loom_gguf_get_str(m->gguf, "general.architecture", &arch, &al, NULL)) {
        rc = merr(m, e, "general.architecture", "model metadata lacks general.architecture");
        goto fail;
    }
    char a[32];
    snprintf(a, sizeof a, "%.*s", (int)(al < 31 ? al : 31), arch);
    if (!strcmp(a, "llama") || !strcmp(a, "mistral") || !strcmp(a, "qwen2")) {
        m->arch = LOOM_LLM_ARCH_LLAMA;
        rc = load_llama(m, a, e);
    } else if (!strcmp(a, "bert")) {
        m->arch = LOOM_LLM_ARCH_BERT;
        rc = load_bert(m, e);
    } else {
        loom_err_set(e, LOOM_EPARSE, "unsupported model architecture \"%s\"", a);
        loom_err_at(e, path, 0, 0);
        loom_err_field(e, "general.architecture");
        loom_err_hint(e, "supported: llama (Llama 2/3, Mistral, TinyLlama), qwen2, bert");
        rc = LOOM_EPARSE;
    }
    if (rc) goto fail;
    if ((rc = loom_tokenizer_new(m->gguf, &m->tok, e))) goto fail;
    if (loom_tokenizer_n_vocab(m->tok) > m->n_vocab) {
        rc = merr(m, e, "tokenizer.ggml.tokens", "tokenizer has %d tokens but the embedding table only %d",
                  loom_tokenizer_n_vocab(m->tok), m->n_vocab);
        goto fail;
    }
    const char *nm; size_t nl;
    if (loom_gguf_get_str(m->gguf, "general.name", &nm, &nl, NULL) == 0) m->name = strndup(nm, nl);
    else { const char *b = strrchr(path, '/'); m->name = strdup(b ? b + 1 : path); }
    if (!m->name) { rc = loom_err_set(e, LOOM_ENOMEM, "out of memory"); goto fail; }
    loom_llm_kernels_init();
    *out = m;
    return 0;
fail:
    loom_llm_model_destroy(&m);
    return rc;
}

int loom_llm_model_load(const char *path, loom_llm_model_t **out, loom_err_t *e) { return load(path, 0, out, e); }
int loom_llm_model_load_resident(const char *path, loom_llm_model_t **out, loom_err_t *e) {
    return load(path, 1, out, e);
}

void loom_llm_model_destroy(loom_llm_model_t **pm) {
    if (!pm || !*pm) return;
    loom_llm_model_t *m = *pm;
    if (m->layers) {
        for (int l = 0; l < m->n_layers; l++) {
            loom_llm_layer_t *L = &m->layers[l];
            float *v[] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv, L->bo, L->b_up, L->b_down,
                          L->ln1_w, L->ln1_b, L->ln2_w, L->ln2_b};
            for (size_t i = 0; i < sizeof v / sizeof *v; i++) free(v[i]);
        }
        free(m->layers);
    }
    free(m->output_norm); free(m->embd_norm_w); free(m->embd_norm_b); free(m->rope_freqs);
    loom_tokenizer_destroy(&m->tok);
    loom_gguf_destroy(&m->gguf);
    free(m->path);
    free(m->name);
    free(m);
    *pm = NULL;
}

size_t loom_llm_model_bytes_per_token(const loom_llm_model_t *m) {
    return m->weight_bytes + m->tok_embd.row_bytes;
}
