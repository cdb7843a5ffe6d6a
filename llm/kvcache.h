/* kvcache.h — the KV cache as a portable object: what `llm.prefill` returns
 * and `llm.decode` continues from, on any backend.
 *
 * Binary layout v1 (little-endian):
 *   0  "LOOMKV\0\0"          8-byte magic
 *   8  u32 version (1)       12 u32 dtype of K/V (0 = f32, 1 = f16, 2 = q8_0)
 *  16  u8[32] model hash     (loom_gguf_model_hash of the model it belongs to)
 *  48  u32 n_layers, n_kv_heads, head_dim, n_tokens, n_vocab, rows (0; a
 *      stream's rows per segment, llm_kvref.h)
 *  72  i32 tokens[n_tokens]  the sequence so far (prompt + generated)
 *      f32 logits[n_vocab]   logits after the last token (the next step's input)
 *      per layer: K[n_tokens][n_kv_heads*head_dim], then V likewise (dtype;
 *      q8_0: ggml's blocks of an f16 scale and 32 int8, rows whole blocks)
 * end  u8[32] SHA-256 of every byte before it
 * Position i of the cache holds token i; RoPE is already applied to K. */
#ifndef LOOM_LLM_KVCACHE_H
#define LOOM_LLM_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define LOOM_KVCACHE_VERSION 1
/* Wire dtypes of K/V. In memory a cache is always f32 (what the CPU backend
 * and the backends' kv_write take); an f16 object halves the bytes moved
 * and is widened on receipt (layout translation). */
enum { LOOM_KV_F32 = 0, LOOM_KV_F16 = 1, LOOM_KV_Q8_0 = 2 };
/* "f32" / "f16" / "q8_0" <-> LOOM_KV_*; -1 for an unknown name. */
int loom_kvcache_dtype_from_name(const char *name);
const char *loom_kvcache_dtype_name(int dtype);

typedef struct loom_kvcache loom_kvcache_t;

/* Allocates a zeroed cache. *out is the caller's. */
int loom_kvcache_new(const uint8_t hash[32], int n_layers, int n_kv_heads, int head_dim, int n_tokens,
                     int n_vocab, loom_kvcache_t **out, loom_err_t *e);
void loom_kvcache_destroy(loom_kvcache_t **pk);

int loom_kvcache_n_layers(const loom_kvcache_t *k);
int loom_kvcache_n_kv_heads(const loom_kvcache_t *k);
int loom_kvcache_head_dim(const loom_kvcache_t *k);
int loom_kvcache_n_tokens(const loom_kvcache_t *k);
int loom_kvcache_n_vocab(const loom_kvcache_t *k);
const uint8_t *loom_kvcache_hash(const loom_kvcache_t *k);
/* Borrowed, writable views into the object. */
int32_t *loom_kvcache_tokens(loom_kvcache_t *k);
float *loom_kvcache_logits(loom_kvcache_t *k);
float *loom_kvcache_k(loom_kvcache_t *k, int layer); /* n_tokens x (n_kv_heads*head_dim) */
float *loom_kvcache_v(loom_kvcache_t *k, int layer);

/* K/V elements <-> their wire form: bytes of n elements in dtype (n whole
 * Q8_0 blocks), encode (f32 -> dtype) and decode (dtype -> f32). */
size_t loom_kvcache_dtype_bytes(size_t n, int dtype);
void loom_kvcache_encode(const float *src, size_t n, int dtype, void *dst);
void loom_kvcache_decode(const void *src, size_t n, int dtype, float *dst);

/* The 72-byte header of the binary form, also the first bytes of a KV
 * stream (llm_kvref.h), and its parse (magic, version, dtype, shape). */
#define LOOM_KVCACHE_HEADER 72
typedef struct loom_kvcache_shape {
    uint8_t hash[32];
    int dtype, n_layers, n_kv_heads, head_dim, n_tokens, n_vocab;
    uint32_t rows;
} loom_kvcache_shape_t;
void loom_kvcache_header(const loom_kvcache_shape_t *s, uint8_t out[LOOM_KVCACHE_HEADER]);
int loom_kvcache_header_parse(const void *p, size_t n, loom_kvcache_shape_t *s, loom_err_t *e);

/* Appends the binary form to out (K/V as f32). */
int loom_kvcache_serialize(const loom_kvcache_t *k, loom_buf_t *out, loom_err_t *e);
/* Same with K/V in dtype (LOOM_KV_F32, LOOM_KV_F16 rounded to nearest, or
 * LOOM_KV_Q8_0 quantised as ggml does: 34 bytes per 32 values, 3.8x less
 * than f32; LOOM_EINVAL when a row is not whole blocks). */
int loom_kvcache_serialize_as(const loom_kvcache_t *k, int dtype, loom_buf_t *out, loom_err_t *e);
/* Validates (magic, version, dtype, sizes, checksum) and copies, widening
 * f16 K/V to f32. */
int loom_kvcache_parse(const void *data, size_t n, loom_kvcache_t **out, loom_err_t *e);
/* LOOM_EINVAL with a clear message unless k belongs to this model shape. */
int loom_kvcache_check(const loom_kvcache_t *k, const uint8_t hash[32], int n_layers, int n_kv_heads,
                       int head_dim, int n_vocab, loom_err_t *e);
/* Files: write atomically (tmp + rename) / read whole. */
int loom_kvcache_save(const loom_kvcache_t *k, const char *path, loom_err_t *e);
int loom_kvcache_load(const char *path, loom_kvcache_t **out, loom_err_t *e);

#endif
