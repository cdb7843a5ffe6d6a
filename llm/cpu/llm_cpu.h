/* llm_cpu.h — the CPU forward pass for a loaded model.
 *
 * A context owns the KV cache for one sequence (n_ctx positions, f32) and
 * the scratch space; it borrows the model and the thread pool. Prefill runs
 * the prompt as matrix-matrix products (every weight row is read once per
 * batch of up to LOOM_LLM_CPU_BATCH tokens); decode is the same code with one
 * token, i.e. matrix-vector. Not thread-safe: one context per sequence. */
#ifndef LOOM_LLM_CPU_H
#define LOOM_LLM_CPU_H

#include <stdint.h>

#include "common/err.h"
#include "llm/llm_model.h"
#include "llm/cpu/llm_pool.h"

#define LOOM_LLM_CPU_BATCH 256

typedef struct loom_llm_cpu loom_llm_cpu_t;

/* n_ctx <= 0: the model's context length. */
int loom_llm_cpu_new(const loom_llm_model_t *m, loom_llm_pool_t *pool, int n_ctx, loom_llm_cpu_t **out,
                     loom_err_t *e);
void loom_llm_cpu_destroy(loom_llm_cpu_t **pc);
int loom_llm_cpu_n_ctx(const loom_llm_cpu_t *c);

/* llama: runs tokens tok[0..n) at positions pos0.. (the cache must hold
 * positions < pos0 already). logits (n_vocab floats, may be NULL) receives
 * the last position's logits; all_logits (n*n_vocab, may be NULL) every
 * position's. */
int loom_llm_cpu_eval(loom_llm_cpu_t *c, const int32_t *tok, int n, int pos0, float *logits, float *all_logits,
                      loom_err_t *e);
/* Layer-wise streaming (llm_engine.h, loom_llm_prefill_stream): when set,
 * eval calls fn after each layer of each batch of up to LOOM_LLM_CPU_BATCH
 * tokens, with that layer's K and V rows of positions [pos0, pos0+n)
 * (n x n_kv_heads*head_dim each, RoPE applied, final) while the next layer
 * computes nothing yet. NULL clears it. */
typedef void (*loom_llm_layer_fn)(void *ud, int layer, int pos0, int n, const float *k, const float *v);
void loom_llm_cpu_set_layer_fn(loom_llm_cpu_t *c, loom_llm_layer_fn fn, void *ud);

/* Copies rows [0, n) of a layer's K and V out of (to_cache 0) or into
 * (to_cache 1) the context; k and v are n x (n_kv_heads*head_dim) floats,
 * whatever the cache's own layout. LOOM_ETOOBIG when n exceeds the
 * context. */
int loom_llm_cpu_kv_copy(loom_llm_cpu_t *c, int layer, int n, float *k, float *v, int to_cache, loom_err_t *e);

/* bert: pooled, L2-normalised embedding of tok[0..n) into out[dim]. */
int loom_llm_cpu_embed(loom_llm_cpu_t *c, const int32_t *tok, int n, float *out, loom_err_t *e);

#endif
