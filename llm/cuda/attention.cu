/* attention.cu — causal grouped-query attention over the device KV cache.
 * One block per (head, token): scores for every visible position into a
 * global scratch row, block-wide max and sum, then the weighted sum of V. */
#include "llm/cuda/llm_kernels.cuh"

__device__ float block_reduce(float v, bool is_max, float *sh) {
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_down_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        int nw = (blockDim.x + 31) / 32;
        v = threadIdx.x < nw ? sh[threadIdx.x] : (is_max ? -INFINITY : 0.f);
        for (int o = 16; o > 0; o >>= 1) {
            float w = __shfl_down_sync(0xffffffffu, v, o);
            v = is_max ? fmaxf(v, w) : v + w;
        }
        if (threadIdx.x == 0) sh[32] = v;
    }
    __syncthreads();
    float r = sh[32];
    __syncthreads();
    return r;
}

__global__ void attention_k(const float *q, const float *K, const float *V, float *out, float *scores, int pos0,
                            int heads, int kv_heads, int hd, int n_ctx) {
    __shared__ float sh[33];
    int h = blockIdx.x, t = blockIdx.y;
    int kvh = h / (heads / kv_heads), kvw = kv_heads * hd;
    int n = pos0 + t + 1;
    const float *qr = q + ((size_t)t * heads + h) * hd;
    float *sc = scores + ((size_t)t * heads + h) * n_ctx;
    float scale = rsqrtf((float)hd), mx = -INFINITY;
    for (int p = threadIdx.x; p < n; p += blockDim.x) {
        const float *k = K + (size_t)p * kvw + (size_t)kvh * hd;
        float s = 0.f;
        for (int d = 0; d < hd; d++) s += qr[d] * k[d];
        s *= scale;
        sc[p] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_reduce(mx, true, sh);
    float sum = 0.f;
    for (int p = threadIdx.x; p < n; p += blockDim.x) {
        float e = expf(sc[p] - mx);
        sc[p] = e;
        sum += e;
    }
    sum = block_reduce(sum, false, sh);
    float inv = 1.0f / sum;
    float *o = out + ((size_t)t * heads + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.f;
        for (int p = 0; p < n; p++) acc += sc[p] * V[(size_t)p * kvw + (size_t)kvh * hd + d];
        o[d] = acc * inv;
    }
}

extern "C" cudaError_t loom_cu_attention(const float *q, const float *K, const float *V, float *out, float *scores,
                                         int T, int pos0, int heads, int kv_heads, int head_dim, int n_ctx,
                                         cudaStream_t s) {
    dim3 grid((unsigned)heads, (unsigned)T);
    attention_k<<<grid, 128, 0, s>>>(q, K, V, out, scores, pos0, heads, kv_heads, head_dim, n_ctx);
    return cudaGetLastError();
}
