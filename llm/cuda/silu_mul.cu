/* silu_mul.cu — the SwiGLU gate: g = silu(g) * u. */
#include "llm/cuda/llm_kernels.cuh"

__global__ void silu_mul_k(float *g, const float *u, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

extern "C" cudaError_t loom_cu_silu_mul(float *g, const float *u, size_t n, cudaStream_t s) {
    if (n) silu_mul_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(g, u, n);
    return cudaGetLastError();
}
