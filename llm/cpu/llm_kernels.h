/* llm_kernels.h — the CPU LLM inner loops: dot products per weight type,
 * activation quantisation, threaded matrix products, norms and activations.
 *
 * SIMD levels, chosen once at run time from what the CPU has
 * (__builtin_cpu_supports): "avx512" (F+BW+VL+VNNI, BF16 dot products when
 * the CPU has AVX512_BF16; llm_kernels_avx512.c), "avx2" (AVX2+FMA+F16C;
 * llm_kernels_avx2.c) and "scalar" (portable C, the reference the others
 * are tested against). LOOM_LLM_SIMD=scalar|avx2|avx512 caps the level.
 *
 * Weight rows of Q8_0/Q4_0 types are multiplied with the activation
 * quantised to Q8_0 (fp16 scale per 32 values), as ggml does; F32/F16 rows
 * with the float activation; BF16 rows too (the AVX-512 BF16 dot product
 * takes the activation as two BF16 parts, so no precision is lost).
 * Batches of tokens (prefill) run as blocked matrix-matrix products: a panel
 * of weight rows is unpacked once into per-thread scratch and reused from
 * cache for every token. On AVX-512, float weights (F32, F16, BF16) in
 * batches of 16 tokens or more take the activations transposed, 16 tokens
 * to a vector, and broadcast each weight value against them. */
#ifndef LOOM_LLM_KERNELS_H
#define LOOM_LLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "llm/cpu/llm_pool.h"

/* A weight matrix as stored in the GGUF: rows x cols, row-major, rows of
 * row_bytes each (data borrowed from the mapping). */
typedef struct loom_llm_weight {
    int type;          /* LOOM_GGML_* */
    int rows, cols;
    size_t row_bytes;
    const void *data;
} loom_llm_weight_t;

/* Selects the SIMD level once (idempotent, thread-safe). */
void loom_llm_kernels_init(void);
const char *loom_llm_simd_name(void); /* "avx512", "avx2" or "scalar" */
/* Tests: switch to a level by name; -1 when this CPU lacks it. Not
 * thread-safe (no matmul may be running). */
int loom_llm_kernels_select(const char *level);

/* Q8_0 quantisation of n floats (n % 32 == 0) into n/32 34-byte blocks. */
void loom_llm_quantize_q8(const float *x, void *dst, int n);
/* Y[t*W->rows + r] = W_r . X_t for t < T (X is T x cols floats), rows split
 * across the pool. scratch: at least loom_llm_matmul_scratch(cols, T) bytes
 * (the converted activations). */
size_t loom_llm_matmul_scratch(int cols, int T);
void loom_llm_matmul(loom_llm_pool_t *pool, const loom_llm_weight_t *W, const float *X, int T, float *Y,
                     void *scratch);
/* Several matrices over the same input X (equal cols, at most 4), in one
 * pass of the pool: Q/K/V, or gate/up. Y[i] is T x W[i]->rows. */
void loom_llm_matmul_n(loom_llm_pool_t *pool, const loom_llm_weight_t *const *W, int n, const float *X, int T,
                       float *const *Y, void *scratch);
/* Per-thread scratch that only grows (GEMM panels, attention scores), 64-byte
 * aligned: no allocation on the hot path once warm. One user at a time per
 * thread; NULL when out of memory. */
void *loom_llm_thread_scratch(size_t bytes);
/* Row r of W as floats (embedding lookups). */
void loom_llm_weight_row(const loom_llm_weight_t *W, int r, float *out);

void loom_llm_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void loom_llm_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps);
void loom_llm_softmax(float *x, int n);
float loom_llm_dot_f32(const float *a, const float *b, int n);
/* y += a * x */
void loom_llm_axpy(float *y, float a, const float *x, int n);
/* g = silu(g) * u elementwise, silu(v) = v / (1 + exp(-v)). */
void loom_llm_swiglu(float *g, const float *u, int n);

#endif
