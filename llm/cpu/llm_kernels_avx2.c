/* llm_kernels_avx2.c — AVX2 + FMA + F16C kernels (x86-64), compiled with
 * function-level target attributes so the rest of the build stays generic;
 * llm_kernels.c calls loom_llm_isa_avx2() to install them when the CPU has
 * these features. Quantised types take Q8_0 activations (as ggml). */
#include <string.h>

#include "llm/gguf.h"
#include "llm/cpu/llm_kernels_isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return loom_fp16_to_fp32(h);
}

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
AVX2 static float dot_f32_avx2(const uint8_t *w, const void *x, int n) {
    const float *a = (const float *)(const void *)w, *b = x;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
AVX2 static float dot_f16_avx2(const uint8_t *w, const void *x, int n) {
    const float *b = x;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i)));
        __m256 a1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i + 16)));
        s0 = _mm256_fmadd_ps(a0, _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(a1, _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += h2f(w + 2 * i) * b[i];
    return s;
}
AVX2 static float dot_bf16_avx2(const uint8_t *w, const void *x, int n) {
    const float *b = x;
    __m256 s0 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i)));
        s0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(u, 16)), _mm256_loadu_ps(b + i), s0);
    }
    float s = hsum8(s0);
    for (; i < n; i++) { uint16_t h; memcpy(&h, w + 2 * i, 2); s += loom_bf16_to_fp32(h) * b[i]; }
    return s;
}
AVX2 static inline __m256 q8dot_block(__m256i qw, const uint8_t *x, float d, __m256 acc) {
    __m256i qx = _mm256_loadu_si256((const __m256i *)(const void *)(x + 2));
    __m256i ax = _mm256_sign_epi8(qw, qw);
    __m256i sy = _mm256_sign_epi8(qx, qw);
    __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p32), acc);
}
AVX2 static inline float h2f_avx(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}
AVX2 static float dot_q8_avx2(const uint8_t *w, const void *xv, int n) {
    const uint8_t *x = xv;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / 32; b++, w += 34, x += 34) {
        __m256i qw = _mm256_loadu_si256((const __m256i *)(const void *)(w + 2));
        acc = q8dot_block(qw, x, h2f_avx(w) * h2f_avx(x), acc);
    }
    return hsum8(acc);
}
AVX2 static float dot_q4_avx2(const uint8_t *w, const void *xv, int n) {
    const uint8_t *x = xv;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), off = _mm256_set1_epi8(8);
    for (int b = 0; b < n / 32; b++, w += 18, x += 34) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
        __m256i q = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
        q = _mm256_sub_epi8(_mm256_and_si256(q, m4), off);
        acc = q8dot_block(q, x, h2f_avx(w) * h2f_avx(x), acc);
    }
    return hsum8(acc);
}
/* 4 activations against one weight row: the row is loaded (and unpacked)
 * once per block for four tokens. */
AVX2 static void dot4_q8_avx2(const uint8_t *w, const void *const xv[4], int n, float out[4]) {
    const uint8_t *x0 = xv[0], *x1 = xv[1], *x2 = xv[2], *x3 = xv[3];
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < n / 32; b++, w += 34) {
        __m256i qw = _mm256_loadu_si256((const __m256i *)(const void *)(w + 2));
        float dw = h2f_avx(w);
        size_t o = (size_t)b * 34;
        a0 = q8dot_block(qw, x0 + o, dw * h2f_avx(x0 + o), a0);
        a1 = q8dot_block(qw, x1 + o, dw * h2f_avx(x1 + o), a1);
        a2 = q8dot_block(qw, x2 + o, dw * h2f_avx(x2 + o), a2);
        a3 = q8dot_block(qw, x3 + o, dw * h2f_avx(x3 + o), a3);
    }
    out[0] = hsum8(a0); out[1] = hsum8(a1); out[2] = hsum8(a2); out[3] = hsum8(a3);
}
AVX2 static void dot4_q4_avx2(const uint8_t *w, const void *const xv[4], int n, float out[4]) {
    const uint8_t *x0 = xv[0], *x1 = xv[1], *x2 = xv[2], *x3 = xv[3];
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const __m256i m4 = _mm256_set1_epi8(0x0f), off = _mm256_set1_epi8(8);
    for (int b = 0; b < n / 32; b++, w += 18) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)(w + 2));
        __m256i q = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), m4), off);
        float dw = h2f_avx(w);
        size_t o = (size_t)b * 34;
        a0 = q8dot_block(q, x0 + o, dw * h2f_avx(x0 + o), a0);
        a1 = q8dot_block(q, x1 + o, dw * h2f_avx(x1 + o), a1);
        a2 = q8dot_block(q, x2 + o, dw * h2f_avx(x2 + o), a2);
        a3 = q8dot_block(q, x3 + o, dw * h2f_avx(x3 + o), a3);
    }
    out[0] = hsum8(a0); out[1] = hsum8(a1); out[2] = hsum8(a2); out[3] = hsum8(a3);
}
AVX2 static void dot4_f16_avx2(const uint8_t *w, const void *const xv[4], int n, float out[4]) {
    const float *x0 = xv[0], *x1 = xv[1], *x2 = xv[2], *x3 = xv[3];
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i)));
        a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x0 + i), a0);
        a1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), a1);
        a2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x2 + i), a2);
        a3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x3 + i), a3);
    }
    out[0] = hsum8(a0); out[1] = hsum8(a1); out[2] = hsum8(a2); out[3] = hsum8(a3);
    for (; i < n; i++) {
        float wf = h2f(w + 2 * i);
        out[0] += wf * x0[i]; out[1] += wf * x1[i]; out[2] += wf * x2[i]; out[3] += wf * x3[i];
    }
}

int loom_llm_isa_avx2(loom_llm_isa_t *t) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("f16c"))
        return 0;
    t->name = "avx2";
    t->dot[LOOM_GGML_F32] = dot_f32_avx2;
    t->dot[LOOM_GGML_F16] = dot_f16_avx2;
    t->dot[LOOM_GGML_BF16] = dot_bf16_avx2;
    t->dot[LOOM_GGML_Q8_0] = dot_q8_avx2;
    t->dot[LOOM_GGML_Q4_0] = dot_q4_avx2;
    t->dot4[LOOM_GGML_Q8_0] = dot4_q8_avx2;
    t->dot4[LOOM_GGML_Q4_0] = dot4_q4_avx2;
    t->dot4[LOOM_GGML_F16] = dot4_f16_avx2;
    return 1;
}
#else
int loom_llm_isa_avx2(loom_llm_isa_t *t) {
    (void)t;
    return 0;
}
#endif
