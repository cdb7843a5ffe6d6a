/* llm_kernels.h — the CPU LLM inner loops: dot products per weight type,
 * activation quantisation, threaded matrix products, norms and activations.
 *
 * SIMD: AVX2+FMA+F16C versions are chosen at run time when the CPU has them
 * (__builtin_cpu_supports), portable C otherwise; LOOM_LLM_SIMD=scalar forces
 * the portable path (tests compare both). Weight rows of Q8_0/Q4_0 types are
 * multiplied with the activation quantised to Q8_0 (fp16 scale per 32
 * values), as ggml does; F32/F16/BF16 rows with the float activation. */
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
const char *loom_llm_simd_name(void); /* "avx2" or "scalar" */

/* Q8_0 quantisation of n floats (n % 32 == 0) into n/32 34-byte blocks. */
void loom_llm_quantize_q8(const float *x, void *dst, int n);
/* One weight row times one activation (float, or Q8_0 blocks for quantised
 * weight types). */
float loom_llm_dot(int wtype, const void *wrow, const void *x, int n);
/* Y[t*W->rows + r] = W_r . X_t for t < T (X is T x cols floats), rows split
 * across the pool. scratch: at least loom_llm_matmul_scratch(W, T) bytes. */
size_t loom_llm_matmul_scratch(const loom_llm_weight_t *W, int T);
void loom_llm_matmul(loom_llm_pool_t *pool, const loom_llm_weight_t *W, const float *X, int T, float *Y,
                     void *scratch);
/* Several matrices over the same input X (equal cols, at most 4), in one
 * pass of the pool: Q/K/V, or gate/up. Y[i] is T x W[i]->rows. */
void loom_llm_matmul_n(loom_llm_pool_t *pool, const loom_llm_weight_t *const *W, int n, const float *X, int T,
                       float *const *Y, void *scratch);
/* Row r of W as floats (embedding lookups). */
void loom_llm_weight_row(const loom_llm_weight_t *W, int r, float *out);

void loom_llm_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
void loom_llm_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps);
void loom_llm_softmax(float *x, int n);
float loom_llm_dot_f32(const float *a, const float *b, int n);
/* y += a * x */
void loom_llm_axpy(float *y, float a, const float *x, int n);

#endif
