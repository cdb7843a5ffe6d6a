/* llm_kernels.cuh — launchers for the LLM CUDA kernels, one .cu per op:
 *   matvec.cu     decode matrix-vector per weight type (+ dequant for GEMM,
 *                 Q8_0 activation round trip)
 *   attention.cu  causal grouped-query attention over the device KV cache
 *   rmsnorm.cu    RMSNorm per row
 *   rope.cu       rotary position embedding (normal and NEOX pairs)
 *   silu_mul.cu   SwiGLU gate: g = silu(g) * u
 *   elementwise.cu  residual add, bias add
 * All take a stream and return cudaGetLastError() of the launch. */
#ifndef LOOM_LLM_CUDA_KERNELS_CUH
#define LOOM_LLM_CUDA_KERNELS_CUH

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[r] = W_r . x (+ bias[r]) for r < rows; W rows of row_bytes, ggml type. */
cudaError_t loom_cu_matvec(int type, const void *W, size_t row_bytes, int rows, int cols, const float *x,
                           const float *bias, float *y, cudaStream_t s);
/* out[r][c] = dequantised W (rows x cols floats, row-major). */
cudaError_t loom_cu_dequant(int type, const void *W, size_t row_bytes, int rows, int cols, float *out,
                            cudaStream_t s);
/* x <- dequant(quant_q8_0(x)) in blocks of 32 (n % 32 == 0): what a Q8_0 dot
 * product sees of its activation (fp16 scale, round to nearest). */
cudaError_t loom_cu_q8_roundtrip(float *x, int n, cudaStream_t s);
cudaError_t loom_cu_rmsnorm(const float *x, const float *w, float *out, int rows, int n, float eps,
                            cudaStream_t s);
/* v: T rows of stride floats, heads of head_dim each; token t at pos0 + t. */
cudaError_t loom_cu_rope(float *v, int T, int stride, int heads, int head_dim, int n_rot, int neox, int pos0,
                         float freq_scale, const float *inv_freq, cudaStream_t s);
/* out[t][h][:] = softmax(q K^T / sqrt(hd)) V over positions <= pos0 + t. */
cudaError_t loom_cu_attention(const float *q, const float *K, const float *V, float *out, float *scores, int T,
                              int pos0, int heads, int kv_heads, int head_dim, int n_ctx, cudaStream_t s);
cudaError_t loom_cu_silu_mul(float *g, const float *u, size_t n, cudaStream_t s);
cudaError_t loom_cu_add(float *x, const float *y, size_t n, cudaStream_t s);
/* Y[t][r] += bias[r] for t < T. */
cudaError_t loom_cu_add_bias(float *Y, const float *bias, int rows, int T, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
