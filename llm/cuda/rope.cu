/* rope.cu — rotary position embedding. Pairs are (2i, 2i+1) for llama
 * ("normal" mode) or (i, i + n_rot/2) for NEOX-style models (Qwen2); the
 * angle is pos * freq_scale * inv_freq[i] (inv_freq folds in rope_freqs). */
#include "llm/cuda/llm_kernels.cuh"

__global__ void rope_k(float *v, int T, int stride, int heads, int head_dim, int n_rot, int neox, int pos0,
                       float freq_scale, const float *inv_freq) {
    int half = n_rot / 2;
    size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= (size_t)T * heads * half) return;
    int i = (int)(idx % half), h = (int)((idx / half) % heads), t = (int)(idx / ((size_t)half * heads));
    float *x = v + (size_t)t * stride + (size_t)h * head_dim;
    float th = ((float)(pos0 + t) * freq_scale) * inv_freq[i], cs, sn;
    sincosf(th, &sn, &cs);
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = x[a], x1 = x[b];
    x[a] = x0 * cs - x1 * sn;
    x[b] = x0 * sn + x1 * cs;
}

extern "C" cudaError_t loom_cu_rope(float *v, int T, int stride, int heads, int head_dim, int n_rot, int neox,
                                    int pos0, float freq_scale, const float *inv_freq, cudaStream_t s) {
    size_t n = (size_t)T * heads * (n_rot / 2);
    if (n) rope_k<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(v, T, stride, heads, head_dim, n_rot, neox, pos0,
                                                             freq_scale, inv_freq);
    return cudaGetLastError();
}
