/* test_llm_kernels.c — every SIMD level's matrix products against the
 * portable (scalar) kernels, for every weight type, on shapes that exercise
 * the edges: row counts that are not a multiple of the GEMM panel, an odd
 * number of 32-value blocks, token counts 1..7 (decode, the dot-product
 * fall-back, every micro-kernel width), 16..130 (the float GEMM over
 * 16-token vectors: whole and partial groups, more than one block) and
 * batches over several token blocks (by count, and by bytes on long rows);
 * one and two threads. A level this CPU lacks is reported and skipped, not
 * passed silently. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "llm/gguf.h"
#include "llm/cpu/llm_kernels.h"

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Weight rows of type ty encoded from floats (ggml block layouts). */
static size_t row_bytes(int ty, int cols) {
    switch (ty) {
    case LOOM_GGML_F32: return (size_t)cols * 4;
    case LOOM_GGML_F16: case LOOM_GGML_BF16: return (size_t)cols * 2;
    case LOOM_GGML_Q8_0: return (size_t)cols / 32 * 34;
    default: return (size_t)cols / 32 * 18; /* Q4_0 */
    }
}

static void encode_row(int ty, const float *v, int cols, uint8_t *o) {
    if (ty == LOOM_GGML_F32) { memcpy(o, v, (size_t)cols * 4); return; }
    if (ty == LOOM_GGML_Q8_0) { loom_llm_quantize_q8(v, o, cols); return; }
    for (int i = 0; i < cols && ty != LOOM_GGML_Q4_0; i++) {
        uint16_t h;
        if (ty == LOOM_GGML_F16) h = loom_fp32_to_fp16(v[i]);
        else { uint32_t u; memcpy(&u, &v[i], 4); h = (uint16_t)(u >> 16); }
        memcpy(o + 2 * i, &h, 2);
    }
    if (ty != LOOM_GGML_Q4_0) return;
    for (int b = 0; b < cols / 32; b++, o += 18) {
        const float *x = v + b * 32;
        float mx = 0;
        for (int j = 0; j < 32; j++) if (fabsf(x[j]) > fabsf(mx)) mx = x[j];
        float d = mx / -8.0f, id = d ? 1.0f / d : 0;
        uint16_t h = loom_fp32_to_fp16(d);
        memcpy(o, &h, 2);
        for (int j = 0; j < 16; j++) {
            int a = (int)(x[j] * id + 8.5f), c = (int)(x[16 + j] * id + 8.5f);
            a = a > 15 ? 15 : a < 0 ? 0 : a; c = c > 15 ? 15 : c < 0 ? 0 : c;
            o[2 + j] = (uint8_t)(a | c << 4);
        }
    }
}

static void check_level(const char *level, int ty, int rows, int cols, int T, loom_llm_pool_t *pool) {
    loom_llm_weight_t W = {ty, rows, cols, row_bytes(ty, cols), NULL};
    uint8_t *wd = malloc(W.row_bytes * rows);
    float *v = malloc((size_t)cols * 4), *X = malloc((size_t)T * cols * 4);
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < cols; i++) v[i] = frand();
        encode_row(ty, v, cols, wd + W.row_bytes * r);
    }
    for (int i = 0; i < T * cols; i++) X[i] = frand() * (i % 7 == 0 ? 4.0f : 1.0f);
    W.data = wd;
    void *scratch = malloc(loom_llm_matmul_scratch(cols, T));
    float *want = malloc((size_t)T * rows * 4), *got = malloc((size_t)T * rows * 4);
    assert_int_equal(loom_llm_kernels_select("scalar"), 0);
    loom_llm_matmul(pool, &W, X, T, want, scratch);
    assert_int_equal(loom_llm_kernels_select(level), 0);
    loom_llm_matmul(pool, &W, X, T, got, scratch);
    /* Float sums in another order (relative to the sum of |w x| terms);
     * the BF16X2 activation of AVX-512 BF16 keeps ~16 bits. Quantised
     * types: every level must quantise the activation to the very same
     * Q8_0 values (one value off by one step would exceed 1e-6 here). */
    float *wr = malloc((size_t)cols * 4);
    double tol = ty == LOOM_GGML_BF16 ? 5e-5 : ty == LOOM_GGML_Q8_0 || ty == LOOM_GGML_Q4_0 ? 1e-6 : 2e-5;
    for (int r = 0; r < rows; r++) {
        loom_llm_weight_row(&W, r, wr);
        for (int t = 0; t < T; t++) {
            double mag = 0;
            for (int i = 0; i < cols; i++) mag += fabs((double)wr[i] * X[(size_t)t * cols + i]);
            double err = fabs((double)got[(size_t)t * rows + r] - want[(size_t)t * rows + r]);
            if (!(err <= tol * mag + 1e-6)) {
                fail_msg("%s %s rows %d cols %d T %d: Y[%d][%d] = %g, scalar %g (|err| %g > %g)", level,
                         loom_ggml_type_name(ty), rows, cols, T, t, r, got[(size_t)t * rows + r],
                         want[(size_t)t * rows + r], err, tol * mag);
            }
        }
    }
    free(wr); free(wd); free(v); free(X); free(scratch); free(want); free(got);
}

static void test_levels(void **st) {
    (void)st;
    static const char *levels[] = {"avx2", "avx512"};
    static const int types[] = {LOOM_GGML_F32, LOOM_GGML_F16, LOOM_GGML_BF16, LOOM_GGML_Q8_0, LOOM_GGML_Q4_0};
    /* 8192 columns: a block holds fewer tokens than the batch (the L2 cap),
     * 130 tokens: more than one block of the most tokens */
    static const int shapes[][2] = {{37, 96}, {8, 64}, {67, 2080}, {9, 8192}};
    static const int tokens[] = {1, 2, 3, 4, 5, 6, 7, 16, 37, 64, 130};
    loom_llm_pool_t *pools[2] = {loom_llm_pool_new(1), loom_llm_pool_new(2)};
    int ran = 0;
    for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
        if (loom_llm_kernels_select(levels[l])) {
            printf("level %s: not on this CPU, skipped\n", levels[l]);
            continue;
        }
        printf("level %s (%s)\n", levels[l], loom_llm_simd_name());
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (size_t k = 0; k < sizeof tokens / sizeof *tokens; k++)
                    check_level(levels[l], types[ti], shapes[s][0], shapes[s][1], tokens[k], pools[k & 1]);
        ran++;
    }
    loom_llm_pool_destroy(&pools[0]);
    loom_llm_pool_destroy(&pools[1]);
    assert_int_equal(loom_llm_kernels_select("no-such-level"), -1);
    if (!ran) printf("no SIMD level on this CPU: only the portable kernels run\n");
}

/* The element-wise steps (SwiGLU with its vector exp, axpy) of every level
 * against the portable ones, over values from -100 to 100 (exp clamps and
 * underflows) and lengths with a tail. */
static void test_elementwise(void **st) {
    (void)st;
    static const char *levels[] = {"avx2", "avx512"};
    enum { N = 1000 + 13 };
    static float g0[N], u[N], want[N], got[N], y0[N], x[N];
    for (int i = 0; i < N; i++) {
        g0[i] = i < 200 ? (float)(i - 100) : frand() * 12.0f;
        u[i] = frand() * 3.0f;
        y0[i] = frand();
        x[i] = frand();
    }
    for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
        if (loom_llm_kernels_select(levels[l])) continue;
        for (int n = N - 7; n <= N; n += 7) {
            assert_int_equal(loom_llm_kernels_select("scalar"), 0);
            memcpy(want, g0, sizeof g0);
            loom_llm_swiglu(want, u, n);
            assert_int_equal(loom_llm_kernels_select(levels[l]), 0);
            memcpy(got, g0, sizeof g0);
            loom_llm_swiglu(got, u, n);
            for (int i = 0; i < N; i++)
                if (!(fabsf(got[i] - want[i]) <= 1e-6f * fabsf(want[i]) + 1e-30f))
                    fail_msg("%s swiglu n %d [%d] (g %g): %g, scalar %g", levels[l], n, i, g0[i], got[i], want[i]);
            assert_int_equal(loom_llm_kernels_select("scalar"), 0);
            memcpy(want, y0, sizeof y0);
            loom_llm_axpy(want, 0.37f, x, n);
            assert_int_equal(loom_llm_kernels_select(levels[l]), 0);
            memcpy(got, y0, sizeof y0);
            loom_llm_axpy(got, 0.37f, x, n);
            for (int i = 0; i < N; i++)
                if (!(fabsf(got[i] - want[i]) <= 1e-6f * (fabsf(want[i]) + 1.0f)))
                    fail_msg("%s axpy n %d [%d]: %g, scalar %g", levels[l], n, i, got[i], want[i]);
        }
    }
}

/* The Q8_0 activation quantiser keeps each block within its scale. */
static void test_quantize(void **st) {
    (void)st;
    float x[64];
    uint8_t q[68];
    for (int i = 0; i < 64; i++) x[i] = i < 32 ? frand() * 3 : 0;
    loom_llm_quantize_q8(x, q, 64);
    uint16_t h;
    memcpy(&h, q, 2);
    float d = loom_fp16_to_fp32(h);
    for (int j = 0; j < 32; j++) assert_true(fabsf((int8_t)q[2 + j] * d - x[j]) <= d * 0.51f + 1e-3f);
    memcpy(&h, q + 34, 2);
    assert_true(loom_fp16_to_fp32(h) == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels), cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_quantize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
