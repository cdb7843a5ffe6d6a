/* elementwise.cu — residual add and per-row bias add. */
#include "llm/cuda/llm_kernels.cuh"

__global__ void add_k(float *x, const float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

__global__ void add_bias_k(float *Y, const float *b, int rows, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) Y[i] += b[i % rows];
}

extern "C" cudaError_t loom_cu_add(float *x, const float *y, size_t n, cudaStream_t s) {
    if (n) add_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(x, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t loom_cu_add_bias(float *Y, const float *bias, int rows, int T, cudaStream_t s) {
    size_t n = (size_t)rows * T;
    if (n) add_bias_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(Y, bias, rows, n);
    return cudaGetLastError();
}
