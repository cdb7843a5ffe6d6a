/* llm_kernels.c — portable C kernels plus AVX2/FMA/F16C versions compiled
 * with function-level target attributes (no global -mavx2, so the binary
 * still runs on any x86-64) and picked at run time. */
#include "llm/cpu/llm_kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "llm/gguf.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

typedef float (*dot_fn)(const uint8_t *w, const void *x, int n);

static dot_fn dot_tab[31];
static const char *simd_name = "scalar";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return loom_fp16_to_fp32(h);
}

/* ---- portable ---- */
static float dot_f32_c(const uint8_t *w, const void *x, int n) {
    const float *a = (const float *)(const void *)w, *b = x;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) { s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]; }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}
static float dot_f16_c(const uint8_t *w, const void *x, int n) {
    const float *b = x;
    float s = 0;
    for (int i = 0; i < n; i++) s += h2f(w + 2 * i) * b[i];
    return s;
}
static float dot_bf16_c(const uint8_t *w, const void *x, int n) {
    const float *b = x;
    float s = 0;
    for (int i = 0; i < n; i++) { uint16_t h; memcpy(&h, w + 2 * i, 2); s += loom_bf16_to_fp32(h) * b[i]; }
    return s;
}
static float dot_q8_c(const uint8_t *w, const void *xv, int n) {
    const uint8_t *x = xv;
    float s = 0;
    for (int b = 0; b < n / 32; b++, w += 34, x += 34) {
        int acc = 0;
        for (int j = 0; j < 32; j++) acc += (int8_t)w[2 + j] * (int8_t)x[2 + j];
        s += (float)acc * h2f(w) * h2f(x);
    }
    return s;
}
static float dot_q4_c(const uint8_t *w, const void *xv, int n) {
    const uint8_t *x = xv;
    float s = 0;
    for (int b = 0; b < n / 32; b++, w += 18, x += 34) {
        int acc = 0;
        for (int j = 0; j < 16; j++) {
            acc += ((w[2 + j] & 15) - 8) * (int8_t)x[2 + j];
            acc += ((w[2 + j] >> 4) - 8) * (int8_t)x[2 + 16 + j];
        }
        s += (float)acc * h2f(w) * h2f(x);
    }
    return s;
}

/* ---- AVX2 / FMA / F16C ---- */
#ifdef HAVE_X86
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
#endif

/* 4 activations against one weight row: the row is loaded (and unpacked)
 * once per block for four tokens, which is what makes prefill matrix-matrix
 * work rather than four matrix-vector products. */
typedef void (*dot4_fn)(const uint8_t *w, const void *const x[4], int n, float out[4]);
static dot4_fn dot4_tab[31];

#ifdef HAVE_X86
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
#endif

static void init_once(void) {
    dot_tab[LOOM_GGML_F32] = dot_f32_c;
    dot_tab[LOOM_GGML_F16] = dot_f16_c;
    dot_tab[LOOM_GGML_BF16] = dot_bf16_c;
    dot_tab[LOOM_GGML_Q8_0] = dot_q8_c;
    dot_tab[LOOM_GGML_Q4_0] = dot_q4_c;
    const char *force = getenv("LOOM_LLM_SIMD");
    if (force && !strcmp(force, "scalar")) return;
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        dot_tab[LOOM_GGML_F32] = dot_f32_avx2;
        dot_tab[LOOM_GGML_F16] = dot_f16_avx2;
        dot_tab[LOOM_GGML_BF16] = dot_bf16_avx2;
        dot_tab[LOOM_GGML_Q8_0] = dot_q8_avx2;
        dot_tab[LOOM_GGML_Q4_0] = dot_q4_avx2;
        dot4_tab[LOOM_GGML_Q8_0] = dot4_q8_avx2;
        dot4_tab[LOOM_GGML_Q4_0] = dot4_q4_avx2;
        dot4_tab[LOOM_GGML_F16] = dot4_f16_avx2;
        simd_name = "avx2";
    }
#endif
}

void loom_llm_kernels_init(void) { pthread_once(&once, init_once); }
const char *loom_llm_simd_name(void) { loom_llm_kernels_init(); return simd_name; }

void loom_llm_quantize_q8(const float *x, void *dst, int n) {
    uint8_t *o = dst;
    for (int b = 0; b < n / 32; b++, o += 34) {
        const float *v = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0;
        uint16_t h = loom_fp32_to_fp16(d);
        memcpy(o, &h, 2);
        for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)roundf(v[j] * id);
    }
}

static int is_quant(int t) { return t == LOOM_GGML_Q8_0 || t == LOOM_GGML_Q4_0; }

float loom_llm_dot(int wtype, const void *wrow, const void *x, int n) {
    return dot_tab[wtype](wrow, x, n);
}

size_t loom_llm_matmul_scratch(const loom_llm_weight_t *W, int T) {
    return is_quant(W->type) ? (size_t)T * (size_t)(W->cols / 32) * 34 : 0;
}

typedef struct mm_part {
    const loom_llm_weight_t *W;
    const uint8_t *x;
    size_t xstride;
    float *Y;
    dot_fn dot;
    dot4_fn dot4;
    int chunk, first; /* rows per chunk, index of this matrix's first chunk */
} mm_part_t;

typedef struct mm_job {
    mm_part_t p[4];
    int n, T;
} mm_job_t;

static void mm_task(void *ctx, int c) {
    const mm_job_t *j = ctx;
    int k = 0;
    while (k + 1 < j->n && c >= j->p[k + 1].first) k++;
    const mm_part_t *m = &j->p[k];
    int r0 = (c - m->first) * m->chunk, r1 = r0 + m->chunk;
    if (r1 > m->W->rows) r1 = m->W->rows;
    const uint8_t *base = m->W->data;
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = base + (size_t)r * m->W->row_bytes;
        int t = 0;
        if (m->dot4)
            for (; t + 4 <= j->T; t += 4) {
                const void *x[4] = {m->x + (size_t)t * m->xstride, m->x + (size_t)(t + 1) * m->xstride,
                                    m->x + (size_t)(t + 2) * m->xstride, m->x + (size_t)(t + 3) * m->xstride};
                float o[4];
                m->dot4(w, x, m->W->cols, o);
                for (int q = 0; q < 4; q++) m->Y[(size_t)(t + q) * m->W->rows + r] = o[q];
            }
        for (; t < j->T; t++)
            m->Y[(size_t)t * m->W->rows + r] = m->dot(w, m->x + (size_t)t * m->xstride, m->W->cols);
    }
}

void loom_llm_matmul_n(loom_llm_pool_t *pool, const loom_llm_weight_t *const *W, int n, const float *X, int T,
                       float *const *Y, void *scratch) {
    loom_llm_kernels_init();
    mm_job_t j;
    j.n = n > 4 ? 4 : n;
    j.T = T;
    int cols = W[0]->cols, quantised = 0;
    size_t qrow = (size_t)(cols / 32) * 34;
    for (int i = 0; i < j.n; i++) quantised |= is_quant(W[i]->type);
    if (quantised) /* one Q8_0 copy of the activation serves every quantised matrix */
        for (int t = 0; t < T; t++) loom_llm_quantize_q8(X + (size_t)t * cols, (uint8_t *)scratch + t * qrow, cols);
    int nt = pool ? loom_llm_pool_size(pool) : 1, total = 0, all_rows = 0;
    for (int i = 0; i < j.n; i++) all_rows += W[i]->rows;
    for (int i = 0; i < j.n; i++) {
        mm_part_t *m = &j.p[i];
        int q = is_quant(W[i]->type);
        m->W = W[i];
        m->x = q ? scratch : (const uint8_t *)X;
        m->xstride = q ? qrow : (size_t)cols * 4;
        m->Y = Y[i];
        m->dot = dot_tab[W[i]->type];
        m->dot4 = T >= 4 ? dot4_tab[W[i]->type] : NULL;
        /* about 8 chunks per thread over all matrices, in proportion to rows */
        int chunks = (int)((long long)nt * 8 * W[i]->rows / all_rows);
        if (chunks < 1) chunks = 1;
        if (chunks > W[i]->rows) chunks = W[i]->rows;
        m->chunk = (W[i]->rows + chunks - 1) / chunks;
        m->first = total;
        total += (W[i]->rows + m->chunk - 1) / m->chunk;
    }
    if (pool) loom_llm_pool_run(pool, total, mm_task, &j);
    else for (int c = 0; c < total; c++) mm_task(&j, c);
}

void loom_llm_matmul(loom_llm_pool_t *pool, const loom_llm_weight_t *W, const float *X, int T, float *Y,
                     void *scratch) {
    const loom_llm_weight_t *ws[1] = {W};
    float *ys[1] = {Y};
    loom_llm_matmul_n(pool, ws, 1, X, T, ys, scratch);
}

void loom_llm_weight_row(const loom_llm_weight_t *W, int r, float *out) {
    loom_ggml_dequant_row(W->type, (const uint8_t *)W->data + (size_t)r * W->row_bytes, out, (size_t)W->cols);
}

void loom_llm_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float s = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) out[i] = x[i] * s * w[i];
}

void loom_llm_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    float s = (float)(1.0 / sqrt(v / n + eps));
    for (int i = 0; i < n; i++) out[i] = (float)(x[i] - m) * s * w[i] + b[i];
}

void loom_llm_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
    double s = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - mx); s += x[i]; }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

float loom_llm_dot_f32(const float *a, const float *b, int n) {
    loom_llm_kernels_init();
    return dot_tab[LOOM_GGML_F32]((const uint8_t *)(const void *)a, b, n);
}

void loom_llm_axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}
