/* test_runner.c — compute and vector.search tasks through the kernel
 * runner (what the CPU and NPU workers call): JSON in, JIT-compiled kernels,
 * JSON out, checked against C references; the NPU's int8 matmul equals a
 * quantised reference exactly; bad task inputs fail by field, never crash. */
#include "mlir-lowering/runner.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

int loom_test_runner_main(void);

static loom_kernel_runner_t *CPU, *NPU;

static json_t *matrix(int rows, int cols, float *out, uint64_t *seed)
{
    json_t *m = json_array();
    for (int i = 0; i < rows; i++) {
        json_t *row = json_array();
        for (int j = 0; j < cols; j++) {
            *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
            float v = (float)((*seed >> 40) % 2000) / 1000.0f - 1.0f;
            out[i * cols + j] = v;
            json_array_append_new(row, json_real(v));
        }
        json_array_append_new(m, row);
    }
    return m;
}

static void test_compute_matmul_cpu(void **state)
{
    (void)state;
    uint64_t seed = 7;
    float a[3 * 5], b[5 * 4];
    json_t *in = json_pack("{s:s, s:{s:o, s:o}}", "kernel", "matmul", "args", "a", matrix(3, 5, a, &seed), "b",
                           matrix(5, 4, b, &seed));
    json_t *out = NULL;
    loom_err_t err = {0};
    int rc = loom_kernel_runner_compute(CPU, in, &out, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    json_t *c = json_object_get(out, "c");
    assert_int_equal(json_array_size(c), 3);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            float acc = 0;
            for (int k = 0; k < 5; k++)
                acc += a[i * 5 + k] * b[k * 4 + j];
            float got = (float)json_real_value(json_array_get(json_array_get(c, (size_t)i), (size_t)j));
            assert_true(fabsf(got - acc) <= 1e-5f * fmaxf(fabsf(acc), 1e-3f));
        }
    assert_string_equal(json_string_value(json_object_get(out, "target")), "cpu");
    assert_int_equal(strlen(json_string_value(json_object_get(out, "artifact"))), 64);
    json_decref(out);
    /* Same shape again: served from the artifact cache. */
    unsigned long compiles, hits;
    loom_kernel_runner_stats(CPU, &compiles, &hits);
    assert_int_equal(loom_kernel_runner_compute(CPU, in, &out, &err), 0);
    unsigned long c2, h2;
    loom_kernel_runner_stats(CPU, &c2, &h2);
    assert_int_equal(c2, compiles);
    assert_int_equal(h2, hits + 1);
    json_decref(out);
    json_decref(in);
}

static void test_compute_matmul_npu_int8_exact(void **state)
{
    (void)state;
    uint64_t seed = 99;
    enum { M = 4, K = 9, N = 3 };
    float a[M * K], b[K * N];
    json_t *in = json_pack("{s:s, s:{s:o, s:o}}", "kernel", "matmul", "args", "a", matrix(M, K, a, &seed), "b",
                           matrix(K, N, b, &seed));
    json_t *out = NULL;
    loom_err_t err = {0};
    assert_int_equal(loom_kernel_runner_compute(NPU, in, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "precision")), "int8");
    /* The quantised reference, from the scales the NPU reports. */
    float sa = (float)json_real_value(json_object_get(out, "scale_a"));
    float sb = (float)json_real_value(json_object_get(out, "scale_b"));
    float mxa = 0, mxb = 0;
    for (int i = 0; i < M * K; i++)
        mxa = fmaxf(mxa, fabsf(a[i]));
    for (int i = 0; i < K * N; i++)
        mxb = fmaxf(mxb, fabsf(b[i]));
    assert_true(sa == mxa / 127.0f && sb == mxb / 127.0f);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int32_t s = 0;
            for (int k = 0; k < K; k++) {
                int32_t qa = (int8_t)fminf(fmaxf(nearbyintf(a[i * K + k] / sa), -127.0f), 127.0f);
                int32_t qb = (int8_t)fminf(fmaxf(nearbyintf(b[k * N + j] / sb), -127.0f), 127.0f);
                s += qa * qb;
            }
            json_t *acc = json_array_get(json_array_get(json_object_get(out, "acc"), (size_t)i), (size_t)j);
            json_t *c = json_array_get(json_array_get(json_object_get(out, "c"), (size_t)i), (size_t)j);
            assert_int_equal(json_integer_value(acc), s);
            assert_true((float)json_real_value(c) == (float)s * (sa * sb));
        }
    json_decref(out);
    json_decref(in);
}

static void test_vector_search(void **state)
{
    (void)state;
    json_t *in = json_loads("{\"query\": {\"embedding\": [1, 0, 0]}, \"k\": 2, \"ids\": [\"a\", \"b\", \"c\"],"
                            " \"documents\": [[0, 1, 0], [0.9, 0.1, 0], [0.5, 0.5, 0]]}", 0, NULL);
    json_t *out = NULL;
    loom_err_t err = {0};
    assert_int_equal(loom_kernel_runner_vsearch(CPU, in, &out, &err), 0);
    json_t *hits = json_object_get(out, "hits");
    assert_int_equal(json_array_size(hits), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hits, 0), "id")), "b");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hits, 1), "index")), 2);
    json_decref(out);
    json_decref(in);
    /* k larger than the collection: as many hits as documents. */
    in = json_loads("{\"query\": [1, 2], \"k\": 10, \"documents\": [[1, 0], [0, 1]]}", 0, NULL);
    assert_int_equal(loom_kernel_runner_vsearch(CPU, in, &out, &err), 0);
    assert_int_equal(json_array_size(json_object_get(out, "hits")), 2);
    json_decref(out);
    json_decref(in);
}

static void test_compute_other_builtins_and_user_kernel(void **state)
{
    (void)state;
    json_t *in = json_loads("{\"kernel\": \"softmax\", \"args\": {\"x\": [[1, 2, 3], [0, 0, 0]]}}", 0, NULL);
    json_t *out = NULL;
    loom_err_t err = {0};
    assert_int_equal(loom_kernel_runner_compute(CPU, in, &out, &err), 0);
    json_t *y = json_array_get(json_object_get(out, "y"), 1);
    assert_true(fabs(json_real_value(json_array_get(y, 0)) - 1.0 / 3) < 1e-6);
    json_decref(out);
    json_decref(in);
    in = json_loads("{\"kernel\": \"tests/mlir/kernels/axpy.mlir\", \"args\": {\"inputs\": "
                    "[[1,2,3,4,5,6,7,8], [1,1,1,1,1,1,1,1]]}}", 0, NULL);
    int rc = loom_kernel_runner_compute(CPU, in, &out, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(json_real_value(json_array_get(json_object_get(out, "arg1"), 7)) == 17.0);
    json_decref(out);
    json_decref(in);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{}",
        "{\"kernel\": 5}",
        "{\"kernel\": \"teleport\"}",
        "{\"kernel\": \"matmul\"}",
        "{\"kernel\": \"matmul\", \"args\": []}",
        "{\"kernel\": \"matmul\", \"args\": {\"a\": [[1,2]], \"b\": [[1,2]]}}",
        "{\"kernel\": \"matmul\", \"args\": {\"a\": [[1,2],[3]], \"b\": [[1],[2]]}}",
        "{\"kernel\": \"matmul\", \"args\": {\"a\": [[1,\"x\"]], \"b\": [[1],[2]]}}",
        "{\"kernel\": \"matmul\", \"args\": {\"a\": [], \"b\": [[1]]}}",
        "{\"kernel\": \"softmax\", \"args\": {\"x\": [1, 2]}}",
        "{\"kernel\": \"qmatmul\"}",
        "{\"kernel\": \"/nonexistent/k.mlir\"}",
        "{\"kernel\": \"tests/mlir/kernels/bad_types.mlir\"}",
        "{\"kernel\": \"tests/mlir/kernels/axpy.mlir\", \"args\": {\"arg0\": [1, 2]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *in = json_loads(bad[i], 0, NULL), *out = NULL;
        loom_err_t err = {0};
        assert_non_null(in);
        int rc = loom_kernel_runner_compute(CPU, in, &out, &err);
        if (rc == 0)
            print_error("accepted: %s\n", bad[i]);
        assert_int_not_equal(rc, 0);
        assert_true(err.msg[0] != '\0');
        json_decref(in);
    }
    loom_err_t err = {0};
    json_t *in = json_loads("{\"kernel\": \"tests/mlir/kernels/bad_types.mlir\"}", 0, NULL), *out = NULL;
    assert_int_equal(loom_kernel_runner_compute(CPU, in, &out, &err), LOOM_EPARSE);
    assert_int_equal(err.line, 6);
    json_decref(in);
    static const char *badv[] = {
        "{}", "{\"query\": [1]}", "{\"query\": [1, 2], \"documents\": [[1, 2, 3]]}",
        "{\"query\": \"hello\", \"documents\": [[1]]}", "{\"query\": [1], \"documents\": [[1]], \"k\": 0}",
        "{\"query\": [1], \"documents\": [1]}",
    };
    for (size_t i = 0; i < sizeof badv / sizeof badv[0]; i++) {
        in = json_loads(badv[i], 0, NULL);
        assert_int_not_equal(loom_kernel_runner_vsearch(CPU, in, &out, &err), 0);
        json_decref(in);
    }
}

static int setup(void **state)
{
    (void)state;
    loom_err_t err = {0};
    CPU = loom_kernel_runner_new(LOOM_TARGET_CPU, NULL, &err);
    NPU = loom_kernel_runner_new(LOOM_TARGET_NPU, NULL, &err);
    return CPU && NPU ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    loom_kernel_runner_destroy(&CPU);
    loom_kernel_runner_destroy(&NPU);
    return 0;
}

int loom_test_runner_main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compute_matmul_cpu),
        cmocka_unit_test(test_compute_matmul_npu_int8_exact),
        cmocka_unit_test(test_vector_search),
        cmocka_unit_test(test_compute_other_builtins_and_user_kernel),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests_name("runner", tests, setup, teardown);
}
