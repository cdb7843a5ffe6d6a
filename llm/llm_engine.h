/* llm_engine.h — generation, split prefill/decode and embedding on top of
 * any backend that implements loom_llm_backend_t (CPU here, CUDA in
 * workers/gpu). The loop (sampling, stop strings, streaming, limits) lives
 * here once, so every backend behaves the same and a KV cache made by one
 * continues on another.
 *
 * Split contract: loom_llm_generate(prompt) == loom_llm_prefill(prompt) on
 * backend A, serialise, parse, loom_llm_decode on backend B, token for token
 * under greedy sampling: both run the same decode loop from the same cache
 * contents and logits. */
#ifndef LOOM_LLM_ENGINE_H
#define LOOM_LLM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "llm/kvcache.h"
#include "llm/cpu/llm_cpu.h"
#include "llm/llm_model.h"
#include "llm/llm_sample.h"

typedef struct loom_llm_backend {
    const char *name; /* "cpu", "cuda" */
    void *ctx;
    int n_ctx;
    /* Runs tok[0..n) at positions pos0..; logits of the last into logits. */
    int (*eval)(void *ctx, const int32_t *tok, int n, int pos0, float *logits, loom_err_t *e);
    /* Copies cache rows [0, n) of layer out of / into the backend (f32,
     * n x n_kv_heads*head_dim each for K and V). */
    int (*kv_read)(void *ctx, int layer, int n, float *k, float *v, loom_err_t *e);
    int (*kv_write)(void *ctx, int layer, int n, const float *k, const float *v, loom_err_t *e);
    /* Optional (NULL: the backend cannot): calls fn from eval after each
     * layer of each batch with its final K/V rows (llm_cpu.h). */
    void (*set_layer_fn)(void *ctx, loom_llm_layer_fn fn, void *ud);
} loom_llm_backend_t;

/* Fills b for a CPU context (borrowed). */
void loom_llm_backend_cpu(loom_llm_cpu_t *c, loom_llm_backend_t *b);

/* Streaming callback: piece is complete UTF-8 text; return non-zero to stop. */
typedef int (*loom_llm_token_cb)(void *ctx, const char *piece, size_t len, int32_t token);

typedef struct loom_llm_gen_params {
    int max_tokens;               /* <= 0: 128 */
    loom_llm_sampling_t sampling;
    const char *const *stop;      /* stop strings (borrowed), n_stop of them */
    size_t n_stop;
    loom_llm_token_cb on_token;   /* may be NULL */
    void *cb_ctx;
    /* Constrained decoding (llm_grammar.h): when set, picks every token in
     * place of the sampler alone (it may mask logits); tokens_left counts
     * the one being picked. Stop strings do not apply to constrained output
     * (cutting it would break the value). */
    int32_t (*constrain)(void *ud, loom_llm_sampler_t *s, float *logits, int tokens_left);
    void *constrain_ud;
    /* Prefix reuse (llm_prefix.h; NULL: none): generate restores the KV of
     * the longest cached prefix of the prompt, prefills the rest, and saves
     * prompt + generated tokens for the next call. */
    struct loom_llm_prefix_cache *prefix;
} loom_llm_gen_params_t;

typedef struct loom_llm_gen_result {
    int n_prompt, n_generated;
    int n_reused;                 /* prompt tokens whose KV came from the prefix cache */
    const char *finish_reason;    /* static: "eos", "stop", "length", "context", "cancelled" */
    int32_t *tokens;              /* generated ids, malloc'd: caller frees */
    double prefill_s, decode_s;
} loom_llm_gen_result_t;

/* Tokenises with the model's special-token rules (BOS etc.). *ids caller frees. */
int loom_llm_tokenize(const loom_llm_model_t *m, const char *text, int32_t **ids, size_t *n, loom_err_t *e);

int loom_llm_generate(const loom_llm_model_t *m, loom_llm_backend_t *b, const int32_t *prompt, size_t n,
                      const loom_llm_gen_params_t *p, loom_buf_t *text, loom_llm_gen_result_t *r, loom_err_t *e);
/* Runs the prompt and returns its cache (caller owns *kv). */
int loom_llm_prefill(const loom_llm_model_t *m, loom_llm_backend_t *b, const int32_t *prompt, size_t n,
                     loom_kvcache_t **kv, double *seconds, loom_err_t *e);
/* Layer-wise streaming prefill: the prompt runs in batches of `rows`
 * tokens and, for each batch, each layer's K/V rows go to sink->rows as
 * soon as the backend has computed them (backends with set_layer_fn; on
 * others after the whole prompt, layer by layer, batch by batch: the same
 * calls, no overlap), then the last token's logits to sink->logits. Same
 * arithmetic as loom_llm_prefill. A sink error stops it. */
typedef struct loom_llm_kv_sink {
    int (*rows)(void *ud, int layer, int pos0, int n, const float *k, const float *v, loom_err_t *e);
    int (*logits)(void *ud, const float *logits, loom_err_t *e);
    void *ud;
} loom_llm_kv_sink_t;
int loom_llm_prefill_stream(const loom_llm_model_t *m, loom_llm_backend_t *b, const int32_t *prompt, size_t n,
                            int rows, const loom_llm_kv_sink_t *sink, double *seconds, loom_err_t *e);

/* Continues from kv (borrowed; checked against the model). */
int loom_llm_decode(const loom_llm_model_t *m, loom_llm_backend_t *b, loom_kvcache_t *kv,
                    const loom_llm_gen_params_t *p, loom_buf_t *text, loom_llm_gen_result_t *r, loom_err_t *e);

/* Tokenises text (BOS/CLS and EOS/SEP as the model asks) and writes the
 * pooled, L2-normalised embedding (m->dim floats) to out. Texts longer than
 * the context are an error (LOOM_ETOOBIG) unless truncate is set. */
int loom_llm_embed_text(const loom_llm_model_t *m, loom_llm_cpu_t *c, const char *text, int truncate, float *out,
                        loom_err_t *e);

/* Formats a system + user message with the model's chat template. The
 * common template families are recognised from tokenizer.chat_template
 * (ChatML, Llama 3, Llama 2 [INST], Zephyr/TinyLlama <|user|>, Gemma);
 * other or missing templates get "system\n\nprompt". system may be NULL. */
int loom_llm_chat_format(const loom_llm_model_t *m, const char *system, const char *prompt, loom_buf_t *out);
/* Same for a conversation: roles "system", "user", "assistant" ("tool" and
 * others read as user turns), ends with the assistant's turn opening. */
int loom_llm_chat_format_msgs(const loom_llm_model_t *m, const char *const *roles, const char *const *contents,
                              size_t n, loom_buf_t *out);

/* Replaces invalid UTF-8 in b (random or byte-level models can emit broken
 * sequences) with U+FFFD so the text can go into JSON. */
int loom_llm_utf8_sanitize(loom_buf_t *b);

#endif
