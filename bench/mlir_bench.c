/* mlir_bench.c — `make bench-mlir`: the MLIR lowering's speed.
 *   1. lowering + partitioning a 100-step workflow (emit, decompose-llm,
 *      annotate-targets, partition-devices, verify): cold (first in the
 *      process, context creation shown apart) and warm (median);
 *      target < 200 ms cold;
 *   2. kernel compile: cold (CPU and GPU PTX) vs cached (memory, disk);
 *      target < 1 ms cached; peer: SHA-256 of the same IR alone (the
 *      floor of any content-addressed lookup);
 *   3. the JIT-compiled matmul (256^3, 512^3, one thread) vs the same loop
 *      in C at gcc -O2 in two loop orders (i-j-k: a scalar dot per output;
 *      i-k-j: the order gcc vectorises; i-k-j again at -O3 -march=native,
 *      mlir_bench_native.c) and OpenBLAS single-threaded (the kernel it
 *      picks for the CPU, see main; its name is printed)
 *      sgemm, GFLOP/s, rounds alternating, medians and ranges; the JIT's
 *      output is checked against OpenBLAS's;
 *   4. row-wise softmax (the built-in kernel) and layer norm (the kernel of
 *      examples/kernels/layernorm.mlir at a larger shape) vs the same
 *      algorithm in C at gcc -O2, one thread, rounds alternating, outputs
 *      compared within 1e-5;
 *   5. on a GPU: not measured here (no GPU runner in this process; the PTX
 *      is only assembled by the tests), said so in the output. */
#include "common/clock.h"
#include "common/sha.h"
#include "mlir-lowering/artifact.h"
#include "mlir-lowering/lower.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* OpenBLAS's own thread-count setter (declared by its cblas.h on Debian). */
void openblas_set_num_threads(int n);

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

/* C peers, compiled with the bench's -O2. */
static void c_ijk(const float *A, const float *B, float *C, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0;
            for (int k = 0; k < n; k++)
                acc += A[i * n + k] * B[k * n + j];
            C[i * n + j] = acc;
        }
}

static void c_ikj(const float *A, const float *B, float *C, int n)
{
    memset(C, 0, sizeof(float) * (size_t)n * n);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            float a = A[i * n + k];
            for (int j = 0; j < n; j++)
                C[i * n + j] += a * B[k * n + j];
        }
}

/* The same i-k-j loop built with -O3 -march=native (mlir_bench_native.c). */
void c_ikj_native(const float *A, const float *B, float *C, int n);

#define ROUNDS 7
static void bench_matmul(loom_artifact_cache_t *c, int n)
{
    loom_err_t err = {0};
    loom_kernel_sig_t sig;
    loom_buf_t src = LOOM_BUF_INIT;
    const loom_artifact_t *a;
    loom_jit_t *j;
    int hit;
    loom_kernel_spec_t spec = {.kind = LOOM_KERNEL_MATMUL, .m = n, .n = n, .k = n};
    if (loom_kernel_source(&spec, 0, &src, &sig, &err) ||
        loom_artifact_compile(c, src.data, src.len, "matmul", LOOM_TARGET_CPU, NULL, &sig, &a, &hit, &err) ||
        loom_artifact_jit(c, a, &j, &err)) {
        fprintf(stderr, "matmul %d: %s\n", n, err.msg);
        exit(1);
    }
    size_t nn = (size_t)n * n;
    float *A = malloc(nn * 4), *B = malloc(nn * 4), *C = malloc(nn * 4), *R = malloc(nn * 4);
    for (size_t i = 0; i < nn; i++)
        A[i] = (float)(i % 7) - 3, B[i] = (float)(i % 5) - 2;
    openblas_set_num_threads(1);
    void *bufs[] = {A, B, C};
    double t[5][ROUNDS]; /* JIT, OpenBLAS, C i-k-j, C i-j-k, C i-k-j -O3 -march=native */
    loom_jit_call(j, &sig, bufs, &err); /* warm-up: first-touch of code and data */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, R, n);
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t t0 = loom_clock_ns();
        loom_jit_call(j, &sig, bufs, &err);
        t[0][r] = (double)(loom_clock_ns() - t0) / 1e9;
        t0 = loom_clock_ns();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, R, n);
        t[1][r] = (double)(loom_clock_ns() - t0) / 1e9;
        if (r < 3) { /* the C loops are slow at 512^3: three rounds */
            t0 = loom_clock_ns();
            c_ikj(A, B, R, n);
            t[2][r] = (double)(loom_clock_ns() - t0) / 1e9;
            t0 = loom_clock_ns();
            c_ijk(A, B, R, n);
            t[3][r] = (double)(loom_clock_ns() - t0) / 1e9;
            t0 = loom_clock_ns();
            c_ikj_native(A, B, R, n);
            t[4][r] = (double)(loom_clock_ns() - t0) / 1e9;
        }
    }
    /* Small integers: every product and sum is exact in float. */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, R, n);
    size_t bad = 0;
    for (size_t i = 0; i < nn; i++)
        bad += C[i] != R[i];
    double flops = 2.0 * n * n * n, g[5], lo[5], hi[5];
    for (int s = 0; s < 5; s++) {
        int k = s < 2 ? ROUNDS : 3;
        g[s] = flops / median(t[s], k) / 1e9;
        lo[s] = flops / t[s][k - 1] / 1e9, hi[s] = flops / t[s][0] / 1e9; /* sorted by median() */
    }
    printf("JIT code: matmul %d^3 f32 on one thread (GFLOP/s, median [range])%s\n", n,
           bad ? "  RESULT MISMATCH" : "");
    printf("  MLIR JIT (tiled, vectorised)                %8.2f [%.2f-%.2f]\n", g[0], lo[0], hi[0]);
    printf("  peer: C i-k-j loop, gcc -O2 (vectorised)    %8.2f [%.2f-%.2f]   JIT = %.2fx\n", g[2], lo[2],
           hi[2], g[0] / g[2]);
    printf("  peer: C i-j-k loop, gcc -O2                 %8.2f [%.2f-%.2f]   JIT = %.2fx\n", g[3], lo[3],
           hi[3], g[0] / g[3]);
    printf("  peer: C i-k-j loop, gcc -O3 -march=native   %8.2f [%.2f-%.2f]   JIT = %.2fx\n", g[4], lo[4],
           hi[4], g[0] / g[4]);
    printf("  peer: OpenBLAS sgemm, 1 thread (%-10s) %8.2f [%.2f-%.2f]   JIT = %.2fx\n", openblas_get_corename(),
           g[1], lo[1], hi[1], g[0] / g[1]);
    if (bad)
        fprintf(stderr, "matmul %d: %zu of %zu outputs differ from OpenBLAS\n", n, bad, nn);
    free(A), free(B), free(C), free(R);
    loom_buf_free(&src);
}

/* ---- reductions: softmax and layer norm vs C ---------------------------- */

static void c_softmax(const float *x, float *y, int m, int n)
{
    for (int i = 0; i < m; i++) {
        const float *r = x + (size_t)i * n;
        float *o = y + (size_t)i * n, mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++)
            mx = r[j] > mx ? r[j] : mx;
        for (int j = 0; j < n; j++)
            sum += o[j] = expf(r[j] - mx);
        for (int j = 0; j < n; j++)
            o[j] /= sum;
    }
}

static void c_layernorm(const float *x, const float *w, const float *b, float *y, int m, int n)
{
    for (int i = 0; i < m; i++) {
        const float *r = x + (size_t)i * n;
        float sum = 0, sq = 0;
        for (int j = 0; j < n; j++)
            sum += r[j];
        float mean = sum / (float)n;
        for (int j = 0; j < n; j++)
            sq += (r[j] - mean) * (r[j] - mean);
        float inv = 1.0f / sqrtf(sq / (float)n + 1e-5f);
        for (int j = 0; j < n; j++)
            y[(size_t)i * n + j] = (r[j] - mean) * inv * w[j] + b[j];
    }
}

/* examples/kernels/layernorm.mlir with the shape as parameters. */
static void layernorm_source(loom_buf_t *b, int m, int n)
{
    loom_buf_printf(b,
        "#row = affine_map<(i, j) -> (i)>\n#col = affine_map<(i, j) -> (j)>\n"
        "#all = affine_map<(i, j) -> (i, j)>\n"
        "func.func @layernorm(%%x: memref<%dx%dxf32>, %%w: memref<%dxf32>, %%b: memref<%dxf32>,\n"
        "                     %%y: memref<%dx%dxf32>) {\n"
        "  %%zero = arith.constant 0.0 : f32\n"
        "  %%sum = memref.alloca() : memref<%dxf32>\n"
        "  %%sq = memref.alloca() : memref<%dxf32>\n"
        "  linalg.fill ins(%%zero : f32) outs(%%sum : memref<%dxf32>)\n"
        "  linalg.fill ins(%%zero : f32) outs(%%sq : memref<%dxf32>)\n"
        "  linalg.generic {indexing_maps = [#all, #row], iterator_types = [\"parallel\", \"reduction\"]}\n"
        "      ins(%%x : memref<%dx%dxf32>) outs(%%sum : memref<%dxf32>) {\n"
        "    ^bb0(%%v: f32, %%acc: f32):\n"
        "      %%r = arith.addf %%acc, %%v : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n"
        "  linalg.generic {indexing_maps = [#all, #row, #row], iterator_types = [\"parallel\", \"reduction\"]}\n"
        "      ins(%%x, %%sum : memref<%dx%dxf32>, memref<%dxf32>) outs(%%sq : memref<%dxf32>) {\n"
        "    ^bb0(%%v: f32, %%s: f32, %%acc: f32):\n"
        "      %%n = arith.constant %d.0 : f32\n"
        "      %%mean = arith.divf %%s, %%n : f32\n"
        "      %%d = arith.subf %%v, %%mean : f32\n"
        "      %%d2 = arith.mulf %%d, %%d : f32\n"
        "      %%r = arith.addf %%acc, %%d2 : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n"
        "  linalg.generic {indexing_maps = [#all, #row, #row, #col, #col, #all],\n"
        "                  iterator_types = [\"parallel\", \"parallel\"]}\n"
        "      ins(%%x, %%sum, %%sq, %%w, %%b : memref<%dx%dxf32>, memref<%dxf32>, memref<%dxf32>,"
        " memref<%dxf32>, memref<%dxf32>)\n"
        "      outs(%%y : memref<%dx%dxf32>) {\n"
        "    ^bb0(%%v: f32, %%s: f32, %%q: f32, %%wt: f32, %%bs: f32, %%o: f32):\n"
        "      %%n = arith.constant %d.0 : f32\n"
        "      %%eps = arith.constant 1.0e-5 : f32\n"
        "      %%mean = arith.divf %%s, %%n : f32\n"
        "      %%var = arith.divf %%q, %%n : f32\n"
        "      %%t = arith.addf %%var, %%eps : f32\n"
        "      %%inv = math.rsqrt %%t : f32\n"
        "      %%d = arith.subf %%v, %%mean : f32\n"
        "      %%xn = arith.mulf %%d, %%inv : f32\n"
        "      %%sc = arith.mulf %%xn, %%wt : f32\n"
        "      %%r = arith.addf %%sc, %%bs : f32\n"
        "      linalg.yield %%r : f32\n"
        "  }\n"
        "  return\n}\n",
        m, n, n, n, m, n, m, m, m, m, m, n, m, m, n, m, m, n, m, n, m, m, n, n, m, n, n);
}

/* Compiles (CPU target) and JITs src, or exits; sig: the built-in's, or
 * filled from the IR when known is 0. */
static loom_jit_t *jit_or_die(loom_artifact_cache_t *c, const loom_buf_t *src, const char *name,
                              loom_kernel_sig_t *sig, int known)
{
    loom_err_t err = {0};
    const loom_artifact_t *a;
    loom_jit_t *j;
    int hit;
    if (loom_artifact_compile(c, src->data, src->len, name, LOOM_TARGET_CPU, NULL, known ? sig : NULL, &a, &hit, &err) ||
        loom_artifact_jit(c, a, &j, &err)) {
        fprintf(stderr, "bench-mlir: %s: %s\n", name, err.msg);
        exit(1);
    }
    *sig = a->sig;
    return j;
}

/* Largest |got - want|; *bad counts the values off by more than 1e-5
 * relative (1e-6 absolute near zero), the tolerance of the NumPy test. */
static double max_abs_diff(const float *got, const float *want, size_t n, size_t *bad)
{
    double worst = 0;
    *bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        *bad += d > 1e-5 * fabs((double)want[i]) + 1e-6;
        worst = d > worst ? d : worst;
    }
    return worst;
}

#define RROUNDS 15
static void print_pair(const char *what, int m, int n, double *tj, double *tc, const float *y,
                       const float *ref)
{
    size_t bad;
    double diff = max_abs_diff(y, ref, (size_t)m * n, &bad);
    double bytes = (double)m * n * 8; /* read x once, write y once: the floor */
    double mj = median(tj, RROUNDS), mc = median(tc, RROUNDS);
    printf("JIT code: %s %dx%d f32 on one thread (GB/s of x read + y written, median [range])%s\n", what,
           m, n, bad ? "  RESULT MISMATCH" : "");
    printf("  MLIR JIT                                    %8.2f [%.2f-%.2f]   %.1f us   max |diff| vs C %.1e\n",
           bytes / mj / 1e9, bytes / tj[RROUNDS - 1] / 1e9, bytes / tj[0] / 1e9, mj * 1e6, diff);
    printf("  peer: the same algorithm in C, gcc -O2      %8.2f [%.2f-%.2f]   %.1f us   JIT = %.2fx\n",
           bytes / mc / 1e9, bytes / tc[RROUNDS - 1] / 1e9, bytes / tc[0] / 1e9, mc * 1e6, mc / mj);
}

static void bench_reductions(loom_artifact_cache_t *c, int m, int n)
{
    size_t mn = (size_t)m * n;
    float *x = malloc(mn * 4), *y = malloc(mn * 4), *r = malloc(mn * 4), *w = malloc((size_t)n * 4),
          *b = malloc((size_t)n * 4), *s1 = malloc((size_t)m * 4), *s2 = malloc((size_t)m * 4);
    uint64_t rng = 99;
    for (size_t i = 0; i < mn; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((rng >> 40) % 16001) / 1000.0f - 8.0f;
    }
    for (int i = 0; i < n; i++)
        w[i] = 0.5f + (float)(i % 11) / 10.0f, b[i] = (float)(i % 7) / 7.0f - 0.5f;

    loom_buf_t src = LOOM_BUF_INIT;
    loom_kernel_sig_t sig;
    loom_err_t err = {0};
    loom_kernel_spec_t spec = {.kind = LOOM_KERNEL_SOFTMAX, .m = m, .n = n, .k = 1};
    if (loom_kernel_source(&spec, 0, &src, &sig, &err)) {
        fprintf(stderr, "bench-mlir: softmax: %s\n", err.msg);
        exit(1);
    }
    loom_jit_t *j = jit_or_die(c, &src, "softmax", &sig, 1);
    void *sm[] = {x, y, s1, s2};
    double tj[RROUNDS], tc[RROUNDS];
    loom_jit_call(j, &sig, sm, &err); /* warm-up: first-touch of code and data */
    c_softmax(x, r, m, n);
    for (int k = 0; k < RROUNDS; k++) {
        uint64_t t0 = loom_clock_ns();
        loom_jit_call(j, &sig, sm, &err);
        tj[k] = (double)(loom_clock_ns() - t0) / 1e9;
        t0 = loom_clock_ns();
        c_softmax(x, r, m, n);
        tc[k] = (double)(loom_clock_ns() - t0) / 1e9;
    }
    print_pair("softmax (rows)", m, n, tj, tc, y, r);

    loom_buf_reset(&src);
    layernorm_source(&src, m, n);
    j = jit_or_die(c, &src, "layernorm.mlir", &sig, 0);
    void *ln[] = {x, w, b, y};
    loom_jit_call(j, &sig, ln, &err);
    c_layernorm(x, w, b, r, m, n);
    for (int k = 0; k < RROUNDS; k++) {
        uint64_t t0 = loom_clock_ns();
        loom_jit_call(j, &sig, ln, &err);
        tj[k] = (double)(loom_clock_ns() - t0) / 1e9;
        t0 = loom_clock_ns();
        c_layernorm(x, w, b, r, m, n);
        tc[k] = (double)(loom_clock_ns() - t0) / 1e9;
    }
    print_pair("layer norm (rows)", m, n, tj, tc, y, r);
    loom_buf_free(&src);
    free(x), free(y), free(r), free(w), free(b), free(s1), free(s2);
}

/* 100 steps: every 4th an llm.generate (prefill + decode, split across two
 * GPUs half of the time), others embed / vector.search / tool / compute;
 * each step depends on one or two earlier steps; 4 devices. */
#define STEPS 100
static loom_lower_node_t nodes[2 * STEPS];
static loom_lower_edge_t edges[4 * STEPS];
static char names[2 * STEPS][32], steps[STEPS][16];

static loom_lower_wf_t make_workflow(void)
{
    static const char *devs[] = {"cpu0", "a100", "l4", "npu0"};
    static const char *kinds[] = {"embed", "vector.search", "tool.exec", "compute"};
    int nn = 0, ne = 0, last[STEPS];
    uint64_t r = 12345;
    for (int s = 0; s < STEPS; s++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        snprintf(steps[s], sizeof steps[s], "s%d", s);
        int first = nn;
        if (s % 4 == 3) {
            snprintf(names[nn], 32, "s%d.prefill", s);
            nodes[nn] = (loom_lower_node_t){.name = names[nn], .op = "llm.prefill", .step = steps[s], .model = "m",
                                            .device = "a100", .pred_ms = 20, .line = s + 1, .col = 3};
            nn++;
            snprintf(names[nn], 32, "s%d.decode", s);
            nodes[nn] = (loom_lower_node_t){.name = names[nn], .op = "llm.decode", .step = steps[s], .model = "m",
                                            .device = (r >> 33) & 1 ? "l4" : "a100", .pred_ms = 200,
                                            .line = s + 1, .col = 3};
            edges[ne++] = (loom_lower_edge_t){.src = nn - 1, .dst = nn, .kv = 1, .pred_ms = 2};
            nn++;
        } else {
            snprintf(names[nn], 32, "s%d", s);
            nodes[nn] = (loom_lower_node_t){.name = names[nn], .op = kinds[(r >> 40) % 4], .step = steps[s],
                                            .device = devs[(r >> 20) % 4], .kernel = "matmul", .index = "kb",
                                            .topk = 4, .pred_ms = 5, .line = s + 1, .col = 3};
            nn++;
        }
        if (s > 0)
            edges[ne++] = (loom_lower_edge_t){.src = last[(r >> 10) % (uint64_t)s], .dst = first};
        if (s > 1 && (r >> 50) % 2)
            edges[ne++] = (loom_lower_edge_t){.src = last[s - 1], .dst = first};
        last[s] = nn - 1;
    }
    return (loom_lower_wf_t){.name = "bench100", .file = "bench100.yaml", .sla_ms = 5000, .nnodes = (size_t)nn,
                             .nedges = (size_t)ne, .nodes = nodes, .edges = edges};
}

int main(int argc, char **argv)
{
    (void)argc;
    /* The peer is the best BLAS kernel on the machine: OpenBLAS picks its
     * kernel for the CPU when the library loads (SkylakeX, AVX-512, on this
     * Zen 5), unless OPENBLAS_CORETYPE forces one (this VM's environment
     * sets Haswell, AVX2, which halves sgemm here); so the bench runs itself
     * again without it. */
    const char *forced = getenv("OPENBLAS_CORETYPE");
    if (forced) {
        printf("note: OPENBLAS_CORETYPE=%s removed from the environment: OpenBLAS picks its own kernel\n", forced);
        fflush(stdout);
        unsetenv("OPENBLAS_CORETYPE");
        execv("/proc/self/exe", argv);
        perror("bench-mlir: re-exec");
        return 1;
    }
    loom_err_t err = {0};
    uint64_t t0 = loom_clock_ns();
    loom_mlir_t *m = loom_mlir_new(&err);
    double ctx_ms = (double)(loom_clock_ns() - t0) / 1e6;
    if (!m) {
        fprintf(stderr, "bench-mlir: %s\n", err.msg);
        return 1;
    }
    loom_lower_wf_t wf = make_workflow();
    loom_buf_t out = LOOM_BUF_INIT;
    t0 = loom_clock_ns();
    if (loom_lower_text(m, &wf, 1, LOOM_PASS_VERIFY, &out, &err) != 0) {
        fprintf(stderr, "bench-mlir: %s\n", err.msg);
        return 1;
    }
    double cold_ms = (double)(loom_clock_ns() - t0) / 1e6;
    size_t nfunc = 0, nsend = 0;
    for (const char *p = out.data; (p = strstr(p, "func.func @")); p++)
        nfunc++;
    for (const char *p = out.data; (p = strstr(p, "\"loom.send\"")); p++)
        nsend++;
    double warm[20];
    for (int i = 0; i < 20; i++) {
        loom_buf_reset(&out);
        t0 = loom_clock_ns();
        loom_lower_text(m, &wf, 1, LOOM_PASS_VERIFY, &out, &err);
        warm[i] = (double)(loom_clock_ns() - t0) / 1e6;
    }
    printf("lowering: %zu-node, %zu-edge workflow (%d steps) -> %zu device functions, %zu send/recv pairs\n",
           wf.nnodes, wf.nedges, STEPS, nfunc, nsend);
    printf("  MLIR context + loom dialect (IRDL) setup   %8.2f ms\n", ctx_ms);
    printf("  cold lowering + partitioning (first run)    %8.2f ms   (target < 200 ms: %s)\n", cold_ms,
           cold_ms < 200 ? "met" : "MISSED");
    printf("  warm lowering + partitioning (median of 20) %8.2f ms\n", median(warm, 20));

    /* Kernel compiles. */
    char dir[] = "/tmp/loom-bench-art-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    loom_artifact_cache_t *c = loom_artifact_cache_new(m, dir, &err);
    loom_kernel_spec_t s = {.kind = LOOM_KERNEL_MATMUL, .m = 64, .n = 64, .k = 64};
    loom_buf_t src = LOOM_BUF_INIT;
    loom_kernel_sig_t sig;
    loom_kernel_source(&s, 0, &src, &sig, &err);
    const loom_artifact_t *a = NULL;
    int hit;
    t0 = loom_clock_ns();
    if (loom_artifact_compile(c, src.data, src.len, "matmul", LOOM_TARGET_CPU, NULL, &sig, &a, &hit, &err)) {
        fprintf(stderr, "bench-mlir: %s\n", err.msg);
        return 1;
    }
    double cpu_cold = (double)(loom_clock_ns() - t0) / 1e6;
    t0 = loom_clock_ns();
    loom_jit_t *j = NULL;
    loom_artifact_jit(c, a, &j, &err);
    double jit_ms = (double)(loom_clock_ns() - t0) / 1e6;
    const loom_artifact_t *g = NULL;
    t0 = loom_clock_ns();
    if (loom_artifact_compile(c, src.data, src.len, "matmul", LOOM_TARGET_GPU, "sm_90", &sig, &g, &hit, &err)) {
        fprintf(stderr, "bench-mlir: %s\n", err.msg);
        return 1;
    }
    double gpu_cold = (double)(loom_clock_ns() - t0) / 1e6;
    enum { N = 2000 };
    static double hot[N], sha[N];
    for (int i = 0; i < N; i++) {
        t0 = loom_clock_ns();
        loom_artifact_compile(c, src.data, src.len, "matmul", LOOM_TARGET_CPU, NULL, &sig, &a, &hit, &err);
        hot[i] = (double)(loom_clock_ns() - t0) / 1e3;
        uint8_t d[32];
        t0 = loom_clock_ns();
        loom_sha256(src.data, src.len, d);
        sha[i] = (double)(loom_clock_ns() - t0) / 1e3;
    }
    loom_artifact_cache_t *c2 = loom_artifact_cache_new(NULL, dir, &err);
    t0 = loom_clock_ns();
    loom_artifact_compile(c2, src.data, src.len, "matmul", LOOM_TARGET_GPU, "sm_90", &sig, &g, &hit, &err);
    double disk_us = (double)(loom_clock_ns() - t0) / 1e3;
    double hot_us = median(hot, N), sha_us = median(sha, N);
    printf("kernel compile: matmul 64x64x64 (%zu bytes of linalg IR)\n", src.len);
    printf("  cold, CPU (linalg -> LLVM dialect)          %8.2f ms   (+ JIT to machine code %.2f ms)\n", cpu_cold,
           jit_ms);
    printf("  cold, GPU (linalg -> PTX sm_90)             %8.2f ms\n", gpu_cold);
    printf("  cached, memory (median of %d)             %8.2f us   (target < 1 ms: %s; %.0fx faster than cold CPU)\n",
           N, hot_us, hot_us < 1000 ? "met" : "MISSED", cpu_cold * 1e3 / hot_us);
    printf("  cached, disk (new process view)             %8.2f us\n", disk_us);
    printf("  peer: SHA-256 of the IR alone               %8.2f us   (cached compile = %.1fx the hash)\n", sha_us,
           hot_us / sha_us);

    for (int r = 0; r < 2; r++)
        bench_matmul(c, r ? 512 : 256);
    bench_reductions(c, 256, 1024);
    printf("GPU: not measured by this bench (no CUDA device runner in it; PTX is assembled by the tests;\n"
           "     GPU launches run in loom-worker-gpu, tests/mlir/test_gpu.c)\n");
    loom_artifact_cache_destroy(&c2);
    loom_artifact_cache_destroy(&c);
    loom_buf_free(&src);
    loom_buf_free(&out);
    loom_mlir_destroy(&m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
