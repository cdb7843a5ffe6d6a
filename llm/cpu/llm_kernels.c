/* llm_kernels.c — the portable C kernels (the reference every SIMD level is
 * tested against), the choice of level at run time, and the threaded matrix
 * products that drive whichever level is chosen. The SIMD kernels live in
 * one file per instruction set (llm_kernels_avx2.c, llm_kernels_avx512.c). */
#include "llm/cpu/llm_kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "llm/gguf.h"
#include "llm/cpu/llm_kernels_isa.h"

static loom_llm_isa_t isa;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return loom_fp16_to_fp32(h);
}
static inline float bf2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return loom_bf16_to_fp32(h);
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
    for (int i = 0; i < n; i++) s += bf2f(w + 2 * i) * b[i];
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

/* 16 x 16 blocks at a time, so both sides stay in L1. */
static void xt_c(const float *X, float *xt, int T, int K, int g) {
    int n = T - 16 * g < 16 ? T - 16 * g : 16;
    float *o = xt + (size_t)g * K * 16;
    const float *x = X + (size_t)g * 16 * K;
    for (int k0 = 0; k0 < K; k0 += 16) {
        int kn = K - k0 < 16 ? K - k0 : 16;
        for (int l = 0; l < 16; l++)
            for (int k = 0; k < kn; k++) o[(size_t)(k0 + k) * 16 + l] = l < n ? x[(size_t)l * K + k0 + k] : 0.0f;
    }
}
static void axpy_c(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}
static void swiglu_c(float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

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

size_t loom_llm_act_bytes(int kind, int n) {
    switch (kind) {
    case LOOM_LLM_ACT_Q8_0: return (size_t)(n / 32) * 34;
    case LOOM_LLM_ACT_Q8X: return (size_t)((n / 32 + 1) / 2) * 128;
    default: return (size_t)n * 4;
    }
}

static void fill_scalar(loom_llm_isa_t *t) {
    memset(t, 0, sizeof *t);
    t->name = "scalar";
    t->dot[LOOM_GGML_F32] = dot_f32_c;
    t->dot[LOOM_GGML_F16] = dot_f16_c;
    t->dot[LOOM_GGML_BF16] = dot_bf16_c;
    t->dot[LOOM_GGML_Q8_0] = dot_q8_c;
    t->dot[LOOM_GGML_Q4_0] = dot_q4_c;
    t->act[LOOM_GGML_Q8_0] = t->act[LOOM_GGML_Q4_0] = LOOM_LLM_ACT_Q8_0;
    t->convert[LOOM_LLM_ACT_Q8_0] = loom_llm_quantize_q8;
    t->gemm_rows = 1;
    t->xt = xt_c;
    t->axpy = axpy_c;
    t->swiglu = swiglu_c;
}

/* Levels from the lowest; "auto" or NULL: the best this CPU runs. */
static int build(loom_llm_isa_t *t, const char *want) {
    fill_scalar(t);
    if (want && !strcmp(want, "scalar")) return 0;
    int have = loom_llm_isa_avx2(t);
    if (want && !strcmp(want, "avx2")) return have ? 0 : -1;
    int have512 = have && loom_llm_isa_avx512(t);
    if (want && !strcmp(want, "avx512")) return have512 ? 0 : -1;
    return want ? -1 : 0; /* an unknown name */
}

static void init_once(void) {
    const char *force = getenv("LOOM_LLM_SIMD");
    if (force && (!strcmp(force, "auto") || !*force)) force = NULL;
    /* a level the CPU lacks (or an unknown name) falls back to the best one */
    if (build(&isa, force)) build(&isa, NULL);
}

void loom_llm_kernels_init(void) { pthread_once(&once, init_once); }
const char *loom_llm_simd_name(void) { loom_llm_kernels_init(); return isa.name; }

int loom_llm_kernels_select(const char *level) {
    loom_llm_kernels_init();
    loom_llm_isa_t t;
    if (!level || build(&t, level)) return -1;
    isa = t;
    return 0;
}

/* The buffer is also a thread-specific value whose destructor frees it
 * when a pool thread exits (a bare _Thread_local pointer leaked it: make
 * asan's LeakSanitizer). */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_key_init(void) { pthread_key_create(&scratch_key, free); }

void *loom_llm_thread_scratch(size_t bytes) {
    static _Thread_local void *buf;
    static _Thread_local size_t cap;
    if (bytes > cap) {
        size_t want = bytes > 2 * cap ? bytes : 2 * cap;
        void *p = aligned_alloc(64, (want + 63) & ~(size_t)63);
        if (!p) return NULL;
        pthread_once(&scratch_once, scratch_key_init);
        free(buf);
        buf = p;
        cap = want;
        pthread_setspecific(scratch_key, buf);
    }
    return buf;
}

/* The converted activations: up to three forms at once (a quantised one,
 * BF16X2 and the transposed floats of gemmt) when one call mixes weight
 * types. */
size_t loom_llm_matmul_scratch(int cols, int T) {
    return (size_t)T * (loom_llm_act_bytes(LOOM_LLM_ACT_Q8X, cols) + loom_llm_act_bytes(LOOM_LLM_ACT_BF16X2, cols)) +
           (size_t)(T + 15) / 16 * 16 * (size_t)cols * 4 + 192;
}

typedef struct mm_part {
    const loom_llm_weight_t *W;
    const uint8_t *x;
    size_t xstride;
    float *Y;
    loom_llm_dot_fn dot;
    loom_llm_dot4_fn dot4;
    loom_llm_gemm_fn gemm;
    loom_llm_gemmt_fn gemmt;
    const float *xt;
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
    if (m->gemmt) {
        m->gemmt(m->W, r0, r1, m->xt, j->T, m->Y, (size_t)m->W->rows);
        return;
    }
    if (m->gemm) {
        m->gemm(m->W, r0, r1, m->x, m->xstride, j->T, m->Y, (size_t)m->W->rows);
        return;
    }
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

typedef struct act_job {
    loom_llm_act_fn fn;
    const float *X;
    uint8_t *dst;
    int cols;
    size_t stride;
} act_job_t;

static void act_task(void *ctx, int t) {
    const act_job_t *a = ctx;
    a->fn(a->X + (size_t)t * a->cols, a->dst + (size_t)t * a->stride, a->cols);
}

typedef struct xt_job {
    const float *X;
    float *xt;
    int T, cols;
} xt_job_t;

static void xt_task(void *ctx, int g) {
    const xt_job_t *a = ctx;
    isa.xt(a->X, a->xt, a->T, a->cols, g);
}

void loom_llm_matmul_n(loom_llm_pool_t *pool, const loom_llm_weight_t *const *W, int n, const float *X, int T,
                       float *const *Y, void *scratch) {
    loom_llm_kernels_init();
    mm_job_t j;
    j.n = n > 4 ? 4 : n;
    j.T = T;
    int cols = W[0]->cols;
    /* batches of 16 tokens or more go to gemmt where the level has one */
    int use_t[4] = {0};
    for (int i = 0; i < j.n; i++) use_t[i] = T >= 16 && cols % 32 == 0 && isa.gemmt[W[i]->type];
    /* each activation form the matrices need, made once (in parallel over
     * the tokens) into its own 64-byte aligned region of scratch */
    const uint8_t *xk[LOOM_LLM_ACT_KINDS] = {(const uint8_t *)X};
    size_t xs[LOOM_LLM_ACT_KINDS] = {(size_t)cols * 4};
    uint8_t *free_at = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    const float *xt = NULL;
    for (int i = 0; i < j.n; i++) {
        if (use_t[i]) {
            if (xt) continue;
            xt_job_t a = {X, (float *)(void *)free_at, T, cols};
            if (pool) loom_llm_pool_run(pool, (T + 15) / 16, xt_task, &a);
            else for (int g = 0; g < (T + 15) / 16; g++) xt_task(&a, g);
            xt = a.xt;
            free_at += (size_t)(T + 15) / 16 * 16 * (size_t)cols * 4;
            continue;
        }
        int k = isa.act[W[i]->type];
        if (xk[k]) continue;
        xs[k] = loom_llm_act_bytes(k, cols);
        act_job_t a = {isa.convert[k], X, free_at, cols, xs[k]};
        if (pool && T > 1) loom_llm_pool_run(pool, T, act_task, &a);
        else for (int t = 0; t < T; t++) act_task(&a, t);
        xk[k] = free_at;
        free_at += ((size_t)T * xs[k] + 63) & ~(size_t)63;
    }
    int nt = pool ? loom_llm_pool_size(pool) : 1, total = 0, all_rows = 0;
    for (int i = 0; i < j.n; i++) all_rows += W[i]->rows;
    for (int i = 0; i < j.n; i++) {
        mm_part_t *m = &j.p[i];
        int ty = W[i]->type, k = isa.act[ty];
        m->W = W[i];
        m->x = xk[k];
        m->xstride = xs[k];
        m->Y = Y[i];
        m->dot = isa.dot[ty];
        m->dot4 = T >= 4 ? isa.dot4[ty] : NULL;
        m->gemmt = use_t[i] ? isa.gemmt[ty] : NULL;
        m->xt = xt;
        m->gemm = T >= 4 && cols % 32 == 0 && !m->gemmt ? isa.gemm[ty] : NULL;
        int unit = m->gemmt ? isa.gemmt_rows : m->gemm ? isa.gemm_rows : 1;
        /* about 16 chunks per thread over all matrices, in proportion to
         * rows: the thread that takes the last chunk finishes at most 1/32
         * of the work after the other */
        int chunks = (int)((long long)nt * 16 * W[i]->rows / all_rows);
        if (chunks < 1) chunks = 1;
        if (chunks > W[i]->rows) chunks = W[i]->rows;
        m->chunk = (W[i]->rows + chunks - 1) / chunks;
        m->chunk = (m->chunk + unit - 1) / unit * unit;
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
    return isa.dot[LOOM_GGML_F32]((const uint8_t *)(const void *)a, b, n);
}

void loom_llm_axpy(float *y, float a, const float *x, int n) {
    loom_llm_kernels_init();
    isa.axpy(y, a, x, n);
}

void loom_llm_swiglu(float *g, const float *u, int n) {
    loom_llm_kernels_init();
    isa.swiglu(g, u, n);
}
