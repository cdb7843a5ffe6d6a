/* rmsnorm.cu — out = x / sqrt(mean(x^2) + eps) * w, one block per row. */
#include "llm/cuda/llm_kernels.cuh"

__global__ void rmsnorm_k(const float *x, const float *w, float *out, int n, float eps) {
    __shared__ float part[32];
    const float *r = x + (size_t)blockIdx.x * n;
    float *o = out + (size_t)blockIdx.x * n;
    float s = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += r[i] * r[i];
    for (int k = 16; k > 0; k >>= 1) s += __shfl_down_sync(0xffffffffu, s, k);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        s = threadIdx.x < (blockDim.x + 31) / 32 ? part[threadIdx.x] : 0.f;
        for (int k = 16; k > 0; k >>= 1) s += __shfl_down_sync(0xffffffffu, s, k);
        if (threadIdx.x == 0) part[0] = rsqrtf(s / n + eps);
    }
    __syncthreads();
    float sc = part[0];
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = r[i] * sc * w[i];
}

extern "C" cudaError_t loom_cu_rmsnorm(const float *x, const float *w, float *out, int rows, int n, float eps,
                                       cudaStream_t s) {
    rmsnorm_k<<<rows, 256, 0, s>>>(x, w, out, n, eps);
    return cudaGetLastError();
}
