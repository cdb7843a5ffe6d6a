/* matvec.cu — decode's matrix-vector products straight from the GGUF block
 * layouts (one warp per output row, lanes striding the row so neighbouring
 * lanes read neighbouring bytes), the dequantiser that feeds cuBLAS during
 * prefill, and the Q8_0 activation round trip that makes quantised products
 * match the CPU backend's integer dot products. */
#include <cuda_fp16.h>

#include "llm/cuda/llm_kernels.cuh"

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8, T_BF16 = 30 };

__device__ __forceinline__ float h2f(const uint8_t *p) {
    unsigned short u = (unsigned short)(p[0] | (p[1] << 8));
    return __half2float(__ushort_as_half(u));
}

template <int TYPE> __device__ __forceinline__ float wval(const uint8_t *row, int i) {
    if (TYPE == T_F32) return reinterpret_cast<const float *>(row)[i];
    if (TYPE == T_F16) return h2f(row + 2 * i);
    if (TYPE == T_BF16) {
        unsigned int u = (unsigned int)(row[2 * i] | (row[2 * i + 1] << 8)) << 16;
        return __uint_as_float(u);
    }
    if (TYPE == T_Q8_0) {
        const uint8_t *b = row + (i >> 5) * 34;
        return (float)(int8_t)b[2 + (i & 31)] * h2f(b);
    }
    /* Q4_0: element j in the low nibble of byte j, j+16 in the high nibble */
    const uint8_t *b = row + (i >> 5) * 18;
    int j = i & 31;
    int q = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);
    return (float)(q - 8) * h2f(b);
}

template <int TYPE>
__global__ void matvec_k(const uint8_t *W, size_t row_bytes, int rows, int cols, const float *x, const float *bias,
                         float *y) {
    int row = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    const uint8_t *r = W + (size_t)row * row_bytes;
    float s = 0.f;
    for (int i = lane; i < cols; i += 32) s += wval<TYPE>(r, i) * x[i];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (lane == 0) y[row] = s + (bias ? bias[row] : 0.f);
}

template <int TYPE>
__global__ void dequant_k(const uint8_t *W, size_t row_bytes, int rows, int cols, float *out) {
    size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= (size_t)rows * cols) return;
    int r = (int)(idx / cols), c = (int)(idx % cols);
    out[idx] = wval<TYPE>(W + (size_t)r * row_bytes, c);
}

__global__ void q8_roundtrip_k(float *x, int nblocks) {
    int b = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
    if (b >= nblocks) return;
    float v = x[b * 32 + lane], a = fabsf(v);
    for (int o = 16; o > 0; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffffu, a, o));
    float d = a / 127.0f, id = d > 0.f ? 1.0f / d : 0.f;
    float q = roundf(v * id);
    x[b * 32 + lane] = q * __half2float(__float2half_rn(d));
}

#define DISPATCH(type, KERNEL, grid, block, s, ...)                                                          \
    switch (type) {                                                                                          \
    case T_F32: KERNEL<T_F32><<<grid, block, 0, s>>>(__VA_ARGS__); break;                                   \
    case T_F16: KERNEL<T_F16><<<grid, block, 0, s>>>(__VA_ARGS__); break;                                   \
    case T_BF16: KERNEL<T_BF16><<<grid, block, 0, s>>>(__VA_ARGS__); break;                                 \
    case T_Q8_0: KERNEL<T_Q8_0><<<grid, block, 0, s>>>(__VA_ARGS__); break;                                 \
    case T_Q4_0: KERNEL<T_Q4_0><<<grid, block, 0, s>>>(__VA_ARGS__); break;                                 \
    default: return cudaErrorInvalidValue;                                                                   \
    }

extern "C" cudaError_t loom_cu_matvec(int type, const void *W, size_t row_bytes, int rows, int cols, const float *x,
                                      const float *bias, float *y, cudaStream_t s) {
    const int threads = 256; /* 8 rows per block */
    unsigned grid = (unsigned)(((size_t)rows * 32 + threads - 1) / threads);
    DISPATCH(type, matvec_k, grid, threads, s, (const uint8_t *)W, row_bytes, rows, cols, x, bias, y);
    return cudaGetLastError();
}

extern "C" cudaError_t loom_cu_dequant(int type, const void *W, size_t row_bytes, int rows, int cols, float *out,
                                       cudaStream_t s) {
    const int threads = 256;
    unsigned grid = (unsigned)(((size_t)rows * cols + threads - 1) / threads);
    DISPATCH(type, dequant_k, grid, threads, s, (const uint8_t *)W, row_bytes, rows, cols, out);
    return cudaGetLastError();
}

extern "C" cudaError_t loom_cu_q8_roundtrip(float *x, int n, cudaStream_t s) {
    int nb = n / 32;
    const int threads = 256;
    unsigned grid = (unsigned)(((size_t)nb * 32 + threads - 1) / threads);
    if (nb > 0) q8_roundtrip_k<<<grid, threads, 0, s>>>(x, nb);
    return cudaGetLastError();
}
