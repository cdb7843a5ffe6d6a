/* llm_model.h — a loaded GGUF model: hyper-parameters, weights (pointing
 * into the mapping) and tokenizer, validated against each other.
 *
 * Architectures: "llama" (also Mistral, TinyLlama; optional q/k/v biases as
 * in Qwen2; "qwen2" files load with NEOX-style RoPE) and "bert" (bge /
 * MiniLM-style encoders). The struct is transparent because every backend
 * (CPU here, CUDA in workers/gpu) reads the same fields; it is immutable
 * after loading and may be shared across threads. */
#ifndef LOOM_LLM_MODEL_H
#define LOOM_LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "llm/gguf.h"
#include "llm/tokenizer.h"
#include "llm/cpu/llm_kernels.h"

enum { LOOM_LLM_ARCH_LLAMA = 1, LOOM_LLM_ARCH_BERT = 2 };
enum { LOOM_LLM_POOL_MEAN = 1, LOOM_LLM_POOL_CLS = 2 };

typedef struct loom_llm_layer {
    loom_llm_weight_t wq, wk, wv, wo;
    loom_llm_weight_t w_gate, w_up, w_down; /* w_gate: llama only */
    float *attn_norm, *ffn_norm;           /* llama: RMSNorm weights (owned) */
    float *bq, *bk, *bv, *bo;              /* optional biases (owned) */
    float *b_up, *b_down;                  /* bert */
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b;  /* bert: attn_output_norm, layer_output_norm */
} loom_llm_layer_t;

typedef struct loom_llm_model {
    int arch;
    char *path;                 /* owned */
    char *name;                 /* general.name or the file name (owned) */
    int n_vocab, dim, n_layers, n_heads, n_kv_heads, head_dim, ffn, n_ctx;
    int n_rot, rope_neox;
    float eps, rope_base, rope_freq_scale; /* freq scale = 1 / linear factor */
    float *rope_freqs;          /* optional per-pair divisors (Llama 3.1), owned */
    int pooling;                /* bert */
    int wtype;                  /* type of the attention weights: the file's dominant type */
    loom_llm_weight_t tok_embd, output; /* output == tok_embd when tied */
    int tied;
    float *output_norm;
    loom_llm_weight_t pos_embd, type_embd; /* bert */
    float *embd_norm_w, *embd_norm_b;
    loom_llm_layer_t *layers;
    loom_gguf_t *gguf;
    loom_tokenizer_t *tok;
    uint8_t hash[32];
    size_t weight_bytes;        /* bytes of all weights: what one decode step reads */
} loom_llm_model_t;

/* Opens, validates and keeps path mapped (pages read when first touched:
 * for metadata, the tokenizer). *out is the caller's. */
int loom_llm_model_load(const char *path, loom_llm_model_t **out, loom_err_t *e);
/* Same for a model about to run: weights resident in huge pages
 * (loom_gguf_open_resident), so no evaluation faults a page in. */
int loom_llm_model_load_resident(const char *path, loom_llm_model_t **out, loom_err_t *e);
void loom_llm_model_destroy(loom_llm_model_t **pm);
/* Bytes one decode step reads (all matrices except the embedding table, which
 * is read one row per token, plus that row). */
size_t loom_llm_model_bytes_per_token(const loom_llm_model_t *m);

#endif
