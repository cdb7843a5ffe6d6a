/* mlir_bench_native.c — the i-k-j matmul loop of bench/mlir_bench.c,
 * compiled with -O3 -march=native (tests/mlir/module.mk), so bench-mlir can
 * show gcc at its best on this host's full vector width (AVX-512 here) next
 * to the JIT, besides the portable -O2 build (SSE2). -O3 and restrict: in
 * mlir_bench.c gcc inlines the loop with a constant n and three distinct
 * buffers and vectorises it at -O2; called across files with a run-time n,
 * -O2's cheap cost model does not vectorise it at all. */
#include <string.h>

void c_ikj_native(const float *restrict A, const float *restrict B, float *restrict C, int n);

void c_ikj_native(const float *restrict A, const float *restrict B, float *restrict C, int n)
{
    memset(C, 0, sizeof(float) * (size_t)n * n);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            float a = A[i * n + k];
            for (int j = 0; j < n; j++)
                C[i * n + j] += a * B[k * n + j];
        }
}
