/* test_gpu.c — GPU launch test: compiles built-in kernels to PTX for the
 * visible GPU's architecture (`loom kernel --target gpu`), launches them
 * through the CUDA driver API (workers/gpu/cudrv.h) and compares with the
 * C reference the CPU JIT is tested against (test_kernels.c), within 1e-4
 * relative (the GPU lowering uses approximate exp/rsqrt instructions).
 * Then the GPU worker's compute path: a JSON compute task through the
 * kernel runner with the driver as executor (workers/gpu/op_kernel_gpu.c).
 * Skips (exit 77) when no CUDA device is visible. */
#include "mlir-lowering/gpu_unit.h"
#include "mlir-lowering/runner.h"
#include "workers/gpu/cudrv.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) & 0xFFFFFF) / (float)(1 << 23) - 1.0f;
}

static int failures;

static void check(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-4f * fmaxf(fabsf(want[i]), 1e-3f))) {
            fprintf(stderr, "FAIL %s[%zu]: gpu %.9g cpu-reference %.9g\n", what, i, got[i], want[i]);
            failures++;
            return;
        }
    printf("ok   %s (%zu values)\n", what, n);
}

static int exec_unit(void *ud, const loom_gpu_unit_t *u, void *const *bufs, const size_t *bytes,
                     const int *is_output, int n, loom_err_t *err)
{
    return loom_cudrv_run_unit(ud, u, bufs, bytes, is_output, n, err);
}

/* Runs `loom kernel NAME --target gpu --arch A --shape S --emit code --json`. */
static json_t *compile(const char *loom, const char *name, const char *arch, const char *shape)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s kernel %s --target gpu --arch %s --shape %s --emit code --json", loom, name,
             arch, shape);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    json_error_t je;
    json_t *j = json_loadf(p, 0, &je);
    if (pclose(p) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Allocates the kernel's buffers from its JSON signature; inputs random. */
static int run(loom_cudrv_t *d, json_t *art, float **bufs, int *nbufs)
{
    json_t *args = json_object_get(art, "args");
    const char *code = json_string_value(json_object_get(art, "code"));
    size_t bytes[8];
    int out[8];
    loom_gpu_unit_t u;
    loom_err_t err = {0};
    *nbufs = (int)json_array_size(args);
    for (int i = 0; i < *nbufs && i < 8; i++) {
        json_t *a = json_array_get(args, (size_t)i), *shape = json_object_get(a, "shape");
        size_t n = 1;
        for (size_t k = 0; k < json_array_size(shape); k++)
            n *= (size_t)json_integer_value(json_array_get(shape, k));
        bytes[i] = n * sizeof(float);
        bufs[i] = calloc(n, sizeof(float));
        out[i] = !json_is_true(json_object_get(a, "input"));
        for (size_t k = 0; !out[i] && k < n; k++)
            bufs[i][k] = frand();
    }
    if (!code || loom_gpu_unit_read(code, strlen(code), &u, &err) != 0) {
        fprintf(stderr, "FAIL cannot read GPU unit: %s\n", err.msg);
        return -1;
    }
    int rc = loom_cudrv_run_unit(d, &u, (void *const *)bufs, bytes, out, *nbufs, &err);
    if (rc)
        fprintf(stderr, "FAIL launch: %s\n", err.msg);
    loom_gpu_unit_free(&u);
    return rc;
}

int main(void)
{
    loom_cudrv_t *d = NULL;
    loom_err_t err = {0};
    if (loom_cudrv_open(0, &d, &err) != 0) {
        printf("skip: %s: the GPU launch test needs an NVIDIA GPU\n", err.msg);
        return 77;
    }
    const loom_cudrv_device_t *dev = loom_cudrv_device(d);
    printf("device: %s (%s, %d SMs, %.1f GiB)\n", dev->name, dev->arch, dev->sms,
           (double)dev->memory_bytes / (1 << 30));
    char loom[1024];
    const char *b = getenv("BUILD");
    snprintf(loom, sizeof loom, "%s/bin/loom", b ? b : "build");
    /* PTX is generated for the oldest Loom target the device can run. */
    const char *arch = dev->cc_major >= 9 ? "sm_90" : dev->cc_major == 8 && dev->cc_minor >= 9 ? "sm_89"
                     : dev->cc_major >= 8 ? "sm_80" : "sm_70";
    float *buf[8];
    int n = 0;

    json_t *a = compile(loom, "matmul", arch, "33,20,17");
    if (!a || run(d, a, buf, &n) != 0)
        return 1;
    {
        float want[33 * 20];
        for (int i = 0; i < 33; i++)
            for (int j = 0; j < 20; j++) {
                float acc = 0;
                for (int k = 0; k < 17; k++)
                    acc += buf[0][i * 17 + k] * buf[1][k * 20 + j];
                want[i * 20 + j] = acc;
            }
        check("matmul", buf[2], want, 33 * 20);
    }
    json_decref(a);
    for (int i = 0; i < n; i++)
        free(buf[i]);

    a = compile(loom, "softmax", arch, "4,50,1");
    if (!a || run(d, a, buf, &n) != 0)
        return 1;
    {
        float want[4 * 50];
        for (int i = 0; i < 4; i++) {
            float mx = -INFINITY, s = 0;
            for (int j = 0; j < 50; j++)
                mx = fmaxf(mx, buf[0][i * 50 + j]);
            for (int j = 0; j < 50; j++)
                s += (want[i * 50 + j] = expf(buf[0][i * 50 + j] - mx));
            for (int j = 0; j < 50; j++)
                want[i * 50 + j] /= s;
        }
        check("softmax", buf[1], want, 4 * 50);
    }
    json_decref(a);
    for (int i = 0; i < n; i++)
        free(buf[i]);

    a = compile(loom, "rmsnorm", arch, "4,64,1");
    if (!a || run(d, a, buf, &n) != 0)
        return 1;
    {
        float want[4 * 64];
        for (int i = 0; i < 4; i++) {
            float ss = 0;
            for (int j = 0; j < 64; j++)
                ss += buf[0][i * 64 + j] * buf[0][i * 64 + j];
            float inv = 1.0f / sqrtf(ss / 64.0f + 1e-5f);
            for (int j = 0; j < 64; j++)
                want[i * 64 + j] = buf[0][i * 64 + j] * inv * buf[1][j];
        }
        check("rmsnorm", buf[2], want, 4 * 64);
    }
    json_decref(a);
    for (int i = 0; i < n; i++)
        free(buf[i]);

    a = compile(loom, "vector.search", arch, "1,100,16");
    if (!a || run(d, a, buf, &n) != 0)
        return 1;
    {
        float want[100];
        for (int i = 0; i < 100; i++) {
            float acc = 0;
            for (int k = 0; k < 16; k++)
                acc += buf[0][i * 16 + k] * buf[1][k];
            want[i] = acc;
        }
        check("vector.search scores", buf[2], want, 100);
    }
    json_decref(a);
    for (int i = 0; i < n; i++)
        free(buf[i]);
    /* The compute op's path: JSON task -> artifact (PTX) -> driver. */
    loom_kernel_runner_t *r = loom_kernel_runner_new_gpu(arch, exec_unit, d, NULL, &err);
    if (!r) {
        fprintf(stderr, "FAIL GPU runner: %s\n", err.msg);
        return 1;
    }
    json_t *task = json_loads("{\"kernel\": \"matmul\", \"args\": {\"a\": [[1, 2, 3], [4, 5, 6]],"
                              " \"b\": [[1, 0], [0, 1], [1, 1]]}}", 0, NULL), *res = NULL;
    if (loom_kernel_runner_compute(r, task, &res, &err) != 0) {
        fprintf(stderr, "FAIL compute task on the GPU: %s\n", err.msg);
        failures++;
    } else {
        float want[4] = {4, 5, 10, 11}, got[4];
        for (int i = 0; i < 4; i++)
            got[i] = (float)json_number_value(json_array_get(json_array_get(json_object_get(res, "c"), (size_t)i / 2), (size_t)i % 2));
        check("compute task (runner -> PTX -> driver)", got, want, 4);
    }
    json_decref(res);
    json_decref(task);
    task = json_loads("{\"query\": [0, 0, 1], \"k\": 1, \"documents\": [[1, 0, 0], [0, 0.9, 0.1], [0, 0, 1]]}",
                      0, NULL);
    if (loom_kernel_runner_vsearch(r, task, &res, &err) != 0 ||
        json_integer_value(json_object_get(json_array_get(json_object_get(res, "hits"), 0), "index")) != 2) {
        fprintf(stderr, "FAIL vector.search on the GPU: %s\n", err.msg);
        failures++;
    } else {
        printf("ok   vector.search (GPU scores, host top-k)\n");
    }
    json_decref(res);
    json_decref(task);
    loom_kernel_runner_destroy(&r);
    loom_cudrv_close(&d);
    return failures ? 1 : 0;
}
