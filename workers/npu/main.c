/* main.c — loom-worker-npu: the NPU backend over the worker skeleton.
 *
 * No NPU vendor runtime is available to Loom yet, so this backend is a
 * software reference: it compiles kernels for the NPU target (matmul in
 * int8: per-tensor symmetric quantisation, i8 x i8 -> i32 accumulation,
 * dequantisation; see mlir-lowering/kernels.h) and runs them with the MLIR
 * JIT on the host CPU. It registers as kind "npu" with a model and arch
 * that say "emulation", so `loom workers` and the planner never mistake it
 * for hardware; a vendor runtime can replace run-time execution behind the
 * same vtable later. */
#include "common/clock.h"
#include "mlir-lowering/runner.h"
#include "workers/common/ops.h"
#include "workers/common/worker.h"
#include "workers/cpu/op_kernel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

typedef struct {
    loom_device_profile_t p;
} npu_t;

static int npu_init(void **self, int argc, char **argv, loom_err_t *err)
{
    for (int i = 1; i < argc; i++)
        return loom_err_set(err, LOOM_EINVAL, "unknown option '%s' (see --help)", argv[i]);
    npu_t *n = calloc(1, sizeof *n);
    if (!n)
        return loom_err_set(err, LOOM_ENOMEM, "out of memory");
    *self = n;
    return 0;
}

/* Int8 throughput of the reference backend: one 64x64x64 int8 matmul task
 * through the runner, timed after its compile. */
static double measure_gops(void)
{
    loom_err_t err = {0};
    loom_kernel_runner_t *r = loom_kernel_runner_new(LOOM_TARGET_NPU, NULL, &err);
    if (!r)
        return 0;
    json_t *a = json_array(), *b = json_array();
    for (int i = 0; i < 64; i++) {
        json_t *ra = json_array(), *rb = json_array();
        for (int j = 0; j < 64; j++) {
            json_array_append_new(ra, json_real((i * 7 + j) % 13 - 6));
            json_array_append_new(rb, json_real((i + j * 3) % 11 - 5));
        }
        json_array_append_new(a, ra);
        json_array_append_new(b, rb);
    }
    json_t *in = json_pack("{s:s, s:{s:o, s:o}}", "kernel", "matmul", "args", "a", a, "b", b), *out = NULL;
    double gops = 0;
    if (in && loom_kernel_runner_compute(r, in, &out, &err) == 0) {
        json_decref(out);
        uint64_t t0 = loom_clock_ns();
        int reps = 0;
        while (loom_clock_ns() - t0 < 50000000ull && loom_kernel_runner_compute(r, in, &out, &err) == 0) {
            json_decref(out);
            reps++;
        }
        double secs = (double)(loom_clock_ns() - t0) / 1e9;
        gops = reps ? 2.0 * 64 * 64 * 64 * reps / secs / 1e9 : 0;
    }
    json_decref(in);
    loom_kernel_runner_destroy(&r);
    return gops;
}

static int npu_profile(void *self, loom_device_profile_t *p, loom_err_t *err)
{
    (void)err;
    npu_t *n = self;
    struct sysinfo si;
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    n->p = (loom_device_profile_t){
        .kind = "npu",
        .model = "Loom NPU reference backend (software emulation on the host CPU)",
        .arch = "int8-emulation",
        .cores = cores > 0 ? cores : 1,
        .memory_bytes = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit : 0,
        .gflops = measure_gops(),
        .gbps = 0,
        .slots = 1, /* one MLIR context: tasks run one at a time */
    };
    *p = n->p;
    return 0;
}

static int npu_add_ops(void *self, loom_ops_t *ops, loom_err_t *err)
{
    (void)self;
    return loom_kernel_ops_add(ops, LOOM_TARGET_NPU, err);
}

static void npu_destroy(void *self)
{
    free(self);
}

static const loom_backend_t npu_backend = {
    .name = "npu",
    .init = npu_init,
    .profile = npu_profile,
    .add_ops = npu_add_ops,
    .destroy = npu_destroy,
};

int main(int argc, char **argv)
{
    return loom_worker_main(&npu_backend, argc, argv);
}
