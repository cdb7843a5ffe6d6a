/* llm_kernels_avx512.c — AVX-512 kernels (F, BW, VL, VNNI; BF16 when the
 * CPU has it), compiled with function-level target attributes and installed
 * by loom_llm_isa_avx512() over the AVX2 level when the CPU has them.
 *
 * Quantised weights (Q8_0, Q4_0) use int8 dot products (VPDPBUSD) against
 * the activation quantised to Q8_0 exactly as the portable path does, but
 * stored in the "Q8X" layout, per 64 values (two blocks):
 *   64 bytes  q + 128 (unsigned, the form VPDPBUSD multiplies)
 *   16 floats the two blocks' fp16 scales, each repeated over 8 lanes
 * so a 512-bit register holds two blocks and the per-block scales line up
 * with the 16 int32 partial sums. Since sum((q+128) w) = sum(q w) + 128
 * sum(w), the 128 sum(w) term (per weight block, independent of the token)
 * is subtracted exactly in int32.
 *
 * Prefill is a blocked GEMM: for 4 weight rows a panel is unpacked once
 * (int8 + correction + scales, or floats) into per-thread scratch and then
 * multiplied with the tokens 4-6 at a time, every accumulator a register.
 * F16 and F32 weights use F32 FMA (exact weights); BF16 weights use
 * VDPBF16PS when the CPU has AVX512_BF16, against the activation split into
 * two BF16 parts (hi + lo, ~16 significant bits, so results stay within
 * float rounding of the portable path, unlike ggml's single rounding),
 * else F32 FMA. Batches of 16 tokens or more of float weights (F32, F16,
 * BF16) take gemm_t instead: tokens in the vector lanes, F32 FMA.
 * Also the element-wise steps around the products: SwiGLU (a vector exp),
 * the attention's axpy, and gemm_t's transposed activations. */
#include <math.h>
#include <string.h>

#include "llm/gguf.h"
#include "llm/cpu/llm_kernels_isa.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,fma,f16c")))
#define AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx512bf16,fma,f16c")))
#define INLINE inline __attribute__((always_inline))

enum { RM = 4,        /* weight rows per panel */
       RN_F = 6,      /* tokens per float micro-kernel call */
       RN_Q = 4,      /* tokens per int8 micro-kernel call */
       TB = 64,       /* most tokens per block */
       XB = 512 << 10, /* most activation bytes per block (half of L2) */
       KC_F = 512,    /* values per K slice: panel + activation slices stay */
       KC_Q = 1024,   /*   in L1 across a block's token groups */
       QPAIR = 192 }; /* panel bytes per row per 64 values (int8) */

static inline uint16_t u16at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return h;
}

/* ---- activation conversion ---- */

/* roundf (halves away from zero) exactly: trunc, then one more step away
 * from zero when the dropped part is at least one half. */
AVX512 static INLINE __m512i round_away(__m512 v) {
    __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512i q = _mm512_cvttps_epi32(t);
    __m512i s = _mm512_srai_epi32(_mm512_castps_si512(v), 31); /* -1 or 0 */
    return _mm512_mask_add_epi32(q, up, q, _mm512_or_si512(s, _mm512_set1_epi32(1)));
}

/* Q8X: each block quantised exactly as the portable loom_llm_quantize_q8
 * (same scale, same fp16 rounding, same roundf). */
AVX512 static void to_q8x(const float *x, void *dst, int n) {
    int nb = n / 32;
    uint8_t *o = dst;
    for (int b = 0; b < nb + (nb & 1); b++) {
        uint8_t *q = o + (size_t)(b / 2) * 128 + (b & 1) * 32;
        float *s = (float *)(void *)(o + (size_t)(b / 2) * 128 + 64) + (b & 1) * 8;
        if (b == nb) {
            memset(q, 128, 32);
            _mm256_storeu_ps(s, _mm256_setzero_ps());
            continue;
        }
        __m512 v0 = _mm512_loadu_ps(x + (size_t)b * 32), v1 = _mm512_loadu_ps(x + (size_t)b * 32 + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0;
        __m512 vid = _mm512_set1_ps(id);
        __m512i off = _mm512_set1_epi32(128);
        __m128i q0 = _mm512_cvtepi32_epi8(_mm512_add_epi32(round_away(_mm512_mul_ps(v0, vid)), off));
        __m128i q1 = _mm512_cvtepi32_epi8(_mm512_add_epi32(round_away(_mm512_mul_ps(v1, vid)), off));
        _mm_storeu_si128((__m128i *)(void *)q, q0);
        _mm_storeu_si128((__m128i *)(void *)(q + 16), q1);
        _mm256_storeu_ps(s, _mm256_set1_ps(_cvtsh_ss(_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT))));
    }
}

/* BF16X2: x = hi + lo, both bfloat16 (round to nearest even): per 32
 * values 32 hi then 32 lo; a tail of n % 32 values as hi[tail], lo[tail]. */
static uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
static float bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

AVX512BF16 static void to_bf16x2(const float *x, void *dst, int n) {
    uint16_t *o = dst;
    int i = 0;
    for (; i + 32 <= n; i += 32, o += 64) {
        __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        __m512i hi = (__m512i)_mm512_cvtne2ps_pbh(b, a);
        __m512 ah = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hi)), 16));
        __m512 bh = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(hi, 1)), 16));
        __m512i lo = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(b, bh), _mm512_sub_ps(a, ah));
        _mm512_storeu_si512(o, hi);
        _mm512_storeu_si512(o + 32, lo);
    }
    int tail = n - i;
    for (int j = 0; j < tail; j++) {
        o[j] = bf16_round(x[i + j]);
        o[tail + j] = bf16_round(x[i + j] - bf16_value(o[j]));
    }
}

/* ---- weight unpacking shared by the dot products and the panels ---- */

/* Two Q8_0 blocks (the second may be absent: zeros) as 64 int8. */
AVX512 static INLINE __m512i q8_pair(const uint8_t *w, int two) {
    __m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)(w + 2));
    __m256i hi = two ? _mm256_loadu_si256((const __m256i *)(const void *)(w + 36)) : _mm256_setzero_si256();
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
/* Two Q4_0 blocks as 64 int8 in [-8, 7] (q8 order: low nibbles are values
 * 0..15 of a block, high nibbles 16..31). */
AVX512 static INLINE __m512i q4_pair(const uint8_t *w, int two) {
    __m128i r0 = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
    __m128i r1 = two ? _mm_loadu_si128((const __m128i *)(const void *)(w + 20)) : _mm_set1_epi8((char)0x88);
    __m512i z = _mm512_castsi256_si512(_mm256_set_m128i(r1, r0));
    z = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0), z);
    z = _mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
    return _mm512_sub_epi8(_mm512_and_si512(z, _mm512_set1_epi8(0x0f)), _mm512_set1_epi8(8));
}
/* Two fp16 block scales -> 8 lanes each. */
AVX512 static INLINE __m512 scale_pair(const uint8_t *s0, const uint8_t *s1) {
    uint32_t two = u16at(s0) | (s1 ? (uint32_t)u16at(s1) << 16 : 0);
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)two));
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_castps128_ps512(f));
}
/* sum(q w) per lane from (q+128) and w: VPDPBUSD, minus 128 sum(w). */
AVX512 static INLINE __m512i neg_corr(__m512i wq) {
    return _mm512_sub_epi32(_mm512_setzero_si512(),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), wq));
}

/* ---- decode: one weight row . one activation ---- */

AVX512 static float dot_f32_512(const uint8_t *wv, const void *xv, int n) {
    const float *w = (const float *)(const void *)wv, *x = xv;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

AVX512 static INLINE __m512 ld_f16(const uint8_t *w, int i) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2 * (size_t)i)));
}

AVX512 static float dot_f16_512(const uint8_t *w, const void *xv, int n) {
    const float *x = xv;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(ld_f16(w, i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(ld_f16(w, i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(ld_f16(w, i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(ld_f16(w, i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(ld_f16(w, i), _mm512_loadu_ps(x + i), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) s += loom_fp16_to_fp32(u16at(w + 2 * i)) * x[i];
    return s;
}

/* BF16 weights . BF16X2 activation: two VDPBF16PS per 32 values. */
AVX512BF16 static INLINE __m512 bf16x2_fma(const uint8_t *w, const uint8_t *x, __m512 acc) {
    __m512bh wv = (__m512bh)_mm512_loadu_si512(w);
    acc = _mm512_dpbf16_ps(acc, wv, (__m512bh)_mm512_loadu_si512(x));
    return _mm512_dpbf16_ps(acc, wv, (__m512bh)_mm512_loadu_si512(x + 64));
}

AVX512BF16 static float dot_bf16_512(const uint8_t *w, const void *xv, int n) {
    const uint8_t *x = xv;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = bf16x2_fma(w + 2 * i, x + 4 * i, s0);
        s1 = bf16x2_fma(w + 2 * i + 64, x + 4 * i + 128, s1);
    }
    for (; i + 32 <= n; i += 32) s0 = bf16x2_fma(w + 2 * i, x + 4 * i, s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    int tail = n - i;
    for (int j = 0; j < tail; j++) {
        float wf = loom_bf16_to_fp32(u16at(w + 2 * (i + j)));
        s += wf * bf16_value(u16at(x + 4 * i + 2 * j)) + wf * bf16_value(u16at(x + 4 * i + 2 * (tail + j)));
    }
    return s;
}

/* One pair of blocks: acc += (sum q w per lane) x (weight scale x activation scale). */
AVX512 static INLINE __m512 q_pair_fma(__m512i wq, __m512 sw, const uint8_t *x, __m512 acc) {
    __m512i i = _mm512_dpbusd_epi32(neg_corr(wq), _mm512_loadu_si512(x), wq);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(sw, _mm512_loadu_ps(x + 64)), acc);
}

AVX512 static float dot_q8_512(const uint8_t *w, const void *xv, int n) {
    const uint8_t *x = xv;
    int nb = n / 32, b = 0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    for (; b + 4 <= nb; b += 4, w += 136, x += 256) {
        a0 = q_pair_fma(q8_pair(w, 1), scale_pair(w, w + 34), x, a0);
        a1 = q_pair_fma(q8_pair(w + 68, 1), scale_pair(w + 68, w + 102), x + 128, a1);
    }
    for (; b < nb; b += 2, w += 68, x += 128) {
        int two = b + 1 < nb;
        a0 = q_pair_fma(q8_pair(w, two), scale_pair(w, two ? w + 34 : NULL), x, a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512 static float dot_q4_512(const uint8_t *w, const void *xv, int n) {
    const uint8_t *x = xv;
    int nb = n / 32, b = 0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    for (; b + 4 <= nb; b += 4, w += 72, x += 256) {
        a0 = q_pair_fma(q4_pair(w, 1), scale_pair(w, w + 18), x, a0);
        a1 = q_pair_fma(q4_pair(w + 36, 1), scale_pair(w + 36, w + 54), x + 128, a1);
    }
    for (; b < nb; b += 2, w += 36, x += 128) {
        int two = b + 1 < nb;
        a0 = q_pair_fma(q4_pair(w, two), scale_pair(w, two ? w + 18 : NULL), x, a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/* ---- prefill: blocked GEMM ---- */

/* Tokens per block: T split into equal blocks of at most TB, and of at
 * most XB bytes of activations, so that a block's activations stay in L2
 * while every weight panel passes over them. A panel is unpacked once per
 * block: a batch of 64 short rows is one block, not 30 + 30 + a 4-token
 * remainder that pays a whole unpacking for 4 tokens. */
static int token_block(int T, size_t xstride) {
    int most = (int)(XB / xstride);
    most = most < 1 ? 1 : most > TB ? TB : most;
    int nb = (T + most - 1) / most;
    return (T + nb - 1) / nb;
}

/* Asks for bytes [a, b) of rows [r, r1) of W into L2, one hint per cache
 * line: the weights the next panel or K slice unpacks, fetched from memory
 * while this one computes. A panel's rows are read once per token block in
 * pieces too short for the hardware prefetcher to run ahead of. */
static INLINE void prefetch_rows(const loom_llm_weight_t *W, int r, int r1, size_t a, size_t b) {
    for (; r < r1; r++) {
        const char *w = (const char *)W->data + (size_t)r * W->row_bytes;
        for (size_t o = a; o < b; o += 64) _mm_prefetch(w + o, _MM_HINT_T1);
    }
}

static INLINE void store_tile(float *Y, size_t ldy, int r, int rm, int t, int rn, const float *o, int RN) {
    for (int j = 0; j < rn; j++)
        for (int i = 0; i < rm; i++) Y[(size_t)(t + j) * ldy + r + i] = o[i * RN + j];
}

/* Values [k, k + 16) of a float weight row (F32, F16 or BF16) as floats. */
AVX512 static INLINE __m512 ld_float16(int type, const uint8_t *w, int k) {
    if (type == LOOM_GGML_F16) return ld_f16(w, k);
    if (type == LOOM_GGML_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(w + 2 * (size_t)k))), 16));
    return _mm512_loadu_ps((const float *)(const void *)w + k);
}

/* Float panel of one K slice [k0, k0 + kc): RM rows as floats, interleaved
 * per 16 values: p[(k/16 * RM + i) * 16 + k%16], k from k0. Rows past rm are
 * zero. Unpacked slice by slice, just before use, so it is in L1. */
AVX512 static void pack_f(const loom_llm_weight_t *W, int r, int rm, int k0, int kc, float *p) {
    for (int i = 0; i < RM; i++, p += 16) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)(r + i) * W->row_bytes;
        float *o = p;
        for (int k = k0; k < k0 + kc; k += 16, o += RM * 16)
            _mm512_store_ps(o, i < rm ? ld_float16(W->type, w, k) : _mm512_setzero_ps());
    }
}

/* acc[RM][rn] over one K slice of kc values: started from zero (first) or
 * from io, then either stored back to io or, on the last slice, summed
 * into out[i * RN_F + j]. */
AVX512 static INLINE void mk_f(const float *p, int kc, const float *x, size_t xs, int rn, __m512 *io, int first,
                               float *out) {
    __m512 acc[RM][RN_F];
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 8
        for (int j = 0; j < RN_F; j++)
            if (j < rn) acc[i][j] = first ? _mm512_setzero_ps() : io[i * RN_F + j];
    for (int k = 0; k < kc; k += 16, p += RM * 16) {
        __m512 w0 = _mm512_load_ps(p), w1 = _mm512_load_ps(p + 16), w2 = _mm512_load_ps(p + 32),
               w3 = _mm512_load_ps(p + 48);
#pragma GCC unroll 8
        for (int j = 0; j < RN_F; j++) {
            if (j >= rn) break;
            __m512 v = _mm512_loadu_ps(x + j * xs + k);
            acc[0][j] = _mm512_fmadd_ps(w0, v, acc[0][j]);
            acc[1][j] = _mm512_fmadd_ps(w1, v, acc[1][j]);
            acc[2][j] = _mm512_fmadd_ps(w2, v, acc[2][j]);
            acc[3][j] = _mm512_fmadd_ps(w3, v, acc[3][j]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 8
        for (int j = 0; j < RN_F; j++)
            if (j < rn) {
                if (out) out[i * RN_F + j] = _mm512_reduce_add_ps(acc[i][j]);
                else io[i * RN_F + j] = acc[i][j];
            }
}

AVX512 static void gemm_f(const loom_llm_weight_t *W, int r0, int r1, const uint8_t *x, size_t xstride, int T,
                          float *Y, size_t ldy) {
    int K = W->cols;
    enum { NG = (TB + RN_F - 1) / RN_F }; /* token groups per block */
    __m512 *io = loom_llm_thread_scratch((size_t)RM * KC_F * 4 + (size_t)NG * RM * RN_F * 64);
    float *p = (float *)(io + NG * RM * RN_F);
    size_t xs = xstride / 4;
    float o[RM * RN_F];
    int tb = token_block(T, xstride);
    for (int t0 = 0; t0 < T; t0 += tb) {
        int t1 = t0 + tb < T ? t0 + tb : T;
        for (int r = r0; r < r1; r += RM) {
            int rm = r1 - r < RM ? r1 - r : RM;
            for (int k0 = 0; k0 < K; k0 += KC_F) {
                int kc = K - k0 < KC_F ? K - k0 : KC_F, last = k0 + kc == K;
                const float *pk = p;
                pack_f(W, r, rm, k0, kc, p);
                size_t es = W->row_bytes / (size_t)K; /* bytes per value */
                if (!last) prefetch_rows(W, r, r + rm, (size_t)(k0 + kc) * es,
                                         (size_t)(K - k0 - kc < KC_F ? K : k0 + kc + KC_F) * es);
                else if (r + RM < r1) prefetch_rows(W, r + RM, r1 - r < 2 * RM ? r1 : r + 2 * RM, 0,
                                                    (size_t)(K < KC_F ? K : KC_F) * es);
                for (int t = t0, g = 0; t < t1; t += RN_F, g++) {
                    int rn = t1 - t < RN_F ? t1 - t : RN_F;
                    const float *xt = (const float *)(const void *)(x + (size_t)t * xstride) + k0;
                    __m512 *a = io + g * RM * RN_F;
                    float *out = last ? o : NULL;
                    switch (rn) {
                    case 6: mk_f(pk, kc, xt, xs, 6, a, k0 == 0, out); break;
                    case 5: mk_f(pk, kc, xt, xs, 5, a, k0 == 0, out); break;
                    case 4: mk_f(pk, kc, xt, xs, 4, a, k0 == 0, out); break;
                    case 3: mk_f(pk, kc, xt, xs, 3, a, k0 == 0, out); break;
                    case 2: mk_f(pk, kc, xt, xs, 2, a, k0 == 0, out); break;
                    default: mk_f(pk, kc, xt, xs, 1, a, k0 == 0, out); break;
                    }
                    if (last) store_tile(Y, ldy, r, rm, t, rn, o, RN_F);
                }
            }
        }
    }
}

/* ---- float GEMM over token vectors (F32, F16, BF16 weights, T >= 16) ----
 * The form above puts K in the vector lanes: every product ends in a
 * horizontal sum and every token's activations stream from L2 once per
 * 4-row panel. This one puts 16 tokens in the lanes instead (the BLIS
 * layout): the activations are given transposed in groups of 16 tokens,
 * xt[(g * K + k) * 16 + l] = x[16 g + l][k], a panel of TR weight rows is
 * unpacked to floats, and each weight value is broadcast against TV token
 * vectors. Per value of K: TV vector loads, TR broadcasts, TR x TV FMAs
 * into registers, no reductions; the panel (TR x KC_T floats) stays in L1
 * and each activation vector is used TR times. */
enum { TR = 12,      /* weight rows per panel (broadcast) */
       TV = 2,       /* 16-token vectors per micro-kernel call */
       KC_T = 512,   /* values per K slice: the panel, 24 KiB, stays in L1 */
       TB_T = 128 }; /* most tokens per block: 128 x KC_T floats, 512 KiB, in L2 */

/* Rows [r, r + rb) of W, values [k0, k0 + kc) as floats, row i at
 * p + i KC_T (a constant stride: the micro-kernel's TR broadcasts address
 * one pointer plus fixed offsets); rows past rb are zero. */
AVX512 static void pack_rows(const loom_llm_weight_t *W, int r, int rb, int k0, int kc, float *p) {
    for (int i = 0; i < TR; i++, p += KC_T) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)(r + i) * W->row_bytes;
        for (int k = 0; k < kc; k += 16)
            _mm512_store_ps(p + k, i < rb ? ld_float16(W->type, w, k0 + k) : _mm512_setzero_ps());
    }
}

/* acc[TR][nv] over one K slice, started from zero (first) or from io; then
 * kept in io, or on the last slice written to Y (rows r..r+rb, tokens
 * t..t+tn). gs: floats between token groups in xt. */
AVX512 static INLINE void mk_t(const float *p, int kc, const float *x, size_t gs, int nv, __m512 *io, int first,
                               int last, float *Y, size_t ldy, int r, int rb, int t, int tn,
                               const char *const *pf, int npf) {
    __m512 acc[TR][TV];
#pragma GCC unroll 16
    for (int i = 0; i < TR; i++)
#pragma GCC unroll 16
        for (int j = 0; j < TV; j++)
            if (j < nv) acc[i][j] = first ? _mm512_setzero_ps() : io[i * TV + j];
    /* the output lines, fetched into L2 while the slice computes: each
     * token's TR values are a line of their own (or two), rows of Y apart
     * (a multiple of 4 KiB: the same L1 set, so not into L1) */
    if (last)
        for (int l = 0; l < tn; l++) {
            _mm_prefetch((const char *)(Y + (size_t)(t + l) * ldy + r), _MM_HINT_T1);
            _mm_prefetch((const char *)(Y + (size_t)(t + l) * ldy + r + TR - 1), _MM_HINT_T1);
        }
    for (int k = 0; k < kc; k++, x += 16) {
        if ((k & 3) == 0 && k / 4 < npf) _mm_prefetch(pf[k / 4], _MM_HINT_T1);
        __m512 v[TV];
#pragma GCC unroll 16
        for (int j = 0; j < TV; j++)
            if (j < nv) v[j] = _mm512_load_ps(x + j * gs);
#pragma GCC unroll 16
        for (int i = 0; i < TR; i++) {
            __m512 b = _mm512_set1_ps(p[i * KC_T + k]);
#pragma GCC unroll 16
            for (int j = 0; j < TV; j++)
                if (j < nv) acc[i][j] = _mm512_fmadd_ps(v[j], b, acc[i][j]);
        }
    }
    if (!last) {
#pragma GCC unroll 16
        for (int i = 0; i < TR; i++)
#pragma GCC unroll 16
            for (int j = 0; j < TV; j++)
                if (j < nv) io[i * TV + j] = acc[i][j];
        return;
    }
    /* token by token, so each output line is written whole before the next */
    float o[TR][TV * 16] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (int i = 0; i < TR; i++)
#pragma GCC unroll 16
        for (int j = 0; j < TV; j++)
            if (j < nv) _mm512_store_ps(o[i] + 16 * j, acc[i][j]);
    for (int l = 0; l < tn; l++)
        for (int i = 0; i < rb; i++) Y[(size_t)(t + l) * ldy + r + i] = o[i][l];
}

AVX512 static void gemm_t(const loom_llm_weight_t *W, int r0, int r1, const float *xt, int T, float *Y,
                          size_t ldy) {
    int K = W->cols, ng = (T + 15) / 16;
    int nb = (ng * 16 + TB_T - 1) / TB_T, gb = (ng + nb - 1) / nb; /* groups per block, even split */
    int nt = (gb + TV - 1) / TV;                                  /* micro-kernel calls per block */
    __m512 *io = loom_llm_thread_scratch((size_t)TR * KC_T * 4 + (size_t)nt * TR * TV * 64);
    float *p = (float *)(io + nt * TR * TV);
    size_t gs = (size_t)K * 16, es = W->row_bytes / (size_t)K;
    for (int g0 = 0; g0 < ng; g0 += gb) {
        int g1 = g0 + gb < ng ? g0 + gb : ng;
        for (int r = r0; r < r1; r += TR) {
            int rb = r1 - r < TR ? r1 - r : TR;
            for (int k0 = 0; k0 < K; k0 += KC_T) {
                int kc = K - k0 < KC_T ? K - k0 : KC_T, last = k0 + kc == K;
                pack_rows(W, r, rb, k0, kc, p);
                /* the weights the next panel or K slice unpacks, one cache
                 * line every 4 values of this slice's micro-kernel calls:
                 * a burst of hints is mostly dropped, and a panel row's
                 * piece is too short for the hardware prefetcher */
                const char *pf[TR * KC_T * 4 / 64];
                int npf = 0, nr = r, nk = k0 + kc;
                if (last) nr = r + TR, nk = 0;
                if (nr < r1) {
                    int nkc = K - nk < KC_T ? K - nk : KC_T, nrb = r1 - nr < TR ? r1 - nr : TR;
                    for (int i = 0; i < nrb; i++) {
                        const char *w = (const char *)W->data + (size_t)(nr + i) * W->row_bytes + (size_t)nk * es;
                        for (size_t o = 0; o < (size_t)nkc * es; o += 64) pf[npf++] = w + o;
                    }
                }
                int calls = (g1 - g0 + TV - 1) / TV, per = (npf + calls - 1) / calls;
                for (int g = g0, c = 0; g < g1; g += TV, c++) {
                    int nv = g1 - g < TV ? g1 - g : TV, t = g * 16, tn = T - t < nv * 16 ? T - t : nv * 16;
                    const float *x = xt + (size_t)g * gs + (size_t)k0 * 16;
                    __m512 *a = io + c * TR * TV;
                    const char *const *q = pf + c * per;
                    int nq = npf - c * per < per ? npf - c * per : per;
                    nq = nq < 0 ? 0 : nq;
                    switch (nv) {
                    case 2: mk_t(p, kc, x, gs, 2, a, k0 == 0, last, Y, ldy, r, rb, t, tn, q, nq); break;
                    default: mk_t(p, kc, x, gs, 1, a, k0 == 0, last, Y, ldy, r, rb, t, tn, q, nq); break;
                    }
                    for (int i = kc / 4; i < nq; i++) _mm_prefetch(q[i], _MM_HINT_T1);
                }
            }
        }
    }
}

/* BF16 x BF16X2 activation: the rows are read in place (already the form
 * VDPBF16PS takes), RM at a time, reused from cache for each token group. */
AVX512BF16 static INLINE void mk_bf16(const uint8_t *w, size_t wstride, int K, const uint8_t *x, size_t xs, int rn,
                                      float *out) {
    __m512 acc[RM][RN_F];
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 8
        for (int j = 0; j < RN_F; j++) acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 32) {
        __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + 2 * k), w1 = (__m512bh)_mm512_loadu_si512(w + wstride + 2 * k),
                 w2 = (__m512bh)_mm512_loadu_si512(w + 2 * wstride + 2 * k),
                 w3 = (__m512bh)_mm512_loadu_si512(w + 3 * wstride + 2 * k);
#pragma GCC unroll 8
        for (int j = 0; j < RN_F; j++) {
            if (j >= rn) break;
            __m512bh h = (__m512bh)_mm512_loadu_si512(x + j * xs + 4 * k),
                     l = (__m512bh)_mm512_loadu_si512(x + j * xs + 4 * k + 64);
            acc[0][j] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(acc[0][j], w0, h), w0, l);
            acc[1][j] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(acc[1][j], w1, h), w1, l);
            acc[2][j] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(acc[2][j], w2, h), w2, l);
            acc[3][j] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(acc[3][j], w3, h), w3, l);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 8
        for (int j = 0; j < RN_F; j++)
            if (j < rn) out[i * RN_F + j] = _mm512_reduce_add_ps(acc[i][j]);
}

AVX512BF16 static void gemm_bf16(const loom_llm_weight_t *W, int r0, int r1, const uint8_t *x, size_t xstride, int T,
                                 float *Y, size_t ldy) {
    int K = W->cols;
    float o[RM * RN_F];
    int tb = token_block(T, xstride);
    for (int t0 = 0; t0 < T; t0 += tb) {
        int t1 = t0 + tb < T ? t0 + tb : T;
        for (int r = r0; r < r1; r += RM) {
            int rm = r1 - r < RM ? r1 - r : RM;
            /* the last group of a matrix may have fewer than RM rows: read
             * the first row again in their place (results are dropped) */
            const uint8_t *w = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
            size_t ws = rm == RM ? W->row_bytes : 0;
            for (int t = t0; t < t1; t += RN_F) {
                int rn = t1 - t < RN_F ? t1 - t : RN_F;
                const uint8_t *xt = x + (size_t)t * xstride;
                if (rm < RM) {
                    for (int i = 0; i < rm; i++)
                        for (int j = 0; j < rn; j++)
                            o[i * RN_F + j] = dot_bf16_512(w + (size_t)i * W->row_bytes, xt + (size_t)j * xstride, K);
                } else switch (rn) {
                    case 6: mk_bf16(w, ws, K, xt, xstride, 6, o); break;
                    case 5: mk_bf16(w, ws, K, xt, xstride, 5, o); break;
                    case 4: mk_bf16(w, ws, K, xt, xstride, 4, o); break;
                    case 3: mk_bf16(w, ws, K, xt, xstride, 3, o); break;
                    case 2: mk_bf16(w, ws, K, xt, xstride, 2, o); break;
                    default: mk_bf16(w, ws, K, xt, xstride, 1, o); break;
                    }
                store_tile(Y, ldy, r, rm, t, rn, o, RN_F);
            }
        }
    }
}

/* Int8 panel, per 64 values: for each of the RM rows, 64 int8 weights,
 * 16 int32 -128*sum(w) (the correction, also VPDPBUSD's start value) and
 * 16 float weight scales. Rows past rm are zero. */
AVX512 static void pack_q(const loom_llm_weight_t *W, int r, int rm, uint8_t *p) {
    int nb = W->cols / 32, q4 = W->type == LOOM_GGML_Q4_0, bb = q4 ? 18 : 34;
    for (int i = 0; i < RM; i++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)(r + i) * W->row_bytes;
        for (int b = 0; b < nb; b += 2, w += 2 * bb) {
            uint8_t *o = p + ((size_t)(b / 2) * RM + i) * QPAIR;
            int two = b + 1 < nb;
            if (i >= rm) {
                memset(o, 0, QPAIR);
                continue;
            }
            __m512i wq = q4 ? q4_pair(w, two) : q8_pair(w, two);
            _mm512_store_si512(o, wq);
            _mm512_store_si512(o + 64, neg_corr(wq));
            _mm512_store_ps(o + 128, scale_pair(w, two ? w + bb : NULL));
        }
    }
}

/* As mk_f, over np pairs of 32-value blocks. */
AVX512 static INLINE void mk_q(const uint8_t *p, int np, const uint8_t *x, size_t xs, int rn, __m512 *io, int first,
                               float *out) {
    __m512 acc[RM][RN_Q];
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 8
        for (int j = 0; j < RN_Q; j++)
            if (j < rn) acc[i][j] = first ? _mm512_setzero_ps() : io[i * RN_Q + j];
    for (int k = 0; k < np; k++, p += RM * QPAIR, x += 128) {
        __m512i xu[RN_Q];
        __m512 sx[RN_Q];
#pragma GCC unroll 8
        for (int j = 0; j < RN_Q; j++) {
            if (j >= rn) break;
            xu[j] = _mm512_loadu_si512(x + j * xs);
            sx[j] = _mm512_loadu_ps(x + j * xs + 64);
        }
#pragma GCC unroll 8
        for (int i = 0; i < RM; i++) {
            __m512i wq = _mm512_load_si512(p + i * QPAIR), nc = _mm512_load_si512(p + i * QPAIR + 64);
            __m512 sw = _mm512_load_ps(p + i * QPAIR + 128);
#pragma GCC unroll 8
            for (int j = 0; j < RN_Q; j++) {
                if (j >= rn) break;
                __m512i d = _mm512_dpbusd_epi32(nc, xu[j], wq);
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(sw, sx[j]), acc[i][j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 8
        for (int j = 0; j < RN_Q; j++)
            if (j < rn) {
                if (out) out[i * RN_Q + j] = _mm512_reduce_add_ps(acc[i][j]);
                else io[i * RN_Q + j] = acc[i][j];
            }
}

AVX512 static void gemm_q(const loom_llm_weight_t *W, int r0, int r1, const uint8_t *x, size_t xstride, int T,
                          float *Y, size_t ldy) {
    int np = (W->cols / 32 + 1) / 2;
    enum { NG = (TB + RN_Q - 1) / RN_Q, KP = KC_Q / 64 };
    __m512 *io = loom_llm_thread_scratch((size_t)np * RM * QPAIR + (size_t)NG * RM * RN_Q * 64);
    uint8_t *p = (uint8_t *)(io + NG * RM * RN_Q);
    float o[RM * RN_Q];
    int tb = token_block(T, xstride);
    for (int t0 = 0; t0 < T; t0 += tb) {
        int t1 = t0 + tb < T ? t0 + tb : T;
        for (int r = r0; r < r1; r += RM) {
            int rm = r1 - r < RM ? r1 - r : RM;
            pack_q(W, r, rm, p);
            if (r + RM < r1) prefetch_rows(W, r + RM, r1 - r < 2 * RM ? r1 : r + 2 * RM, 0, W->row_bytes);
            for (int k0 = 0; k0 < np; k0 += KP) {
                int kp = np - k0 < KP ? np - k0 : KP, last = k0 + kp == np;
                const uint8_t *pk = p + (size_t)k0 * RM * QPAIR;
                for (int t = t0, g = 0; t < t1; t += RN_Q, g++) {
                    int rn = t1 - t < RN_Q ? t1 - t : RN_Q;
                    const uint8_t *xt = x + (size_t)t * xstride + (size_t)k0 * 128;
                    __m512 *a = io + g * RM * RN_Q;
                    float *out = last ? o : NULL;
                    switch (rn) {
                    case 4: mk_q(pk, kp, xt, xstride, 4, a, k0 == 0, out); break;
                    case 3: mk_q(pk, kp, xt, xstride, 3, a, k0 == 0, out); break;
                    case 2: mk_q(pk, kp, xt, xstride, 2, a, k0 == 0, out); break;
                    default: mk_q(pk, kp, xt, xstride, 1, a, k0 == 0, out); break;
                    }
                    if (last) store_tile(Y, ldy, r, rm, t, rn, o, RN_Q);
                }
            }
        }
    }
}

/* ---- the element-wise steps around the products ---- */

/* gemmt's activations: one gather per value of K, of that value in the
 * group's 16 token rows (rows past T masked to zero). K % 16 == 0 here
 * (gemmt takes K % 32 == 0). */
AVX512 static void xt_512(const float *X, float *xt, int T, int K, int g) {
    int n = T - 16 * g < 16 ? T - 16 * g : 16;
    __mmask16 m = (__mmask16)((1u << n) - 1);
    __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                     _mm512_set1_epi32(K));
    const float *x = X + (size_t)g * 16 * K;
    float *o = xt + (size_t)g * K * 16;
    for (int k = 0; k < K; k++) _mm512_store_ps(o + (size_t)k * 16, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x + k, 4));
}

AVX512 static void axpy_512(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* e^v, v clamped to [-88, 88]: 2^n p(r) with r = v - n ln 2 (ln 2 in two
 * parts) and Cephes' expf polynomial; within 2 ulp of expf. */
AVX512 static INLINE __m512 exp_512(__m512 v) {
    v = _mm512_max_ps(_mm512_min_ps(v, _mm512_set1_ps(88.0f)), _mm512_set1_ps(-88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

AVX512 static void swiglu_512(float *g, const float *u, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(g + i);
        __m512 s = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp_512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(s, _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

int loom_llm_isa_avx512(loom_llm_isa_t *t) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512vnni") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c"))
        return 0;
    t->name = "avx512";
    t->convert[LOOM_LLM_ACT_Q8X] = to_q8x;
    t->act[LOOM_GGML_Q8_0] = t->act[LOOM_GGML_Q4_0] = LOOM_LLM_ACT_Q8X;
    t->dot[LOOM_GGML_F32] = dot_f32_512;
    t->dot[LOOM_GGML_F16] = dot_f16_512;
    t->dot[LOOM_GGML_Q8_0] = dot_q8_512;
    t->dot[LOOM_GGML_Q4_0] = dot_q4_512;
    t->gemm[LOOM_GGML_F32] = t->gemm[LOOM_GGML_F16] = t->gemm[LOOM_GGML_BF16] = gemm_f;
    t->gemm[LOOM_GGML_Q8_0] = t->gemm[LOOM_GGML_Q4_0] = gemm_q;
    t->gemm_rows = RM;
    t->gemmt[LOOM_GGML_F32] = t->gemmt[LOOM_GGML_F16] = t->gemmt[LOOM_GGML_BF16] = gemm_t;
    t->gemmt_rows = TR;
    t->xt = xt_512;
    t->axpy = axpy_512;
    t->swiglu = swiglu_512;
    for (int i = 0; i < LOOM_LLM_NTYPES; i++) t->dot4[i] = NULL; /* the GEMM takes batches */
    if (__builtin_cpu_supports("avx512bf16")) {
        t->name = "avx512-bf16";
        t->convert[LOOM_LLM_ACT_BF16X2] = to_bf16x2;
        t->act[LOOM_GGML_BF16] = LOOM_LLM_ACT_BF16X2;
        t->dot[LOOM_GGML_BF16] = dot_bf16_512;
        t->gemm[LOOM_GGML_BF16] = gemm_bf16;
    }
    return 1;
}
#else
int loom_llm_isa_avx512(loom_llm_isa_t *t) {
    (void)t;
    return 0;
}
#endif
