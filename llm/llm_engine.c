/* llm_engine.c — the backend-independent generation loop. */
#include "llm/llm_engine.h"
#include "llm/llm_prefix.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- CPU backend adapter ---- */
static int cpu_eval(void *ctx, const int32_t *tok, int n, int pos0, float *logits, loom_err_t *e) {
    return loom_llm_cpu_eval(ctx, tok, n, pos0, logits, NULL, e);
}
static int cpu_kv_read(void *ctx, int layer, int n, float *k, float *v, loom_err_t *e) {
    return loom_llm_cpu_kv_copy(ctx, layer, n, k, v, 0, e);
}
static int cpu_kv_write(void *ctx, int layer, int n, const float *k, const float *v, loom_err_t *e) {
    return loom_llm_cpu_kv_copy(ctx, layer, n, (float *)k, (float *)v, 1, e);
}

static void cpu_set_layer_fn(void *ctx, loom_llm_layer_fn fn, void *ud) { loom_llm_cpu_set_layer_fn(ctx, fn, ud); }

void loom_llm_backend_cpu(loom_llm_cpu_t *c, loom_llm_backend_t *b) {
    b->name = "cpu";
    b->ctx = c;
    b->n_ctx = loom_llm_cpu_n_ctx(c);
    b->eval = cpu_eval;
    b->kv_read = cpu_kv_read;
    b->kv_write = cpu_kv_write;
    b->set_layer_fn = cpu_set_layer_fn;
}

int loom_llm_tokenize(const loom_llm_model_t *m, const char *text, int32_t **ids, size_t *n, loom_err_t *e) {
    return loom_tokenizer_encode(m->tok, text, strlen(text), LOOM_TOK_ADD_SPECIAL | LOOM_TOK_PARSE_SPECIAL, ids, n, e);
}

static int check_prompt(const loom_llm_model_t *m, loom_llm_backend_t *b, size_t n, loom_err_t *e) {
    if (m->arch != LOOM_LLM_ARCH_LLAMA)
        return loom_err_set(e, LOOM_EINVAL, "model %s is an encoder (bert): it cannot generate", m->name);
    if (n == 0) return loom_err_set(e, LOOM_EINVAL, "empty prompt");
    if (n >= (size_t)b->n_ctx) {
        loom_err_set(e, LOOM_ETOOBIG, "prompt of %zu tokens does not fit the context of %d tokens", n, b->n_ctx);
        loom_err_hint(e, "shorten the prompt or use a model with a longer context");
        return LOOM_ETOOBIG;
    }
    return 0;
}

/* Longest prefix of s[0..n) that ends on a UTF-8 character boundary. */
static size_t utf8_complete(const char *s, size_t n) {
    size_t i = n;
    for (int back = 0; back < 4 && i > 0; back++) {
        unsigned char c = (unsigned char)s[i - 1];
        if (c < 0x80) return n;
        if (c >= 0xc0) {
            size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            return (n - (i - 1) >= need) ? n : i - 1;
        }
        i--;
    }
    return n;
}

/* The decode loop shared by generate and decode: starts with the logits
 * after tokens[0..n_tok) already in the backend's cache. */
static int run_decode(const loom_llm_model_t *m, loom_llm_backend_t *b, int n_tok, float *logits,
                      const loom_llm_gen_params_t *p, loom_buf_t *text, loom_llm_gen_result_t *r, loom_err_t *e) {
    int max = p->max_tokens > 0 ? p->max_tokens : 128;
    loom_llm_sampler_t *s = loom_llm_sampler_new(&p->sampling, m->n_vocab);
    int32_t *gen = malloc((size_t)max * sizeof *gen);
    if (!s || !gen) { loom_llm_sampler_destroy(&s); free(gen); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    size_t maxstop = 0;
    for (size_t i = 0; i < p->n_stop && !p->constrain; i++) if (strlen(p->stop[i]) > maxstop) maxstop = strlen(p->stop[i]);
    size_t start = text->len, streamed = text->len;
    double t0 = now();
    int rc = 0, ng = 0;
    r->finish_reason = "length";
    for (;;) {
        /* Tokens that can still be produced: the budget, or the context's room
         * (this one plus one per free position), whichever ends first, so a
         * constrained output closes its JSON before either cuts it off. */
        int left = max - ng < b->n_ctx - n_tok + 1 ? max - ng : b->n_ctx - n_tok + 1;
        int32_t tok = p->constrain ? p->constrain(p->constrain_ud, s, logits, left) : loom_llm_sample(s, logits);
        if (loom_tokenizer_is_eog(m->tok, tok)) { r->finish_reason = "eos"; break; }
        gen[ng++] = tok;
        size_t before = text->len;
        if ((rc = loom_tokenizer_decode(m->tok, &tok, 1, 0, text))) { loom_err_set(e, rc, "out of memory"); break; }
        int stopped = 0; /* a constrained value ends where its grammar says: stop strings do not cut it */
        for (size_t i = 0; i < p->n_stop && !p->constrain && !stopped; i++) {
            size_t sl = strlen(p->stop[i]);
            if (!sl) continue;
            size_t from = before > start + sl ? before - sl : start;
            char *hit = memmem(text->data + from, text->len - from, p->stop[i], sl);
            if (hit) { text->len = (size_t)(hit - text->data); text->data[text->len] = 0; stopped = 1; }
        }
        if (stopped) { r->finish_reason = "stop"; break; }
        if (p->on_token) { /* stream what can no longer become part of a stop string */
            size_t safe = text->len > start + (maxstop ? maxstop - 1 : 0) ? text->len - (maxstop ? maxstop - 1 : 0) : start;
            safe = streamed + utf8_complete(text->data + streamed, safe > streamed ? safe - streamed : 0);
            if (safe > streamed) {
                if (p->on_token(p->cb_ctx, text->data + streamed, safe - streamed, tok)) { r->finish_reason = "cancelled"; streamed = safe; break; }
                streamed = safe;
            }
        }
        if (ng >= max) break;
        if (n_tok >= b->n_ctx) { r->finish_reason = "context"; break; }
        if ((rc = b->eval(b->ctx, &tok, 1, n_tok, logits, e))) break;
        n_tok++;
    }
    if (!rc && p->on_token && text->len > streamed && strcmp(r->finish_reason, "cancelled"))
        p->on_token(p->cb_ctx, text->data + streamed, text->len - streamed, -1);
    r->decode_s = now() - t0;
    r->n_generated = ng;
    r->tokens = gen;
    loom_llm_sampler_destroy(&s);
    if (rc) { free(gen); r->tokens = NULL; }
    return rc;
}

int loom_llm_generate(const loom_llm_model_t *m, loom_llm_backend_t *b, const int32_t *prompt, size_t n,
                      const loom_llm_gen_params_t *p, loom_buf_t *text, loom_llm_gen_result_t *r, loom_err_t *e) {
    memset(r, 0, sizeof *r);
    int rc = check_prompt(m, b, n, e);
    if (rc) return rc;
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    if (!logits) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    double t0 = now();
    size_t reused = 0;
    rc = loom_llm_prefix_restore(p->prefix, m, b, prompt, n, &reused, e);
    if (!rc) rc = b->eval(b->ctx, prompt + reused, (int)(n - reused), (int)reused, logits, e);
    r->prefill_s = now() - t0;
    r->n_prompt = (int)n;
    r->n_reused = (int)reused;
    if (!rc) rc = run_decode(m, b, (int)n, logits, p, text, r, e);
    free(logits);
    if (!rc && p->prefix) {
        /* the rows evaluated: the prompt and every generated token but the
         * last (it may not have been run); failing to keep them is no error */
        size_t keep = n + (r->n_generated > 0 ? (size_t)r->n_generated - 1 : 0);
        int32_t *toks = malloc(keep * sizeof *toks);
        loom_err_t se = {0};
        if (toks) {
            memcpy(toks, prompt, n * sizeof *toks);
            if (keep > n) memcpy(toks + n, r->tokens, (keep - n) * sizeof *toks);
            loom_llm_prefix_save(p->prefix, m, b, toks, keep, &se);
        }
        free(toks);
    }
    return rc;
}

int loom_llm_prefill(const loom_llm_model_t *m, loom_llm_backend_t *b, const int32_t *prompt, size_t n,
                     loom_kvcache_t **kv, double *seconds, loom_err_t *e) {
    *kv = NULL;
    int rc = check_prompt(m, b, n, e);
    if (rc) return rc;
    loom_kvcache_t *k;
    if ((rc = loom_kvcache_new(m->hash, m->n_layers, m->n_kv_heads, m->head_dim, (int)n, m->n_vocab, &k, e))) return rc;
    double t0 = now();
    rc = b->eval(b->ctx, prompt, (int)n, 0, loom_kvcache_logits(k), e);
    for (int l = 0; !rc && l < m->n_layers; l++)
        rc = b->kv_read(b->ctx, l, (int)n, loom_kvcache_k(k, l), loom_kvcache_v(k, l), e);
    if (seconds) *seconds = now() - t0;
    if (rc) { loom_kvcache_destroy(&k); return rc; }
    memcpy(loom_kvcache_tokens(k), prompt, n * sizeof *prompt);
    *kv = k;
    return 0;
}

/* The backend's layer hook -> the sink; the first sink error sticks. */
typedef struct stream_ctx {
    const loom_llm_kv_sink_t *sink;
    int rc;
    loom_err_t *e;
} stream_ctx_t;

static void on_layer(void *ud, int layer, int pos0, int n, const float *k, const float *v) {
    stream_ctx_t *s = ud;
    if (!s->rc) s->rc = s->sink->rows(s->sink->ud, layer, pos0, n, k, v, s->e);
}

int loom_llm_prefill_stream(const loom_llm_model_t *m, loom_llm_backend_t *b, const int32_t *prompt, size_t n,
                            int rows, const loom_llm_kv_sink_t *sink, double *seconds, loom_err_t *e) {
    int rc = check_prompt(m, b, n, e);
    if (rc) return rc;
    if (rows <= 0) return loom_err_set(e, LOOM_EINVAL, "rows per batch must be positive");
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    if (!logits) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    stream_ctx_t s = {sink, 0, e};
    double t0 = now();
    if (b->set_layer_fn) b->set_layer_fn(b->ctx, on_layer, &s);
    for (size_t p = 0; !rc && !s.rc && p < n; p += (size_t)rows) /* batch by batch: the hook sees whole batches */
        rc = b->eval(b->ctx, prompt + p, n - p < (size_t)rows ? (int)(n - p) : rows, (int)p, logits, e);
    if (b->set_layer_fn) b->set_layer_fn(b->ctx, NULL, NULL);
    else if (!rc) { /* no hook: the same calls after the fact, from the whole cache */
        loom_kvcache_t *kv = NULL;
        size_t w = (size_t)m->n_kv_heads * m->head_dim;
        rc = loom_kvcache_new(m->hash, m->n_layers, m->n_kv_heads, m->head_dim, (int)n, m->n_vocab, &kv, e);
        for (int l = 0; !rc && l < m->n_layers; l++)
            rc = b->kv_read(b->ctx, l, (int)n, loom_kvcache_k(kv, l), loom_kvcache_v(kv, l), e);
        for (size_t p = 0; !rc && !s.rc && p < n; p += (size_t)rows)
            for (int l = 0; !s.rc && l < m->n_layers; l++)
                on_layer(&s, l, (int)p, n - p < (size_t)rows ? (int)(n - p) : rows, loom_kvcache_k(kv, l) + p * w,
                         loom_kvcache_v(kv, l) + p * w);
        loom_kvcache_destroy(&kv);
    }
    if (!rc) rc = s.rc;
    if (!rc) rc = sink->logits(sink->ud, logits, e);
    if (seconds) *seconds = now() - t0;
    free(logits);
    return rc;
}

int loom_llm_decode(const loom_llm_model_t *m, loom_llm_backend_t *b, loom_kvcache_t *kv,
                    const loom_llm_gen_params_t *p, loom_buf_t *text, loom_llm_gen_result_t *r, loom_err_t *e) {
    memset(r, 0, sizeof *r);
    int rc = loom_kvcache_check(kv, m->hash, m->n_layers, m->n_kv_heads, m->head_dim, m->n_vocab, e);
    if (rc) return rc;
    int n = loom_kvcache_n_tokens(kv);
    if ((rc = check_prompt(m, b, (size_t)n, e))) return rc;
    for (int l = 0; !rc && l < m->n_layers; l++)
        rc = b->kv_write(b->ctx, l, n, loom_kvcache_k(kv, l), loom_kvcache_v(kv, l), e);
    if (rc) return rc;
    float *logits = malloc((size_t)m->n_vocab * sizeof *logits);
    if (!logits) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    memcpy(logits, loom_kvcache_logits(kv), (size_t)m->n_vocab * sizeof *logits);
    r->n_prompt = n;
    rc = run_decode(m, b, n, logits, p, text, r, e);
    free(logits);
    return rc;
}

int loom_llm_utf8_sanitize(loom_buf_t *b) {
    if (!b->data) return 0;
    const unsigned char *s = (const unsigned char *)b->data;
    size_t n = b->len, i = 0;
    int bad = 0;
    loom_buf_t o = LOOM_BUF_INIT;
    while (i < n) {
        unsigned char c = s[i];
        size_t l = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = l > 0 && i + l <= n;
        for (size_t k = 1; ok && k < l; k++) ok = (s[i + k] & 0xc0) == 0x80;
        if (ok && l == 2 && c < 0xc2) ok = 0;                         /* overlong */
        if (ok && l == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0))) ok = 0;
        if (ok && l == 4 && ((c == 0xf0 && s[i + 1] < 0x90) || c > 0xf4 || (c == 0xf4 && s[i + 1] >= 0x90))) ok = 0;
        if (ok && c == 0) ok = 0;                                     /* NUL would cut JSON strings */
        if (ok) { if (loom_buf_append(&o, s + i, l)) goto oom; i += l; }
        else { bad = 1; if (loom_buf_append(&o, "\xef\xbf\xbd", 3)) goto oom; i++; }
    }
    if (bad) { loom_buf_free(b); *b = o; } else loom_buf_free(&o);
    return 0;
oom:
    loom_buf_free(&o);
    return LOOM_ENOMEM;
}

int loom_llm_embed_text(const loom_llm_model_t *m, loom_llm_cpu_t *c, const char *text, int truncate, float *out,
                        loom_err_t *e) {
    int32_t *ids;
    size_t n;
    int rc = loom_llm_tokenize(m, text, &ids, &n, e);
    if (rc) return rc;
    int ctx = loom_llm_cpu_n_ctx(c);
    if (truncate && n > (size_t)ctx) {
        int32_t last = ids[n - 1];
        n = (size_t)ctx;
        if (m->tok && loom_tokenizer_is_eog(m->tok, last)) ids[n - 1] = last; /* keep the closing [SEP] */
    }
    rc = loom_llm_cpu_embed(c, ids, (int)n, out, e);
    free(ids);
    return rc;
}

int loom_llm_chat_format_msgs(const loom_llm_model_t *m, const char *const *roles, const char *const *contents,
                              size_t n, loom_buf_t *out) {
    const char *t = m->tok ? loom_tokenizer_chat_template(m->tok) : NULL;
    int rc = 0;
    enum { PLAIN, CHATML, LLAMA3, ZEPHYR, GEMMA, INST } fam = PLAIN;
    if (t && strstr(t, "<|im_start|>")) fam = CHATML;
    else if (t && strstr(t, "<|start_header_id|>")) fam = LLAMA3;
    else if (t && strstr(t, "<|user|>")) fam = ZEPHYR;
    else if (t && strstr(t, "<start_of_turn>")) fam = GEMMA;
    else if (t && strstr(t, "[INST]")) fam = INST;
    const char *sys = NULL; /* Gemma and Llama 2 fold the system message into the next user turn */
    for (size_t i = 0; i < n && !rc; i++) {
        const char *r = roles[i], *c = contents[i];
        int is_sys = !strcmp(r, "system"), is_asst = !strcmp(r, "assistant");
        if (!is_sys && !is_asst && strcmp(r, "user")) r = "user"; /* tool output reads as a user turn */
        switch (fam) {
        case CHATML: rc = loom_buf_printf(out, "<|im_start|>%s\n%s<|im_end|>\n", r, c); break;
        case LLAMA3: rc = loom_buf_printf(out, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", r, c); break;
        case ZEPHYR: rc = loom_buf_printf(out, "<|%s|>\n%s</s>\n", r, c); break;
        case GEMMA:
            if (is_sys) { sys = c; break; }
            rc = loom_buf_printf(out, "<start_of_turn>%s\n%s%s%s<end_of_turn>\n", is_asst ? "model" : "user",
                                 sys && !is_asst ? sys : "", sys && !is_asst ? "\n\n" : "", c);
            if (!is_asst) sys = NULL;
            break;
        case INST:
            if (is_sys) { sys = c; break; }
            if (is_asst) { rc = loom_buf_printf(out, " %s </s>", c); break; }
            if (sys) rc = loom_buf_printf(out, "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]", sys, c);
            else rc = loom_buf_printf(out, "[INST] %s [/INST]", c);
            sys = NULL;
            break;
        default: rc = loom_buf_printf(out, "%s%s", out->len ? "\n\n" : "", c);
        }
    }
    if (rc) return rc;
    switch (fam) {
    case CHATML: return loom_buf_puts(out, "<|im_start|>assistant\n");
    case LLAMA3: return loom_buf_puts(out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    case ZEPHYR: return loom_buf_puts(out, "<|assistant|>\n");
    case GEMMA: return loom_buf_puts(out, "<start_of_turn>model\n");
    default: return 0;
    }
}

int loom_llm_chat_format(const loom_llm_model_t *m, const char *system, const char *prompt, loom_buf_t *out) {
    const char *roles[2] = {"system", "user"}, *contents[2] = {system, prompt};
    int has_sys = system && *system;
    return loom_llm_chat_format_msgs(m, roles + !has_sys, contents + !has_sys, has_sys ? 2 : 1, out);
}
